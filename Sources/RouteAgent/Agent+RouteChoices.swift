import RouteModel
import RouteSelection

/// The agent state machine's part for the user's route selection (exit nodes, `skip_auto_apply`) and domain routes.
/// Pure, like the rest of `AgentStateMachine`: inputs are the user's choices (read by the shell from the state folder),
/// resolver outcomes and ticks; outputs are the usual actions (`.apply` of a new desired state, `.resolve`, `.log`).
extension AgentStateMachine {
    /// The user's selection changed (`routeplane agent routes select|deselect`): the OS follows at once.
    public mutating func choicesChanged(_ next: RouteChoices, now: Instant) -> [Action] {
        guard next != choices else { return [] }
        let before = choices
        choices = next
        var lines: [Action] = []
        if before.exitNode != next.exitNode {
            lines.append(.log("exit node \(next.exitNode.map { "selected: \($0)" } ?? "deselected")"
                + (before.exitNode.map { " (was \($0))" } ?? "")))
        }
        lines.append(.log("route selection changed (generation \(next.generation)): selected \(next.selected.sorted()), deselected \(next.deselected.sorted())"
            + (next.deselectAll ? ", deselect all" : "")))
        return lines + settle([])
    }

    /// The resolver's outcome for a domain route's name: its host routes follow the new addresses.
    public mutating func domainResolved(_ name: String, _ outcome: DomainResolutionStateMachine.Outcome, now: Instant) -> [Action] {
        let changed = domains.resolved(name, outcome, now: now)
        var out: [Action] = []
        switch (outcome, domains.names[name]) {
        case (.failed(let error), .failed(let last, let failures, let retryAt, _)?):
            out.append(.log("resolving \(name) failed (\(error)); keeping its \(last?.addresses.count ?? 0) last addresses, "
                + "attempt \(failures), next try in \(retryAt - now)"))
        case (.answered(let addresses, _), .resolved(let a, _)?) where changed:
            out.append(.log("\(name) resolved to \(addresses.map(\.description).joined(separator: ", ")) (TTL \(a.ttl)); routing "
                + "\(a.addresses.count) address(es)"))
        default:
            break
        }
        return changed ? out + settle([]) : out
    }

    /// The names of the view's domain routes (name → keep_route of its HA set): new ones are resolved at once.
    mutating func domainNamesChanged(_ haSets: [HASet], now: Instant) -> [Action] {
        var wanted: [String: Bool] = [:]
        for set in haSets {
            guard case .domains(let names) = set.key.destination else { continue }
            let keep = set.candidates.contains(where: \.keepRoute)
            for name in names { wanted[name] = (wanted[name] ?? false) || keep }
        }
        let unsupportedBefore = Set(domains.names.filter { $0.value == .unsupported }.keys)
        let resolve = domains.namesChanged(wanted, now: now)
        var out: [Action] = resolve.isEmpty ? [] : [.resolve(Self.names(resolve))]
        for (name, state) in domains.names.sorted(by: { $0.key < $1.key }) where state == .unsupported && !unsupportedBefore.contains(name) {
            out.append(.log("domain route name \(name) is a wildcard: the agent cannot resolve it, no route is installed for it"))
        }
        return out
    }

    /// Expired answers and due retries.
    mutating func domainTick(now: Instant) -> [Action] {
        let due = domains.tick(now: now)
        return due.isEmpty ? [] : [.resolve(Self.names(due))]
    }

