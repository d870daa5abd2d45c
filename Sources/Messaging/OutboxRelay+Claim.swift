import EventStore

/// The pure parts of a relay batch's claim (no I/O): which peers the candidate rows locked, and from which
/// version their rows are to be marked; parsing the id arrays PostgreSQL returns.
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

    private struct PeerKey: Hashable {
        var tenant: String
        var peer: String
    }

    /// A PostgreSQL `bigint[]` in text form (`{}`, `{1,2,3}`).
    static func int64Array(_ text: String) throws -> [Int64] {
        guard text.first == "{", text.last == "}" else { throw EventStoreError.invalidResponse("not an array: \(text.prefix(40))") }
        let inner = text.dropFirst().dropLast()
        if inner.isEmpty { return [] }
        return try inner.split(separator: ",").map { part in
            guard let value = Int64(part) else { throw EventStoreError.invalidResponse("not a bigint array: \(text.prefix(40))") }
            return value
        }
    }
}
