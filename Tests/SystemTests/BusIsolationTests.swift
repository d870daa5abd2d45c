import Foundation
import ViewDistribution
import NATSAuth
import NATSClient
import RouteAgent
import Synchronization
import Testing
import TestSupport

/// The NATS bus as the tenant boundary (docs/ARCHITECTURE.md), against a real nats-server in operator mode: an agent's own
/// credentials — exactly what its enrollment gave it — let it read its own view and publish its own status, and
/// nothing else. Every refusal is the server's "Permissions Violation" naming the subject; every test also makes the
/// allowed calls, so it cannot pass with a connection that does nothing.
@Suite("bus isolation (operator mode)", .timeLimit(.minutes(10)), .serialized)
struct BusIsolationTests {
    /// A test connection with the credentials an agent keeps in its state folder, collecting the server's errors.
    final class AgentConnection: Sendable {
        final class Errors: Sendable {
            let texts = Mutex<[String]>([])
        }
        let connection: NATSConnection
        let collected = Errors()
        let watcher: Task<Void, Never>

        init(connection: NATSConnection) {
            self.connection = connection
            let stream = connection.events()
            let collected = self.collected
            watcher = Task {
                for await event in stream {
                    if case .error(let text) = event { collected.texts.withLock { $0.append(text) } }
                }
            }
        }

        var errors: [String] { collected.texts.withLock { $0 } }

        /// True once the server reported a permissions violation for `action` ("Publish" or "Subscription") to `subject`.
        func violated(_ action: String, _ subject: String) async -> Bool {
            await eventually(timeout: .seconds(5)) {
                self.errors.contains { $0.localizedCaseInsensitiveContains("permissions violation for \(action) to \"\(subject)\"") }
            }
        }

        func close() async {
            await connection.close()
            watcher.cancel()
        }
    }

