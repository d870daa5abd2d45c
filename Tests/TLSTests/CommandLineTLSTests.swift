import AsyncHTTPClient
import Foundation
import NIOSSL
import ProcessSpawn
import TestSupport
import Testing

/// The `routeplane` executable of this build (next to the test bundle): its TLS start errors, its log lines, and the
/// agent's refusal of clear text, as a user sees them.
@Suite(.timeLimit(.minutes(4))) struct CommandLineTLSTests {
    static func routeplane() throws -> String {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let path = URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("routeplane").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestSetupError("no routeplane executable at \(path): build the products (swift build --build-tests)")
        }
        return path
    }

    /// A running or finished `routeplane` child: its output goes to a file.
    struct Child {
        let pid: pid_t
        let output: String
        var text: String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }

        /// Without the shared NATS of the test environment (the controller then runs without NATS).
        static func start(_ arguments: [String]) throws -> Child {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-cli-\(UUID().uuidString.prefix(8)).log").path
            let pid = try ProcessSpawn.start(["/usr/bin/env", "-u", "ROUTEPLANE_NATS_URL", "-u", "ROUTEPLANE_NATS_KEYS", "-u", "ROUTEPLANE_TLS_CERT",
                                              "-u", "ROUTEPLANE_TLS_KEY", try routeplane()] + arguments,
                                             stdout: .file(output, append: false))
            return Child(pid: pid, output: output)
        }

        /// Waits for the exit (killing the child after `timeout`); the exit code.
        func exitCode(timeout: Duration = .seconds(30)) async -> Int32 {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let status = ProcessSpawn.exited(pid) { return (status >> 8) & 0xff }
                try? await Task.sleep(for: .milliseconds(20))
            }
            kill(pid, SIGKILL)
            return 255
        }

        func stop() async -> Int32 {
            kill(pid, SIGTERM)
            return await exitCode(timeout: .seconds(15))
        }

        func remove() { try? FileManager.default.removeItem(atPath: output) }
    }

    /// A port nothing listens on now (the kernel's pick, released at once).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func expectCleanError(_ text: String, mentioning parts: [String]) {
        for part in parts { #expect(text.contains(part), "missing \(part) in: \(text)") }
        for trace in ["Fatal error", "Stack dump", "stack trace", "Backtrace"] { #expect(!text.contains(trace), "\(text)") }
    }

    @Test func serveRefusesMissingOrMismatchedFilesAtStart() async throws {
        let ca = try await TestCA.make()
        defer { ca.remove() }
        let issued = try await ca.issue()
        let stranger = try await ca.issue(name: "stranger")
        let cases: [([String], [String])] = [
            (["--tls-cert", ca.directory + "/absent.pem", "--tls-key", issued.key], ["--tls-cert", "absent.pem", "no such file"]),
            (["--tls-cert", issued.certificate], ["--tls-cert needs --tls-key"]),
            (["--tls-cert", issued.certificate, "--tls-key", stranger.key], ["is not the private key of the certificate"]),
        ]
        for (arguments, expected) in cases {
            let child = try Child.start(["serve", "--database-url", "postgresql://nobody@127.0.0.1:1/none", "--port", "1"] + arguments)
            defer { child.remove() }
            #expect(await child.exitCode() != 0)
            Self.expectCleanError(child.text, mentioning: expected)
        }
    }

    @Test func serveSaysItServesTLSAndAnswersOverHTTPS() async throws {
        let ca = try await TestCA.make()
        defer { ca.remove() }
        let issued = try await ca.issue()
        let db = try await TestDatabase.create()
        let port = Self.freePort()
        let child = try Child.start(["serve", "--database-url", db.url, "--no-migrate", "--host", "127.0.0.1", "--port", "\(port)",
                                     "--tls-cert", issued.certificate, "--tls-key", issued.key])
        do {
            #expect(await eventually(timeout: .seconds(60)) { child.text.contains("serving the API over TLS") }, "\(child.text)")
            #expect(child.text.contains("https://127.0.0.1:\(port)"))
            // 503 ("starting") until the first health probe ran: wait for 200 over HTTPS (a loaded machine takes seconds).
            var status = 0
            #expect(await eventually(timeout: .seconds(60)) {
                status = (try? await APIServerTLSTests.get("https://127.0.0.1:\(port)/healthz", trusting: ca.certificate)) ?? 0
                return status == 200
            }, "last /healthz over HTTPS: \(status)")
            await #expect(throws: (any Error).self) { try await APIServerTLSTests.get("http://127.0.0.1:\(port)/healthz", trusting: nil) }
        } catch {
            _ = await child.stop(); child.remove(); await db.drop()
            throw error
        }
        _ = await child.stop(); child.remove(); await db.drop()
    }

    @Test func plainHTTPOnANonLoopbackAddressIsWarnedAbout() async throws {
        let db = try await TestDatabase.create()
        for (host, warned) in [("0.0.0.0", true), ("127.0.0.1", false)] {
            let port = Self.freePort()
            let child = try Child.start(["serve", "--database-url", db.url, "--no-migrate", "--host", host, "--port", "\(port)"])
            #expect(await eventually(timeout: .seconds(60)) { child.text.contains("controller listening") }, "\(child.text)")
            #expect(child.text.contains("plain HTTP on a non-loopback address") == warned, "\(child.text)")
            _ = await child.stop()
            child.remove()
        }
        await db.drop()
    }

    @Test func agentRefusesPlainHTTPToAnotherHostUnlessInsecure() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-agent-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let child = try Child.start(["agent", "--controller", "http://10.0.0.1:8080", "--state-dir", folder, "--applier", "dry-run"])
        defer { child.remove() }
        #expect(await child.exitCode() != 0)
        Self.expectCleanError(child.text, mentioning: ["http://10.0.0.1:8080", "--insecure"])
    }
}
