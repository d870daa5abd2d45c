import AsyncHTTPClient
import Foundation
import HTTPAPI
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
@testable import RouteAgent
import ServiceLifecycle
import TestSupport
import Testing

/// `routeplane serve --tls-cert/--tls-key`: the API server with TLS over real TCP on loopback, with a CA and
/// certificates made for the test.
@Suite(.timeLimit(.minutes(2))) struct APIServerTLSTests {
    static let logger: Logger = {
        var logger = Logger(label: "test.tls")
        logger.logLevel = .warning
        return logger
    }()

    /// Runs `body` with the API served over TLS by `APIServer.service(…, tls:)` on 127.0.0.1 (an ephemeral port).
    static func withServer(_ tls: APIServerTLS, _ body: @Sendable (Int) async throws -> Void) async throws {
        let db = try await TestDatabase.create()
        let server = APIServer(configuration: .init(), store: db.store, logger: logger)
        let (ports, found) = AsyncStream<Int>.makeStream()
        let service = server.service(host: "127.0.0.1", port: 0, tls: tls, logger: logger) { port in found.yield(port ?? 0) }
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let running = Task { try await group.run() }
        do {
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw TestSetupError("the TLS server did not report its port") }
            try await body(port)
        } catch {
            await group.triggerGracefulShutdown()
            _ = await running.result
            await db.drop()
            throw error
        }
        await group.triggerGracefulShutdown()
        _ = await running.result
        await db.drop()
    }

    /// GET `url` with AsyncHTTPClient trusting only `ca` (nil: the system's trust store); the status, or the error.
    static func get(_ url: String, trusting ca: String?, maximumTLSVersion: TLSVersion? = nil) async throws -> Int {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca { tls.trustRoots = .file(ca) }
        if let maximumTLSVersion { tls.maximumTLSVersion = maximumTLSVersion }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: .seconds(5), read: .seconds(5)))
        configuration.connectionPool.retryConnectionEstablishment = false
        return try await HTTPClient.withHTTPClient(configuration: configuration) { http in
            let response = try await http.execute(HTTPClientRequest(url: url), deadline: .now() + .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            return Int(response.status.code)
        }
    }

    @Test func handshakeWithTheCASucceedsAndPlainHTTPOrAnotherCAIsRefused() async throws {
        let ca = try await TestCA.make()
        let other = try await TestCA.make(name: "Another CA")
        defer { ca.remove(); other.remove() }
        let issued = try await ca.issue()
        let tls = try APIServerTLS.load(certificatePath: issued.certificate, keyPath: issued.key)
        try await Self.withServer(tls) { port in
            let status = try await Self.get("https://127.0.0.1:\(port)/healthz", trusting: ca.certificate)
            #expect(status == 200)
            let byName = try await Self.get("https://localhost:\(port)/healthz", trusting: ca.certificate)
            #expect(byName == 200)
            // Plain HTTP to the TLS port gets no answer.
            await #expect(throws: (any Error).self) { try await Self.get("http://127.0.0.1:\(port)/healthz", trusting: nil) }
            // A client that trusts another CA (or only the system's) refuses the server's certificate.
            await #expect(throws: (any Error).self) { try await Self.get("https://127.0.0.1:\(port)/healthz", trusting: other.certificate) }
            await #expect(throws: (any Error).self) { try await Self.get("https://127.0.0.1:\(port)/healthz", trusting: nil) }
            // TLS 1.2 is the minimum: a client that stops at 1.1 is refused.
            await #expect(throws: (any Error).self) {
                try await Self.get("https://127.0.0.1:\(port)/healthz", trusting: ca.certificate, maximumTLSVersion: .tlsv11)
            }
            let tls12 = try await Self.get("https://127.0.0.1:\(port)/healthz", trusting: ca.certificate, maximumTLSVersion: .tlsv12)
            #expect(tls12 == 200)
        }
    }

    /// The agent's controller client with `--controller-ca` reaches the HTTPS controller; without it, it does not.
    @Test func agentControllerClientTrustsItsCA() async throws {
        let ca = try await TestCA.make()
        defer { ca.remove() }
        let issued = try await ca.issue()
        try await Self.withServer(try APIServerTLS.load(certificatePath: issued.certificate, keyPath: issued.key)) { port in
            let (status, _) = try await ControllerClient(baseURL: "https://127.0.0.1:\(port)", caFile: ca.certificate).call("GET", "/healthz")
            #expect(status == 200)
            await #expect(throws: (any Error).self) { try await ControllerClient(baseURL: "https://127.0.0.1:\(port)").call("GET", "/healthz") }
        }
    }

    @Test func startErrorsNameTheFileAndTheProblem() async throws {
        let ca = try await TestCA.make()
        defer { ca.remove() }
        let issued = try await ca.issue()
        let stranger = try await ca.issue(name: "stranger")

        func message(_ certificate: String, _ key: String) -> String {
            do {
                _ = try APIServerTLS.load(certificatePath: certificate, keyPath: key)
                return "loaded"
            } catch {
                return "\(error)"
            }
        }
        let missing = message(ca.directory + "/nothing.pem", issued.key)
        #expect(missing.contains("--tls-cert") && missing.contains("nothing.pem") && missing.contains("no such file"), "\(missing)")
        let missingKey = message(issued.certificate, ca.directory + "/nothing.key")
        #expect(missingKey.contains("--tls-key") && missingKey.contains("no such file"), "\(missingKey)")
        let notPEM = message(ca.directory, issued.key)
        #expect(notPEM.contains("--tls-cert") && notPEM.contains("not a PEM certificate"), "\(notPEM)")
        let keyAsCertificate = message(issued.key, issued.key)
        #expect(keyAsCertificate.contains("not a PEM certificate"), "\(keyAsCertificate)")
        let certificateAsKey = message(issued.certificate, issued.certificate)
        #expect(certificateAsKey.contains("--tls-key") && certificateAsKey.contains("not a PEM private key"), "\(certificateAsKey)")
        let mismatched = message(issued.certificate, stranger.key)
        #expect(mismatched.contains("is not the private key of the certificate"), "\(mismatched)")
        #expect(message(issued.certificate, issued.key) == "loaded")
    }
}
