import RouteModel

/// Rebuilding one tenant from event zero (pure): fold every event into a state (no per-event view
/// work), then compute every view once at the end.
public struct TenantFold: Sendable {
    public let tenant: String
    public private(set) var state = TenantState()
    public private(set) var sequence: Int64 = 0
    /// Sequence of the last event that touched each read-model object (deleted ones included).
    private(set) var touched: [ReadModelKey: Int64] = [:]

    public init(tenant: String) { self.tenant = tenant }

    /// Folds events that continue at `sequence + 1`.
    public mutating func fold(_ events: [SequencedEvent]) throws(ProjectionError) {
        // Through the buffer: each event is borrowed in place, not copied out of the array (a copy of a
        // RouteUpdated retains and releases every string and array of two routes).
        let result = events.withUnsafeBufferPointer { buffer in
            Result { () throws(ProjectionError) in
                for i in buffer.indices {
                    let s = buffer[i].sequence
                    guard s == sequence + 1 else { throw .gap(tenant: tenant, expected: sequence + 1, got: s) }
                    ReadModelEncoding.touched(by: buffer[i].event, in: state, into: &touched, sequence: s)
                    state.apply(buffer[i].event)
                    sequence = s
                }
            }
        }
        try result.get()
    }

    /// Every view and read model of the folded state.
    public func result() -> RebuiltTenant {
        var views: [PeerID: RebuiltView] = [:]
        views.reserveCapacity(state.peers.count)
        for p in state.peers.keys {
            let (json, digest) = view(for: p, in: state).encoded()
            views[p] = RebuiltView(digest: digest, body: json)
        }
        let encoder = ReadModelEncoding.encoder()
        var readModels: [ReadModelKey: ReadModelUpdate] = [:]
        for (key, version) in touched {
            guard let body = ReadModelEncoding.body(key, in: state, encoder: encoder) else { continue }
            readModels[key] = ReadModelUpdate(key: key, version: version, body: body)
        }
        return RebuiltTenant(tenant: tenant, sequence: sequence, views: views, readModels: readModels)
    }

    /// A runner's projection at this point, given what the database stores for the views.
    public func projection(stored: [PeerID: StoredViewRef]) -> TenantProjection {
        TenantProjection(tenant: tenant, state: state, sequence: sequence, stored: stored)
    }
}

public struct RebuiltView: Sendable, Hashable {
    public var digest: String
    public var body: [UInt8]
}

/// Everything a rebuild produces for one tenant as of `sequence`.
public struct RebuiltTenant: Sendable {
    public var tenant: String
    public var sequence: Int64
    public var views: [PeerID: RebuiltView]
    public var readModels: [ReadModelKey: ReadModelUpdate]

    /// What a swap writes, given what is stored (see `replacement(stored:)`).
    public struct Replacement: Sendable {
        /// The new `peer_views` rows of the tenant, sorted by peer.
        public var rows: [ViewUpdate] = []
        /// Outbox rows to write, sorted by peer.
        public var outbox: [ViewUpdate] = []
        /// Changed views (and tombstones) whose stored version already is the head, sorted by peer. The
        /// rebuild appends no event, so it has no newer version to give them; whether they can still be
        /// published depends on the outbox row at that version (`ProjectionMaintenance.swap` looks):
        /// none → write one; unsent → replace its content; sent with the rebuilt digest → nothing to do
        /// (agents have the right view; only the stored row was damaged); sent with another digest →
        /// unpublishable until the next event that changes the view (an outbox row at the same version
        /// would be dropped by NATS de-duplication and ignored by the agent).
        public var atHead: [ViewUpdate] = []
        /// Views whose stored version is beyond the head (only a damaged row can be): repaired, not published.
        public var unpublishable: [PeerID] = []
    }

    /// The rows that replace the stored views, and the outbox rows to write, given what is stored.
    /// A view whose digest equals the stored one keeps its stored version (nothing to publish); a changed
    /// or new one is stamped with the tenant's head `sequence` (the moment the rebuild changed it, newer
    /// than any stored version) and published; a stored view of a peer that no longer exists gets a tombstone.
    public func replacement(stored: [PeerID: StoredViewRef]) -> Replacement {
        var out = Replacement()
        out.rows.reserveCapacity(views.count)
        let version = max(sequence, 1)
        func publish(_ u: ViewUpdate, storedVersion: Int64?) {
            guard let s = storedVersion, s >= version else { return out.outbox.append(u) }
            if s == version { out.atHead.append(u) } else { out.unpublishable.append(u.peer) }
        }
        for (p, v) in views {
            if let s = stored[p], s.digest == v.digest {
                out.rows.append(ViewUpdate(peer: p, version: s.version, digest: v.digest, body: v.body, removed: false))
            } else {
                let u = ViewUpdate(peer: p, version: version, digest: v.digest, body: v.body, removed: false)
                out.rows.append(u)
                publish(u, storedVersion: stored[p]?.version)
            }
        }
        for (p, s) in stored where views[p] == nil {
            publish(TenantProjection.tombstone(p, version: version), storedVersion: s.version)
        }
        out.rows.sort { $0.peer < $1.peer }
        out.outbox.sort { $0.peer < $1.peer }
        out.atHead.sort { $0.peer < $1.peer }
        out.unpublishable.sort()
        return out
    }
}

