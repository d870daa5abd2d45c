import ArgumentParser
import Foundation
import RouteAgent

/// `routeplane agent --state-dir`: a group of its own so that `agent routes …` (a subcommand, decoded after its parent)
/// shares the value the parent parsed.
struct AgentStateDirOption: ParsableArguments {
    @Option(help: "Folder for the identity, the last applied view and the route selection (created 0700, files 0600).") var stateDir: String

    var files: RouteChoiceFiles { RouteChoiceFiles(folder: stateDir) }

    func listing() throws -> RouteListing {
        guard let listing = try files.loadListing() else {
            AgentRoutes.refuse("no route list in \(stateDir) yet: start the agent with this state folder first (it writes routes.json)")
        }
        return listing
    }
}

/// `routeplane agent routes list|select|deselect`: the user's choice of routes on this peer, after NetBird's
/// `netbird routes` (client/cmd/route.go). Talks to the running agent through two files in its state folder
/// (`RouteChoiceFiles`): the selection it writes, the listing the agent writes.
struct AgentRoutes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes",
        abstract: "List the routes this peer is offered; select or deselect them (exit nodes and skip_auto_apply routes wait for a select).",
        subcommands: [List.self, Select.self, Deselect.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The routes offered to this peer: selected or not, installed or not, the routing peer chosen, domains' addresses.")
        @OptionGroup var folder: AgentStateDirOption
        @Flag(help: "Print the agent's listing as JSON.") var json = false

        func run() async throws {
            let listing = try folder.listing()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                print(String(decoding: try encoder.encode(listing), as: UTF8.self))
                return
            }
            print(AgentRoutes.render(listing), terminator: "")
        }
    }

    struct Select: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Select routes by network id, or all. Without --append the ids become the whole selection. At most one exit node.")
        @OptionGroup var folder: AgentStateDirOption
        @Flag(name: [.short, .long], help: "Add to the current selection instead of replacing it.") var append = false
        @Option(help: "Seconds to wait for the running agent to apply the selection.") var wait = 10
        @Argument(help: "Network ids, or all.") var ids: [String]

        func run() async throws {
            let listing = try folder.listing()
            let current = try folder.files.loadChoices() ?? .defaults
            let next: RouteChoices
            do {
                next = try current.selecting(ids, append: append, offered: listing.offered)
            } catch {
                AgentRoutes.refuse("\(error)")
            }
            try await AgentRoutes.save(next, folder: folder, wait: wait, done: "Routes selected successfully.")
        }
    }

    struct Deselect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deselect routes by network id, or all (nothing applied until a select).")
        @OptionGroup var folder: AgentStateDirOption
        @Option(help: "Seconds to wait for the running agent to apply the selection.") var wait = 10
        @Argument(help: "Network ids, or all.") var ids: [String]

        func run() async throws {
            let listing = try folder.listing()
            let current = try folder.files.loadChoices() ?? .defaults
            let next: RouteChoices
            do {
                next = try current.deselecting(ids, offered: listing.offered)
            } catch {
                AgentRoutes.refuse("\(error)")
            }
            try await AgentRoutes.save(next, folder: folder, wait: wait, done: "Routes deselected successfully.")
        }
    }

    /// Writes the selection, then waits until the agent's listing says it applied it (or says plainly that it did not yet).
    static func save(_ choices: RouteChoices, folder: AgentStateDirOption, wait: Int, done: String) async throws {
        try folder.files.saveChoices(choices)
        let deadline = ContinuousClock.now + .seconds(max(0, wait))
        while true {
            if let listing = try? folder.files.loadListing(), listing.choicesGeneration >= choices.generation {
                print(done)
                return
            }
            if ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        print("Saved in \(folder.files.choicesPath); the agent has not applied it within \(wait) s (is it running?). It applies it when it (re)starts.")
    }

    /// A refusal: one line on stderr, exit 1 (no usage text).
    static func refuse(_ message: String) -> Never {
        FileHandle.standardError.write(Data("routeplane agent routes: \(message)\n".utf8))
        Foundation.exit(1)
    }

    static func render(_ listing: RouteListing) -> String {
        if listing.routes.isEmpty { return "No routes available.\n" }
        var out = "Available routes (view version \(listing.appliedVersion)):\n"
        for entry in listing.routes {
            var kind: [String] = []
            if entry.exitNode { kind.append("exit node") }
            if entry.skipAutoApply { kind.append("skip_auto_apply") }
            out += "\n  - ID: \(entry.networkID)" + (kind.isEmpty ? "" : " (\(kind.joined(separator: ", ")))") + "\n"
            out += "    Status: \(entry.selected ? "Selected" : "Not Selected")\n"
            for d in entry.destinations {
                let via = d.chosenPeer.map { "via \($0) (\(d.chosenMeshIP ?? "?"))" } ?? "no routing peer up yet"
                let state = d.shadowedBy.map { "shadowed by \($0)" } ?? (d.installed ? "installed" : "not installed")
                if let domains = d.domains {
                    out += "    Domains: \(state), \(via)\n"
                    for r in domains {
                        out += "      \(r.name): \(r.addresses.isEmpty ? "no addresses" : r.addresses.joined(separator: ", ")) [\(r.state)]"
                            + (r.error.map { " \($0)" } ?? "") + "\n"
                    }
                } else {
                    out += "    Network: \(d.destination): \(state), \(via)\n"
                }
            }
        }
        if !listing.unreachable.isEmpty {
            out += "\nUnreachable (IPv6 blackholed beside the IPv4 exit node): \(listing.unreachable.joined(separator: ", "))\n"
        }
        return out
    }
}
