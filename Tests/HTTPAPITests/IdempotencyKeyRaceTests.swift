import ControlPlane
import HTTPAPI
import EventStore
import PostgresClient
import Foundation
import HTTPTypes
import Testing
import TestSupport

/// Two controllers (two pools, as two `routeplane serve` processes) on one database, racing on one Idempotency-Key:
/// one append, whatever the interleaving; every 2xx carries the same answer; the others were told to retry (409).
@Suite("Idempotency-Key across controllers", .timeLimit(.minutes(5)), .serialized)
struct IdempotencyKeyRaceTests {
    @Test("concurrent retries of one create through two controllers append it once")
    func raceOnOneKey() async throws {
        try await ControllerFleet.run(count: 2) { fleet in
            let tenant = try await fleet.controllers[0].controlPlane.createTenant(name: "race")
            let token = try await fleet.controllers[0].controlPlane.createToken(tenant: tenant, name: "t").token
            for round in 0..<5 {
                let key = "race-\(round)"
                let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                    for i in 0..<8 {
                        group.addTask { try await fleet.send(i % 2, .post, "/api/groups", token: token, json: ["name": "group-\(round)"], headers: keyed(key)) }
                    }
                    return try await group.reduce(into: [Reply]()) { $0.append($1) }
                }
                let ok = replies.filter { $0.status == 200 }
                #expect(!ok.isEmpty, "round \(round): \(replies.map(\.status))")
                #expect(replies.allSatisfy { $0.status == 200 || ($0.status == 409 && $0.object["field"] as? String == "Idempotency-Key") },
                        "round \(round): \(replies.map { "\($0.status) \($0.text)" })")
                #expect(Set(ok.map(\.id)).count == 1, "one group id in every 2xx: \(ok.map(\.id))")
                let created = try await fleet.db.store.pool.withSession { s in
                    try s.query("SELECT count(*) AS n FROM events WHERE tenant_id = $1 AND type = 'GroupCreated' AND data::text LIKE $2",
                                [tenant, "%group-\(round)%"])
                }
                #expect(created.first?.int64("n") == 1, "round \(round): one append")
            }
        }
    }
}
