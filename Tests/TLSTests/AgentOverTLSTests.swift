import AsyncHTTPClient
import ControlPlane
import Foundation
import HTTPAPI
import Logging
import NATSAuth
import NATSClient
import NIOCore
import NIOHTTP1
import NIOSSL
import Projections
@testable import RouteAgent
import ServiceLifecycle
import TestSupport
import Testing
import ViewDistribution

/// The whole path encrypted: a controller serving HTTPS and talking to a TLS-only nats-server (relay, account publisher),
/// and an agent that enrolls over HTTPS and follows its view over NATS with TLS, trusting the test CA for both.
@Suite(.timeLimit(.minutes(3))) struct AgentOverTLSTests {
    @Test func agentEnrollsOverHTTPSAndFollowsItsViewOverNATSWithTLS() async throws {
        var logger = Logger(label: "test.agent-tls")
        logger.logLevel = .critical
        let ca = try await TestCA.make()
        defer { ca.remove() }
        let issued = try await ca.issue()
        let keysFolder = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-nats-keys-\(UUID().uuidString.prefix(8))").path
        let agentFolder = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-agent-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: keysFolder); try? FileManager.default.removeItem(atPath: agentFolder) }
        let (keys, _) = try NATSKeyDirectory.initialize(at: keysFolder)
        let nats = try await PrivateNATS.start(keys: keys, tls: NATSServerTLS(certFile: issued.certificate, keyFile: issued.key))
        let db = try await TestDatabase.create(maxConnections: 16)
        let natsURL = "tls://127.0.0.1:\(nats.port)"
        let natsTLS = NATSTLSSettings(caFile: ca.certificate)

        // The controller as `routeplane serve --tls-cert … --tls-key … --nats-url tls://… --nats-ca …` wires it.
        let publisher = NATSAccountPublisher(store: db.store, keys: keys, natsURL: natsURL, maxUserLifetime: .seconds(3_600), logger: logger, tls: natsTLS)
        var configuration = ControllerConfiguration(natsURL: natsURL, viewSigner: try ViewSigner(seed: keys.viewSigningSeed))
        configuration.bus = AgentBusIssuer(keys: keys, userLifetime: .seconds(3_600)) { reason in _ = try? await publisher.push(reason: reason) }
        let server = APIServer(configuration: configuration, store: db.store, logger: logger)
        var relayConfiguration = NATSConfiguration(url: natsURL, name: "relay")
        relayConfiguration.failIfUnreachable = true
        relayConfiguration.userCredentials = ControllerBusUser(keys: keys).credentials
        relayConfiguration.tls = natsTLS
        let relayConnection = try await NATSConnection.connect(relayConfiguration, logger: logger)
        let relay = OutboxRelay(store: db.store, connection: relayConnection, signer: server.controlPlane.viewSigner,
                                configuration: .init(name: "relay"), logger: logger)
        let runner = ProjectionRunner(store: db.store, logger: logger)
        let background = [Task { await relay.run() }, Task { await runner.run() }]
        let (ports, found) = AsyncStream<Int>.makeStream()
        let http = server.service(host: "127.0.0.1", port: 0, tls: try APIServerTLS.load(certificatePath: issued.certificate, keyPath: issued.key),
                                  logger: logger) { port in found.yield(port ?? 0) }
        let group = ServiceGroup(configuration: .init(services: [http], logger: logger))
        let serving = Task { try await group.run() }
        var agentTask: Task<Void, Never>?

        func shutdown() async {
            agentTask?.cancel()
            _ = await agentTask?.value
            await group.triggerGracefulShutdown()
            _ = await serving.result
            for task in background { task.cancel(); _ = await task.value }
            await relayConnection.close()
            await nats.destroy()
            await db.drop()
        }

        do {
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw TestSetupError("the TLS server did not report its port") }
            let api = "https://127.0.0.1:\(port)"
            let tenant = try await server.controlPlane.createTenant(name: "tls")
            let token = try await server.controlPlane.createToken(tenant: tenant, name: "tls").token
            let setupKey = try await Self.createSetupKey(api: api, token: token, ca: ca.certificate)

            var agentConfiguration = AgentConfiguration(controller: api, setupKey: setupKey, stateFolder: agentFolder, name: "tls-agent",
                                                        statusInterval: .seconds(1), httpFallbackInterval: .seconds(1),
                                                        machine: .init(assumeCandidatesUp: true), probe: nil, answerProbes: false)
            agentConfiguration.transport = AgentTransport(controllerCA: ca.certificate, natsCA: ca.certificate)
            let agent = try AgentRunner(configuration: agentConfiguration, applier: DryRunApplier(), logger: logger)
            let identity = try await agent.loadOrEnroll()
            #expect(identity.natsURL == natsURL)
            agentTask = Task { _ = try? await agent.run() }
            let following = await eventually(timeout: .seconds(30)) {
                let connected = await agent.isNATSConnected()
                let applied = await agent.appliedVersion
                return connected && applied > 0
            }
            let connected = await agent.isNATSConnected()
            let applied = await agent.appliedVersion
            #expect(following, "NATS connected: \(connected), applied version \(applied)")
        } catch {
            await shutdown()
            throw error
        }
        await shutdown()
    }

    /// `POST /api/setup-keys` over HTTPS trusting `ca`; the key.
    static func createSetupKey(api: String, token: String, ca: String) async throws -> String {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(ca)
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: .seconds(5), read: .seconds(10)))
        configuration.connectionPool.retryConnectionEstablishment = false
        var request = HTTPClientRequest(url: api + "/api/setup-keys")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Token \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"name":"tls","type":"reusable","expires_in":3600,"auto_groups":[]}"#))
        let body = try await HTTPClient.withHTTPClient(configuration: configuration) { http in
            let response = try await http.execute(request, deadline: .now() + .seconds(10))
            return try await response.body.collect(upTo: 1 << 20)
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any], let key = object["key"] as? String else {
            throw TestSetupError("no setup key in \(String(buffer: body))")
        }
        return key
    }
}
