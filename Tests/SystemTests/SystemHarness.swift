import ControlPlane
import HTTPAPI
import PostgresClient
import EventStore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import Logging
import ViewDistribution
import NATSAuth
import NATSClient
import NIOCore
import Projections
import RouteAgent
import RouteModel
import Synchronization
import TestSupport

/// The whole system in one process, on the real PostgreSQL and a private nats-server: the controller's
/// HTTP API on a loopback port, its projection runner and outbox relay, and agents (`AgentRunner` with
/// dry-run appliers) that enroll over HTTP and follow their views over NATS.
final class System: Sendable {
    let db: TestDatabase
    let nats: PrivateNATS
    let controller: APIServer
    let port: Int
    let logger: Logger
    private let tasks = Mutex<[String: Task<Void, Never>]>([:])
    private let relayConnections = Mutex<[NATSConnection]>([])

    var api: String { "http://127.0.0.1:\(port)" }
    let session = URLSession(configuration: .ephemeral)

    private init(db: TestDatabase, nats: PrivateNATS, controller: APIServer, port: Int, logger: Logger) {
        self.db = db
        self.nats = nats
        self.controller = controller
        self.port = port
        self.logger = logger
    }

    /// `agentJWTLifetime`: how long agents' NATS user JWTs are valid (short in renewal tests).
    static func start(agentJWTLifetime: Duration = .seconds(3_600)) async throws -> System {
        trace("db")
        let db = try await TestDatabase.create(maxConnections: 16)
        trace("nats")
        let nats = try await PrivateNATS.start()
        do {
            return try await start(db: db, nats: nats, agentJWTLifetime: agentJWTLifetime)
        } catch {
            // Nothing owns the database and the server yet: a setup that fails must not leave them (a nats-server
            // outliving the test run).
            await nats.destroy()
            await db.drop()
            throw error
        }
    }

