import Foundation
import Projections
import RouteModel

/// What a command would do, decided exactly as the real write decides it and appended nowhere: the events it would
/// append, the peers the projection would recompute, and the route view diff of each of those whose view changes.
/// Built from the snapshot the command was decided against (pure: `init(before:events:)`).
public struct DryRunPreview: Sendable, Encodable {
    /// Always true: the answer of a dry run, not of a write (a client that forgot the parameter sees it).
    public var dryRun = true
    /// The tenant sequence the command was decided against; a real call made now would append after it.
    public var baseSequence: Int64
    /// In append order, numbered as they would be if appended now. Empty when the command changes nothing.
    public var events: [PreviewEvent]
    /// The peers whose views the projection would recompute (`TenantState.apply(_:affected:)` over the events),
    /// sorted; a superset of the peers in `views`.
    public var affectedPeers: [PeerID]
    /// One per affected peer whose view would change (the ones the projection would publish), sorted by peer.
    public var views: [ViewDiff]

    enum CodingKeys: String, CodingKey {
        case events, views
        case dryRun = "dry_run"
        case baseSequence = "base_sequence"
        case affectedPeers = "affected_peers"
    }

    /// The preview of `events` decided against `before`.
    public init(before: TenantSnapshot, events: [RouteEvent]) {
        baseSequence = before.version
        var state = before.state
        var affected = Set<PeerID>()
        self.events = []
        for (i, event) in events.enumerated() {
            state.apply(event, affected: &affected)
            self.events.append(PreviewEvent(event, sequence: before.version + Int64(i) + 1))
        }
        affectedPeers = affected.sorted()
        views = affectedPeers.compactMap { peer in
            let diff = ViewDiff(from: view(for: peer, in: before.state), to: view(for: peer, in: state))
            return diff.isEmpty ? nil : diff
        }
    }
}

/// One event a dry run would append: its type, object and payload exactly as the event store would store them.
public struct PreviewEvent: Sendable, Encodable {
    public var sequence: Int64
    public var type: String
    /// The object the event is about (the audit log's `target_id`).
    public var targetID: String
    /// The stored payload, as JSON.
    public var data: JSONTree

    enum CodingKeys: String, CodingKey {
        case sequence, type, data
        case targetID = "target_id"
    }

    init(_ event: RouteEvent, sequence: Int64) {
        let (type, json) = event.encode()
        self.sequence = sequence
        self.type = type
        targetID = event.target.id
        // The writer's own encoding reads back; a failure would be a bug in it, shown rather than hidden.
        data = (try? JSONDecoder().decode(JSONTree.self, from: Data(json))) ?? .string(String(decoding: json, as: UTF8.self))
    }
}

extension CommandWriter {
    /// The write's decision without the append: the tenant's latest snapshot, `If-Match` checked against it
    /// (`versionMismatch` → 412 as for real), the command decided with the same wrapper as `write` (quotas, the
    /// built-in group's repair), and nothing appended: no event, no credential row, no outbox row, no audit entry.
    /// Takes no turn in the tenant's writer queue: it changes nothing another writer could race with.
    public func dryRun(
        tenant: String, ifMatch: (object: ObjectRef, version: Int64)? = nil,
        decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent]
    ) async throws -> DryRunPreview {
        let snapshot = try await cache.current(tenant)
        try Self.check(ifMatch, snapshot)
        let events = try Self.withAllGroup(decide, quotas: quotas)(snapshot)
        return DryRunPreview(before: snapshot, events: events)
    }
}
