import EventStore
import PostgresClient

/// Grows a tenant's log in SQL, not measured: copies of one stored group rename (the event at `template`, whose new
/// name is "template"), numbered `from…to`, each renamed by `name` (an SQL expression over the number `g`), appended
/// right after the tenant's head in one statement and one transaction. The benches that need a long history (audit
/// search, as-of reads, export) all grow it here, always from the one setup rename: copying the newest rename instead
/// would repeat a generated name across the rest of the history.
enum BenchRenameCopies {
    static func append(_ store: EventStore, tenant: String, template: Int64, from: Int, to: Int, name: String) async throws {
        _ = try await store.pool.withSession { s in
            try s.script("BEGIN")
            _ = try s.query("""
                INSERT INTO events (event_id, tenant_id, seq, type, data, metadata)
                SELECT gen_random_uuid(), $1, h.seq + g - $2::int + 1, e.type,
                       replace(e.data::text, '"template"', '"' || (\(name)) || '"')::json, e.metadata
                FROM (SELECT type, data, metadata FROM events WHERE tenant_id = $1 AND seq = $4::bigint) e,
                     (SELECT seq FROM tenant_heads WHERE tenant_id = $1) h, generate_series($2::int, $3::int) g
                """, [tenant, String(from), String(to), String(template)])
            _ = try s.query("UPDATE tenant_heads SET seq = seq + $2::int WHERE tenant_id = $1", [tenant, String(to - from + 1)])
            try s.script("COMMIT")
        }
    }
}
