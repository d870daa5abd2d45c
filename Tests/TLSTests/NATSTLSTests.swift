import Foundation
import Logging
import NATSAuth
import NATSClient
import TestSupport
import Testing

/// NATS with TLS: the `tls {}` block Routeplane writes, and libnats's secure options against a private nats-server that
/// accepts TLS connections only (certificates made for the test).
@Suite(.timeLimit(.minutes(2))) struct NATSTLSTests {
    @Test func serverConfigHasATLSBlockOnlyWhenAsked() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-nats-keys-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (keys, _) = try NATSKeyDirectory.initialize(at: folder)
        let plain = keys.serverConfig(host: "127.0.0.1", port: 4222, httpPort: nil, storeDirectory: "/js", resolverDirectory: "/jwt")
        #expect(!plain.contains("tls {"))
        let tls = keys.serverConfig(host: "0.0.0.0", port: 4222, httpPort: nil, storeDirectory: "/js", resolverDirectory: "/jwt",
                                    tls: NATSServerTLS(certFile: "/etc/nats/server.pem", keyFile: "/etc/nats/\"key\".pem"))
        #expect(tls.contains("tls {\n  cert_file: \"/etc/nats/server.pem\"\n  key_file: \"/etc/nats/\\\"key\\\".pem\"\n  timeout: 2.0\n}"), "\(tls)")
        #expect(!tls.contains("verify"))
        let mutual = keys.serverConfig(host: "0.0.0.0", port: 4222, httpPort: nil, storeDirectory: "/js", resolverDirectory: "/jwt",
                                       tls: NATSServerTLS(certFile: "/c.pem", keyFile: "/k.pem", clientCAFile: "/ca.pem"))
        #expect(mutual.contains("  ca_file: \"/ca.pem\"\n  verify: true"))
    }

    @Test func tlsServerAcceptsClientsWithTheCAAndRefusesPlainNATS() async throws {
        let ca = try await TestCA.make()
        let other = try await TestCA.make(name: "Another CA")
        defer { ca.remove(); other.remove() }
        let issued = try await ca.issue()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-nats-keys-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (keys, _) = try NATSKeyDirectory.initialize(at: folder)
        let nats = try await PrivateNATS.start(keys: keys, tls: NATSServerTLS(certFile: issued.certificate, keyFile: issued.key))
        let (jwt, key) = nats.adminUser()
        var logger = Logger(label: "test.nats-tls")
        logger.logLevel = .critical

        func connect(_ url: String, _ tls: NATSTLSSettings?) async throws -> NATSConnection {
            var configuration = NATSConfiguration(url: url, name: "tls-test")
            configuration.failIfUnreachable = true
            configuration.maxReconnectAttempts = 0
            configuration.userCredentials = NATSUserCredentials(jwt: { jwt }, sign: { key.sign($0) })
            configuration.tls = tls
            return try await NATSConnection.connect(configuration, logger: logger)
        }

        do {
            // tls:// with the CA, and nats:// with the CA (TLS required by the settings): connected, a round trip works.
            for (url, settings) in [("tls://127.0.0.1:\(nats.port)", NATSTLSSettings(caFile: ca.certificate)),
                                    ("nats://127.0.0.1:\(nats.port)", NATSTLSSettings(caFile: ca.certificate)),
                                    ("tls://localhost:\(nats.port)", NATSTLSSettings(caFile: ca.certificate))] {
                let connection = try await connect(url, settings)
                try await connection.flush()
                #expect(connection.isConnected, "\(url)")
                await connection.close()
            }
            // Plain NATS to the TLS-only server is refused.
            await #expect(throws: NATSError.self) { _ = try await connect("nats://127.0.0.1:\(nats.port)", nil) }
            // A client trusting another CA refuses the server's certificate.
            await #expect(throws: NATSError.self) { _ = try await connect("tls://127.0.0.1:\(nats.port)", NATSTLSSettings(caFile: other.certificate)) }
            // The certificate names 127.0.0.1 and localhost, not this expected host name.
            await #expect(throws: NATSError.self) {
                _ = try await connect("tls://127.0.0.1:\(nats.port)", NATSTLSSettings(caFile: ca.certificate, expectedHostname: "nats.example.net"))
            }
            // A CA file that does not exist fails before any connection, naming the file.
            do {
                _ = try await connect("tls://127.0.0.1:\(nats.port)", NATSTLSSettings(caFile: ca.directory + "/missing-ca.pem"))
                Issue.record("connected with a missing CA file")
            } catch {
                #expect("\(error)".contains("missing-ca.pem"), "\(error)")
            }
        } catch {
            await nats.destroy()
            throw error
        }
        await nats.destroy()
    }
}
