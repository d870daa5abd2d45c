import ControlPlane
import Foundation
import HTTPAPI
import RouteAgent
import RouteModel
import Testing
import TestSupport
import ViewDistribution

/// Two routes with the same range under different network ids, end to end: the real controller, PostgreSQL,
/// nats-server, status recorder and in-process agents (dry-run appliers).
@Suite("Same destination from two network ids", .timeLimit(.minutes(10)), .serialized)
struct ShadowedRouteTests {
    @Test("one route installed, the other reported as shadowed in the agent's status as the controller serves it; deleting the winner installs the other")
    func sameRangeTwoNetworkIDs() async throws {
        try await System.with { system in
            _ = try await system.startStatusRecorder()
            let tenant = try await system.controller.controlPlane.createTenant(name: "shadow")
            let token = try await system.controller.controlPlane.createToken(tenant: tenant, name: "t").token
            let (_, group) = try await system.call("POST", "/api/groups", token: token, body: ["name": "clients"])
            let groupID = try #require(group["id"] as? String)
            let (_, plainKey) = try await system.call("POST", "/api/setup-keys", token: token, body: ["name": "routers", "type": "reusable"])
            let (_, clientKey) = try await system.call("POST", "/api/setup-keys", token: token,
                                                       body: ["name": "clients", "type": "reusable", "auto_groups": [groupID]])
            let r1 = try await TestAgent.start(system: system, setupKey: plainKey["key"] as? String, name: "shadow-r1")
            let r2 = try await TestAgent.start(system: system, setupKey: plainKey["key"] as? String, name: "shadow-r2")
            let client = try await TestAgent.start(system: system, setupKey: clientKey["key"] as? String, name: "shadow-client")
            let (r1ID, r2ID, clientID) = (await r1.peerID, await r2.peerID, await client.peerID)
            let r1IP = try #require(await r1.runner.identity?.ip), r2IP = try #require(await r2.runner.identity?.ip)

            func route(_ networkID: String, via peer: String) -> [String: Any] {
                ["network_id": networkID, "network": "10.20.0.0/24", "peer": peer, "metric": 100, "masquerade": true,
                 "groups": [groupID], "enabled": true, "description": ""]
            }
            // Same range, same metric, two network ids (NetBird accepts it: a peer may not serve a range twice, but two
            // peers may, under any network ids — `management/server/route.go`).
            let (statusA, routeA) = try await system.call("POST", "/api/routes", token: token, body: route("lan-a", via: r1ID))
            let (statusB, routeB) = try await system.call("POST", "/api/routes", token: token, body: route("lan-b", via: r2ID))
            #expect(statusA == 200 && statusB == 200)
            let (routeAID, routeBID) = (try #require(routeA["id"] as? String), try #require(routeB["id"] as? String))
            try await system.projected(tenant)

            // Equal metric and health (dry-run agents count every candidate as connected): the lower network id wins.
            // (The view with lan-a alone may come first: wait for the one with both.)
            let installedA = await eventually(timeout: .seconds(20)) {
                let shadowed = await client.runner.shadowed.map(\.networkID)
                let routes = await client.applier.lastDesired?.routes.map { "\($0.destination) via \($0.nextHop)" }
                return shadowed == ["lan-b"] && routes == ["10.20.0.0/24 via \(r1IP)"]
            }
            let (desiredA, shadowedA) = (await client.applier.lastDesired, await client.runner.shadowed)
            #expect(installedA, "the dry-run applier holds lan-a's route only, lan-b shadowed: \(String(describing: desiredA)), \(shadowedA)")
            #expect(await client.runner.appliedView?.haSets.map(\.key.networkID) == ["lan-a", "lan-b"], "both HA sets are in the view")
            #expect(await client.runner.applyFailures == 0, "the desired state is valid: nothing refused")

            // As the controller serves it, from the agent's status message.
            func shadowedRoutes(_ token: String) async throws -> [[String: Any]]? {
                let (status, peer) = try await system.call("GET", "/api/peers/\(clientID)", token: token)
                return status == 200 ? peer["shadowed_routes"] as? [[String: Any]] : nil
            }
            let reported = await eventually(timeout: .seconds(20)) {
                guard let list = try? await shadowedRoutes(token), list.count == 1, let entry = list.first else { return false }
                return entry["network_id"] as? String == "lan-b" && entry["network"] as? String == "10.20.0.0/24"
                    && entry["route_ids"] as? [String] == [routeBID] && entry["shadowed_by_network_id"] as? String == "lan-a"
                    && entry["shadowed_by_route_id"] as? String == routeAID
            }
            let served = try? await shadowedRoutes(token)
            #expect(reported, "GET /api/peers/{id} shadowed_routes: \(String(describing: served))")

            // Another tenant's token sees nothing of this peer (nor its status).
            let other = try await system.controller.controlPlane.createTenant(name: "shadow-other")
            let otherToken = try await system.controller.controlPlane.createToken(tenant: other, name: "t").token
            #expect(try await system.call("GET", "/api/peers/\(clientID)", token: otherToken).0 == 404)
            let (listStatus, _) = try await system.call("GET", "/api/peers", token: otherToken)
            #expect(listStatus == 200)

            // Delete the winner: lan-b is installed, via r2, and no longer reported as shadowed.
            #expect(try await system.call("DELETE", "/api/routes/\(routeAID)", token: token).0 == 200)
            try await system.projected(tenant)
            let installedB = await eventually(timeout: .seconds(20)) {
                await client.applier.lastDesired?.routes.map { "\($0.destination) via \($0.nextHop)" } == ["10.20.0.0/24 via \(r2IP)"]
            }
            let desiredB = await client.applier.lastDesired
            #expect(installedB, "after deleting lan-a: \(String(describing: desiredB))")
            #expect(await client.runner.shadowed.isEmpty)
            let cleared = await eventually(timeout: .seconds(20)) { (try? await shadowedRoutes(token))?.isEmpty == true }
            #expect(cleared)
            for agent in [r1, r2, client] { await agent.stop() }
        }
    }
}
