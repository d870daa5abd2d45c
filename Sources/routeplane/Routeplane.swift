import AgentCommandLine
import ArgumentParser
import EventStore
import Foundation
import Logging
import CommandSupport

@main
struct Routeplane: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routeplane",
        abstract: "Routeplane: an event-sourced control plane for mesh-VPN network routes.",
        subcommands: [Migrate.self, Serve.self, Agent.self, NATS.self, Tenants.self, Tokens.self, Peers.self, Demo.self, Events.self, ProjectionsCommand.self, History.self]
    )
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