    private static func start(db: TestDatabase, nats: PrivateNATS, agentJWTLifetime: Duration) async throws -> System {
        trace("app")
        var logger = Logger(label: "test.system")
        logger.logLevel = .warning
        // As `serve` wires it: agents get NATS users at enrollment; a deleted peer's user is revoked at the resolver.
        let publisher = NATSAccountPublisher(store: db.store, keys: nats.keys!, natsURL: nats.url, maxUserLifetime: .seconds(3_600), logger: logger)
        var configuration = ControllerConfiguration(natsURL: nats.url, viewSigner: try ViewSigner(seed: nats.keys!.viewSigningSeed))
        configuration.bus = AgentBusIssuer(keys: nats.keys!, userLifetime: agentJWTLifetime) { reason in
            do { try await publisher.push(reason: reason) } catch { Logger(label: "test.system").error("revocation push failed: \(error)") }
        }
        let controller = APIServer(configuration: configuration, store: db.store, logger: logger)
        let portBox = Mutex<Int?>(nil)
        let app = Application(router: controller.makeRouter().router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in portBox.withLock { $0 = channel.localAddress?.port } }, logger: logger)
        let server = Task<Void, Never> { _ = try? await app.runService(gracefulShutdownSignals: []) }
        let deadline = ContinuousClock.now + .seconds(10)
        while portBox.withLock({ $0 }) == nil {
            guard ContinuousClock.now < deadline else {
                server.cancel()
                _ = await server.value
                throw TestSetupError("controller did not start")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let system = System(db: db, nats: nats, controller: controller, port: portBox.withLock { $0! }, logger: logger)
        system.tasks.withLock { $0["server"] = server }
        trace("runner")
        let runner = ProjectionRunner(store: db.store, logger: logger)
        system.tasks.withLock { $0["projections"] = Task { await runner.run() } }
        do {
            try await system.startRelay(name: "relay")
        } catch {
            // The caller destroys the server and drops the database; the tasks holding them stop first.
            for name in system.tasks.withLock({ Array($0.keys) }) { await system.stopTask(name) }
            throw error
        }
        trace("started")
        return system
    }

    /// Starts an outbox relay (several may run), signing with the controller's key unless `signer` is given.
    /// `afterPublish` runs between publish and mark-sent.
    func startRelay(name: String, signer: ViewSigner? = nil,
                    afterPublish: (@Sendable ([OutboxRelay.PublishedRow], PostgresSession) throws -> Void)? = nil) async throws {
        var configuration = NATSConfiguration(url: nats.url, name: name)
        configuration.failIfUnreachable = false
        configuration.userCredentials = ControllerBusUser(keys: nats.keys!).credentials
        let connection = try await NATSConnection.connect(configuration, logger: logger)
        relayConnections.withLock { $0.append(connection) }
        let relay = OutboxRelay(store: db.store, connection: connection, signer: signer ?? controller.controlPlane.viewSigner,
                                configuration: .init(name: name, afterPublish: afterPublish), logger: logger)
        tasks.withLock { $0[name] = Task { await relay.run() } }
    }

    /// Starts a status recorder (as every controller runs one) on a controller connection of its own.
    func startStatusRecorder(flushInterval: Duration = .milliseconds(500)) async throws -> PeerStatusRecorder {
        var configuration = NATSConfiguration(url: nats.url, name: "status")
        configuration.failIfUnreachable = true
        configuration.userCredentials = ControllerBusUser(keys: nats.keys!).credentials
        let connection = try await NATSConnection.connect(configuration, logger: logger)
        relayConnections.withLock { $0.append(connection) }
        let recorder = PeerStatusRecorder(store: db.store, connection: connection, flushInterval: flushInterval, logger: logger)
        tasks.withLock { $0["status"] = Task { await recorder.run() } }
        guard await eventually(timeout: .seconds(10), { recorder.isSubscribed }) else { throw TestSetupError("status recorder did not subscribe") }
        return recorder
    }

    /// A connection with a user of the routeplane account without permission limits (the controller's account):
    /// what a test uses to publish as no agent can.
    func adminConnection(name: String = "admin") async throws -> NATSConnection {
        var configuration = NATSConfiguration(url: nats.url, name: name)
        configuration.failIfUnreachable = true
        let (jwt, key) = nats.adminUser(name: name)
        configuration.userCredentials = NATSUserCredentials(jwt: { jwt }, sign: { key.sign($0) })
        return try await NATSConnection.connect(configuration, logger: logger)
    }

    func stopTask(_ name: String) async {
        let task = tasks.withLock { $0.removeValue(forKey: name) }
        task?.cancel()
        _ = await task?.value
    }

    /// Runs `body` against a fresh system and shuts it down afterwards, also when `body` throws.
    static func with(agentJWTLifetime: Duration = .seconds(3_600), _ body: (System) async throws -> Void) async throws {
        let system = try await start(agentJWTLifetime: agentJWTLifetime)
        do {
            try await body(system)
        } catch {
            await system.shutdown()
            throw error
        }
        await system.shutdown()
    }

    private let stopped = Mutex(false)

    /// Stops everything (idempotent).
    func shutdown() async {
        guard stopped.withLock({ s in defer { s = true }; return !s }) else { return }
        for name in tasks.withLock({ Array($0.keys) }) { await stopTask(name) }
        for c in relayConnections.withLock({ $0 }) { await c.close() }
        await nats.destroy()
        await db.drop()
    }

    // MARK: - API calls (over real HTTP)

    func call(_ method: String, _ path: String, token: String? = nil, body: [String: Any]? = nil) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: api + path)!)
        request.httpMethod = method
        if let token { request.setValue("Token \(token)", forHTTPHeaderField: "Authorization") }
        if let body { request.httpBody = try JSONSerialization.data(withJSONObject: body) }
        trace("call \(method) \(path)")
        let (data, response) = try await session.data(for: request)
        trace("called \(method) \(path)")
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }

    /// The stored view version of every peer of a tenant.
    func viewVersions(_ tenant: String) async throws -> [String: Int64] {
        let rows = try await db.store.pool.withSession { s in
            try s.query("SELECT peer_id, version FROM peer_views WHERE tenant_id = $1", [tenant])
        }
        return Dictionary(uniqueKeysWithValues: rows.rows.map { ($0[0]!, Int64($0[1]!)!) })
    }

    func projected(_ tenant: String) async throws {
        trace("projected? \(tenant)")
        defer { trace("projected! \(tenant)") }
        let head = try await db.store.version(tenant: tenant)
        trace("head \(head)")
        try await ProjectionCheckpoints(store: db.store).waitUntilProjected(tenant: tenant, sequence: head, timeout: .seconds(20))
    }
}

/// One in-process agent and its task.
struct TestAgent: Sendable {
    let runner: AgentRunner
    let applier: DryRunApplier
    let task: Task<Void, Never>
    let folder: String
    var peerID: String { get async { await runner.identity?.peerID ?? "" } }

    static func start(system: System, setupKey: String?, name: String, folder: String? = nil) async throws -> TestAgent {
        let dir = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-agent-\(UUID().uuidString.prefix(8))").path
        let applier = DryRunApplier()
        var logger = Logger(label: "test.agent.\(name)")
        logger.logLevel = .critical
        let runner = try AgentRunner(configuration: AgentConfiguration(
            controller: system.api, setupKey: setupKey, stateFolder: dir, name: name, statusInterval: .seconds(1),
            httpFallbackInterval: .seconds(1), machine: .init(assumeCandidatesUp: true), probe: nil, answerProbes: false),
            applier: applier, logger: logger)
        trace("enroll \(name)")
        _ = try await runner.loadOrEnroll()
        trace("enrolled \(name)")
        let task = Task { _ = try? await runner.run() }
        return TestAgent(runner: runner, applier: applier, task: task, folder: dir)
    }

    func stop() async {
        task.cancel()
        _ = await task.value
    }
}


func trace(_ s: String) {
    if ProcessInfo.processInfo.environment["ROUTEPLANE_TRACE"] != nil { FileHandle.standardError.write(Data("trace: \(s)\n".utf8)) }
}
