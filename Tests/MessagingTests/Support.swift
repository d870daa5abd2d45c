import EventStore
import Foundation
import Messaging
import Synchronization
import Testing
import TestSupport

/// A nats-server of the test's own (JetStream, loopback, port in 54300-54399, store in a temp folder), started
/// with posix_spawn (Foundation's Process can hang in this test runner), so a test can stop and restart it
/// without disturbing the shared one of ops/services.
final class PrivateNATS: Sendable {
    let port: Int
    let directory: String
    private let pid = Mutex<pid_t?>(nil)
    var url: String { "nats://127.0.0.1:\(port)" }
    var logPath: String { directory + "/nats.log" }

    private static let nextPort = Mutex(54300 + Int(getpid() % 40))

    static func start() async throws -> PrivateNATS {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-nats-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A client's ephemeral port can take a port between the check and the server's bind: try another one.
        for attempt in 1...5 {
            let server = PrivateNATS(port: try freePort(), directory: directory)
            do {
                try await server.start()
                return server
            } catch let error as PortInUse {
                if attempt == 5 { throw TestSetupError("\(error)") }
            }
        }
        throw TestSetupError("unreachable")
    }

    struct PortInUse: Error {}

    private init(port: Int, directory: String) {
        self.port = port
        self.directory = directory
    }

    /// A port in 54300-54399 that nothing listens on now.
    static func freePort() throws -> Int {
        for _ in 0..<100 {
            let candidate = nextPort.withLock { p in
                defer { p = p >= 54399 ? 54300 : p + 1 }
                return p
            }
            if portIsFree(candidate) { return candidate }
        }
        throw TestSetupError("no free port in 54300-54399")
    }

    static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Starts the server (same port and store as before) and waits until it says it is ready.
    func start() async throws {
        let argv = ["/usr/sbin/nats-server", "-js", "-a", "127.0.0.1", "-p", String(port), "-sd", directory + "/js", "-l", logPath]
        try? FileManager.default.removeItem(atPath: logPath)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, argv[0], &actions, &attributes, cArgs, environ)
        guard rc == 0 else { throw TestSetupError("posix_spawn nats-server failed: \(rc)") }
        pid.withLock { $0 = child }
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if log.contains("Server is ready") { return }
            if log.contains("address already in use") {
                await stop()
                throw PortInUse()
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        await stop()
        throw TestSetupError("nats-server on \(port) not ready: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
    }

    /// Starts the stopped server again on the same port (retrying while a client's ephemeral port holds it).
    func restart() async throws {
        for attempt in 1...20 {
            do {
                try await start()
                return
            } catch is PortInUse {
                if attempt == 20 { throw TestSetupError("port \(port) stays in use") }
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and reaps it.
    func stop() async {
        guard let child = pid.withLock({ p in defer { p = nil }; return p }) else { return }
        kill(child, SIGTERM)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                var status: Int32 = 0
                for _ in 0..<100 {
                    if waitpid(child, &status, WNOHANG) == child { continuation.resume(); return }
                    usleep(50_000)
                }
                kill(child, SIGKILL)
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                continuation.resume()
            }
        }
    }

    func destroy() async {
        await stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs `body` with a fresh migrated database and a private nats-server; drops both afterwards.
func withServices(_ body: (TestDatabase, PrivateNATS) async throws -> Void) async throws {
    let db = try await TestDatabase.create()
    let nats: PrivateNATS
    do {
        nats = try await PrivateNATS.start()
    } catch {
        await db.drop()
        throw error
    }
    do {
        try await body(db, nats)
    } catch {
        await nats.destroy()
        await db.drop()
        throw error
    }
    await nats.destroy()
    await db.drop()
}

func connect(_ nats: PrivateNATS, name: String = "test") async throws -> NATSConnection {
    var configuration = NATSConfiguration(url: nats.url, name: name)
    configuration.reconnectWait = .milliseconds(100)
    configuration.reconnectJitter = .milliseconds(50)
    let connection = try await NATSConnection.connect(configuration)
    // failIfUnreachable is false: wait for the first connection.
    _ = try await eventually(timeout: .seconds(10)) { connection.isConnected }
    return connection
}

/// Polls `condition` every 20 ms until it holds; returns false after `timeout`.
@discardableResult
func eventually(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

func viewBody(peer: String, version: Int64) -> String {
    #"{"peer":"\#(peer)","routes":[{"network":"10.\#(version % 250).0.0/16","metric":\#(version)}]}"#
}

/// Inserts one outbox row (as the projection runner would) and NOTIFYs the relay.
func insertOutbox(_ store: EventStore, tenant: String, peer: String, version: Int64, removed: Bool = false) async throws {
    let body = viewBody(peer: peer, version: version)
    _ = try await store.pool.withSession { s in
        try s.query("INSERT INTO outbox (tenant_id, peer_id, version, digest, body, removed) VALUES ($1, $2, $3, $4, $5::json, $6)",
                    [tenant, peer, String(version), SHA256Digest.hex(Array(body.utf8)), body, removed ? "t" : "f"])
        try s.query("SELECT pg_notify('routeplane_outbox', $1)", [tenant])
    }
}

func unsentCount(_ store: EventStore) async throws -> Int {
    let rows = try await store.pool.withSession { try $0.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL") }
    return Int(rows.rows[0][0]!)!
}

/// The version of the stream's last message on the peer's subject (decoded and digest-checked), nil if none.
func lastVersion(_ js: JetStream, tenant: String, peer: String) async throws -> Int64? {
    guard let message = try await js.lastMessage(stream: StreamSpec.views.name, subject: try ViewSubjects.subject(tenant: tenant, peer: peer)) else {
        return nil
    }
    let envelope = try ViewEnvelope.decode(message.payload, expectedTenant: tenant, expectedPeer: peer)
    #expect(message.messageID == envelope.messageID)
    #expect(envelope.view == Array(viewBody(peer: peer, version: envelope.version).utf8))
    return envelope.version
}

final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}
