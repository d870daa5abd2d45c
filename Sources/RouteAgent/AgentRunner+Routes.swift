import Foundation
import Logging
import NATSAuth
import RouteModel
#if canImport(Glibc)
import Glibc
#endif

/// The two files through which `routeplane agent routes list|select|deselect` talks to the running agent, in the
/// agent's state folder (0700), both 0600 and written atomically (temporary file + rename):
/// - `route-selection.json`: the user's `RouteChoices`, written by the CLI only; the agent reads it at start and
///   whenever it changes (checked every second), so the choice survives restarts and can be made while the agent is down.
/// - `routes.json`: the agent's `RouteListing` (what it offers, what is selected and installed, the routing peer chosen,
///   the domains' addresses, and the choices generation it applied), written by the agent only, whenever it changes.
/// One writer per file, so no locking is needed; the CLI waits for `choices_generation` to reach what it wrote.
public struct RouteChoiceFiles: Sendable {
    public let folder: String

    public init(folder: String) { self.folder = folder }

    public var choicesPath: String { folder + "/route-selection.json" }
    public var listingPath: String { folder + "/routes.json" }

    /// nil when the user never chose anything here.
    public func loadChoices() throws -> RouteChoices? {
        guard let data = FileManager.default.contents(atPath: choicesPath) else { return nil }
        do {
            return try JSONDecoder().decode(RouteChoices.self, from: data)
        } catch {
            throw AgentError.stateFolder("\(choicesPath) is not a route selection: \(error)")
        }
    }

    public func saveChoices(_ choices: RouteChoices) throws {
        try write(choices, to: choicesPath)
    }

    /// nil when the agent has not written one yet (it writes it once it runs).
    public func loadListing() throws -> RouteListing? {
        guard let data = FileManager.default.contents(atPath: listingPath) else { return nil }
        do {
            return try JSONDecoder().decode(RouteListing.self, from: data)
        } catch {
            throw AgentError.stateFolder("\(listingPath) is not a route listing: \(error)")
        }
    }

    public func saveListing(_ listing: RouteListing) throws {
        try write(listing, to: listingPath)
    }

    /// Identity of the selection file's current content (inode, size, modification time): a change means read it again.
    public func choicesStamp() -> [Int64]? {
        var st = stat()
        guard stat(choicesPath, &st) == 0 else { return nil }
        return [Int64(st.st_ino), Int64(st.st_size), Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec)]
    }

    private func write<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        do {
            try SecretFile.write(Array(try encoder.encode(value)) + [10], to: path)
        } catch {
            throw AgentError.stateFolder("cannot write \(path): \(error)")
        }
    }
}

/// What the runner remembers about those files and domain resolutions (one stored property of `AgentRunner`).
struct RouteFilesState: Sendable {
    var stamp: [Int64]?
    var lastListing: RouteListing?
    var loggedUnreadable = false
    var listingWriteFailed = false
    let resolver = SystemResolver()
}

extension AgentRunner {
    var routeChoiceFiles: RouteChoiceFiles { RouteChoiceFiles(folder: configuration.stateFolder) }

    /// At start, before the persisted view is applied: the user's choices (none: the defaults).
    func loadRouteChoices() async {
        await perform(readRouteChoicesIfChanged(now: .now))
    }

    /// Every tick: the selection file again if it changed.
    func routeChoicesTick(now: ContinuousClock.Instant) -> [AgentStateMachine.Action] {
        readRouteChoicesIfChanged(now: now)
    }

    private func readRouteChoicesIfChanged(now: ContinuousClock.Instant) -> [AgentStateMachine.Action] {
        let files = routeChoiceFiles
        let stamp = files.choicesStamp()
        guard stamp != routeFiles.stamp else { return [] }
        do {
            let choices = try files.loadChoices() ?? .defaults
            routeFiles.stamp = stamp
            routeFiles.loggedUnreadable = false
            return machine.choicesChanged(choices, now: now)
        } catch {
            // Keep the current choices (and try again at the next change of the file).
            routeFiles.stamp = stamp
            if !routeFiles.loggedUnreadable {
                logger.error("route selection file unreadable; keeping the current selection until it is written again",
                             metadata: ["file": "\(files.choicesPath)", "error": "\(error)"])
                routeFiles.loggedUnreadable = true
            }
            return []
        }
    }

    /// After every event: `routes.json` again when what it shows changed.
    func writeRouteListingIfChanged() {
        let listing = machine.routeListing()
        guard listing != routeFiles.lastListing else { return }
        do {
            try routeChoiceFiles.saveListing(listing)
            routeFiles.lastListing = listing
            routeFiles.listingWriteFailed = false
        } catch {
            if !routeFiles.listingWriteFailed {
                logger.error("cannot write the route listing; `routeplane agent routes` will show an old one",
                             metadata: ["error": "\(error)"])
                routeFiles.listingWriteFailed = true
            }
        }
    }

    /// Resolves each name with the system resolver, off the actor; each outcome comes back as an input.
    func resolve(_ names: [String]) {
        let resolver = routeFiles.resolver
        for name in names {
            Task { [weak self] in
                let outcome = await resolver.resolve(name)
                self?.enqueue(.domainResolved(name, outcome))
            }
        }
    }
}