/// A stored view as `verify` reads it.
public struct StoredView: Sendable, Hashable {
    public var version: Int64
    public var digest: String
    public var body: [UInt8]

    public init(version: Int64, digest: String, body: [UInt8]) {
        self.version = version
        self.digest = digest
        self.body = body
    }
}

/// One way the stored projection differs from a rebuild.
public enum ProjectionDifference: Sendable, Hashable, CustomStringConvertible {
    case viewMissing(tenant: String, peer: PeerID)
    case viewExtra(tenant: String, peer: PeerID)
    case viewBody(tenant: String, peer: PeerID, stored: String, rebuilt: String)
    /// The stored digest is not the SHA-256 of the stored body, or differs from the rebuilt one.
    case viewDigest(tenant: String, peer: PeerID, stored: String, rebuilt: String)
    case viewVersionAhead(tenant: String, peer: PeerID, version: Int64, checkpoint: Int64)
    case readModelMissing(tenant: String, key: ReadModelKey)
    case readModelExtra(tenant: String, key: ReadModelKey)
    case readModelBody(tenant: String, key: ReadModelKey, stored: String, rebuilt: String)
    case readModelVersion(tenant: String, key: ReadModelKey, stored: Int64, rebuilt: Int64)

    public var description: String {
        switch self {
        case let .viewMissing(t, p): "tenant \(t): view of peer \(p) is missing"
        case let .viewExtra(t, p): "tenant \(t): view of peer \(p) is stored but the peer does not exist"
        case let .viewBody(t, p, s, r): "tenant \(t): view of peer \(p) differs\n  stored:  \(s)\n  rebuilt: \(r)"
        case let .viewDigest(t, p, s, r): "tenant \(t): digest of peer \(p)'s view is \(s), expected \(r)"
        case let .viewVersionAhead(t, p, v, c): "tenant \(t): view of peer \(p) has version \(v), beyond the checkpoint \(c)"
        case let .readModelMissing(t, k): "tenant \(t): \(k.kind) \(k.id) is missing"
        case let .readModelExtra(t, k): "tenant \(t): \(k.kind) \(k.id) is stored but does not exist"
        case let .readModelBody(t, k, s, r): "tenant \(t): \(k.kind) \(k.id) differs\n  stored:  \(s)\n  rebuilt: \(r)"
        case let .readModelVersion(t, k, s, r): "tenant \(t): \(k.kind) \(k.id) has version \(s), rebuilt \(r)"
        }
    }
}

/// `verify`'s comparison (pure): stored rows at a checkpoint vs a rebuild of the events up to it.
/// View bodies and digests must be equal byte for byte; view versions only have to be ≤ the checkpoint
/// (a version records when a runner saw the view change, which depends on its batch boundaries);
/// read-model versions and bodies must be equal.
public enum ProjectionComparison {
    public static func differences(stored views: [PeerID: StoredView], readModels: [ReadModelKey: ReadModelUpdate],
                                   checkpoint: Int64, rebuilt: RebuiltTenant) -> [ProjectionDifference] {
        let t = rebuilt.tenant
        var out: [ProjectionDifference] = []
        for p in Set(views.keys).union(rebuilt.views.keys).sorted() {
            switch (views[p], rebuilt.views[p]) {
            case (nil, _?): out.append(.viewMissing(tenant: t, peer: p))
            case (_?, nil): out.append(.viewExtra(tenant: t, peer: p))
            case let (s?, r?):
                if s.body != r.body {
                    out.append(.viewBody(tenant: t, peer: p, stored: String(decoding: s.body, as: UTF8.self),
                                         rebuilt: String(decoding: r.body, as: UTF8.self)))
                }
                let actual = PeerRouteView.digest(of: s.body)
                if s.digest != r.digest || s.digest != actual {
                    out.append(.viewDigest(tenant: t, peer: p, stored: s.digest, rebuilt: r.digest))
                }
                if s.version > checkpoint {
                    out.append(.viewVersionAhead(tenant: t, peer: p, version: s.version, checkpoint: checkpoint))
                }
            case (nil, nil): break
            }
        }
        for k in Set(readModels.keys).union(rebuilt.readModels.keys).sorted() {
            switch (readModels[k], rebuilt.readModels[k]) {
            case (nil, _?): out.append(.readModelMissing(tenant: t, key: k))
            case (_?, nil): out.append(.readModelExtra(tenant: t, key: k))
            case let (s?, r?):
                if s.body != r.body { out.append(.readModelBody(tenant: t, key: k, stored: s.body ?? "", rebuilt: r.body ?? "")) }
                if s.version != r.version { out.append(.readModelVersion(tenant: t, key: k, stored: s.version, rebuilt: r.version)) }
            case (nil, nil): break
            }
        }
        return out
    }
}
