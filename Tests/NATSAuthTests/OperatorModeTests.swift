import Foundation
import ViewDistribution
import NATSAuth
import NATSClient
import Synchronization
import Testing
import TestSupport

/// NATSAuth's keys and JWTs against a real nats-server 2.9 in operator mode (full resolver), through libnats.
@Suite(.timeLimit(.minutes(10)), .serialized) struct OperatorModeTests {
    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

    /// A fresh key folder and an operator-mode server configured from it; both removed afterwards.
    func withOperatorNATS(_ body: (NATSKeyDirectory, PrivateNATS) async throws -> Void) async throws {
        let keyPath = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-keys-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: keyPath) }
        let keys = try NATSKeyDirectory.initialize(at: keyPath).0
        try await PrivateNATS.with(keys: keys) { nats in try await body(keys, nats) }
    }

    /// Writes a .creds file (0600) into the server's folder.
    func credentials(_ nats: PrivateNATS, _ name: String, jwt: String, seed: String) throws -> String {
        let path = nats.directory + "/\(name).creds"
        _ = FileManager.default.createFile(atPath: path, contents: Data(NATSJWT.credentialsFile(jwt: jwt, seed: seed).utf8),
                                       attributes: [.posixPermissions: 0o600])
        return path
    }

    /// Connects now or throws (no background retry).
    func connect(_ nats: PrivateNATS, name: String, credentials: String?) async throws -> NATSConnection {
        var configuration = NATSConfiguration(url: nats.url, name: name)
        configuration.credentialsFile = credentials
        configuration.failIfUnreachable = true
        configuration.reconnectWait = .milliseconds(100)
        configuration.reconnectJitter = .milliseconds(10)
        return try await NATSConnection.connect(configuration)
    }

    /// A user of the routeplane account with its own key: (creds path, key).
    func user(_ keys: NATSKeyDirectory, _ nats: PrivateNATS, _ name: String, permissions: NATSPermissions?, issuedAt: Int64 = now(),
              expires: Int64? = nil) throws -> (credentials: String, key: NKeyPair, jwt: String) {
        let key = NKeyPair.generate(.user)
        let jwt = keys.userJWT(name: name, user: key.publicKey, permissions: permissions, issuedAt: issuedAt, expires: expires)
        return (try credentials(nats, name, jwt: jwt, seed: key.seed), key, jwt)
    }

    func log(_ nats: PrivateNATS) -> String { (try? String(contentsOfFile: nats.logPath, encoding: .utf8)) ?? "" }

    @Test func connectionWithoutCredentialsIsRefused() async throws {
        try await withOperatorNATS { _, nats in
            let error = await #expect(throws: NATSError.self) { try await connect(nats, name: "anonymous", credentials: nil) }
            print("[operator-mode] no credentials: \(error.map { "\($0)" } ?? "-")")
            #expect(error.map { "\($0)".contains("Authorization Violation") } == true)
            #expect(await eventually(timeout: .seconds(5)) { log(nats).contains(#""v3.4.1:C:anonymous" - authentication error"#) })
        }
    }

    @Test func userWithAllowListsGetsPermissionViolationsOutsideThem() async throws {
        try await withOperatorNATS { keys, nats in
            let permissions = NATSPermissions(publishAllow: ["rp.allowed.>"], subscribeAllow: ["rp.allowed.>", "_INBOX.>"])
            let agent = try user(keys, nats, "agent", permissions: permissions)
            let connection = try await connect(nats, name: "agent", credentials: agent.credentials)
            let events = connection.events()

            // Inside the lists: works.
            let subscription = try connection.subscribe("rp.allowed.x")
            try await connection.flush()
            try connection.publish("rp.allowed.x", payload: Array("hi".utf8))
            var iterator = subscription.messages.makeAsyncIterator()
            #expect(await iterator.next()?.payload == Array("hi".utf8))

            // Outside: the server answers -ERR 'Permissions Violation …', libnats reports it through the error handler.
            try connection.publish("rp.forbidden", payload: [1])
            try await connection.flush()
            _ = try connection.subscribe("rp.forbidden.sub")
            try await connection.flush()
            var errors: [String] = []
            for await event in events {
                if case let .error(text) = event { errors.append(text) }
                if errors.count == 2 { break }
            }
            print("[operator-mode] permission errors via events(): \(errors)")
            #expect(errors.count == 2)
            let serverLog = log(nats)
            // nats-server 2.9 logs: … - Publish Violation - JWT User "U…", Subject "rp.forbidden"
            #expect(serverLog.contains("Publish Violation - JWT User \"\(agent.key.publicKey)\", Subject \"rp.forbidden\""))
            #expect(serverLog.contains("Subscription Violation - JWT User \"\(agent.key.publicKey)\", Subject \"rp.forbidden.sub\""))
            #expect(connection.isConnected)
            subscription.unsubscribe()
            await connection.close()
        }
    }

    @Test func fullPermissionsUserCreatesTheViewsStreamAndPublishesThroughJetStream() async throws {
        try await withOperatorNATS { keys, nats in
            let controller = try user(keys, nats, "controller", permissions: nil)
            let connection = try await connect(nats, name: "controller", credentials: controller.credentials)
            let js = try JetStream(connection: connection)
            let state = try await js.ensureStream(.views)
            #expect(state.name == StreamSpec.views.name)
            let publisher = try JetStreamPublisher(connection: connection, stream: StreamSpec.views.name)
            let subject = try ViewSubjects.subject(tenant: "t1", peer: "p1")
            let results = await publisher.publish([OutgoingMessage(subject: subject, messageID: "t1:p1:1", payload: Array("{}".utf8))])
            #expect(results == [.stored(sequence: 1, duplicate: false)])
            #expect(try await js.lastMessage(stream: StreamSpec.views.name, subject: subject)?.payload == Array("{}".utf8))
            await connection.close()
        }
    }

    @Test func expiredUserJWTIsRefused() async throws {
        try await withOperatorNATS { keys, nats in
            let expired = try user(keys, nats, "expired", permissions: nil, issuedAt: Self.now() - 3_600, expires: Self.now() - 10)
            let error = await #expect(throws: NATSError.self) { try await connect(nats, name: "expired", credentials: expired.credentials) }
            print("[operator-mode] expired JWT: \(error.map { "\($0)" } ?? "-")")
            #expect(error.map { "\($0)".contains("Authorization Violation") } == true)
            #expect(await eventually(timeout: .seconds(5)) { log(nats).contains(#""v3.4.1:C:expired" - authentication error"#) })
            // The same user with a valid JWT connects (the refusal was the expiry).
            let fresh = keys.userJWT(name: "expired", user: expired.key.publicKey, permissions: nil, issuedAt: Self.now(), expires: Self.now() + 60)
            let path = try credentials(nats, "fresh", jwt: fresh, seed: expired.key.seed)
            let connection = try await connect(nats, name: "fresh", credentials: path)
            #expect(connection.isConnected)
            await connection.close()
        }
    }

    /// Pushes `accountJWT` to the full resolver as a system-account user; returns the reply body.
    func pushAccount(_ keys: NATSKeyDirectory, _ nats: PrivateNATS, _ accountJWT: String) async throws -> String {
        let (jwt, key) = keys.systemUser(name: "updater", issuedAt: Self.now(), expires: nil)
        let connection = try await connect(nats, name: "updater", credentials: try credentials(nats, "updater", jwt: jwt, seed: key.seed))
        let reply = try await connection.request("$SYS.REQ.CLAIMS.UPDATE", payload: Array(accountJWT.utf8), timeout: .seconds(5))
        await connection.close()
        return String(decoding: reply.payload, as: UTF8.self)
    }

    /// A system-account user connected for pushing account JWTs to the resolver.
    func updater(_ keys: NATSKeyDirectory, _ nats: PrivateNATS) async throws -> NATSConnection {
        let (jwt, key) = keys.systemUser(name: "updater", issuedAt: Self.now(), expires: nil)
        return try await connect(nats, name: "updater", credentials: try credentials(nats, "updater", jwt: jwt, seed: key.seed))
    }

    /// The revocation path end to end: a live connection is cut within 2 s of the push, its JWT is refused afterwards, a
    /// JWT issued after the revocation time works and survives later pushes of the same revocation list.
    @Test func revokedUserIsCutAndRefused() async throws {
        try await withOperatorNATS { keys, nats in
            let updater = try await updater(keys, nats)
            let baseIssuedAt = try NATSJWT.decode(keys.baseAccountJWT).issuedAt
            var accountIssuedAt = baseIssuedAt
            var revocations: [String: Int64] = [:]
            var cutTimes: [Duration] = []

            // Five rounds, each revoking one more live user (the whole list is pushed every time, iat increasing).
            var revokedUsers: [(credentials: String, key: NKeyPair, jwt: String)] = []
            for round in 1...5 {
                let agent = try user(keys, nats, "agent\(round)", permissions: nil, issuedAt: Self.now() - 5)
                let connection = try await connect(nats, name: "agent\(round)", credentials: agent.credentials)
                let events = EventLog(connection)
                #expect(connection.isConnected)

                revocations[agent.key.publicKey] = Self.now()
                accountIssuedAt = max(Self.now(), accountIssuedAt + 1)
                let start = ContinuousClock.now
                let reply = try await updater.request("$SYS.REQ.CLAIMS.UPDATE",
                                                      payload: Array(keys.accountJWT(revocations: revocations, issuedAt: accountIssuedAt).utf8),
                                                      timeout: .seconds(5))
                let replied = ContinuousClock.now - start
                let body = String(decoding: reply.payload, as: UTF8.self)
                #expect(body.contains(#""code":200,"message":"jwt updated""#))
                #expect(await eventually(timeout: .seconds(5)) { events.cutAt != nil })
                let cut = try #require(events.cutAt) - start
                cutTimes.append(cut)
                #expect(cut < .seconds(2))
                // libnats gives up on a revoked user: the connection ends closed, not reconnecting.
                #expect(await eventually(timeout: .seconds(5)) { connection.status == .closed })
                if round == 1 {
                    print("[operator-mode] $SYS.REQ.CLAIMS.UPDATE reply (after \(replied)): \(body)")
                    print("[operator-mode] revoked live connection, events from the push: \(events.trace(since: start)); status now \(connection.status)")
                }
                await connection.close()
                revokedUsers.append(agent)
            }
            print("[operator-mode] push-to-cut times over 5 revocations: \(cutTimes)")

            // Reconnecting with a revoked JWT is refused.
            let error = await #expect(throws: NATSError.self) { try await connect(nats, name: "agent-again", credentials: revokedUsers[0].credentials) }
            print("[operator-mode] reconnect with the revoked JWT: \(error.map { "\($0)" } ?? "-")")

            // A new JWT for the same key, issued after the revocation time, is accepted and stays connected when the same
            // revocation list is pushed again (revocation compares the user JWT's iat with the revocation time).
            let first = revokedUsers[0]
            // JWT times are whole seconds: wait (on the clock, bounded) until a new JWT's iat is past the revocation time.
            #expect(await eventually(timeout: .seconds(5)) { Self.now() > revocations[first.key.publicKey]! })
            let reissued = keys.userJWT(name: "agent1", user: first.key.publicKey, permissions: nil, issuedAt: Self.now(), expires: nil)
            #expect(try NATSJWT.decode(reissued).issuedAt > revocations[first.key.publicKey]!)
            let again = try await connect(nats, name: "agent-reissued", credentials: try credentials(nats, "reissued", jwt: reissued, seed: first.key.seed))
            let againEvents = EventLog(again)
            // The same push also revokes a live canary: once the canary is cut, the server has applied the push and
            // processed its cuts, so the reissued user still being connected then means it survived it.
            let canary = try user(keys, nats, "canary", permissions: nil, issuedAt: Self.now() - 5)
            let canaryConnection = try await connect(nats, name: "canary", credentials: canary.credentials)
            let canaryEvents = EventLog(canaryConnection)
            revocations[canary.key.publicKey] = Self.now()
            accountIssuedAt = max(Self.now(), accountIssuedAt + 1)
            _ = try await updater.request("$SYS.REQ.CLAIMS.UPDATE",
                                          payload: Array(keys.accountJWT(revocations: revocations, issuedAt: accountIssuedAt).utf8))
            #expect(await eventually(timeout: .seconds(5)) { canaryEvents.cutAt != nil }, "the push was applied")
            #expect(again.isConnected && againEvents.cutAt == nil, "a JWT issued after the revocation time survives a re-push")
            await canaryConnection.close()
            await again.close()
            await updater.close()
            let afterReady = log(nats).components(separatedBy: "Server is ready").last ?? ""
            print("[operator-mode] server log after ready:\(afterReady)")
        }
    }

    /// At start the server stores its preloaded JWTs only if they are newer than what the resolver folder holds: a pushed
    /// account JWT with a newer `iat` than account.jwt survives a restart; one with an older `iat` is replaced by the
    /// preload (its revocations are lost).
    @Test func revocationSurvivesARestartOnlyWhenNewerThanThePreload() async throws {
        try await withOperatorNATS { keys, nats in
            let agent = try user(keys, nats, "agent", permissions: nil, issuedAt: Self.now() - 5)
            let baseIssuedAt = try NATSJWT.decode(keys.baseAccountJWT).issuedAt
            let reply = try await pushAccount(keys, nats, keys.accountJWT(revocations: [agent.key.publicKey: Self.now()], issuedAt: baseIssuedAt + 1))
            #expect(reply.contains("\"code\":200"))
            #expect(!(await canConnect(nats, agent.credentials)))
            await nats.stop()
            try await nats.restart()
            let stored = try String(contentsOfFile: nats.directory + "/jwt/\(keys.accountPublicKey).jwt", encoding: .utf8)
            let storedIssuedAt = try NATSJWT.decode(stored).issuedAt
            let refused = !(await canConnect(nats, agent.credentials))
            print("[operator-mode] after restart: stored account iat \(storedIssuedAt) (base \(baseIssuedAt)), revoked user refused: \(refused)")
            #expect(refused, "the revocation must survive a restart")
            #expect(storedIssuedAt == baseIssuedAt + 1)

            // A push with an iat older than the preloaded JWT's is applied at once, but lost at the next restart: the preload
            // is newer than what the resolver stored, so it replaces it.
            let second = try user(keys, nats, "second", permissions: nil, issuedAt: Self.now() - 5)
            _ = try await pushAccount(keys, nats, keys.accountJWT(revocations: [agent.key.publicKey: Self.now(), second.key.publicKey: Self.now()],
                                                                  issuedAt: baseIssuedAt - 1))
            let secondRefusedBefore = !(await canConnect(nats, second.credentials))
            await nats.stop()
            try await nats.restart()
            let secondRefusedAfter = !(await canConnect(nats, second.credentials))
            let agentRefusedAfter = !(await canConnect(nats, agent.credentials))
            print("[operator-mode] push with iat older than the preload: applied \(secondRefusedBefore); after restart, revocations still in force: second \(secondRefusedAfter), first \(agentRefusedAfter)")
            #expect(secondRefusedBefore && !secondRefusedAfter && !agentRefusedAfter)
        }
    }

    /// nats-server 2.9.10 stores an account JWT pushed to `$SYS.REQ.CLAIMS.UPDATE` even when its signer is neither the
    /// operator nor one of its signing keys, and still answers code 200 "jwt updated"; new connections of the account are
    /// then refused (its stored JWT no longer validates) until a validly signed JWT is pushed. So a 200 reply does not
    /// prove the JWT was good, and whoever holds system-account user credentials can lock an account out.
    @Test func accountJWTFromAnUntrustedSignerLocksTheAccountOutUntilAValidPush() async throws {
        try await withOperatorNATS { keys, nats in
            let agent = try user(keys, nats, "agent", permissions: nil, issuedAt: Self.now() - 5)
            let baseIssuedAt = try NATSJWT.decode(keys.baseAccountJWT).issuedAt
            let forged = NATSJWT.accountJWT(name: "routeplane", account: keys.accountPublicKey, signingKeys: [keys.accountSigning.publicKey],
                                            revocations: [:], jetStream: true, issuedAt: baseIssuedAt + 1, signer: NKeyPair.generate(.operator))
            let reply = try await pushAccount(keys, nats, forged)
            let refused = !(await canConnect(nats, agent.credentials))
            print("[operator-mode] account JWT signed by an untrusted key: reply \(reply); the account's users refused afterwards: \(refused)")
            #expect(reply.contains(#""code":200,"message":"jwt updated""#))
            #expect(refused)

            _ = try await pushAccount(keys, nats, keys.accountJWT(revocations: [:], issuedAt: baseIssuedAt + 2))
            #expect(await canConnect(nats, agent.credentials), "a validly signed push repairs the account")
        }
    }

    /// Whether `credentials` can connect now.
    func canConnect(_ nats: PrivateNATS, _ credentials: String) async -> Bool {
        guard let connection = try? await connect(nats, name: "probe", credentials: credentials) else { return false }
        await connection.close()
        return true
    }

    /// nats-server 2.9.10's full resolver applies and stores every account JWT pushed to `$SYS.REQ.CLAIMS.UPDATE` (signed by
    /// the operator), whatever its `iat`: one older than the preloaded JWT, or older than the last pushed one, replaces it
    /// (the last push wins; `iat` ordering only matters when servers of a cluster merge their stores). So the controller must
    /// push the complete revocation list each time, from one writer at a time, with a non-decreasing `iat`.
    @Test func resolverAppliesEveryPushedAccountJWTWhateverItsIssuedAt() async throws {
        try await withOperatorNATS { keys, nats in
            let baseIssuedAt = try NATSJWT.decode(keys.baseAccountJWT).issuedAt
            let accountFile = nats.directory + "/jwt/\(keys.accountPublicKey).jwt"
            let storedIssuedAt = { () -> Int64? in
                (try? String(contentsOfFile: accountFile, encoding: .utf8)).flatMap { try? NATSJWT.decode($0).issuedAt }
            }
            #expect(storedIssuedAt() == baseIssuedAt, "the preloaded account JWT is stored in the resolver folder")
            let first = try user(keys, nats, "first", permissions: nil, issuedAt: Self.now() - 5)
            let second = try user(keys, nats, "second", permissions: nil, issuedAt: Self.now() - 5)

            // Older than the preloaded account.jwt: applied and stored.
            let olderThanPreload = try await pushAccount(
                keys, nats, keys.accountJWT(revocations: [first.key.publicKey: Self.now()], issuedAt: baseIssuedAt - 10))
            let firstRefused = !(await canConnect(nats, first.credentials))
            print("[operator-mode] iat older than the preloaded JWT: reply \(olderThanPreload); revocation applied: \(firstRefused); stored iat \(storedIssuedAt().map(String.init) ?? "-") (base \(baseIssuedAt))")
            #expect(olderThanPreload.contains("\"code\":200") && firstRefused && storedIssuedAt() == baseIssuedAt - 10)

            // A newer one without revocations lifts it; then one older than that is applied again.
            let newer = try await pushAccount(keys, nats, keys.accountJWT(revocations: [:], issuedAt: baseIssuedAt + 10))
            #expect(newer.contains("\"code\":200"))
            #expect(await canConnect(nats, first.credentials), "a newer account JWT without the revocation lifts it")
            let olderThanPushed = try await pushAccount(
                keys, nats, keys.accountJWT(revocations: [second.key.publicKey: Self.now()], issuedAt: baseIssuedAt + 5))
            let secondRefused = !(await canConnect(nats, second.credentials))
            print("[operator-mode] iat older than the last pushed JWT: reply \(olderThanPushed); revocation applied: \(secondRefused); stored iat \(storedIssuedAt().map(String.init) ?? "-")")
            #expect(secondRefused && storedIssuedAt() == baseIssuedAt + 5)
        }
    }
}

/// Records a connection's events with the time each arrived.
final class EventLog: Sendable {
    typealias Entry = (event: NATSConnectionEvent, at: ContinuousClock.Instant)

    private final class Entries: Sendable {
        let list = Mutex<[Entry]>([])
    }

    private let entries = Entries()
    private let task: Task<Void, Never>

    init(_ connection: NATSConnection) {
        let events = connection.events()
        let entries = entries
        task = Task {
            for await event in events { entries.list.withLock { $0.append((event, .now)) } }
        }
    }

    deinit { task.cancel() }

    var all: [Entry] { entries.list.withLock { $0 } }

    /// When the connection was first disconnected or closed.
    var cutAt: ContinuousClock.Instant? { all.first { $0.event == .disconnected || $0.event == .closed }?.at }

    func trace(since start: ContinuousClock.Instant) -> String {
        all.map { entry in
            let ms = Double((entry.at - start).components.attoseconds) / 1e15 + Double((entry.at - start).components.seconds) * 1_000
            return "\(entry.event) +\(String(format: "%.1f", ms)) ms"
        }.joined(separator: ", ")
    }
}
