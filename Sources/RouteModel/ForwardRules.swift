/// What a routing peer lets through to one route's range: traffic from `sources` (mesh addresses) with `protocol`
/// and, for TCP/UDP, destination `ports` or `portRanges` (none = every port). Derived from policies by
/// `forwardRules(of:servedBy:in:)`; carried in the routing peer's view (`ForwardedRoute.rules`).
public struct ForwardRule: Hashable, Comparable, Sendable, Codable {
    public var action: PolicyAction
    public var `protocol`: PolicyProtocol
    /// Sorted, no duplicates, never empty.
    public var sources: [IPAddress]
    /// Sorted, no duplicates.
    public var ports: [Int]
    /// Sorted, no duplicates.
    public var portRanges: [PortRange]

    public init(action: PolicyAction, protocol proto: PolicyProtocol, sources: [IPAddress], ports: [Int] = [], portRanges: [PortRange] = []) {
        self.action = action
        self.protocol = proto
        self.sources = sources
        self.ports = ports
        self.portRanges = portRanges
    }

    /// Canonical order: drop rules first (the agent installs them in this order, so a drop always wins over an
    /// accept for the same traffic), then protocol, ports, ranges and sources.
    public static func < (a: ForwardRule, b: ForwardRule) -> Bool {
        if a.action != b.action { return a.action == .drop }
        if a.protocol != b.protocol { return a.protocol.rawValue < b.protocol.rawValue }
        if a.ports != b.ports { return a.ports.lexicographicallyPrecedes(b.ports) }
        if a.portRanges != b.portRanges { return a.portRanges.lexicographicallyPrecedes(b.portRanges) }
        return a.sources.lexicographicallyPrecedes(b.sources)
    }

    enum CodingKeys: String, CodingKey {
        case action, `protocol`, sources, ports
        case portRanges = "port_ranges"
    }
}

/// NetBird's route firewall rules for one route on one routing peer (`Account.GetPeerRoutesFirewallRules`,
/// `getRouteFirewallRules`, `getRulePeers`, `GetAllRoutePoliciesFromGroups` in management/server/types/account.go):
///
/// - A route without access-control groups is open: nil (NetBird's `getDefaultPermit`, every source, every protocol).
/// - Otherwise the policies with a rule whose destinations contain one of the route's access-control groups apply,
///   whole (every rule of such a policy, as NetBird takes the policy and then walks all its rules); disabled policies
///   and rules are skipped.
/// - Each rule allows (or drops) the members of its source groups that are also in the route's distribution groups,
///   except the routing peer itself, with the rule's protocol and ports. `bidirectional` plays no part (NetBird's route
///   rules are inbound only). A rule left without sources gives nothing.
/// - No applicable rule at all: an empty list, and the routing peer forwards nothing to the range.
///
/// Cost: the members of the applicable rules' source groups (each checked against the distribution groups through
/// its own group set), never the whole tenant.
public func forwardRules(of route: Route, servedBy routingPeer: PeerID, in state: TenantState) -> [ForwardRule]? {
    if route.accessControlGroups.isEmpty { return nil }
    var policyIDs = Set<PolicyID>()
    for g in route.accessControlGroups { policyIDs.formUnion(state.policyIDs(withDestination: g)) }
    let distribution = Set(route.groups)
    var rules = Set<ForwardRule>()
    for id in policyIDs {
        guard let policy = state.policies[id], policy.enabled else { continue }
        for rule in policy.rules where rule.enabled {
            var sources = Set<IPAddress>()
            for peerID in state.members(of: rule.sources) where peerID != routingPeer {
                guard !state.groups(of: peerID).isDisjoint(with: distribution), let peer = state.peer(peerID) else { continue }
                sources.insert(peer.meshIP)
            }
            if sources.isEmpty { continue }
            rules.insert(ForwardRule(action: rule.action, protocol: rule.protocol, sources: sources.sorted(),
                                     ports: rule.ports, portRanges: rule.portRanges))
        }
    }
    return rules.sorted()
}
