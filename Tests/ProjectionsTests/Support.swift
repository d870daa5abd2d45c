import PostgresClient
import EventStore
import Foundation
import Projections
import RouteModel
import TestSupport
import Testing

/// Generates accepted commands for one tenant and remembers the events (pure).
struct TenantScript {
    let tenant: String
    var generator: CommandGenerator
    var state = TenantState()
    var events: [SequencedEvent] = []

    init(tenant: String, seed: UInt64) {
        self.tenant = tenant
        generator = CommandGenerator(seed: seed, peers: 14)
    }

    /// The events of the next accepted command.
    mutating func nextEvents() -> [RouteEvent] {
        while true {
            if case .success(let evs) = decide(generator.next(state), state), !evs.isEmpty {
                for e in evs {
                    state.apply(e)
                    events.append(SequencedEvent(sequence: Int64(events.count + 1), event: e))
                }
                return evs
            }
        }
    }

    /// Decides `command` against the script's state and appends its events (none when it changes nothing).
    mutating func append(_ command: Command, to store: EventStore) async throws {
        guard case .success(let evs) = decide(command, state) else {
            Issue.record("command refused: \(command)")
            return
        }
        guard !evs.isEmpty else { return }
        let version = Int64(events.count)
        for e in evs {
            state.apply(e)
            events.append(SequencedEvent(sequence: Int64(events.count + 1), event: e))
        }
        _ = try await store.append(tenant: tenant, expected: version == 0 ? .noEvents : .exactly(version), events: Self.newEvents(evs))
    }

    /// Appends the next accepted command's events to the store (expected version checked).
    mutating func appendNext(to store: EventStore) async throws {
        let version = Int64(events.count)
        let evs = nextEvents()
        let range = try await store.append(tenant: tenant, expected: version == 0 ? .noEvents : .exactly(version), events: Self.newEvents(evs))
        #expect(range.upperBound == Int64(events.count))
    }

    static func newEvents(_ evs: [RouteEvent]) -> [NewEvent] {
        evs.map { e in
            let (type, json) = e.encode()
            return NewEvent(type: type, data: String(decoding: json, as: UTF8.self), metadata: EventMetadata(actor: "test"))
        }
    }
}

struct OutboxRow: Sendable {
    var id: Int64
    var peer: String
    var version: Int64
    var digest: String
    var body: String
    var removed: Bool
}

func outboxRows(_ store: EventStore, tenant: String) async throws -> [OutboxRow] {
    let rows = try await store.pool.withSession { s in
        try s.query("SELECT id, peer_id, version, digest, body, removed FROM outbox WHERE tenant_id = $1 ORDER BY id", [tenant])
    }
    return rows.rows.map { r in
        OutboxRow(id: Int64(r[0]!)!, peer: r[1]!, version: Int64(r[2]!)!, digest: r[3]!, body: r[4]!, removed: r[5] == "t")
    }
}

/// Checks the outbox of `tenant` against its stored views: per peer, versions strictly increase in id
/// order (one row per version), consecutive rows differ in digest (an unchanged view is never
/// published; a tombstone, and a re-enrolled peer's first view, may carry the same empty view), the last row is the stored view
/// (or a tombstone when the peer has none), and every row's digest is the SHA-256 of its body.
func checkOutbox(_ store: EventStore, tenant: String, allowRepublished: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let outbox = try await outboxRows(store, tenant: tenant)
    let viewRows = try await store.pool.withSession { s in
        try s.query("SELECT peer_id, version, digest, body FROM peer_views WHERE tenant_id = $1", [tenant])
    }
    var views: [String: (version: Int64, digest: String, body: String)] = [:]
    for r in viewRows.rows { views[r[0]!] = (Int64(r[1]!)!, r[2]!, r[3]!) }
    var byPeer: [String: [OutboxRow]] = [:]
    for row in outbox { byPeer[row.peer, default: []].append(row) }
    for (peer, rows) in byPeer {
        for (a, b) in zip(rows, rows.dropFirst()) {
            #expect(a.version < b.version, "tenant \(tenant) peer \(peer): outbox versions \(a.version) then \(b.version)", sourceLocation: sourceLocation)
            if !a.removed && !b.removed && !allowRepublished {
                #expect(a.digest != b.digest, "tenant \(tenant) peer \(peer): unchanged view published again at \(b.version)", sourceLocation: sourceLocation)
            }
        }
        for r in rows {
            #expect(PeerRouteView.digest(of: Array(r.body.utf8)) == r.digest, sourceLocation: sourceLocation)
        }
        let last = rows.last!
        if let v = views[peer] {
            #expect(!last.removed && last.version == v.version && last.digest == v.digest && last.body == v.body,
                    "tenant \(tenant) peer \(peer): last outbox row is not the stored view", sourceLocation: sourceLocation)
        } else {
            #expect(last.removed, "tenant \(tenant) peer \(peer): no view but last outbox row is not a tombstone", sourceLocation: sourceLocation)
        }
    }
    for peer in views.keys {
        #expect(byPeer[peer] != nil, "tenant \(tenant) peer \(peer): stored view never published", sourceLocation: sourceLocation)
    }
}

func checkpoint(_ store: EventStore, tenant: String) async throws -> Int64 {
    try await ProjectionCheckpoints(store: store).sequence(tenant: tenant)
}
