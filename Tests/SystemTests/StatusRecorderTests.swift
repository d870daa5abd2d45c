import PostgresClient
import EventStore
import Foundation
import NATSClient
import ViewDistribution
import Testing
import TestSupport

/// Agents' status messages on the real bus and database: one bad message never costs the others their rows.
@Suite("status recorder", .timeLimit(.minutes(10)), .serialized)
struct StatusRecorderTests {
    @Test("a NUL body, an oversized body and a peer of another tenant are refused; the rest of the same flush is recorded")
    func badReportsDoNotDropGoodOnes() async throws {
        try await System.with { system in
            let a = try await PropagationTests().tenant(system, "st-a", clients: 3, bystanders: 0)
            let b = try await PropagationTests().tenant(system, "st-b", clients: 1, bystanders: 0)
            for agent in [a.router, b.router] + a.clients + b.clients { await agent.stop() }
            let recorder = try await system.startStatusRecorder(flushInterval: .seconds(1))
            let good1 = await a.clients[0].peerID, good2 = await a.clients[1].peerID, nul = await a.clients[2].peerID
            let foreign = await b.clients[0].peerID
            // Publishes as a user that may publish any status (the controller account), as a compromised peer cannot.
            let admin = try await system.adminConnection()
            func status(_ tenant: String, _ peer: String, version: Int, extra: String = "") -> [UInt8] {
                Array(#"{"tenant_id":"\#(tenant)","peer_id":"\#(peer)","applied_version":\#(version)\#(extra)}"#.utf8)
            }
            try admin.publish(BusPermissions.statusSubject(tenant: a.id, peer: good1), payload: status(a.id, good1, version: 11))
            try admin.publish(BusPermissions.statusSubject(tenant: a.id, peer: nul), payload: status(a.id, nul, version: 12, extra: #","x":"a\u0000b""#))
            // A body over the recorder's limit but under NATS's 1 MB payload limit reaches the recorder and is refused there.
            let big = String(repeating: "x", count: 200 * 1024)
            try admin.publish(BusPermissions.statusSubject(tenant: a.id, peer: good2), payload: status(a.id, good2, version: 99, extra: #","pad":"\#(big)""#))
            // 2 MB is refused by the bus itself (max_payload): it never reaches any controller.
            let huge = String(repeating: "x", count: 2 * 1024 * 1024)
            #expect(throws: (any Error).self) {
                try admin.publish(BusPermissions.statusSubject(tenant: a.id, peer: good2), payload: status(a.id, good2, version: 98, extra: #","pad":"\#(huge)""#))
            }
            // A peer of tenant B reported under tenant A's subject, with matching body: no such peer in A.
            try admin.publish(BusPermissions.statusSubject(tenant: a.id, peer: foreign), payload: status(a.id, foreign, version: 13))
            try admin.publish(BusPermissions.statusSubject(tenant: a.id, peer: good2), payload: status(a.id, good2, version: 14))
            try await admin.flush()
            #expect(await eventually(timeout: .seconds(10)) { recorder.metrics.recorded >= 2 })
            let rows = try await system.db.store.pool.withSession { s in
                try s.query("SELECT tenant_id, peer_id, applied_version FROM peer_status ORDER BY peer_id").rows
            }
            let recorded = Dictionary(uniqueKeysWithValues: rows.map { ($0[0]! + "/" + $0[1]!, Int64($0[2]!)!) })
            #expect(recorded["\(a.id)/\(good1)"] == 11)
            #expect(recorded["\(a.id)/\(good2)"] == 14)
            #expect(recorded["\(a.id)/\(nul)"] == nil, "the NUL report was refused")
            #expect(recorded["\(a.id)/\(foreign)"] == nil && recorded["\(b.id)/\(foreign)"] == nil, "no row for another tenant's peer")
            let m = recorder.metrics
            #expect(m.refused == 2, "NUL and oversized refused before the database: \(m)")
            #expect(m.unknownPeer == 1, "the foreign peer refused by the upsert: \(m)")
            #expect(m.failedRows == 0)
            // An older applied version arriving late never moves the recorded one back.
            try admin.publish(BusPermissions.statusSubject(tenant: a.id, peer: good1), payload: status(a.id, good1, version: 3))
            try await admin.flush()
            #expect(await eventually(timeout: .seconds(10)) { recorder.metrics.recorded >= 3 })
            let after = try await system.db.store.pool.withSession { s in
                try s.query("SELECT applied_version FROM peer_status WHERE tenant_id = $1 AND peer_id = $2", [a.id, good1]).rows
            }
            #expect(after.first?[0] == "11")
            await admin.close()
        }
    }
}
