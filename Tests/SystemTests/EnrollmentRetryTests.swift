import ControlPlane
import Foundation
import HTTPAPI
import Hummingbird
import Logging
import RouteAgent
import RouteModel
import Synchronization
import Testing
import TestSupport

/// The agent against a controller that limits enrollments: a 429 is told apart, and the agent asks again later.
@Suite("Agent enrollment under a rate limit", .timeLimit(.minutes(10)), .serialized)
struct EnrollmentRetryTests {
    @Test("a 429 is an enrollmentRateLimited error; the agent's enrollment waits and succeeds once the key's rate allows")
    func agentRetriesAfter429() async throws {
        let db = try await TestDatabase.create(maxConnections: 8)
        var logger = Logger(label: "test.enroll-retry")
        logger.logLevel = .warning
        var configuration = ControllerConfiguration()
        // One enrollment per 4 s with the key: the agent below starts well within that of the refused second enrollment
        // even on a loaded machine (at 1/s it sometimes started after the refill and was never refused).
        configuration.controlPlane.admission = AdmissionSettings(enrollPerSetupKey: RateLimit(burst: 1, perSecond: 0.25),
                                                                 enrollPerSource: RateLimit(burst: 1_000, perSecond: 1_000))
        let controller = APIServer(configuration: configuration, store: db.store, logger: logger)
        let portBox = Mutex<Int?>(nil)
        let app = Application(router: controller.makeRouter().router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in portBox.withLock { $0 = channel.localAddress?.port } }, logger: logger)
        let server = Task<Void, Never> { _ = try? await app.runService(gracefulShutdownSignals: []) }
        defer { server.cancel() }
        guard await eventually(timeout: .seconds(10), { portBox.withLock { $0 } != nil }) else {
            throw TestSetupError("controller did not start")
        }
        let base = "http://127.0.0.1:\(portBox.withLock { $0! })"
        let tenant = try await controller.controlPlane.createTenant(name: "acme")
        let keyID = SetupKeyID(Secrets.id())
        let secret = Secrets.secret(prefix: "rps_")
        _ = try await controller.controlPlane.writer.write(tenant: tenant, actor: Actor(id: "test"), requestID: "key") { s in
            try decideOrThrow(AccessCommand.createSetupKey(id: keyID, name: "k", type: .reusable, expiresIn: 0, autoGroups: [], usageLimit: 0, now: 1), s.state)
        } sideStatements: { _ in [CredentialStore.insert(secret: secret, tenant: tenant, kind: .setupKey, subject: keyID.rawValue)] }

        let client = ControllerClient(baseURL: base)
        _ = try await client.enroll(setupKey: secret, name: "first", os: "linux", ip: nil)
        do {
            _ = try await client.enroll(setupKey: secret, name: "second", os: "linux", ip: nil)
            Issue.record("the second enrollment at once was not limited")
        } catch AgentError.enrollmentRateLimited(let message) {
            #expect(message.contains("too many enrollments with this setup key"))
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-agent-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let runner = try AgentRunner(configuration: AgentConfiguration(controller: base, setupKey: secret, stateFolder: folder, name: "third",
                                                                       machine: .init(assumeCandidatesUp: true), probe: nil, answerProbes: false),
                                     applier: DryRunApplier(), logger: logger)
        let started = ContinuousClock.now
        let identity = try await runner.loadOrEnroll()
        #expect(identity.ip == "100.64.0.2" && ContinuousClock.now - started >= .seconds(1))
        server.cancel()
        await db.drop()
    }
}
