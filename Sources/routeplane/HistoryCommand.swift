import ArgumentParser

/// `routeplane history`: operators' questions of a tenant's history, straight from the database (no API token).
struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "A tenant's history, straight from the database.",
        subcommands: [HistoryExport.self]
    )
}
