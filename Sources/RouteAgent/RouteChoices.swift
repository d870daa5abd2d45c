import RouteModel

/// The user's choice of routes on this peer (`routeplane agent routes select|deselect`), after NetBird's route
/// selector (`client/internal/routeselector`): a value, kept in the agent's state folder (`route-selection.json`), so it
/// survives restarts. Which HA sets it lets the agent install is `RouteChoices.applies` (ExitNodeSelection.swift).
///
/// Semantics (NetBird's `netbird routes select|deselect`, with Routeplane's stricter exit nodes):
/// - By default every route is applied, except **exit nodes** (`0.0.0.0/0`, `::/0`) and routes marked
///   **`skip_auto_apply`**: those are offered (listed) and applied only once selected by network id.
/// - `select IDS` makes IDS the whole selection: every other network id offered now is deselected (NetBird's
///   semantics); `select --append IDS` adds IDS. `select all` clears every choice (back to the defaults above).
/// - `deselect IDS` removes IDS; `deselect all` applies nothing at all until a later `select`.
/// - **At most one exit node**: selecting an exit node replaces the exit node selected before (its `-v6` pair, NetBird's
///   naming, follows it: one toggle for both families).
/// - Ids not offered by the current view are refused ("route 'X' is not available"), as NetBird does.
public struct RouteChoices: Hashable, Sendable, Codable {
    /// Network ids explicitly selected (non-exit routes: `skip_auto_apply` ones need this; others are applied anyway).
    public var selected: Set<String>
    /// Network ids explicitly deselected: never applied while here.
    public var deselected: Set<String>
    /// The one exit node the user chose (its network id), if any.
    public var exitNode: String?
    /// `deselect all`: nothing is applied.
    public var deselectAll: Bool
    /// Counts every change (the CLI waits until the agent reports it applied this generation).
    public var generation: Int64

    public init(selected: Set<String> = [], deselected: Set<String> = [], exitNode: String? = nil, deselectAll: Bool = false,
                generation: Int64 = 0) {
        self.selected = selected
        self.deselected = deselected
        self.exitNode = exitNode
        self.deselectAll = deselectAll
        self.generation = generation
    }

    /// Nothing chosen: NetBird's defaults with exit nodes and `skip_auto_apply` routes waiting to be selected.
    public static let defaults = RouteChoices()

    enum CodingKeys: String, CodingKey {
        case selected, deselected, generation
        case exitNode = "exit_node"
        case deselectAll = "deselect_all"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        selected = try c.decodeIfPresent(Set<String>.self, forKey: .selected) ?? []
        deselected = try c.decodeIfPresent(Set<String>.self, forKey: .deselected) ?? []
        exitNode = try c.decodeIfPresent(String.self, forKey: .exitNode)
        deselectAll = try c.decodeIfPresent(Bool.self, forKey: .deselectAll) ?? false
        generation = try c.decodeIfPresent(Int64.self, forKey: .generation) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(selected.sorted(), forKey: .selected)
        try c.encode(deselected.sorted(), forKey: .deselected)
        try c.encodeIfPresent(exitNode, forKey: .exitNode)
        try c.encode(deselectAll, forKey: .deselectAll)
        try c.encode(generation, forKey: .generation)
    }
}

/// What the user may choose from: one entry per network id of the current view.
public struct OfferedRoute: Hashable, Sendable, Comparable {
    public var networkID: String
    /// An exit node: one of its HA sets leads to `0.0.0.0/0` or `::/0`.
    public var isExitNode: Bool
    /// Some candidate of one of its HA sets is marked `skip_auto_apply`.
    public var skipAutoApply: Bool

    public init(networkID: String, isExitNode: Bool, skipAutoApply: Bool) {
        self.networkID = networkID
        self.isExitNode = isExitNode
        self.skipAutoApply = skipAutoApply
    }

    public static func < (a: OfferedRoute, b: OfferedRoute) -> Bool { a.networkID < b.networkID }
}

/// Why a selection command was refused (the CLI prints it, exit 1).
public struct RouteChoiceError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension RouteChoices {
    /// `select IDS` (`append`: keep the current selection) against the network ids offered now. `["all"]` clears every
    /// choice. Exit nodes: at most one; naming two exit nodes at once is refused, naming one replaces the previous one.
    public func selecting(_ ids: [String], append: Bool, offered: [OfferedRoute]) throws(RouteChoiceError) -> RouteChoices {
        var next = self
        next.generation += 1
        if ids == ["all"] {
            return RouteChoices(generation: next.generation)
        }
        let byID = Self.index(offered)
        try Self.checkAvailable(ids, byID)
        let exits = Set(ids.filter { byID[$0]!.isExitNode })
        if exits.count > 1 {
            throw RouteChoiceError("at most one exit node can be selected; got \(exits.sorted().joined(separator: ", "))")
        }
        if !append || next.deselectAll {
            // NetBird: the listed ids become the whole selection; everything else offered now is deselected.
            next.selected = []
            next.deselected = Set(offered.map(\.networkID))
            next.exitNode = nil
            next.deselectAll = false
        }
        for id in ids {
            next.deselected.remove(id)
            if byID[id]!.isExitNode {
                if let previous = next.exitNode, previous != id { next.deselected.insert(previous) }
                next.exitNode = id
            } else {
                next.selected.insert(id)
            }
        }
        return next
    }

    /// `deselect IDS`; `["all"]` deselects everything (nothing applied until a `select`).
    public func deselecting(_ ids: [String], offered: [OfferedRoute]) throws(RouteChoiceError) -> RouteChoices {
        var next = self
        next.generation += 1
        if ids == ["all"] {
            return RouteChoices(deselectAll: true, generation: next.generation)
        }
        try Self.checkAvailable(ids, Self.index(offered))
        for id in ids {
            next.selected.remove(id)
            next.deselected.insert(id)
            if next.exitNode == id { next.exitNode = nil }
        }
        return next
    }

    static func index(_ offered: [OfferedRoute]) -> [String: OfferedRoute] {
        Dictionary(offered.map { ($0.networkID, $0) }, uniquingKeysWith: { a, b in
            OfferedRoute(networkID: a.networkID, isExitNode: a.isExitNode || b.isExitNode, skipAutoApply: a.skipAutoApply || b.skipAutoApply)
        })
    }

    static func checkAvailable(_ ids: [String], _ byID: [String: OfferedRoute]) throws(RouteChoiceError) {
        if ids.isEmpty { throw RouteChoiceError("name at least one network id, or all") }
        if ids.contains("all") { throw RouteChoiceError("\"all\" stands alone") }
        let missing = ids.filter { byID[$0] == nil }
        if !missing.isEmpty {
            throw RouteChoiceError(missing.map { "route '\($0)' is not available" }.joined(separator: "; "))
        }
    }
}
