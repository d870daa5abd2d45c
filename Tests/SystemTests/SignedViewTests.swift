import ControlPlane
import HTTPAPI
import Foundation
import Logging
import NATSClient
import ViewDistribution
import RouteAgent
import RouteModel
import Testing
import TestSupport

/// Issue 15: agents apply only views signed by the controller's key, with the real PostgreSQL, a real nats-server,
/// the real controller and relay, and real `AgentRunner`s (dry-run appliers).
@Suite("Signed views", .timeLimit(.minutes(10)), .serialized)
struct SignedViewTests {
    /// A tenant with a routing peer and one client in the route's distribution group, converged on the route.
    struct Setup {
        var tenant: String
        var token: String
        var group: String
        var router: TestAgent
        var client: TestAgent
        var routeID: String
    }

    func setUp(_ system: System, _ name: String) async throws -> Setup {
        let tenant = try await system.controller.controlPlane.createTenant(name: name)
        let token = try await system.controller.controlPlane.createToken(tenant: tenant, name: "t").token
        let (_, group) = try await system.call("POST", "/api/groups", token: token, body: ["name": "clients"])
        let groupID = try #require(group["id"] as? String)
        let (_, plainKey) = try await system.call("POST", "/api/setup-keys", token: token, body: ["name": "plain", "type": "reusable"])
        let (_, groupKey) = try await system.call("POST", "/api/setup-keys", token: token, body: ["name": "c", "type": "reusable", "auto_groups": [groupID]])
        let router = try await TestAgent.start(system: system, setupKey: plainKey["key"] as? String, name: "\(name)-router")
        let client = try await TestAgent.start(system: system, setupKey: groupKey["key"] as? String, name: "\(name)-client")
        let (status, created) = try await system.call("POST", "/api/routes", token: token, body: route(groupID, router: await router.peerID, metric: 100))
        #expect(status == 200)
        let setup = Setup(tenant: tenant, token: token, group: groupID, router: router, client: client, routeID: created["id"] as? String ?? "")
        try await converge(system, setup)
        #expect(await client.runner.desired.routes.count == 1)
        return setup
    }

    func route(_ group: String, router: String, metric: Int) -> [String: Any] {
        ["network_id": "lan", "network": "10.20.0.0/24", "peer": router, "metric": metric, "masquerade": true, "groups": [group], "enabled": true]
    }

    /// Waits until the client applied its stored view's version.
    func converge(_ system: System, _ s: Setup) async throws {
        try await system.projected(s.tenant)
        let peer = await s.client.peerID
        let reached = try await eventually {
            guard let stored = try await system.viewVersions(s.tenant)[peer] else { return false }
            return await s.client.runner.appliedVersion == stored
        }
        #expect(reached, "the client reaches its stored view version")
    }

    func persisted(_ agent: TestAgent) -> [UInt8] {
        Array(FileManager.default.contents(atPath: agent.folder + "/view") ?? Data())
    }

    /// Header line and body of a persisted view file.
    func split(_ file: [UInt8]) -> (header: [String], body: [UInt8]) {
        let newline = file.firstIndex(of: UInt8(ascii: "\n")) ?? file.count
        return (String(decoding: file[..<newline], as: UTF8.self).split(separator: " ").map(String.init), Array(file[min(newline + 1, file.count)...]))
    }

