import ControlPlane
import HTTPAPI
import PostgresClient
import EventStore
import Foundation
import NATSClient
import ViewDistribution
import RouteAgent
import RouteModel
import Synchronization
import Testing
import TestSupport

/// Issue 7's Done-when, with the real PostgreSQL, a real nats-server and the real controller.
@Suite("Route updates reach agents over NATS", .timeLimit(.minutes(10)), .serialized)
struct PropagationTests {
    struct Tenant {
        var id: String
        var token: String
        var group: String
        var key: String
        var router: TestAgent
        var clients: [TestAgent]
        var bystanders: [TestAgent]
    }

    /// A tenant with a routing peer, `clients` agents in the distribution group and `bystanders` in no group.
    func tenant(_ system: System, _ name: String, clients: Int, bystanders: Int) async throws -> Tenant {
        let id = try await system.controller.controlPlane.createTenant(name: name)
        let token = try await system.controller.controlPlane.createToken(tenant: id, name: "t").token
        let (_, group) = try await system.call("POST", "/api/groups", token: token, body: ["name": "clients"])
        let groupID = group["id"] as? String ?? ""
        let (_, plainKey) = try await system.call("POST", "/api/setup-keys", token: token, body: ["name": "plain", "type": "reusable"])
        let (_, groupKey) = try await system.call("POST", "/api/setup-keys", token: token, body: ["name": "clients", "type": "reusable", "auto_groups": [groupID]])
        let router = try await TestAgent.start(system: system, setupKey: plainKey["key"] as? String, name: "\(name)-router")
        var c: [TestAgent] = []
        for i in 0..<clients { c.append(try await TestAgent.start(system: system, setupKey: groupKey["key"] as? String, name: "\(name)-c\(i)")) }
        var b: [TestAgent] = []
        for i in 0..<bystanders { b.append(try await TestAgent.start(system: system, setupKey: plainKey["key"] as? String, name: "\(name)-b\(i)")) }
        return Tenant(id: id, token: token, group: groupID, key: groupKey["key"] as? String ?? "", router: router, clients: c, bystanders: b)
    }

    func route(_ t: Tenant, router: String, metric: Int = 100, enabled: Bool = true) -> [String: Any] {
        ["network_id": "lan", "network": "10.20.0.0/24", "peer": router, "metric": metric, "masquerade": true, "groups": [t.group], "enabled": enabled]
    }

    /// Every agent's applied version equals its stored view's version.
    func converged(_ system: System, _ t: Tenant) async throws -> Bool {
        trace("converged? views")
        let versions = try await system.viewVersions(t.id)
        trace("views \(versions)")
        for agent in [t.router] + t.clients + t.bystanders {
            let peer = await agent.peerID
            trace("agent \(peer) applied \(await agent.runner.appliedVersion)")
            guard let v = versions[peer], await agent.runner.appliedVersion == v else { return false }
        }
        return true
    }

