import RouteModel

/// Exit nodes: HA sets whose destination is a default route (`0.0.0.0/0`, `::/0`). Pure rules; the agent state machine
/// asks `RouteChoices.applies` for every HA set before it may be installed or compete for its destination.
///
/// - An exit node is **never installed unless the user selected it** (`routeplane agent routes select <id>`), whatever
///   its `skip_auto_apply` flag says. (NetBird auto-applies an exit node without `skip_auto_apply`; Routeplane does not,
///   so a route created by an administrator can never take over a host's default traffic by itself.)
/// - **At most one** exit node is active: `RouteChoices.exitNode` holds one network id. Its IPv6 pair — the same network
///   id with `::/0`, or NetBird's `<id>-v6` — follows it.
/// - An active IPv4 exit node without an IPv6 default route of its own makes the agent install `unreachable ::/0`
///   (NetBird's v6 blackhole), so IPv6 traffic cannot leave beside the exit node.
public enum ExitNodes {
    /// NetBird's suffix of the synthesized IPv6 pair of an exit node (`route.V6ExitSuffix`).
    public static let v6PairSuffix = "-v6"

    public static func isExitNode(_ destination: RouteDestination) -> Bool {
        if case .network(let p) = destination { return p.length == 0 }
        return false
    }

    /// The IPv6 default route, as installed `unreachable` beside an IPv4 exit node without a pair.
    public static let v6Default = Prefix(IPAddress(v6High: 0, low: 0), length: 0)
}

extension RouteChoices {
    /// Whether the HA set `key` (with these candidates) may be installed:
    /// - `deselect all`: nothing;
    /// - an exit node: only the selected one (or its `-v6` pair), never by default;
    /// - an explicitly deselected network id: no;
    /// - a set with a `skip_auto_apply` candidate: only when selected;
    /// - anything else: yes (the default).
    public func applies(_ key: HAKey, candidates: [RouteCandidate]) -> Bool {
        if deselectAll { return false }
        if ExitNodes.isExitNode(key.destination) {
            guard let exitNode else { return false }
            return key.networkID == exitNode || key.networkID == exitNode + ExitNodes.v6PairSuffix
        }
        if deselected.contains(key.networkID) { return false }
        if candidates.contains(where: \.skipAutoApply) { return selected.contains(key.networkID) }
        return true
    }

    /// Whether the user's choice of `networkID` is "selected" as `routes list` shows it.
    public func isSelected(_ offered: OfferedRoute) -> Bool {
        if deselectAll { return false }
        if offered.isExitNode {
            guard let exitNode else { return false }
            return offered.networkID == exitNode || offered.networkID == exitNode + ExitNodes.v6PairSuffix
        }
        if deselected.contains(offered.networkID) { return false }
        return !offered.skipAutoApply || selected.contains(offered.networkID)
    }

    /// What the user may choose from in these HA sets: one entry per network id. Choices of ids that leave the view are
    /// kept (NetBird keeps them too) and apply again if the id comes back.
    public static func offered(in haSets: [HASet]) -> [OfferedRoute] {
        var byID: [String: OfferedRoute] = [:]
        for set in haSets {
            let entry = OfferedRoute(networkID: set.key.networkID, isExitNode: ExitNodes.isExitNode(set.key.destination),
                                     skipAutoApply: set.candidates.contains(where: \.skipAutoApply))
            if let old = byID[entry.networkID] {
                byID[entry.networkID] = OfferedRoute(networkID: entry.networkID, isExitNode: old.isExitNode || entry.isExitNode,
                                                     skipAutoApply: old.skipAutoApply || entry.skipAutoApply)
            } else {
                byID[entry.networkID] = entry
            }
        }
        return byID.values.sorted()
    }
}
