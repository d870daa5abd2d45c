import Foundation
import Logging
import PostgresClient

/// Applies `migrations/NNNN_name.sql` in order. Each file runs in its own transaction and is recorded
/// with its checksum in `schema_migrations`; an advisory lock makes concurrent runs (two controllers
/// starting together) take turns; a file that changed after it was applied is refused.
public struct Migrator: Sendable {
    public struct Migration: Sendable, Equatable {
        public var version: Int
        public var name: String
        public var sql: String
    }

    public enum Outcome: Sendable, Equatable {
        case applied(version: Int, name: String)
        case alreadyApplied(version: Int, name: String)
    }

    public enum MigrationError: Error, CustomStringConvertible, Equatable {
        case badFileName(String)
        case duplicateVersion(Int)
        case changedAfterApply(version: Int, name: String)
        case noMigrationsFound(String)

        public var description: String {
            switch self {
            case let .badFileName(name): "migration file \(name) must be named NNNN_description.sql"
            case let .duplicateVersion(v): "two migration files have version \(v)"
            case let .changedAfterApply(v, name):
                "migration \(v) (\(name)) was changed after it was applied; add a new migration instead of editing an applied one"
            case let .noMigrationsFound(dir): "no migrations found in \(dir)"
            }
        }
    }

    let store: EventStore

    public init(store: EventStore) { self.store = store }

    /// Reads `NNNN_name.sql` files from a folder, sorted by version.
    public static func load(directory: String) throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
        var seen = Set<Int>()
        let migrations = try files.map { file -> Migration in
            guard let underscore = file.firstIndex(of: "_"), let version = Int(file[..<underscore]) else {
                throw MigrationError.badFileName(file)
            }
            guard seen.insert(version).inserted else { throw MigrationError.duplicateVersion(version) }
            let sql = try String(contentsOfFile: (directory as NSString).appendingPathComponent(file), encoding: .utf8)
            return Migration(version: version, name: file, sql: sql)
        }
        guard !migrations.isEmpty else { throw MigrationError.noMigrationsFound(directory) }
        return migrations.sorted { $0.version < $1.version }
    }

    /// Finds the migrations folder: $ROUTEPLANE_MIGRATIONS, ./migrations, or next to the executable's checkout.
    public static func defaultDirectory() -> String {
        if let env = ProcessInfo.processInfo.environment["ROUTEPLANE_MIGRATIONS"] { return env }
        let fm = FileManager.default
        if fm.fileExists(atPath: "migrations") { return "migrations" }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = url.appendingPathComponent("migrations").path
            if fm.fileExists(atPath: candidate) { return candidate }
            url.deleteLastPathComponent()
        }
        return "migrations"
    }

    public func migrate(_ migrations: [Migration]) async throws -> [Outcome] {
        let logger = store.logger
        return try await store.pool.withSession { session in
            // Session-level advisory lock: a second migrator waits here until the first is done.
            try session.query("SELECT pg_advisory_lock(hashtextextended('routeplane.migrate', 0))")
            defer { _ = try? session.query("SELECT pg_advisory_unlock(hashtextextended('routeplane.migrate', 0))") }
            try session.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            var outcomes: [Outcome] = []
            for migration in migrations {
                let checksum = try session.query("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') AS checksum", [migration.sql])[0].string("checksum")!
                let existing = try session.query("SELECT checksum FROM schema_migrations WHERE version = $1", [String(migration.version)])
                if let stored = existing.first?.string("checksum") {
                    guard stored == checksum else { throw MigrationError.changedAfterApply(version: migration.version, name: migration.name) }
                    outcomes.append(.alreadyApplied(version: migration.version, name: migration.name))
                    continue
                }
                try session.query("BEGIN")
                do {
                    try session.script(migration.sql)
                    try session.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                      [String(migration.version), migration.name, checksum])
                    try session.query("COMMIT")
                } catch {
                    _ = try? session.query("ROLLBACK")
                    throw error
                }
                logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                outcomes.append(.applied(version: migration.version, name: migration.name))
            }
            return outcomes
        }
    }
}
