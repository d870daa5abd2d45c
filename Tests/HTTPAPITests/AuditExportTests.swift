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

/// `GET /api/events/audit/export` over real HTTP and PostgreSQL: the same entries as the audit log (NDJSON and CSV), across
/// batches without a gap or a repeat, resumable from any entry id (also inside an event that reads as several entries),
/// with the audit log's filters, one tenant only, readable by read-only tokens.
@Suite("Audit export", .serialized, .timeLimit(.minutes(5)))
struct AuditExportTests {
    /// Some history: a group created with two peers and changed (events that read as several entries), a route and its change.
    static func history(_ api: LiveAPI, _ token: String) async throws -> [String] {
        let clients = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
        let peers = try await api.enroll(token, names: ["r1", "c1", "c2"], autoGroups: [clients])
        let both = try await api.send(.post, "/api/groups", token: token, json: ["name": "both, \"quoted\"", "peers": Array(peers.prefix(2))]).id
        _ = try await api.send(.put, "/api/groups/\(both)", token: token, json: ["name": "both", "peers": [peers[2]]])
        let route = try await api.send(.post, "/api/routes", token: token, json: [
            "network_id": "lan", "network": "10.20.0.0/24", "metric": 100, "masquerade": true, "groups": [clients], "enabled": true, "peer": peers[0]]).id
        _ = try await api.send(.put, "/api/routes/\(route)", token: token, json: [
            "network_id": "lan", "network": "10.20.0.0/24", "metric": 50, "masquerade": true, "groups": [clients], "enabled": true, "peer": peers[0],
            "description": "line one\nline two, with a comma"])
        return peers
    }

    static func lines(_ reply: Reply) -> [[String: Any]] {
        reply.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func ids(_ entries: [[String: Any]]) -> [String] { entries.compactMap { $0["id"] as? String } }

    /// The audit log's entries, oldest first, every page.
    static func auditLog(_ api: LiveAPI, _ token: String, query: String = "") async throws -> [[String: Any]] {
        var out: [[String: Any]] = []
        var cursor: String?
        repeat {
            let reply = try await api.send(.get, "/api/events/audit?order=asc&limit=1000\(query)" + (cursor.map { "&cursor=\($0)" } ?? ""), token: token)
            out += reply.array
            cursor = reply.headers[HTTPField.Name("X-Next-Cursor")!]
        } while cursor != nil
        return out
    }

    @Test("NDJSON and CSV hold exactly the audit log's entries, oldest first; filters as the audit log's")
    func sameAsTheAuditLog() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let peers = try await Self.history(api, token)
            let audit = try await Self.auditLog(api, token)
            let ndjson = try await api.send(.get, "/api/events/audit/export?format=ndjson", token: token)
            #expect(ndjson.status == 200)
            #expect(ndjson.headers[.contentType] == "application/x-ndjson")
            let lines = Self.lines(ndjson)
            #expect(lines.count == ndjson.text.split(separator: "\n").count, "every line is one JSON object")
            #expect(Self.ids(lines) == Self.ids(audit))
            #expect(lines.count > 10)
            for (a, b) in zip(lines, audit) { #expect(NSDictionary(dictionary: a).isEqual(to: b), "\(a["id"] ?? "")") }

            let csv = try await api.send(.get, "/api/events/audit/export?format=csv", token: token)
            #expect(csv.status == 200)
            #expect(csv.headers[.contentType] == "text/csv; charset=utf-8")
            let rows = AuditExportAndCSV.parse(csv.text)
            #expect(rows.first == AuditCSV.columns)
            #expect(rows.dropFirst().map { $0[0] } == Self.ids(audit))
            #expect(rows.dropFirst().allSatisfy { $0.count == AuditCSV.columns.count })
            // Fields with commas, quotes and line breaks come back whole.
            #expect(rows.contains { $0[10].contains("line one\\nline two, with a comma") })
            #expect(rows.contains { $0[9].contains("both, \\\"quoted\\\"") })

            // Filters: the audit log's, oldest first; desc reverses.
            for query in ["&activity_code=peer.group.add", "&target_id=\(peers[1])", "&initiator_id=cli", "&search=comma"] {
                let filtered = Self.lines(try await api.send(.get, "/api/events/audit/export?x=1\(query)", token: token))
                #expect(Self.ids(filtered) == Self.ids(try await Self.auditLog(api, token, query: query)), "\(query)")
            }
            let desc = Self.lines(try await api.send(.get, "/api/events/audit/export?order=desc", token: token))
            #expect(Self.ids(desc) == Self.ids(audit).reversed())
        }
    }