    @Test("forged views on the agent's subject (another key at version 2^63-1, unsigned v1, a signature from another version) are rejected; the agent keeps its routes and persisted view, then applies the next real view")
    func forgeriesOnTheSubject() async throws {
        try await System.with { system in
            let s = try await setUp(system, "f")
            let client = s.client
            let peer = await client.peerID
            let version = await client.runner.appliedVersion
            let desired = await client.runner.desired
            let file = persisted(client)
            let appliedBefore = await client.runner.counters.applied
            #expect(split(file).header.prefix(3) == ["routeplane-view", "2", String(version)])
            let routerIP = try #require(await s.router.runner.identity?.ip)
            let attackerIP = "100.127.66.66"
            let realBody = split(file).body
            let attackerBody = Array(String(decoding: realBody, as: UTF8.self).replacingOccurrences(of: routerIP, with: attackerIP).utf8)
            #expect(attackerBody != realBody)
            #expect((try? JSONDecoder().decode(PeerRouteView.self, from: Data(attackerBody))) != nil, "the forged body is a well-formed route view")

            // A user that may publish on .routes subjects (the controller's account): no agent's user can.
            let attacker = try await system.adminConnection(name: "attacker")
            let subject = try ViewSubjects.subject(tenant: s.tenant, peer: peer)
            let js = try JetStream(connection: attacker)
            let real = try ViewEnvelope.decode(try #require(try await js.lastMessage(stream: StreamSpec.views.name, subject: subject)).payload)
            #expect(real.version == version)

            // (a) Well-formed, validly signed, by another key, at the highest version there is.
            let otherKey = ViewSigner.ephemeral()
            let forgedA = ViewEnvelope(tenant: s.tenant, peer: peer, version: Int64.max, removed: false, createdAtMillis: 0, view: attackerBody, signedBy: otherKey)
            try attacker.publish(subject, payload: forgedA.encoded())
            // (b) Unsigned, as the previous release's relay published (envelope 1).
            let forgedB = #"{"envelope":1,"tenant":"\#(s.tenant)","peer":"\#(peer)","version":\#(Int64.max),"removed":false,"digest":"\#(SHA256Digest.hex(attackerBody))","created_at":0,"view":"#
                + String(decoding: attackerBody, as: UTF8.self) + "}"
            try attacker.publish(subject, payload: Array(forgedB.utf8))
            // (c) The real message's key and signature (over its own version and digest), on a higher version…
            var forgedC = real
            forgedC.version = Int64.max - 1
            try attacker.publish(subject, payload: forgedC.encoded())
            // …and on the attacker's body (another digest) at the same version.
            var forgedD = real
            forgedD.view = attackerBody
            forgedD.digest = SHA256Digest.hex(attackerBody)
            forgedD.version = version + 1
            try attacker.publish(subject, payload: forgedD.encoded())
            try await attacker.flush()

            let rejected = await eventually(timeout: .seconds(10)) {
                let r = await client.runner.rejectedByReason
                return r["unknown_key", default: 0] >= 1 && r["unsigned", default: 0] >= 1 && r["bad_signature", default: 0] >= 2
            }
            let reasons = await client.runner.rejectedByReason
            #expect(rejected, "each forgery is rejected with its reason: \(reasons)")
            #expect(await client.runner.rejectedMessages >= 4)
            #expect(await client.runner.appliedVersion == version)
            #expect(await client.runner.desired == desired)
            #expect(persisted(client) == file, "the persisted view file is unchanged")
            // The stream's last message is now a forgery: a re-read (reconnect, periodic resync) is rejected just the same.

            // A real, newer, signed view: applied (so nothing above it was applied before), and persisted.
            #expect(try await system.call("PUT", "/api/routes/\(s.routeID)", token: s.token, body: route(s.group, router: await s.router.peerID, metric: 50)).0 == 200)
            try await converge(system, s)
            let newVersion = await client.runner.appliedVersion
            #expect(newVersion > version && newVersion < Int64.max - 1)
            #expect(await client.runner.counters.applied == appliedBefore + 1, "exactly one more view was applied: the real one")
            #expect(split(persisted(client)).header.prefix(3) == ["routeplane-view", "2", String(newVersion)])
            let history = await client.applier.history
            #expect(!history.isEmpty)
            for entry in history {
                #expect(entry.desired?.routes.allSatisfy { $0.nextHop.description != attackerIP } ?? true, "no forged route was ever installed")
            }
            #expect(await client.runner.desired.routes.map(\.nextHop.description) == [routerIP])
            await attacker.close()
            await s.client.stop()
            await s.router.stop()
        }
    }

    @Test("a forgery left as the stream's last message does not hide a newer real view from a restarting agent: it asks the controller")
    func forgeryAsLastMessage() async throws {
        try await System.with { system in
            let s = try await setUp(system, "l")
            let client = s.client
            let peer = await client.peerID
            let version = await client.runner.appliedVersion
            await client.stop()
            // While the agent is down: a real change is published, then a forgery lands on top of it in the stream.
            #expect(try await system.call("PUT", "/api/routes/\(s.routeID)", token: s.token, body: route(s.group, router: await s.router.peerID, metric: 70)).0 == 200)
            try await system.projected(s.tenant)
            let newVersion = try #require(try await system.viewVersions(s.tenant)[peer])
            #expect(newVersion > version)
            let attacker = try await system.adminConnection(name: "attacker")
            let js = try JetStream(connection: attacker)
            let subject = try ViewSubjects.subject(tenant: s.tenant, peer: peer)
            func lastVersion() async throws -> Int64? {
                guard let m = try await js.lastMessage(stream: StreamSpec.views.name, subject: subject) else { return nil }
                return (try? ViewEnvelope.decode(m.payload))?.version
            }
            #expect(try await eventually { try await lastVersion() == newVersion }, "the relay published the real view")
            let real = try ViewEnvelope.decode(try #require(try await js.lastMessage(stream: StreamSpec.views.name, subject: subject)).payload)
            let forged = ViewEnvelope(tenant: s.tenant, peer: peer, version: Int64.max, removed: false, createdAtMillis: 0, view: real.view,
                                      signedBy: ViewSigner.ephemeral())
            try attacker.publish(subject, payload: forged.encoded())
            try await attacker.flush()
            #expect(try await eventually { try await lastVersion() == Int64.max }, "the forgery is now the stream's last message")

            let restarted = try await TestAgent.start(system: system, setupKey: nil, name: "l-client", folder: client.folder)
            #expect(await eventually { await restarted.runner.appliedVersion == newVersion }, "the real view came over HTTP")
            #expect(await restarted.runner.rejectedByReason["unknown_key", default: 0] >= 1)
            #expect(await restarted.runner.desired.routes.count == 1)
            await attacker.close()
            await restarted.stop()
            await s.router.stop()
        }
    }

    @Test("a tampered persisted view file is refused at start (body, version, signature, or body with a recomputed digest) and never applied")
    func tamperedPersistedView() async throws {
        try await System.with { system in
            let s = try await setUp(system, "p")
            let version = await s.client.runner.appliedVersion
            let desired = await s.client.runner.desired
            let file = persisted(s.client)
            await s.client.stop()
            await s.router.stop()
            let (header, body) = split(file)
            #expect(header.count == 7, "routeplane-view 2 <version> <removed> <digest> <key> <signature>")
            let routerIP = try #require(await s.router.runner.identity?.ip)

            // With everything up: the tampered file is refused, then the real view comes over NATS and replaces it.
            let path = s.client.folder + "/view"
            var bumped = header
            bumped[2] = String(Int64.max)
            try Data(Array((bumped.joined(separator: " ") + "\n").utf8) + body).write(to: URL(fileURLWithPath: path))
            let online = try await TestAgent.start(system: system, setupKey: nil, name: "p-client", folder: s.client.folder)
            #expect(await eventually { await online.runner.appliedVersion == version })
            #expect(await online.runner.persistedViewRefused == "bad_signature")
            #expect(await online.runner.desired == desired)
            #expect(persisted(online) == file, "the real view replaced the tampered file")
            await online.stop()

            // Offline (controller, relay, NATS and database gone): nothing to fall back on; the file must not be applied.
            await system.shutdown()
            let tamperedBody = Array(String(decoding: body, as: UTF8.self).replacingOccurrences(of: routerIP, with: "100.127.66.66").utf8)
            var otherDigest = header
            otherDigest[4] = SHA256Digest.hex(tamperedBody)
            var otherSignature = header
            var raw = try #require(Base64URL.decode(header[6]))
            raw[0] ^= 1
            otherSignature[6] = Base64URL.encode(raw)
            var otherKey = header
            let forger = ViewSigner.ephemeral()
            otherKey[5] = forger.publicKey
            otherKey[6] = forger.sign(tenant: s.tenant, peer: await s.client.peerID, version: version, removed: false, digest: header[4]).signature
            var unsigned = Array(header.prefix(2)) + [header[2], header[4]]
            unsigned[1] = "1"
            let cases: [(name: String, header: [String], body: [UInt8], reason: String)] = [
                ("body changed", header, tamperedBody, "unreadable"),
                ("body changed with its digest", otherDigest, tamperedBody, "bad_signature"),
                ("version changed", bumped, body, "bad_signature"),
                ("signature changed", otherSignature, body, "bad_signature"),
                ("signed by another key", otherKey, body, "unknown_key"),
                ("unsigned (header version 1)", unsigned, body, "unreadable"),
            ]
            for c in cases {
                try Data(Array((c.header.joined(separator: " ") + "\n").utf8) + c.body).write(to: URL(fileURLWithPath: path))
                let agent = try await TestAgent.start(system: system, setupKey: nil, name: "p-client", folder: s.client.folder)
                #expect(await eventually(timeout: .seconds(5)) { await agent.runner.persistedViewRefused != nil }, "\(c.name): refused")
                #expect(await agent.runner.persistedViewRefused == c.reason, "\(c.name)")
                #expect(await agent.runner.appliedVersion == 0, "\(c.name): not applied")
                #expect(await agent.applier.history.isEmpty, "\(c.name): nothing was installed")
                await agent.stop()
            }
            // Control: the intact file is applied offline (so the cases above fail for the tampering, not the setup).
            try Data(file).write(to: URL(fileURLWithPath: path))
            let intact = try await TestAgent.start(system: system, setupKey: nil, name: "p-client", folder: s.client.folder)
            #expect(await eventually(timeout: .seconds(5)) { await intact.runner.appliedVersion == version })
            #expect(await intact.runner.persistedViewRefused == nil)
            #expect(await intact.applier.lastDesired == desired)
            await intact.stop()
        }
    }

    @Test("key rotation: views signed by a new key the pinned one endorsed are applied and the new key is pinned and saved; the old key is refused from then on")
    func keyRotation() async throws {
        try await System.with { system in
            let s = try await setUp(system, "k")
            let client = s.client
            let old = system.controller.controlPlane.viewSigner
            #expect(await client.runner.identity?.viewSigningKey == old.publicKey)
            let version = await client.runner.appliedVersion

            // The controller rotates: its relay now signs with a new key carrying the old key's endorsement.
            await system.stopTask("relay")
            let rotated = old.rotated(to: ViewSigner.ephemeral())
            try await system.startRelay(name: "rotated", signer: rotated)
            #expect(try await system.call("PUT", "/api/routes/\(s.routeID)", token: s.token, body: route(s.group, router: await s.router.peerID, metric: 60)).0 == 200)
            try await converge(system, s)
            let rotatedVersion = await client.runner.appliedVersion
            #expect(rotatedVersion > version)
            #expect(await client.runner.identity?.viewSigningKey == rotated.publicKey, "the agent pinned the endorsed key")
            #expect(try AgentStateFolder(path: client.folder).loadIdentity()?.viewSigningKey == rotated.publicKey, "and saved it in identity.json")
            let header = split(persisted(client)).header
            #expect(header.count == 9 && header[5] == rotated.publicKey && header[7] == rotated.publicKey, "the persisted view carries the endorsement")

            // The old key alone is no longer enough, even for a higher version.
            let connection = try await system.adminConnection(name: "old-key")
            let peer = await client.peerID
            let body = split(persisted(client)).body
            let byOldKey = ViewEnvelope(tenant: s.tenant, peer: peer, version: rotatedVersion + 100, removed: false, createdAtMillis: 0, view: body, signedBy: old)
            try connection.publish(try ViewSubjects.subject(tenant: s.tenant, peer: peer), payload: byOldKey.encoded())
            try await connection.flush()
            #expect(await eventually(timeout: .seconds(10)) { await client.runner.rejectedByReason["unknown_key", default: 0] >= 1 })
            #expect(await client.runner.appliedVersion == rotatedVersion)
            await connection.close()

            // A restart verifies the persisted view under the newly pinned key.
            await client.stop()
            let restarted = try await TestAgent.start(system: system, setupKey: nil, name: "k-client", folder: client.folder)
            #expect(await eventually(timeout: .seconds(5)) { await restarted.runner.appliedVersion >= rotatedVersion })
            #expect(await restarted.runner.persistedViewRefused == nil)
            await restarted.stop()
            await s.router.stop()
        }
    }

    @Test("the HTTP fallback verifies like NATS: the controller's signature is accepted, a view under another pinned key is refused")
    func httpFallbackVerifies() async throws {
        try await System.with { system in
            let s = try await setUp(system, "h")
            let version = await s.client.runner.appliedVersion
            let desired = await s.client.runner.desired
            let identity = try #require(await s.client.runner.identity)
            #expect(identity.viewSigningKey == system.controller.controlPlane.viewSigner.publicKey, "enrollment pinned the controller's key")
            await s.client.stop()
            await s.router.stop()
            try? FileManager.default.removeItem(atPath: s.client.folder + "/view")

            /// An agent on the client's identity that can reach only the controller's HTTP API (NATS URL of a closed port).
            func httpOnlyAgent(pinning key: String?) async throws -> (AgentRunner, Task<Void, Never>) {
                var stored = identity
                stored.viewSigningKey = key
                let folder = try AgentStateFolder(path: s.client.folder)
                try folder.save(stored)
                try? FileManager.default.removeItem(atPath: s.client.folder + "/view")
                var logger = Logger(label: "test.agent.http")
                logger.logLevel = .critical
                let runner = try AgentRunner(configuration: AgentConfiguration(
                    controller: system.api, setupKey: nil, stateFolder: s.client.folder, name: "h-client", natsURL: "nats://127.0.0.1:1",
                    statusInterval: .seconds(1), httpFallbackInterval: .milliseconds(200), machine: .init(assumeCandidatesUp: true), probe: nil,
                    answerProbes: false), applier: DryRunApplier(), logger: logger)
                return (runner, Task { _ = try? await runner.run() })
            }

            let (good, goodTask) = try await httpOnlyAgent(pinning: identity.viewSigningKey)
            #expect(await eventually { await good.appliedVersion == version }, "the signed HTTP view is applied")
            #expect(await good.desired == desired)
            #expect(await good.rejectedMessages == 0)
            goodTask.cancel()
            _ = await goodTask.value

            let (wrong, wrongTask) = try await httpOnlyAgent(pinning: ViewSigner.ephemeral().publicKey)
            #expect(await eventually { await wrong.rejectedByReason["unknown_key", default: 0] >= 2 }, "HTTP views under another key are refused")
            #expect(await wrong.appliedVersion == 0)
            #expect(!FileManager.default.fileExists(atPath: s.client.folder + "/view"), "nothing was persisted")
            wrongTask.cancel()
            _ = await wrongTask.value

            let (unpinned, unpinnedTask) = try await httpOnlyAgent(pinning: nil)
            #expect(await eventually { await unpinned.rejectedByReason["no_pinned_key", default: 0] >= 1 }, "an identity without a key refuses every view")
            #expect(await unpinned.appliedVersion == 0)
            unpinnedTask.cancel()
            _ = await unpinnedTask.value
        }
    }
}
