import Foundation
import RouteAgent
import Testing

/// The agent's clear-text rule: http:// and nats:// only to loopback unless --insecure; https:// and tls:// anywhere.
@Suite struct TransportCheckTests {
    @Test(arguments: ["127.0.0.1", "127.5.6.7", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost", "LOCALHOST", "localhost.",
                      "agent.localhost"])
    func loopbackHosts(host: String) {
        #expect(TransportCheck.isLoopback(host: host))
    }

    @Test(arguments: ["10.0.0.1", "128.0.0.1", "0.0.0.0", "::", "::2", "::ffff:10.0.0.1", "fe80::1", "localhost.example.com",
                      "controller.example.net", "127.0.0.1.nip.io", ""])
    func otherHosts(host: String) {
        #expect(!TransportCheck.isLoopback(host: host))
    }

    @Test func clearTextToLoopbackIsAllowed() {
        for url in ["http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:8080/api", "nats://127.0.0.1:4222",
                    "nats://user:secret@localhost:4222", "HTTP://127.0.0.1"] {
            #expect(TransportCheck.evaluate(url: url, option: "--controller", encryptedAnyway: false, insecure: false) == .loopback, "\(url)")
        }
    }

    @Test func clearTextToAnotherHostIsRefusedWithoutInsecure() {
        for url in ["http://10.0.0.1:8080", "http://[2001:db8::1]:8080", "nats://10.0.0.1:4222", "http://controller.example.net",
                    "http://127.0.0.1@10.0.0.1:8080"] {
            let verdict = TransportCheck.evaluate(url: url, option: "--controller", encryptedAnyway: false, insecure: false)
            guard case .refused(let message) = verdict else {
                Issue.record("\(url) was not refused: \(verdict)")
                continue
            }
            #expect(message.contains(url) && message.contains("--insecure"), "\(message)")
            #expect(TransportCheck.evaluate(url: url, option: "--controller", encryptedAnyway: false, insecure: true) == .insecureAllowed)
        }
    }

    @Test func encryptedSchemesAreAllowedAnywhere() {
        for url in ["https://10.0.0.1:8443", "https://controller.example.net", "tls://10.0.0.1:4222", "TLS://[2001:db8::1]:4222"] {
            #expect(TransportCheck.evaluate(url: url, option: "--controller", encryptedAnyway: false, insecure: false) == .encrypted, "\(url)")
        }
        // NATS with a CA file speaks TLS whatever the scheme says.
        #expect(TransportCheck.evaluate(url: "nats://10.0.0.1:4222", option: "NATS", encryptedAnyway: true, insecure: false) == .encrypted)
    }

    @Test func malformedOrUnknownURLsAreRefused() {
        for url in ["10.0.0.1:8080", "ftp://10.0.0.1", "http://", "http://[::1:8080", "ws://127.0.0.1:8080"] {
            guard case .refused = TransportCheck.evaluate(url: url, option: "--controller", encryptedAnyway: false, insecure: true) else {
                Issue.record("\(url) was accepted")
                continue
            }
        }
    }

    @Test func everyNATSServerOfAListIsChecked() {
        let transport = AgentTransport()
        #expect(throws: AgentError.self) {
            try transport.check(controller: "https://controller.example.net", nats: "nats://127.0.0.1:4222, nats://10.0.0.2:4222")
        }
        #expect(throws: Never.self) {
            try transport.check(controller: "https://controller.example.net", nats: "nats://127.0.0.1:4222,tls://10.0.0.2:4222")
            try AgentTransport(natsCA: "/ca.pem").check(controller: "https://c.example", nats: "nats://10.0.0.2:4222")
        }
    }

    /// The agent refuses to start towards a plain-HTTP controller on another host, naming the URL and the flag.
    @Test func agentRefusesPlainHTTPToAnotherHostWithoutInsecure() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-agent-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var configuration = AgentConfiguration(controller: "http://10.0.0.1:8080", setupKey: nil, stateFolder: folder, name: "a", probe: nil)
        do {
            _ = try AgentRunner(configuration: configuration, applier: DryRunApplier())
            Issue.record("the agent accepted http://10.0.0.1:8080 without --insecure")
        } catch {
            #expect("\(error)".contains("http://10.0.0.1:8080") && "\(error)".contains("--insecure"), "\(error)")
        }
        configuration.transport.insecure = true
        _ = try AgentRunner(configuration: configuration, applier: DryRunApplier())

        var nats = AgentConfiguration(controller: "https://10.0.0.1", setupKey: nil, stateFolder: folder, name: "a", natsURL: "nats://10.0.0.1:4222", probe: nil)
        #expect(throws: AgentError.self) { try AgentRunner(configuration: nats, applier: DryRunApplier()) }
        nats.transport.natsCA = "/etc/routeplane/nats-ca.pem"
        _ = try AgentRunner(configuration: nats, applier: DryRunApplier())
    }
}
