import ArgumentParser
import EventStore
import Foundation
import Logging
import Synchronization

@main
struct Routeplane: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routeplane",
        abstract: "Routeplane: an event-sourced control plane for mesh-VPN network routes.",
        subcommands: [Migrate.self, Serve.self, Agent.self, NATS.self, Tenants.self, Tokens.self, Peers.self, Demo.self, Events.self, ProjectionsCommand.self, Bench.self, Chaos.self]
    )
}

/// Options every command that talks to PostgreSQL shares.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "libpq URL of PostgreSQL (default: $ROUTEPLANE_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .notice

    func resolvedURL() throws -> String {
        if let databaseURL { return databaseURL }
        if let env = ProcessInfo.processInfo.environment["ROUTEPLANE_DATABASE_URL"], !env.isEmpty { return env }
        throw ValidationError("no database: pass --database-url or set ROUTEPLANE_DATABASE_URL (ops/services start writes it to .services/env)")
    }

    func makeStore(maxConnections: Int = 8) throws -> EventStore {
        bootstrapLogging(level: logLevel)
        return EventStore(url: try resolvedURL(), maxConnections: maxConnections)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

private let loggingBootstrapped = LoggingOnce()

final class LoggingOnce: Sendable {
    private let done = Mutex(false)
    func run(_ body: () -> Void) {
        let first = done.withLock { value in
            defer { value = true }
            return !value
        }
        if first { body() }
    }
}

func bootstrapLogging(level: Logger.Level) {
    loggingBootstrapped.run {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the SQL migrations in order (safe to run twice or concurrently).")

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Folder of NNNN_name.sql files (default: $ROUTEPLANE_MIGRATIONS or ./migrations).")
    var migrations: String?

    func run() async throws {
        let store = try database.makeStore(maxConnections: 1)
        defer { Task { await store.shutdown() } }
        let directory = migrations ?? Migrator.defaultDirectory()
        let outcomes = try await Migrator(store: store).migrate(try Migrator.load(directory: directory))
        for outcome in outcomes {
            switch outcome {
            case let .applied(version, name): print("applied   \(String(format: "%04d", version)) \(name)")
            case let .alreadyApplied(version, name): print("unchanged \(String(format: "%04d", version)) \(name)")
            }
        }
        await store.shutdown()
    }
}
