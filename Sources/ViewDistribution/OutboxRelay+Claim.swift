/// The pure parts of a relay batch's claim (no I/O): which peers the candidate rows locked, and from which
/// version their rows are read; what to publish and what to mark.
enum OutboxClaim {
    /// An unsent row whose peer lock this transaction holds.
    struct Candidate: Sendable, Equatable {
        var tenant: String
        var peer: String
        var version: Int64
    }

    /// A locked peer and the lowest version among its candidate rows (its oldest unsent row then: candidates come
    /// in id order, and a peer's rows have increasing ids and versions).
    struct LockedPeer: Sendable, Equatable {
        var tenant: String
        var peer: String
        var fromVersion: Int64
    }

    /// Each peer once, in the order of its first candidate (oldest first), with its lowest candidate version.
    static func lockedPeers(_ candidates: [Candidate]) -> [LockedPeer] {
        var index: [PeerKey: Int] = [:]
        var peers: [LockedPeer] = []
        for c in candidates {
            let key = PeerKey(tenant: c.tenant, peer: c.peer)
            if let i = index[key] {
                peers[i].fromVersion = min(peers[i].fromVersion, c.version)
            } else {
                index[key] = peers.count
                peers.append(LockedPeer(tenant: c.tenant, peer: c.peer, fromVersion: c.version))
            }
        }
        return peers
    }

    /// A row of a locked peer, read after the lock (its versions from the oldest candidate up).
    struct PeerRow: Sendable, Equatable {
        var tenant: String
        var peer: String
        var id: Int64
        var version: Int64
        var unsent: Bool
    }

    /// What a batch does with its locked peers.
    struct Plan: Sendable, Equatable {
        struct Publish: Sendable, Equatable {
            /// The peer's newest row: the message.
            var newest: PeerRow
            /// Its unsent rows up to the newest, to mark sent once the message is acknowledged.
            var markOnAck: [Int64]
        }
        var publish: [Publish] = []
        /// Unsent rows of peers whose newest row is out already (sent by another relay after our candidate scan):
        /// superseded, marked without publishing.
        var superseded: [Int64] = []
    }

    /// Per peer (in first-appearance order): publish its newest row if it is unsent, and mark its unsent rows on
    /// the acknowledgement; if the newest is sent already, its unsent rows are superseded.
    static func plan(_ rows: [PeerRow]) -> Plan {
        var index: [PeerKey: Int] = [:]
        var groups: [(newest: PeerRow, unsent: [Int64])] = []
        for r in rows {
            let key = PeerKey(tenant: r.tenant, peer: r.peer)
            if let i = index[key] {
                if r.version > groups[i].newest.version { groups[i].newest = r }
                if r.unsent { groups[i].unsent.append(r.id) }
            } else {
                index[key] = groups.count
                groups.append((r, r.unsent ? [r.id] : []))
            }
        }
        var plan = Plan()
        for g in groups {
            if g.newest.unsent {
                plan.publish.append(.init(newest: g.newest, markOnAck: g.unsent))
            } else {
                plan.superseded += g.unsent
            }
        }
        return plan
    }

    private struct PeerKey: Hashable {
        var tenant: String
        var peer: String
    }

}
