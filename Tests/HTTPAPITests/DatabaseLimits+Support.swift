import ControlPlane
import EventStore
import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresClient
import TestSupport

extension LiveAPI {
    /// A real controller over real HTTP, as `LiveAPI.run`, with these database limits and a pool of `maxConnections`.
    static func run(limits: DatabaseLimits, maxConnections: Int = 16, _ body: @Sendable (LiveAPI) async throws -> Void) async throws {
        var configuration = ControllerConfiguration(maxBodyBytes: 64 * 1024)
        configuration.database = limits
        try await run(configuration: configuration, maxConnections: maxConnections, logLevel: .error, body)
    }

    /// `count` more audit events for `tenant`, made in SQL from the tenant's last `GroupUpdated` event (a real event that
    /// decodes): each renames the group to `<name>-<n>`. For big tenants in tests; the tenant must have no other writer.
    func bulkGroupRenames(tenant: String, name: String, count: Int) async throws {
        try await Self.bulkGroupRenames(store: db.store, tenant: tenant, name: name, count: count)
    }

    static func bulkGroupRenames(store: EventStore, tenant: String, name: String, count: Int) async throws {
        _ = try await store.pool.withSession { s in
            try s.script("BEGIN")
            _ = try s.query("""
                INSERT INTO events (event_id, tenant_id, seq, type, data, metadata)
                SELECT gen_random_uuid(), $1, h.seq + g, e.type, replace(e.data::text, '"' || $3 || '"', '"' || $3 || '-' || g || '"')::json, e.metadata
                FROM (SELECT type, data, metadata FROM events WHERE tenant_id = $1 AND type = 'GroupUpdated' ORDER BY seq DESC LIMIT 1) e,
                     (SELECT seq FROM tenant_heads WHERE tenant_id = $1) h, generate_series(1, $2::int) g
                """, [tenant, String(count), name])
            _ = try s.query("UPDATE tenant_heads SET seq = seq + $2::int WHERE tenant_id = $1", [tenant, String(count)])
            try s.script("COMMIT")
            try s.script("VACUUM ANALYZE events")   // VACUUM also merges the trigram index's pending list
        }
    }

    /// A group named `name` (created, then renamed to it, so the tenant has a `GroupUpdated` event to copy); its id.
    func renamedGroup(_ token: String, name: String) async throws -> String {
        let created = try await send(.post, "/api/groups", token: token, json: ["name": name + "-first"])
        guard created.status == 200 || created.status == 201 else { throw TestSetupError("group: \(created.status) \(created.text)") }
        let renamed = try await send(.put, "/api/groups/\(created.id)", token: token, json: ["name": name])
        guard renamed.status == 200 else { throw TestSetupError("rename: \(renamed.status) \(renamed.text)") }
        return created.id
    }
}

/// A connection of its own holding a lock in an open transaction until `release()`.
struct HeldLock {
    let connection: PostgresConnection

    /// `sql` (a LOCK or an advisory lock) in a transaction left open.
    static func hold(_ db: TestDatabase, _ sql: String, _ parameters: [String?] = []) async throws -> HeldLock {
        let connection = try await db.rawConnection()
        _ = try await connection.withSession { s in
            try s.script("BEGIN")
            _ = try s.query(sql, parameters)
        }
        return HeldLock(connection: connection)
    }

    func release() async {
        _ = try? await connection.withSession { s in try s.script("COMMIT") }
        connection.close()
    }
}