    static func credentials(folder: String) throws -> (key: NKeyPair, jwt: String, inbox: String) {
        let seed = try String(contentsOfFile: folder + "/nats.seed", encoding: .utf8)
        let jwt = try String(contentsOfFile: folder + "/nats.jwt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let identity = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/identity.json"))) as? [String: Any]
        return (try NKeyPair(seed: seed), jwt, identity?["nats_inbox_prefix"] as? String ?? "")
    }

    static func connectAsAgent(_ system: System, folder: String, failIfUnreachable: Bool = true) async throws -> AgentConnection {
        let (key, jwt, inbox) = try credentials(folder: folder)
        var c = NATSConfiguration(url: system.nats.url, name: "isolation-test")
        c.failIfUnreachable = failIfUnreachable
        c.maxReconnectAttempts = 0
        c.userCredentials = NATSUserCredentials(jwt: { jwt }, sign: { key.sign($0) })
        c.inboxPrefix = inbox
        return AgentConnection(connection: try await NATSConnection.connect(c))
    }

    @Test("an agent's own credentials reach its own view and status, and every other subject is refused")
    func agentPermissions() async throws {
        try await System.with { system in
            let a = try await PropagationTests().tenant(system, "iso-a", clients: 2, bystanders: 0)
            let b = try await PropagationTests().tenant(system, "iso-b", clients: 1, bystanders: 0)
            let router = await a.router.peerID
            #expect(try await system.call("POST", "/api/routes", token: a.token, body: PropagationTests().route(a, router: router)).0 == 200)
            #expect(try await system.call("POST", "/api/routes", token: b.token, body: PropagationTests().route(b, router: await b.router.peerID)).0 == 200)
            try await system.projected(a.id)
            try await system.projected(b.id)
            #expect(try await eventually(timeout: .seconds(20)) { try await PropagationTests().converged(system, a) })

            let me = a.clients[0], other = a.clients[1]
            let mine = await me.peerID, theirs = await other.peerID, bPeer = await b.clients[0].peerID
            let (_, jwt, inbox) = try Self.credentials(folder: me.folder)
            #expect(inbox == BusPermissions.agentInboxPrefix(peer: mine))
            let claims = try NATSJWT.decode(jwt)
            #expect(claims.type == "user")
            #expect(claims.expires != nil, "agent JWTs expire")
            let agent = try await Self.connectAsAgent(system, folder: me.folder)

            // Allowed: its own view (live subscription and direct get of the last message) and its own status.
            let ownSubject = try ViewSubjects.subject(tenant: a.id, peer: mine)
            let own = try agent.connection.subscribe(ownSubject)
            let last = try await JetStream(connection: agent.connection).lastMessage(stream: StreamSpec.views.name, subject: ownSubject)
            #expect(last != nil, "the agent reads its own last view")
            try agent.connection.publish(BusPermissions.statusSubject(tenant: a.id, peer: mine),
                                         payload: Array(#"{"tenant_id":"\#(a.id)","peer_id":"\#(mine)","applied_version":1}"#.utf8))
            try await agent.connection.flush()
            #expect(agent.errors.isEmpty, "allowed calls raised no error: \(agent.errors)")

            // Refused: each of the issue's list, one at a time.
            let theirsSubject = try ViewSubjects.subject(tenant: a.id, peer: theirs)
            let bSubject = try ViewSubjects.subject(tenant: b.id, peer: bPeer)
            let subscriptions = ["routeplane.>", theirsSubject, bSubject, "routeplane.\(b.id).>", "_INBOX.>"]
            var keep: [NATSSubscription] = [own]
            for subject in subscriptions {
                keep.append(try agent.connection.subscribe(subject))
                try? await agent.connection.flush()
                #expect(await agent.violated("Subscription", subject), "subscribing to \(subject) is refused")
            }
            let publishes = [ownSubject, theirsSubject, BusPermissions.statusSubject(tenant: a.id, peer: theirs),
                             BusPermissions.statusSubject(tenant: b.id, peer: bPeer), "$JS.API.INFO", "$JS.API.STREAM.NAMES",
                             "$JS.API.STREAM.PURGE.\(StreamSpec.views.name)",
                             "$JS.API.DIRECT.GET.\(StreamSpec.views.name).\(theirsSubject)", "$JS.API.DIRECT.GET.\(StreamSpec.views.name).\(bSubject)"]
            for subject in publishes {
                try agent.connection.publish(subject, payload: Array("{}".utf8))
                try? await agent.connection.flush()
                #expect(await agent.violated("Publish", subject), "publishing to \(subject) is refused")
            }
            // Nothing of another peer arrived on any of those subscriptions (they were never set up by the server).
            for s in keep.dropFirst() { s.unsubscribe() }
            await agent.close()
            for agent in [a.router, b.router] + a.clients + b.clients { await agent.stop() }
        }
    }

    @Test("a connection without credentials, or with a user JWT signed by another account, is refused")
    func noCredentials() async throws {
        try await System.with { system in
            var plain = NATSConfiguration(url: system.nats.url, name: "anonymous")
            plain.failIfUnreachable = true
            plain.maxReconnectAttempts = 0
            // Refused as unauthorized: libnats says so, or (on a loaded machine the server may close the socket before
            // libnats reads its -ERR, and libnats then reports "Expected 'PONG', got ''") the server's log says why.
            let refusedAsUnauthorized = { (error: any Error, name: String) async -> Bool in
                if "\(error)".localizedCaseInsensitiveContains("authoriz") { return true }
                return await eventually(timeout: .seconds(5)) {
                    ((try? String(contentsOfFile: system.nats.logPath, encoding: .utf8)) ?? "").contains(":C:\(name)\" - authentication error")
                }
            }
            do {
                let c = try await NATSConnection.connect(plain)
                await c.close()
                Issue.record("an unauthenticated connection was accepted")
            } catch {
                #expect(await refusedAsUnauthorized(error, "anonymous"), "refused as unauthorized: \(error)")
            }
            // A well-formed user JWT signed by a key the operator never trusted.
            let rogueAccount = NKeyPair.generate(.account), user = NKeyPair.generate(.user)
            let now = Int64(Date().timeIntervalSince1970)
            let jwt = NATSJWT.userJWT(name: "rogue", user: user.publicKey, issuerAccount: nil, permissions: nil, issuedAt: now, expires: now + 600,
                                      signer: rogueAccount)
            var rogue = plain
            rogue.name = "rogue"
            rogue.userCredentials = NATSUserCredentials(jwt: { jwt }, sign: { user.sign($0) })
            do {
                let c = try await NATSConnection.connect(rogue)
                await c.close()
                Issue.record("a user of an untrusted account was accepted")
            } catch {
                #expect(await refusedAsUnauthorized(error, "rogue"), "refused: \(error)")
            }
            // Control: the system's own controller credentials do connect.
            var ok = plain
            ok.userCredentials = ControllerBusUser(keys: system.nats.keys!).credentials
            let c = try await NATSConnection.connect(ok)
            #expect(c.isConnected)
            await c.close()
        }
    }

    @Test("deleting a peer cuts its live NATS connection and refuses its reconnect within seconds")
    func deletedPeerIsCut() async throws {
        try await System.with { system in
            let a = try await PropagationTests().tenant(system, "iso-del", clients: 1, bystanders: 0)
            let client = a.clients[0]
            let peer = await client.peerID
            let agent = try await Self.connectAsAgent(system, folder: client.folder)
            #expect(agent.connection.isConnected)
            let started = ContinuousClock.now
            let (status, _) = try await system.call("DELETE", "/api/peers/\(peer)", token: a.token)
            #expect(status == 200)
            // The target is 2 s (the whole test takes 1.3 s on a quiet machine); the bound is 5 s so that a loaded 2-core machine
            // (the refused reconnect alone tries three times) does not fail a cut that happened.
            #expect(await eventually(timeout: .seconds(5)) { !agent.connection.isConnected }, "the live connection is cut")
            do {
                let again = try await Self.connectAsAgent(system, folder: client.folder)
                await again.close()
                Issue.record("the deleted peer reconnected")
            } catch {
                #expect("\(error)".localizedCaseInsensitiveContains("authoriz") || "\(error)".localizedCaseInsensitiveContains("revoked"),
                        "reconnect refused: \(error)")
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .seconds(5), "cut and refused in \(elapsed)")
            // Renewal is refused too (the agent credential is revoked with the peer).
            let (key, _, _) = try Self.credentials(folder: client.folder)
            let identity = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: client.folder + "/identity.json"))) as? [String: Any]
            let credential = identity?["credential"] as? String ?? ""
            #expect(try await system.call("POST", "/api/agent/nats-credentials", token: credential, body: ["nats_public_key": key.publicKey]).0 == 401)
            await agent.close()
            for agent in [a.router] + a.clients { await agent.stop() }
        }
    }

    @Test("nats-credentials and enrollment: an agent renews only its own registered key; other keys, bad keys and strangers are refused")
    func credentialEndpointRules() async throws {
        try await System.with { system in
            let a = try await PropagationTests().tenant(system, "iso-keys", clients: 2, bystanders: 0)
            func agentSecrets(_ agent: TestAgent) throws -> (key: NKeyPair, credential: String) {
                let (key, _, _) = try Self.credentials(folder: agent.folder)
                let identity = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: agent.folder + "/identity.json"))) as? [String: Any]
                return (key, identity?["credential"] as? String ?? "")
            }
            let me = try agentSecrets(a.clients[0]), other = try agentSecrets(a.clients[1])
            let path = "/api/agent/nats-credentials"
            // Its own key: a JWT for exactly that key, expiring.
            let (ok, issued) = try await system.call("POST", path, token: me.credential, body: ["nats_public_key": me.key.publicKey])
            #expect(ok == 200)
            let claims = try NATSJWT.decode(issued["nats_jwt"] as? String ?? "")
            #expect(claims.subject == me.key.publicKey && claims.expires != nil)
            #expect(issued["nats_inbox_prefix"] as? String == BusPermissions.agentInboxPrefix(peer: await a.clients[0].peerID))
            // Another peer's key, a fresh key, a malformed key, a seed instead of a public key, no credential, an API token.
            #expect(try await system.call("POST", path, token: me.credential, body: ["nats_public_key": other.key.publicKey]).0 == 409)
            #expect(try await system.call("POST", path, token: me.credential, body: ["nats_public_key": NKeyPair.generate(.user).publicKey]).0 == 409)
            #expect(try await system.call("POST", path, token: me.credential, body: ["nats_public_key": "UNOTAKEY"]).0 == 422)
            #expect(try await system.call("POST", path, token: me.credential, body: ["nats_public_key": me.key.seed]).0 == 422)
            #expect(try await system.call("POST", path, token: me.credential, body: ["nats_public_key": NKeyPair.generate(.account).publicKey]).0 == 422)
            #expect(try await system.call("POST", path, body: ["nats_public_key": me.key.publicKey]).0 == 401)
            #expect(try await system.call("POST", path, token: a.token, body: ["nats_public_key": me.key.publicKey]).0 == 401)
            // Enrolling with a key another peer registered: refused, nothing enrolled.
            let (status, _) = try await system.call("POST", "/api/agent/enroll", body: ["setup_key": a.key, "name": "copycat", "os": "linux",
                                                                                       "nats_public_key": other.key.publicKey])
            #expect(status == 409)
            // A bad setup key learns nothing about keys.
            #expect(try await system.call("POST", "/api/agent/enroll", body: ["setup_key": "rps_wrong", "name": "x", "os": "linux",
                                                                              "nats_public_key": other.key.publicKey]).0 == 403)
            for agent in [a.router] + a.clients { await agent.stop() }
        }
    }
    /// NATS 2.9 cannot limit the reply subject of a request: an agent may ask for its own last view with another peer's
    /// (any tenant's) `.routes` subject as the reply. The server then delivers the agent's own signed view there. It is
    /// not stored in the stream and the victim refuses it (signed for another peer); this test pins that down.
    @Test("a direct get whose reply names another peer's subject is not stored and is refused by that peer's agent")
    func directGetReplyAbuse() async throws {
        try await System.with { system in
            let a = try await PropagationTests().tenant(system, "probe", clients: 2, bystanders: 0)
            let router = await a.router.peerID
            #expect(try await system.call("POST", "/api/routes", token: a.token, body: PropagationTests().route(a, router: router)).0 == 200)
            try await system.projected(a.id)
            #expect(try await eventually(timeout: .seconds(20)) { try await PropagationTests().converged(system, a) })
            let me = a.clients[0], victim = a.clients[1]
            let mine = await me.peerID, theirs = await victim.peerID
            let agent = try await Self.connectAsAgent(system, folder: me.folder)
            let ownSubject = try ViewSubjects.subject(tenant: a.id, peer: mine)
            let victimSubject = try ViewSubjects.subject(tenant: a.id, peer: theirs)
            let admin = try await system.adminConnection()
            let js = try JetStream(connection: admin)
            let before = try await js.lastMessage(stream: StreamSpec.views.name, subject: victimSubject)
            let rejectedBefore = await victim.runner.rejectedMessages
            let version = await victim.runner.appliedVersion, routes = await victim.runner.desired
            try agent.connection.publish("$JS.API.DIRECT.GET.\(StreamSpec.views.name).\(ownSubject)", reply: victimSubject, payload: [])
            try await agent.connection.flush()
            #expect(await eventually(timeout: .seconds(5)) { await victim.runner.rejectedMessages == rejectedBefore + 1 }, "delivered and refused")
            let after = try await js.lastMessage(stream: StreamSpec.views.name, subject: victimSubject)
            #expect(before != nil && after?.sequence == before?.sequence, "the stream's last message for the victim is unchanged")
            #expect(await victim.runner.appliedVersion == version)
            #expect(await victim.runner.desired == routes)
            await agent.close()
            await admin.close()
            for agent in [a.router] + a.clients { await agent.stop() }
        }
    }
}
