import RouteModel

/// The projection of one tenant as of `sequence`: its state, and what PostgreSQL holds for each peer's
/// view (version and digest). Pure: `apply` turns a batch of events into the rows to write, with no I/O.
///
/// Views are recomputed once per batch for the peers the batch affected (not once per event): a peer
/// affected by several events of the batch gets one view, stamped with the last of those events. A view
/// whose digest equals the stored one produces nothing (no row, no outbox message), even if it changed
/// and changed back inside the batch.
public struct TenantProjection: Sendable {
    public let tenant: String
    public private(set) var state: TenantState
    /// The last event folded in.
    public private(set) var sequence: Int64
    /// The stored view of every existing peer (as the database holds it after the last batch).
    public private(set) var stored: [PeerID: StoredViewRef]

    public init(tenant: String) {
        self.init(tenant: tenant, state: TenantState(), sequence: 0, stored: [:])
    }

    /// A projection reloaded from the database: `state` folded from events 1...`sequence`, `stored` read
    /// from `peer_views` at the same checkpoint.
    public init(tenant: String, state: TenantState, sequence: Int64, stored: [PeerID: StoredViewRef]) {
        self.tenant = tenant
        self.state = state
        self.sequence = sequence
        self.stored = stored
    }

    /// Catches up with batches another runner projected and committed: folds `events` (continuing at
    /// `sequence + 1`) into the state without computing any view, and takes `changedViews` — the views stored
    /// since `sequence` — as the database holds them; views of peers that no longer exist are forgotten.
    public mutating func fastForward(_ events: [SequencedEvent], changedViews: [PeerID: StoredViewRef]) throws(ProjectionError) {
        for (i, e) in events.enumerated() where e.sequence != sequence + 1 + Int64(i) {
            throw .gap(tenant: tenant, expected: sequence + 1 + Int64(i), got: e.sequence)
        }
        for e in events {
            state.apply(e.event)
            sequence = e.sequence
        }
        for (peer, ref) in changedViews { stored[peer] = ref }
        stored = stored.filter { state.peers[$0.key] != nil }
    }

    /// Folds `events` (which must continue at `sequence + 1`, without gaps) and returns what to write.
    /// On a thrown gap nothing was applied; the projection is unchanged.
    public mutating func apply(_ events: [SequencedEvent], mode: ProjectionMode = .incremental) throws(ProjectionError) -> ProjectionBatch {
        for (i, e) in events.enumerated() where e.sequence != sequence + 1 + Int64(i) {
            throw .gap(tenant: tenant, expected: sequence + 1 + Int64(i), got: e.sequence)
        }
        let first = sequence + 1
        var lastAffected: [PeerID: Int64] = [:]
        var touched: [ReadModelKey: Int64] = [:]
        var affected = Set<PeerID>()
        var viewsComputed = 0
        // Baseline only: the digest of every view after the previous event, and the event that last changed it.
        var running: [PeerID: (digest: String, body: [UInt8], version: Int64)] = [:]

        for e in events {
            ReadModelEncoding.touched(by: e.event, in: state, into: &touched, sequence: e.sequence)
            affected.removeAll(keepingCapacity: true)
            state.apply(e.event, affected: &affected)
            for p in affected { lastAffected[p] = e.sequence }
            sequence = e.sequence
            if mode == .fullRecompute {
                // Every peer's view, after every event (what a full network-map recompute does).
                for p in state.peers.keys {
                    let (json, digest) = view(for: p, in: state).encoded()
                    viewsComputed += 1
                    let previous = running[p]?.digest ?? stored[p]?.digest
                    if previous != digest { running[p] = (digest, json, e.sequence) }
                }
            }
        }

        var updates: [ViewUpdate] = []
        switch mode {
        case .incremental:
            for (p, version) in lastAffected {
                if state.peer(p) != nil {
                    let (json, digest) = view(for: p, in: state).encoded()
                    viewsComputed += 1
                    if stored[p]?.digest == digest { continue }
                    updates.append(ViewUpdate(peer: p, version: version, digest: digest, body: json, removed: false))
                } else if stored[p] != nil {
                    updates.append(Self.tombstone(p, version: version))
                }
            }
        case .fullRecompute:
            for (p, r) in running where state.peer(p) != nil && stored[p]?.digest != r.digest {
                updates.append(ViewUpdate(peer: p, version: r.version, digest: r.digest, body: r.body, removed: false))
            }
            for (p, version) in lastAffected where state.peer(p) == nil && stored[p] != nil {
                updates.append(Self.tombstone(p, version: version))
            }
        }
        updates.sort { $0.peer < $1.peer }
        for u in updates {
            stored[u.peer] = u.removed ? nil : StoredViewRef(version: u.version, digest: u.digest)
        }

        let encoder = ReadModelEncoding.encoder()
        let readModels = touched.keys.sorted().map { key in
            ReadModelUpdate(key: key, version: touched[key]!, body: ReadModelEncoding.body(key, in: state, encoder: encoder))
        }
        return ProjectionBatch(tenant: tenant, firstSequence: first, lastSequence: sequence, views: updates,
                               readModels: readModels, viewsComputed: viewsComputed, affectedPeers: lastAffected.count)
    }

    /// The last message of a removed peer: its empty view, so its agent removes every route it installed.
    static func tombstone(_ peer: PeerID, version: Int64) -> ViewUpdate {
        let (json, digest) = PeerRouteView.empty(peer).encoded()
        return ViewUpdate(peer: peer, version: version, digest: digest, body: json, removed: true)
    }
}
