import PostgresClient
import ControlPlane
import EventStore
import Foundation
import HTTPTypes
import TestSupport

/// Helpers of the Idempotency-Key tests.
let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!
let idempotentReplayedHeader = HTTPField.Name("Idempotent-Replayed")!
let routeplaneSequenceHeader = HTTPField.Name("X-Routeplane-Sequence")!

func keyed(_ key: String, _ more: HTTPFields = [:]) -> HTTPFields {
    var h = more
    h[idempotencyKeyHeader] = key
    return h
}

/// A valid route body; `n` (0…255) makes its network id and range its own.
func idempotencyRouteBody(_ peer: String, group: String, n: Int, metric: Int = 100) -> [String: Any] {
    ["network_id": "net-\(n)", "description": "route \(n)", "network": "10.\(n).0.0/16", "peer": peer,
     "groups": [group], "metric": metric, "enabled": true, "masquerade": false]
}

extension TestDatabase {
    /// The tenant's events (count, and how many of one type).
    func eventCount(tenant: String, type: String? = nil) async throws -> Int {
        let rows = try await store.pool.withSession { s in
            try s.query("SELECT count(*) AS n FROM events WHERE tenant_id = $1 AND ($2::text IS NULL OR type = $2)", [tenant, type])
        }
        return Int(rows.first?.int64("n") ?? -1)
    }

    /// The idempotency rows of a tenant: (key, state, seq).
    func idempotencyRows(tenant: String) async throws -> [(key: String, state: String, seq: Int64?)] {
        let rows = try await store.pool.withSession { s in
            try s.query("SELECT idem_key, state, seq FROM idempotency_keys WHERE tenant_id = $1 ORDER BY idem_key", [tenant])
        }
        return rows.map { ($0.string("idem_key") ?? "", $0.string("state") ?? "", $0.int64("seq")) }
    }
}
