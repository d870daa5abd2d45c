import PostgresClient
import EventStore
import Foundation
import ProcessSpawn

/// A fresh database on the PostgreSQL that `ops/services start` runs, migrated, dropped afterwards.
public struct TestDatabase: Sendable {
    public let name: String
    public let url: String
    public let store: EventStore
    /// The server this database lives on.
    public let serverURL: String

    public static var defaultServerURL: String {
        get throws {
            if let url = ProcessInfo.processInfo.environment["ROUTEPLANE_DATABASE_URL"], !url.isEmpty { return url }
            // Not started through ops/test: read the settings ops/services wrote.
            let env = repoRoot.appendingPathComponent(".services/env")
            if let text = try? String(contentsOf: env, encoding: .utf8),
               let line = text.split(separator: "\n").first(where: { $0.contains("ROUTEPLANE_DATABASE_URL=") }) {
                return String(line.split(separator: "=", maxSplits: 1)[1]).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
            }
            throw TestSetupError("no ROUTEPLANE_DATABASE_URL and no .services/env: run `ops/services start` (ops/test does)")
        }
    }

    public static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static var migrationsDirectory: String { repoRoot.appendingPathComponent("migrations").path }

    /// `postgresql://user@host:port/db` with the database name replaced.
    public static func url(_ base: String, database: String) -> String {
        guard let slash = base.range(of: "/", options: .backwards), base[..<slash.lowerBound].hasSuffix("//") == false else {
            return base + "/" + database
        }
        var rest = String(base[slash.upperBound...])
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        rest = database + query
        return String(base[..<slash.upperBound]) + rest
    }

    public static func create(migrate: Bool = true, maxConnections: Int = 8, server: String? = nil) async throws -> TestDatabase {
        let server = try server ?? defaultServerURL
        let name = "rp_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = EventStore(url: url(server, database: "postgres"), maxConnections: 1)
        _ = try await admin.pool.withSession { try $0.query("CREATE DATABASE \(name)") }
        await admin.shutdown()
        let dbURL = url(server, database: name)
        let store = EventStore(url: dbURL, maxConnections: maxConnections)
        if migrate {
            _ = try await Migrator(store: store).migrate(try Migrator.load(directory: migrationsDirectory))
        }
        return TestDatabase(name: name, url: dbURL, store: store, serverURL: server)
    }

    /// Shuts the store down and drops the database.
    public func drop() async {
        await store.shutdown()
        let admin = EventStore(url: Self.url(serverURL, database: "postgres"), maxConnections: 1)
        _ = try? await admin.pool.withSession { try $0.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        await admin.shutdown()
    }

    /// A connection outside the store's pool, for holding transactions open.
    public func rawConnection() async throws -> PostgresConnection {
        try await PostgresConnection.connect(url: url, label: "test-raw")
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

public func event(_ type: String = "TestEvent", _ data: String = #"{"n":1}"#, actor: String = "test") -> NewEvent {
    NewEvent(type: type, data: data, metadata: EventMetadata(actor: actor, requestID: UUID().uuidString))
}

/// Runs `bash ARGS…` from the repo root (used to restart the test PostgreSQL) and returns its output.
/// Uses posix_spawn + waitpid on a Dispatch thread: Foundation's Process can miss the child's exit
/// inside the test runner, and waiting must not block Swift's cooperative threads.
public func runOps(_ arguments: [String], environment: [String: String] = [:]) async throws -> String {
    try await runOpsImpl(arguments, environment: environment)
}

func runOpsImpl(_ arguments: [String], environment: [String: String]) async throws -> String {
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-ops-\(UUID().uuidString).log").path
    defer { try? FileManager.default.removeItem(atPath: log) }
    let root = TestDatabase.repoRoot.path
    // The scripts find the repo from their own path, so give them an absolute one.
    let argv = ["/bin/bash"] + arguments.enumerated().map { $0.offset == 0 && !$0.element.hasPrefix("/") ? root + "/" + $0.element : $0.element }
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            do {
                let pid = try ProcessSpawn.start(argv, environment: environment, stdout: .file(log, append: false))
                continuation.resume(returning: ProcessSpawn.waitBlocking(pid))
            } catch {
                continuation.resume(throwing: TestSetupError("\(error)"))
            }
        }
    }
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    guard status == 0 else { throw TestSetupError("bash \(arguments) failed (status \(status)): \(text)") }
    return text
}

/// A PostgreSQL of its own (a second ops/services instance on another port), for a test that restarts
/// or stops its server without disturbing tests running in parallel on the shared one.
public struct PrivatePostgres: Sendable {
    public let name: String
    public let port: Int
    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/routeplane" }
    var environment: [String: String] { ["ROUTEPLANE_SERVICES_NAME": name, "ROUTEPLANE_PG_PORT": String(port)] }

    public static func start(name: String, port: Int) async throws -> PrivatePostgres {
        let server = PrivatePostgres(name: name, port: port)
        _ = try await runOps(["ops/services", "start", "postgres"], environment: server.environment)
        return server
    }

    public func restart() async throws {
        _ = try await runOps(["ops/services", "restart", "postgres"], environment: environment)
    }

    public func stop() async throws {
        _ = try await runOps(["ops/services", "stop", "postgres"], environment: environment)
    }
}