    @Test("resumable: cursor=<any id read> continues right after it, also inside an event of several entries, both orders")
    func resumeFromAnyEntry() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            _ = try await Self.history(api, token)
            for order in ["asc", "desc"] {
                let all = Self.ids(Self.lines(try await api.send(.get, "/api/events/audit/export?order=\(order)", token: token)))
                #expect(all.contains { $0.contains("-") }, "the history has events of several entries")
                for (i, id) in all.enumerated() {
                    let rest = Self.ids(Self.lines(try await api.send(.get, "/api/events/audit/export?order=\(order)&cursor=\(id)", token: token)))
                    #expect(rest == Array(all[(i + 1)...]), "\(order) after \(id)")
                }
            }
        }
    }

    @Test("batches join without a gap or a repeat (2,600 events: three batches)")
    func manyBatches() async throws {
        try await LiveAPI.run { api in
            let (tenant, token) = try await api.tenant("big")
            try await AuditExportAndCSV.copyRenames(api, tenant: tenant, token: token, count: 2_600)
            let ids = Self.ids(Self.lines(try await api.send(.get, "/api/events/audit/export", token: token)))
            let sequences = ids.map { Int($0.split(separator: "-")[0]) ?? -1 }
            #expect(sequences.count >= 2_600)
            #expect(Set(ids).count == ids.count)
            #expect(sequences == sequences.sorted())
            #expect(Set(sequences) == Set(1...(sequences.last ?? 0)), "every event, none missing")
            let csvRows = AuditExportAndCSV.parse(try await api.send(.get, "/api/events/audit/export?format=csv", token: token).text)
            #expect(csvRows.count == ids.count + 1)
        }
    }

    @Test("isolation: one tenant's export holds none of another's entries; no token is 401; read-only tokens export; bad parameters are 400 by name")
    func isolation() async throws {
        try await LiveAPI.run { api in
            let (tenantA, tokenA) = try await api.tenant("a")
            let (_, tokenB) = try await api.tenant("b")
            let peersA = try await Self.history(api, tokenA)
            let readOnlyA = try await api.controller.controlPlane.createToken(tenant: tenantA, name: "auditor", scope: .readOnly).token
            for format in ["ndjson", "csv"] {
                let b = try await api.send(.get, "/api/events/audit/export?format=\(format)", token: tokenB)
                #expect(b.status == 200)
                #expect(!peersA.contains { b.text.contains($0) })
                #expect(!b.text.contains("10.20.0.0/24") && !b.text.contains("clients"))
                let bByTarget = try await api.send(.get, "/api/events/audit/export?format=\(format)&target_id=\(peersA[0])", token: tokenB)
                #expect(bByTarget.status == 200)
                #expect(!bByTarget.text.contains(peersA[0]))
                #expect(try await api.send(.get, "/api/events/audit/export?format=\(format)").status == 401)
                let ro = try await api.send(.get, "/api/events/audit/export?format=\(format)", token: readOnlyA)
                #expect(ro.status == 200)
                #expect(ro.text.contains(peersA[0]))
            }
            for (query, field) in [("format=xml", "format"), ("limit=5", "limit"), ("cursor=abc", "cursor"), ("order=sideways", "order"),
                                   ("start_date=yesterday", "start_date"), ("activity_code=nope", "activity_code"), ("search=ab", "search")] {
                let r = try await api.send(.get, "/api/events/audit/export?\(query)", token: tokenA)
                #expect(r.status == 400 || r.status == 422, "\(query): \(r.status) \(r.text)")
                #expect(r.object["field"] as? String == field, "\(query): \(r.text)")
            }
        }
    }
}

enum AuditExportAndCSV {
    /// A strict RFC 4180 reader (CRLF records, quoted fields with doubled quotes).
    static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var chars = Array(text.unicodeScalars)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst() } else { quoted = false }
                } else { field.unicodeScalars.append(c) }
                continue
            }
            switch c {
            case "\"" where field.isEmpty: quoted = true
            case ",": row.append(field); field = ""
            case "\r" where chars.first == "\n":
                chars.removeFirst()
                row.append(field); rows.append(row); row = []; field = ""
            default: field.unicodeScalars.append(c)
            }
        }
        return rows
    }

    /// `count` group renames, written in SQL as copies of one real rename (as `routeplane-bench export` makes its log).
    static func copyRenames(_ api: LiveAPI, tenant: String, token: String, count: Int) async throws {
        let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "template"]).id
        _ = try await api.send(.put, "/api/groups/\(g)", token: token, json: ["name": "template2"])
        _ = try await api.db.store.pool.withSession { s in
            try s.script("BEGIN")
            _ = try s.query("""
                INSERT INTO events (event_id, tenant_id, seq, type, data, metadata)
                SELECT gen_random_uuid(), $1, h.seq + g, e.type, e.data, e.metadata
                FROM (SELECT type, data, metadata FROM events WHERE tenant_id = $1 AND type = 'GroupUpdated' ORDER BY seq DESC LIMIT 1) e,
                     (SELECT seq FROM tenant_heads WHERE tenant_id = $1) h, generate_series(1, $2::int) g
                """, [tenant, String(count)])
            _ = try s.query("UPDATE tenant_heads SET seq = seq + $2::int WHERE tenant_id = $1", [tenant, String(count)])
            try s.script("COMMIT")
        }
    }
}