    @Test("50 agents in two tenants: exactly the affected agents reach each new version; the others receive nothing")
    func fiftyAgents() async throws {
        try await System.with { system in
            let a = try await tenant(system, "a", clients: 20, bystanders: 4)
            let b = try await tenant(system, "b", clients: 20, bystanders: 4)
            let everyone = [a.router] + a.clients + a.bystanders + [b.router] + b.clients + b.bystanders
            #expect(everyone.count == 50)
            try await system.projected(a.id)
            try await system.projected(b.id)
            let convergedA = try await eventually { try await converged(system, a) }
            let convergedB = try await eventually { try await converged(system, b) }
            #expect(convergedA && convergedB)
            func applied(_ agents: [TestAgent]) async -> [Int] { var out: [Int] = []; for x in agents { out.append(await x.runner.counters.applied) }; return out }
            let bBefore = await applied([b.router] + b.clients + b.bystanders)
            let aBystandersBefore = await applied(a.bystanders)

            // Create, update, delete a route in tenant A.
            let router = await a.router.peerID
            let (status, created) = try await system.call("POST", "/api/routes", token: a.token, body: route(a, router: router))
            #expect(status == 200)
            let routeID = created["id"] as? String ?? ""
            try await system.projected(a.id)
            #expect(try await eventually { try await converged(system, a) })
            for c in a.clients {
                let desired = await c.runner.desired
                #expect(desired.routes.map(\.destination.description) == ["10.20.0.0/24"])
                let routerIP = await a.router.runner.identity?.ip
                #expect(desired.routes.first?.nextHop.description == routerIP)
            }
            #expect(await a.router.runner.desired.routingPeer.masquerade.count == 1, "the routing peer forwards and masquerades")

            #expect(try await system.call("PUT", "/api/routes/\(routeID)", token: a.token, body: route(a, router: router, metric: 50)).0 == 200)
            try await system.projected(a.id)
            #expect(try await eventually { try await converged(system, a) })
            #expect(try await system.call("DELETE", "/api/routes/\(routeID)", token: a.token).0 == 200)
            try await system.projected(a.id)
            #expect(try await eventually { try await converged(system, a) })
            for c in a.clients { #expect(await c.runner.desired.routes.isEmpty) }

            // Unaffected agents received nothing: tenant B entirely, and A's bystanders.
            try await Task.sleep(for: .milliseconds(300))
            #expect(await applied([b.router] + b.clients + b.bystanders) == bBefore)
            #expect(await applied(a.bystanders) == aBystandersBefore)
            // Affected agents applied each of the 3 versions once (plus their earlier ones), never a duplicate.
            for c in a.clients {
                let counters = await c.runner.counters
                #expect(counters.ignoredDuplicate + counters.ignoredOlder <= counters.applied, "duplicates are possible (re-reads) but never applied")
            }
            for agent in everyone { await agent.stop() }
        }
    }

    @Test("NATS stopped while routes change, then started: every agent reaches its latest view, no version goes backwards")
    func natsOutage() async throws {
        try await System.with { system in
            let t = try await tenant(system, "n", clients: 8, bystanders: 0)
            let router = await t.router.peerID
            let (_, created) = try await system.call("POST", "/api/routes", token: t.token, body: route(t, router: router))
            let routeID = created["id"] as? String ?? ""
            try await system.projected(t.id)
            #expect(try await eventually { try await converged(system, t) })
            var seen: [String: Int64] = [:]
            for c in t.clients { seen[await c.peerID] = await c.runner.appliedVersion }

            await system.nats.stop()
            for metric in [10, 20, 30, 40] {
                #expect(try await system.call("PUT", "/api/routes/\(routeID)", token: t.token, body: route(t, router: router, metric: metric)).0 == 200)
            }
            try await system.projected(t.id)
            // Agents may already get the latest over the HTTP fallback; either way, nothing is lost.
            try await system.nats.restart()
            #expect(try await eventually(timeout: .seconds(30)) { try await converged(system, t) })
            for c in t.clients {
                #expect(await c.runner.appliedVersion >= seen[await c.peerID] ?? 0)
                #expect(await c.runner.desired.routes.first.map { _ in true } == true)
            }
            // The relay published everything: nothing left in the outbox.
            #expect(try await eventually { try await system.db.store.pool.withSession { s in try s.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL").rows[0][0] == "0" } })
            for agent in [t.router] + t.clients { await agent.stop() }
        }
    }

    @Test("a relay killed between publish and mark-sent causes no double apply")
    func relayCrash() async throws {
        try await System.with { system in
            let t = try await tenant(system, "r", clients: 5, bystanders: 0)
            try await system.projected(t.id)
            #expect(try await eventually { try await converged(system, t) })
            // Replace the relay by one that dies after publishing, before marking sent.
            await system.stopTask("relay")
            let crashes = Mutex(0)
            try await system.startRelay(name: "crashing") { rows, _ in
                if !rows.isEmpty {
                    crashes.withLock { $0 += 1 }
                    throw CancellationError()
                }
            }
            var appliedBefore: [Int] = []
            for c in t.clients { appliedBefore.append(await c.runner.counters.applied) }
            let router = await t.router.peerID
            #expect(try await system.call("POST", "/api/routes", token: t.token, body: route(t, router: router)).0 == 200)
            try await system.projected(t.id)
            // The crashing relay publishes (agents may apply), never marks sent; a healthy relay then republishes.
            // The crash must have happened (the new view published and not marked sent) before the healthy relay starts.
            #expect(try await eventually(timeout: .seconds(20)) { crashes.withLock { $0 } > 0 }, "the crashing relay never crashed")
            await system.stopTask("crashing")
            #expect(try await system.db.store.pool.withSession { s in try s.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL").rows[0][0] } != "0",
                    "the crashed relay left its rows unsent")
            try await system.startRelay(name: "healthy")
            #expect(try await eventually { try await converged(system, t) })
            #expect(try await eventually { try await system.db.store.pool.withSession { s in try s.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL").rows[0][0] == "0" } })
            try await Task.sleep(for: .milliseconds(300))
            for (i, c) in t.clients.enumerated() {
                #expect(await c.runner.counters.applied == appliedBefore[i] + 1, "the new version is applied exactly once")
                let dryRun = await c.applier.history.filter { $0.desired != nil }.count
                #expect(dryRun >= 1)
            }
            for agent in [t.router] + t.clients { await agent.stop() }
        }
    }

