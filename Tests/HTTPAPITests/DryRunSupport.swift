import ControlPlane
import EventStore
import Foundation
import HTTPAPI
import HTTPTypes
import PostgresClient
import Projections
import RouteModel
import Testing
import TestSupport

/// What the dry-run tests read straight from PostgreSQL: how many rows each table a write could touch holds, the
/// stored events after a sequence, and the projection's stored views.
struct DryRunTrace: Equatable, CustomStringConvertible {
    var events: Int
    var outbox: Int
    var credentials: Int
    var peerViews: Int
    var heads: Int

    var description: String { "events \(events), outbox \(outbox), credentials \(credentials), peer_views \(peerViews), head sum \(heads)" }

    static func read(_ api: LiveAPI) async throws -> DryRunTrace {
        let rows = try await api.db.store.pool.withSession { s in
            try s.query("""
                SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM outbox) AS outbox,
                       (SELECT count(*) FROM credentials) AS credentials, (SELECT count(*) FROM peer_views) AS peer_views,
                       (SELECT coalesce(sum(seq), 0) FROM tenant_heads) AS heads
                """)
        }
        let r = rows[0]
        return DryRunTrace(events: Int(r.string("events") ?? "") ?? -1, outbox: Int(r.string("outbox") ?? "") ?? -1,
                           credentials: Int(r.string("credentials") ?? "") ?? -1, peerViews: Int(r.string("peer_views") ?? "") ?? -1,
                           heads: Int(r.string("heads") ?? "") ?? -1)
    }

    /// The audit log's entry count of `tenant` (the API's own reading of the events).
    static func auditEntries(_ api: LiveAPI, token: String) async throws -> Int {
        let reply = try await api.send(.get, "/api/events/audit?limit=1000", token: token)
        return reply.array.count
    }
}

extension LiveAPI {
    /// The stored events of `tenant` after `sequence`: (type, data as JSON text).
    func storedEvents(_ tenant: String, after sequence: Int64) async throws -> [(sequence: Int64, type: String, data: String)] {
        try await db.store.read(tenant: tenant, fromSequence: sequence + 1, limit: 1000).map { ($0.sequence, $0.type, $0.data) }
    }

    /// The projection's stored view of every peer of `tenant` (decoded canonical JSON).
    func storedViews(_ tenant: String) async throws -> [String: PeerRouteView] {
        let rows = try await db.store.pool.withSession { s in
            try s.query("SELECT peer_id, body::text AS body FROM peer_views WHERE tenant_id = $1", [tenant])
        }
        var out: [String: PeerRouteView] = [:]
        for row in rows {
            guard let peer = row.string("peer_id"), let body = row.string("body") else { continue }
            out[peer] = try JSONDecoder().decode(PeerRouteView.self, from: Data(body.utf8))
        }
        return out
    }
}

extension Reply {
    /// The body decoded as `T` (JSON).
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}

/// A dry run's answer as a client decodes it.
struct DryRunAnswer: Decodable {
    struct Event: Decodable {
        var sequence: Int64
        var type: String
        var target_id: String
        var data: JSONTree
    }
    var dry_run: Bool
    var base_sequence: Int64
    var events: [Event]
    var affected_peers: [String]
    var views: [ViewDiff]
}