    static func names(_ actions: [DomainResolutionStateMachine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .resolve(let name): name
            }
        }
    }

    /// One host route per resolved address of each installed domain HA set, through its chosen routing peer (addresses of
    /// the next hop's family; a destination already routed — a range's exact prefix or another set's address — stays
    /// with the first).
    func addDomainRoutes(to routes: inout [Prefix: ClientRoute]) {
        for key in selection.keys where arbiter.shadowedBy[key] == nil {
            guard case .domains(let names) = key.destination, let chosen = selection.selection(for: key)?.candidate,
                  installs(chosen, for: key) else { continue }
            for name in names {
                for address in domains.addresses(of: name) where address.family == chosen.meshIP.family {
                    let host = Prefix(address, length: address.family.bitWidth)
                    if routes[host] == nil {
                        routes[host] = ClientRoute(destination: host, nextHop: chosen.meshIP, keepRoute: chosen.keepRoute)
                    }
                }
            }
        }
    }

    /// A routing peer of a domain route cannot know which addresses its clients resolved: it forwards (and masquerades, when
    /// set) the mesh's traffic to any address of each mesh family, as NetBird's routing peer does for DNS routes
    /// (`routeToRouterPair`: destination 0.0.0.0/0). Clients only send it the addresses they resolved.
    func domainForwardNetworks(masquerade: Bool) -> [(network: Prefix, masquerade: Bool)] {
        var out: [(network: Prefix, masquerade: Bool)] = []
        if configuration.meshRanges.contains(where: { $0.family == .v4 }) { out.append((Prefix(IPAddress(v4: 0), length: 0), masquerade)) }
        if configuration.meshRanges.contains(where: { $0.family == .v6 }) { out.append((ExitNodes.v6Default, masquerade)) }
        return out
    }

    /// `unreachable ::/0` while an IPv4 exit node is installed without an IPv6 default route beside it (NetBird's v6
    /// blackhole: IPv6 must not leave the host beside the exit node).
    func exitNodeBlackholes(_ routes: [Prefix: ClientRoute]) -> [Prefix] {
        let v4Exit = routes.keys.contains { $0.family == .v4 && $0.length == 0 }
        return v4Exit && routes[ExitNodes.v6Default] == nil ? [ExitNodes.v6Default] : []
    }

    /// What `routeplane agent routes list` shows: every network id of the view, selected or not, installed or not, the
    /// routing peer chosen, and for domain routes the addresses resolved.
    public func routeListing() -> RouteListing {
        let haSets = view?.haSets ?? []
        let byNetworkID = Dictionary(grouping: haSets, by: \.key.networkID)
        var entries: [RouteListing.Entry] = []
        for offered in RouteChoices.offered(in: haSets) {
            var destinations: [RouteListing.Destination] = []
            for set in byNetworkID[offered.networkID] ?? [] {
                let key = set.key
                let chosen = selection.selection(for: key)
                var d = RouteListing.Destination(destination: key.destination.description)
                d.chosenPeer = chosen?.candidate.peerID.rawValue
                d.chosenMeshIP = chosen?.candidate.meshIP.description
                d.shadowedBy = arbiter.shadowedBy[key]?.networkID
                d.installed = chosen.map { installs($0.candidate, for: key) } == true && d.shadowedBy == nil
                if case .domains(let names) = key.destination {
                    d.domains = names.map { name in
                        var r = RouteListing.Resolution(name: name, addresses: domains.addresses(of: name).map(\.description))
                        switch domains.names[name] {
                        case .resolved?: r.state = "resolved"
                        case .resolving?: r.state = "resolving"
                        case .failed(_, let failures, _, let error)?: r.state = "failed"; r.error = "\(error) (\(failures) in a row)"
                        case .unsupported?: r.state = "unsupported (wildcard)"
                        case nil: r.state = "unknown"
                        }
                        return r
                    }
                }
                destinations.append(d)
            }
            entries.append(RouteListing.Entry(networkID: offered.networkID, exitNode: offered.isExitNode, skipAutoApply: offered.skipAutoApply,
                                              selected: choices.isSelected(offered), destinations: destinations))
        }
        return RouteListing(appliedVersion: appliedVersion, choicesGeneration: choices.generation, exitNode: choices.exitNode,
                            deselectAll: choices.deselectAll, routes: entries,
                            unreachable: desired.unreachable.map(\.description))
    }
}

/// The agent's routes as the user sees them (`routes.json` in the state folder, read by `routeplane agent routes list`).
public struct RouteListing: Hashable, Sendable, Codable {
    public struct Resolution: Hashable, Sendable, Codable {
        public var name: String
        public var addresses: [String]
        public var state: String = "unknown"
        public var error: String?
    }

    public struct Destination: Hashable, Sendable, Codable {
        /// The range, or the domain list.
        public var destination: String
        public var chosenPeer: String?
        public var chosenMeshIP: String?
        /// Another network id's HA set with the same destination is installed instead.
        public var shadowedBy: String?
        public var installed = false
        public var domains: [Resolution]?

        enum CodingKeys: String, CodingKey {
            case destination, installed, domains
            case chosenPeer = "routing_peer"
            case chosenMeshIP = "routing_peer_mesh_ip"
            case shadowedBy = "shadowed_by"
        }
    }

    public struct Entry: Hashable, Sendable, Codable {
        public var networkID: String
        public var exitNode: Bool
        public var skipAutoApply: Bool
        public var selected: Bool
        public var destinations: [Destination]

        enum CodingKeys: String, CodingKey {
            case selected, destinations
            case networkID = "network_id"
            case exitNode = "exit_node"
            case skipAutoApply = "skip_auto_apply"
        }
    }

    public var appliedVersion: Int64
    /// The generation of the user's choices the agent applied (the CLI waits for its own).
    public var choicesGeneration: Int64
    public var exitNode: String?
    public var deselectAll: Bool
    public var routes: [Entry]
    /// Default routes installed `unreachable` (the IPv6 blackhole beside an IPv4 exit node).
    public var unreachable: [String]

    enum CodingKeys: String, CodingKey {
        case routes, unreachable
        case appliedVersion = "applied_view_version"
        case choicesGeneration = "choices_generation"
        case exitNode = "exit_node"
        case deselectAll = "deselect_all"
    }

    /// The entries the user may choose from, as `RouteChoices` checks names against.
    public var offered: [OfferedRoute] {
        routes.map { OfferedRoute(networkID: $0.networkID, isExitNode: $0.exitNode, skipAutoApply: $0.skipAutoApply) }
    }
}