    @Test("an agent restarted while the controller and NATS are down applies its persisted view")
    func restartOffline() async throws {
        try await System.with { system in
            let t = try await tenant(system, "p", clients: 1, bystanders: 0)
            let router = await t.router.peerID
            #expect(try await system.call("POST", "/api/routes", token: t.token, body: route(t, router: router)).0 == 200)
            try await system.projected(t.id)
            #expect(try await eventually { try await converged(system, t) })
            let client = t.clients[0]
            let before = await client.runner.desired
            let version = await client.runner.appliedVersion
            #expect(!before.routes.isEmpty)
            await client.stop()
            await t.router.stop()
            await system.shutdown()   // controller, relay, NATS and database all gone
            let restarted = try await TestAgent.start(system: system, setupKey: nil, name: "p-c0", folder: client.folder)
            #expect(await eventually(timeout: .seconds(5)) { await restarted.runner.appliedVersion == version })
            #expect(await restarted.runner.desired == before)
            #expect(await restarted.applier.lastDesired == before, "the dry-run applier was asked to install the persisted routes")
            await restarted.stop()
        }
    }

    @Test("a tampered or unparseable message is rejected with a log line; the agent keeps its routes")
    func tamperedMessage() async throws {
        try await System.with { system in
            let t = try await tenant(system, "x", clients: 1, bystanders: 0)
            let router = await t.router.peerID
            #expect(try await system.call("POST", "/api/routes", token: t.token, body: route(t, router: router)).0 == 200)
            try await system.projected(t.id)
            #expect(try await eventually { try await converged(system, t) })
            let client = t.clients[0]
            let before = await client.runner.desired
            let version = await client.runner.appliedVersion
            let peer = await client.peerID
            trace("attacker")
            // The attacker holds the controller account's rights (no agent may publish on a .routes subject).
            let connection = try await system.adminConnection(name: "attacker")
            let subject = try ViewSubjects.subject(tenant: t.id, peer: peer)
            // A newer version whose digest does not match its body, and plain garbage.
            let forged = ViewEnvelope(tenant: t.id, peer: peer, version: version + 100, digest: String(repeating: "0", count: 64), removed: false,
                                      createdAtMillis: 0, view: Array(#"{"forwards":[],"ha_sets":[],"peer_id":"x"}"#.utf8),
                                      signedBy: system.controller.controlPlane.viewSigner)
            try connection.publish(subject, payload: forged.encoded())
            try connection.publish(subject, payload: Array("not json at all".utf8))
            try await connection.flush()
            trace("published")
            #expect(await eventually(timeout: .seconds(5)) { await client.runner.rejectedMessages >= 2 })
            trace("rejected")
            #expect(await client.runner.appliedVersion == version)
            #expect(await client.runner.desired == before)
            await connection.close()
            trace("closed")
            for agent in [t.router] + t.clients { await agent.stop() }
            trace("stopped")
        }
    }
}
