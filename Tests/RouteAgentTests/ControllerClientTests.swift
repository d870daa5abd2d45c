import Foundation
import Glibc
@testable import RouteAgent
import Synchronization
import Testing

/// The agent's HTTP calls against a loopback listener that answers as scripted: what goes out, and the errors the
/// agent classifies (a refusal names the status, a controller that is down or silent fails within the call's bound).
@Suite(.timeLimit(.minutes(10))) struct ControllerClientTests {
    /// A listener on 127.0.0.1 that reads one request per connection, records it, and hands the connection to `answer`.
    final class Listener: Sendable {
        let port: Int
        private let fd: Int32
        private let recorder = Recorder()

        final class Recorder: Sendable {
            let requests = Mutex<[String]>([])
        }

        init(answer: @escaping @Sendable (Int32) -> Void) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            _ = Glibc.listen(fd, 8)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            self.fd = fd
            port = Int(UInt16(bigEndian: address.sin_port))
            let recorder = self.recorder
            // The accept thread closes the listening descriptor itself, after its last accept: were `deinit` to close it,
            // a thread not yet in accept() could accept on the next listener given the same descriptor number, answer
            // that listener's client with this one's script, and fail another test (seen under load).
            Thread {
                defer { close(fd) }
                while true {
                    let c = accept(fd, nil, nil)
                    if c < 0 { return }
                    Thread {
                        recorder.requests.withLock { $0.append(Self.readRequest(c)) }
                        answer(c)
                        close(c)
                    }.start()
                }
            }.start()
        }

        /// Wakes the accept thread (accept fails on a shut-down socket), which then closes the descriptor.
        deinit { shutdown(fd, Int32(SHUT_RDWR)) }

        var received: [String] { recorder.requests.withLock { $0 } }

        /// The head and, by its Content-Length, the body.
        static func readRequest(_ c: Int32) -> String {
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let text = String(decoding: bytes, as: UTF8.self)
                if let end = text.range(of: "\r\n\r\n") {
                    let length = text[..<end.lowerBound].split(separator: "\r\n")
                        .first { $0.lowercased().hasPrefix("content-length:") }
                        .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                    if text.utf8.count - text.utf8.distance(from: text.startIndex, to: end.upperBound) >= length { return text }
                }
                let k = recv(c, &buffer, buffer.count, 0)
                if k <= 0 { return text }
                bytes += buffer[0..<k]
            }
        }

        static func reply(_ c: Int32, status: String, json: String) {
            let text = "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)"
            _ = text.withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        }
    }

    @Test func renewalSendsTheCredentialAndReadsTheJWT() async throws {
        let listener = Listener { c in Listener.reply(c, status: "200 OK", json: #"{"nats_jwt":"eyJ.x.y","nats_jwt_expires_at":1900000000}"#) }
        let client = ControllerClient(baseURL: "http://127.0.0.1:\(listener.port)/")
        let issued = try await client.renewBusCredentials(credential: "cred-1", publicKey: "UABC")
        #expect(issued == ControllerClient.BusCredentials(jwt: "eyJ.x.y", expiresAt: 1_900_000_000))
        let request = try #require(listener.received.first)
        #expect(request.hasPrefix("POST /api/agent/nats-credentials HTTP/1.1\r\n"))
        #expect(request.contains("Authorization: Token cred-1\r\n"))
        #expect(request.contains("Content-Type: application/json\r\n"))
        #expect(request.hasSuffix(#"{"nats_public_key":"UABC"}"#))
    }

    @Test func aRefusalNamesTheStatusAndTheControllersMessage() async throws {
        // AgentRunner.renewBusCredentials backs off for minutes on "answered 401" / "answered 403".
        let listener = Listener { c in Listener.reply(c, status: "403 Forbidden", json: #"{"message":"peer deleted","code":403}"#) }
        let client = ControllerClient(baseURL: "http://127.0.0.1:\(listener.port)")
        await #expect {
            _ = try await client.renewBusCredentials(credential: "cred-1", publicKey: "UABC")
        } throws: { error in
            "\(error)" == "controller: POST /api/agent/nats-credentials answered 403: peer deleted"
        }
        let view = try await { () async throws -> AgentStateMachine.ViewUpdate? in
            let none = Listener { c in Listener.reply(c, status: "404 Not Found", json: #"{"message":"no view yet"}"#) }
            return try await ControllerClient(baseURL: "http://127.0.0.1:\(none.port)").view(credential: "cred-1")
        }()
        #expect(view == nil)
    }

    @Test func aControllerThatIsDownFailsAtOnce() async throws {
        // Bound and closed again: nothing listens on the port.
        let port = Listener { _ in }.port
        // A long bound, so that failing at once and retrying until the bound differ even on a busy machine.
        let client = ControllerClient(baseURL: "http://127.0.0.1:\(port)", timeout: .seconds(120))
        let started = ContinuousClock.now
        await #expect(throws: (any Error).self) { _ = try await client.view(credential: "cred-1") }
        #expect(ContinuousClock.now - started < .seconds(60))
    }

    @Test func aSilentControllerFailsWithinTheBound() async throws {
        // Holds the connection far longer than the bound (and than a busy machine's delays).
        let listener = Listener { _ in Thread.sleep(forTimeInterval: 120) }
        let client = ControllerClient(baseURL: "http://127.0.0.1:\(listener.port)", timeout: .milliseconds(500))
        let started = ContinuousClock.now
        await #expect(throws: (any Error).self) { _ = try await client.view(credential: "cred-1") }
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(400) && took < .seconds(60))
    }
}
