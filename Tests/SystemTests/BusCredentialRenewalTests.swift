import Foundation
import RouteAgent
import Testing
import TestSupport

/// Agents' NATS user JWTs expire (hours in production; seconds here): the server closes a connection whose JWT
/// expired, and the agent renews over the API with its credential before that, so it keeps following its view over
/// NATS without a gap in routes.
@Suite("bus credential renewal", .timeLimit(.minutes(10)), .serialized)
struct BusCredentialRenewalTests {
    @Test("with 4 s JWTs an agent renews, reconnects with the fresh JWT and keeps receiving views over NATS for 12 s")
    func shortLivedJWTsAreRenewed() async throws {
        try await System.with(agentJWTLifetime: .seconds(4)) { system in
            let t = try await PropagationTests().tenant(system, "renew", clients: 1, bystanders: 0)
            let router = await t.router.peerID
            let client = t.clients[0]
            let (created, route) = try await system.call("POST", "/api/routes", token: t.token, body: PropagationTests().route(t, router: router))
            #expect(created == 200)
            let id = route["id"] as? String ?? ""
            #expect(try await eventually(timeout: .seconds(20)) { try await PropagationTests().converged(system, t) })
            func change(_ metric: Int) async throws {
                var body = PropagationTests().route(t, router: router, metric: metric)
                body["id"] = id
                #expect(try await system.call("PUT", "/api/routes/\(id)", token: t.token, body: body).0 == 200)
                try await system.projected(t.id)
                let target = try await system.viewVersions(t.id)[await client.peerID] ?? 0
                #expect(await eventually(timeout: .seconds(8)) { await client.runner.appliedVersion >= target }, "metric \(metric) applied")
            }
            // Four renewals span more than two 4-s lifetimes, so the server has cut at least one expired connection.
            let first = await client.runner.busRenewals
            let natsViewsBefore = await client.runner.appliedBySource[.nats] ?? 0
            for round in 1...4 {
                #expect(await eventually(timeout: .seconds(8)) { await client.runner.busRenewals >= first + round }, "renewal \(round)")
                try await change(100 + round)
            }
            #expect(await client.runner.natsDisconnects >= 1, "the server closed at least one connection whose JWT expired")
            // The changes came over NATS (the HTTP fallback reads only in the moments NATS is down, after a cut).
            let natsViews = await client.runner.appliedBySource[.nats] ?? 0
            #expect(natsViews - natsViewsBefore >= 3, "of 4 changes, \(natsViews - natsViewsBefore) arrived over NATS")
            for agent in [t.router] + t.clients { await agent.stop() }
        }
    }
}
