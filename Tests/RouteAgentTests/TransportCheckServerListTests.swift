import RouteAgent
import Testing

/// A NATS server list (a cluster) is as safe as its weakest server: each is checked.
@Suite struct TransportCheckServerListTests {
    func check(_ url: String, insecure: Bool = false) -> TransportCheck {
        TransportCheck.evaluate(url: url, option: "--nats-url", encryptedAnyway: false, insecure: insecure)
    }

    @Test func everyServerOfAListIsChecked() {
        #expect(check("nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://localhost:4224") == .loopback)
        #expect(check("tls://nats1.example.com:4222,tls://nats2.example.com:4222") == .encrypted)
        // One clear-text server elsewhere than loopback, behind a loopback first one: refused (was judged by the first).
        guard case .refused(let message) = check("nats://127.0.0.1:4222,nats://nats2.example.com:4222") else {
            Issue.record("a clear-text remote server in the list was not refused")
            return
        }
        #expect(message.contains("nats2.example.com"))
        #expect(check("nats://127.0.0.1:4222,nats://nats2.example.com:4222", insecure: true) == .insecureAllowed)
        #expect(check("tls://nats1.example.com:4222,nats://127.0.0.1:4222") == .loopback)
        guard case .refused = check("nats://127.0.0.1:4222,") else {
            Issue.record("an empty server in the list was accepted")
            return
        }
    }
}
