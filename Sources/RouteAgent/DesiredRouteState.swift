import RouteModel

/// What the operating system should hold for this agent, independent of how it is installed.
///
/// Built by the agent from its view and the routing peers it chose; handed to a `RouteApplier`,
/// which reconciles the OS towards it. A value: two equal states mean the same OS state.
public struct DesiredRouteState: Hashable, Sendable, CustomStringConvertible {
    /// Client side: one route per destination range, through the chosen routing peer's mesh address.
    public var routes: [ClientRoute]
    /// Routing-peer side: forwarding and masquerade; `.off` when this peer routes nothing.
    public var routingPeer: RoutingPeerState
    /// Destinations installed `unreachable` (the `::/0` blackhole beside an IPv4 exit node, ExitNodeSelection.swift).
    public var unreachable: [Prefix]
    /// The WireGuard peers of the view (candidates; on a routing peer, its clients). Only a WireGuard applier uses them:
    /// it gives each its mesh address and the routes whose next hop it is as allowed IPs (`WireGuardPlanner`).
    public var meshPeers: [WireGuardPeer]

    public init(routes: [ClientRoute] = [], routingPeer: RoutingPeerState = .off, unreachable: [Prefix] = [],
                meshPeers: [WireGuardPeer] = []) {
        self.routes = routes
        self.routingPeer = routingPeer
        self.unreachable = unreachable
        self.meshPeers = meshPeers
    }

    /// Nothing installed: the state `cleanup` reconciles towards.
    public static let empty = DesiredRouteState()

    /// Checks what the type cannot: one route per destination, next hop of the destination's family.
    public func validate() throws(DesiredStateError) {
        var seen = Set<Prefix>()
        for r in routes {
            if r.destination.family != r.nextHop.family {
                throw DesiredStateError(reason: "route \(r.destination): next hop \(r.nextHop) is not of the same address family")
            }
            if !seen.insert(r.destination).inserted {
                throw DesiredStateError(reason: "route \(r.destination) appears more than once")
            }
            if let d = r.device, !LinuxNames.isValidInterfaceName(d) {
                throw DesiredStateError(reason: "route \(r.destination): invalid interface name \"\(d)\"")
            }
        }
        for p in unreachable where !seen.insert(p).inserted {
            throw DesiredStateError(reason: "unreachable \(p) is also a route or appears twice")
        }
        for m in routingPeer.masquerade where m.source.family != m.destination.family {
            throw DesiredStateError(reason: "masquerade \(m.source) → \(m.destination) mixes address families")
        }
    }

    public var description: String {
        var lines = routes.sorted().map { "route \($0)" }
        lines += unreachable.sorted().map { "unreachable \($0)" }
        lines += routingPeer.descriptionLines
        lines += meshPeers.sorted().map { "wireguard peer \($0.peerID) \($0.meshIP)" }
        return lines.isEmpty ? "(nothing)" : lines.joined(separator: "\n")
    }
}

/// A route a client installs: traffic for `destination` goes to `nextHop` (the chosen routing peer's
/// mesh address), optionally through `device` (the mesh interface).
public struct ClientRoute: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var destination: Prefix
    public var nextHop: IPAddress
    /// Left in place on a graceful exit / `cleanup(keepRoutes: true)`.
    public var keepRoute: Bool
    public var device: String?

    public init(destination: Prefix, nextHop: IPAddress, keepRoute: Bool = false, device: String? = nil) {
        self.destination = destination
        self.nextHop = nextHop
        self.keepRoute = keepRoute
        self.device = device
    }

    public var family: IPAddress.Family { destination.family }

    public static func < (a: ClientRoute, b: ClientRoute) -> Bool {
        if a.destination != b.destination { return a.destination < b.destination }
        if a.nextHop != b.nextHop { return a.nextHop < b.nextHop }
        if a.keepRoute != b.keepRoute { return !a.keepRoute }
        return (a.device ?? "") < (b.device ?? "")
    }

    public var description: String {
        "\(destination) via \(nextHop)" + (device.map { " dev \($0)" } ?? "") + (keepRoute ? " keep" : "")
    }
}

/// Traffic from `source` (the mesh range) to `destination` (the routed network) leaves with the
/// routing peer's own address.
public struct MasqueradeRule: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var source: Prefix
    public var destination: Prefix

    public init(source: Prefix, destination: Prefix) {
        self.source = source
        self.destination = destination
    }

    public var family: IPAddress.Family { destination.family }

    public static func < (a: MasqueradeRule, b: MasqueradeRule) -> Bool {
        if a.destination != b.destination { return a.destination < b.destination }
        return a.source < b.source
    }

    public var description: String { "masquerade \(source) → \(destination)" }
}

/// The routing-peer half of the desired state.
public struct RoutingPeerState: Hashable, Sendable {
    /// `net.ipv4.ip_forward` wanted on.
    public var forwardIPv4: Bool
    /// `net.ipv6.conf.all.forwarding` wanted on.
    public var forwardIPv6: Bool
    /// NAT rules; empty means no NAT table at all.
    public var masquerade: [MasqueradeRule]
    /// Guarded ranges (routes with access-control groups); empty means no filter table at all.
    public var filters: [ForwardFilter]
    /// Every range this peer forwards (masqueraded or not), sorted: what a WireGuard applier lets through foreign
    /// forward chains (`ForwardPinholePlanner`).
    public var networks: [Prefix] = []

    public init(forwardIPv4: Bool, forwardIPv6: Bool, masquerade: [MasqueradeRule] = [], filters: [ForwardFilter] = []) {
        self.forwardIPv4 = forwardIPv4
        self.forwardIPv6 = forwardIPv6
        self.masquerade = masquerade
        self.filters = filters
    }

    /// Not a routing peer: no forwarding wanted, no NAT.
    public static let off = RoutingPeerState(forwardIPv4: false, forwardIPv6: false)

    /// From the networks this peer forwards: forwarding is on for each family that has a network;
    /// each masqueraded network gets one rule per mesh range of its family.
    public init(networks: [(network: Prefix, masquerade: Bool)], meshRanges: [Prefix], filters: [ForwardFilter] = []) {
        self.filters = filters
        self.networks = Set(networks.map { $0.network }).sorted()
        forwardIPv4 = networks.contains { $0.network.isV4 }
        forwardIPv6 = networks.contains { $0.network.isV6 }
        var rules = Set<MasqueradeRule>()
        for n in networks where n.masquerade {
            for mesh in meshRanges where mesh.family == n.network.family {
                rules.insert(MasqueradeRule(source: mesh, destination: n.network))
            }
        }
        masquerade = rules.sorted()
    }

    public func forwarding(_ family: IPAddress.Family) -> Bool {
        family == .v4 ? forwardIPv4 : forwardIPv6
    }

    var descriptionLines: [String] {
        var lines: [String] = []
        if forwardIPv4 { lines.append("forward ipv4") }
        if forwardIPv6 { lines.append("forward ipv6") }
        lines += Set(masquerade).sorted().map(\.description)
        lines += filters.sorted().map(\.description)
        return lines
    }
}

/// A desired state that cannot be applied as given.
public struct DesiredStateError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { "invalid desired route state: \(reason)" }
}

enum LinuxNames {
    /// Linux interface names: 1..15 bytes, no `/`, no whitespace, not `.` or `..` (and nothing that
    /// could be read as another argument by `ip`).
    static func isValidInterfaceName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...15).contains(bytes.count), name != ".", name != ".." else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
        } && bytes[0] != UInt8(ascii: "-")
    }
}
