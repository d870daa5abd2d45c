import Foundation
import ProcessSpawn
import NATSAuth
import Synchronization

/// A nats-server of the test's own (JetStream, loopback, port in 54300-54399, store in a temp folder), started
/// with posix_spawn (Foundation's Process can hang in this test runner), so a test can stop and restart it
/// without disturbing the shared one of ops/services.
public final class PrivateNATS: Sendable {
    public let port: Int
    public let directory: String
    /// Operator mode (`start(keys:)`): the nats-server.conf written by `NATSKeyDirectory.serverConfig`; nil: open server.
    public let configFile: String?
    /// The deployment keys of an operator-mode server.
    public let keys: NATSKeyDirectory?
    private let pid = Mutex<pid_t?>(nil)
    /// The key folder `start()` made for this server (removed by `destroy`; a caller's `keys` folder is the caller's).
    private let ownKeysFolder = Mutex<String?>(nil)
    public var url: String { "nats://127.0.0.1:\(port)" }
    public var logPath: String { directory + "/nats.log" }

    private static let nextPort = Mutex(54300 + Int(getpid() % 40))

    /// An operator-mode server (as every server Routeplane starts) with a key folder of its own, made by
    /// `NATSKeyDirectory.initialize` in the server's temp folder: `keys`. No connection without credentials is accepted.
    public static func start() async throws -> PrivateNATS {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-nats-keys-\(UUID().uuidString.prefix(8))").path
        do {
            let (keys, _) = try NATSKeyDirectory.initialize(at: folder)
            let server = try await start(keys: keys)
            server.ownKeysFolder.withLock { $0 = folder }
            return server
        } catch {
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
    }

    /// A user of the routeplane account without permission limits, for tests that play the controller, a bench or
    /// an attacker holding the controller's rights: a fresh key pair and its JWT (valid for an hour).
    public func adminUser(name: String = "test-admin") -> (jwt: String, key: NKeyPair) {
        guard let keys else { fatalError("adminUser() needs an operator-mode server") }
        let key = NKeyPair.generate(.user)
        let now = Int64(Date().timeIntervalSince1970)
        return (keys.userJWT(name: name, user: key.publicKey, permissions: nil, issuedAt: now - 5, expires: now + 3_600), key)
    }

    /// An operator-mode server (JWT auth, full resolver) configured by `keys.serverConfig(...)`: its config, JetStream store
    /// and resolver folder live in the server's temp folder. Clients need a user JWT (see `NATSKeyDirectory.userJWT`).
    /// With `tls`, the server accepts TLS connections only (`tls://127.0.0.1:<port>`).
    public static func start(keys: NATSKeyDirectory, tls: NATSServerTLS? = nil) async throws -> PrivateNATS {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-nats-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let configFile = directory + "/nats-server.conf"
        for attempt in 1...5 {
            let port = try freePort()
            let config = keys.serverConfig(host: "127.0.0.1", port: port, httpPort: nil, storeDirectory: directory + "/js",
                                           resolverDirectory: directory + "/jwt", tls: tls)
            try config.write(toFile: configFile, atomically: true, encoding: .utf8)
            let server = PrivateNATS(port: port, directory: directory, configFile: configFile, keys: keys)
            do {
                try await server.start()
                return server
            } catch let error as PortInUse {
                _ = Self.reserved.withLock { $0.remove(port) }
                if attempt == 5 { throw TestSetupError("\(error)") }
            } catch {
                // Not started (cancelled, not ready in time): `start()` stopped it; nothing of it stays.
                _ = Self.reserved.withLock { $0.remove(port) }
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
        }
        throw TestSetupError("unreachable")
    }

    struct PortInUse: Error {}

    private init(port: Int, directory: String, configFile: String? = nil, keys: NATSKeyDirectory? = nil) {
        self.port = port
        self.directory = directory
        self.configFile = configFile
        self.keys = keys
    }

    /// A port in 54300-54399 that nothing listens on now.
    /// Ports of this process's servers until they are destroyed: a server stopped for a restart leaves its port free
    /// for a moment, and another test's new server taking it would receive the first test's reconnecting clients
    /// (with another operator's credentials: refused, and their connection closed for good).
    private static let reserved = Mutex<Set<Int>>([])

    public static func freePort() throws -> Int {
        for _ in 0..<100 {
            let candidate = nextPort.withLock { p in
                defer { p = p >= 54399 ? 54300 : p + 1 }
                return p
            }
            let taken = reserved.withLock { !$0.insert(candidate).inserted }
            if taken { continue }
            if portIsFree(candidate) { return candidate }
            reserved.withLock { _ = $0.remove(candidate) }
        }
        throw TestSetupError("no free port in 54300-54399")
    }

    public static func portIsFree(_ port: Int) -> Bool {
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
    public func start() async throws {
        let debug = ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_DEBUG"] != nil ? ["-D"] : []
        let argv = if let configFile {
            ["/usr/sbin/nats-server", "-c", configFile, "-l", logPath] + debug
        } else {
            ["/usr/sbin/nats-server", "-js", "-a", "127.0.0.1", "-p", String(port), "-sd", directory + "/js", "-l", logPath]
        }
        try? FileManager.default.removeItem(atPath: logPath)
        let child: pid_t
        do { child = try ProcessSpawn.start(argv) } catch { throw TestSetupError("nats-server: \(error)") }
        pid.withLock { $0 = child }
        // A wait for readiness, not a timing claim: generous, as a loaded 2-core machine can take many seconds to start it.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if log.contains("Server is ready") { return }
            if log.contains("address already in use") {
                await stop()
                throw PortInUse()
            }
            do {
                try await Task.sleep(for: .milliseconds(50))
            } catch {
                // Cancelled while waiting (a test's time limit, a cancelled task group): the caller gets no server to
                // destroy, so this one must not outlive the wait.
                await stop()
                throw error
            }
        }
        await stop()
        throw TestSetupError("nats-server on \(port) not ready: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
    }

    /// Starts the stopped server again on the same port (retrying while a client's ephemeral port holds it).
    public func restart() async throws {
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
    public func stop() async {
        guard let child = pid.withLock({ p in defer { p = nil }; return p }) else { return }
        kill(child, SIGTERM)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                for _ in 0..<100 {
                    if ProcessSpawn.exited(child) != nil { continuation.resume(); return }
                    usleep(50_000)
                }
                kill(child, SIGKILL)
                _ = ProcessSpawn.waitBlocking(child)
                continuation.resume()
            }
        }
    }

    /// Runs `body` with a private operator-mode server (its own keys, or `keys`); destroys the server afterwards, also
    /// when `body` throws.
    public static func with<T>(keys: NATSKeyDirectory? = nil, _ body: (PrivateNATS) async throws -> T) async throws -> T {
        let nats = if let keys { try await start(keys: keys) } else { try await start() }
        do {
            let result = try await body(nats)
            await nats.destroy()
            return result
        } catch {
            await nats.destroy()
            throw error
        }
    }

    public func destroy() async {
        await stop()
        _ = Self.reserved.withLock { $0.remove(port) }
        if ProcessInfo.processInfo.environment["ROUTEPLANE_KEEP_NATS_LOGS"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
        if let folder = ownKeysFolder.withLock({ f in defer { f = nil }; return f }) { try? FileManager.default.removeItem(atPath: folder) }
    }
}

/// Runs `body` with a fresh migrated database and a private nats-server; drops both afterwards.
