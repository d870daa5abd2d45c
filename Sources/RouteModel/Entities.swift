/// What a route leads to: a network range, or a list of domains (NetBird "DNS routes").
/// A route has exactly one of the two.
public enum RouteDestination: Hashable, Comparable, Sendable, CustomStringConvertible {
    case network(Prefix)
    /// Canonical domain names (lowercase A-labels, no trailing dot), sorted, no duplicates.
    case domains([String])

    public var network: Prefix? {
        if case .network(let p) = self { return p }
        return nil
    }

    public var domains: [String]? {
        if case .domains(let d) = self { return d }
        return nil
    }

    /// NetBird's `network_type`: "IPv4", "IPv6" or "Domain".
    public var networkType: String {
        switch self {
        case .network(let p): return p.networkType
        case .domains: return "Domain"
        }
    }

    /// Ranges sort before domain lists; ranges by `Prefix` order, domain lists lexicographically.
    public static func < (a: RouteDestination, b: RouteDestination) -> Bool {
        switch (a, b) {
        case (.network(let x), .network(let y)): return x < y
        case (.network, .domains): return true
        case (.domains, .network): return false
        case (.domains(let x), .domains(let y)): return x.lexicographicallyPrecedes(y)
        }
    }

    /// `10.0.0.0/24` or `example.com,*.example.org` (NetBird's route descriptor in messages).
    public var description: String {
        switch self {
        case .network(let p): return p.description
        case .domains(let d): return d.joined(separator: ",")
        }
    }
}

/// Who forwards a route's traffic: one routing peer, or every member of some groups.
/// A route has exactly one of the two.
public enum RoutingPeers: Hashable, Sendable {
    case peer(PeerID)
    /// Sorted, no duplicates.
    case peerGroups([GroupID])

    public var peer: PeerID? {
        if case .peer(let p) = self { return p }
        return nil
    }

    public var peerGroups: [GroupID]? {
        if case .peerGroups(let g) = self { return g }
        return nil
    }
}

/// A network route, shaped like NetBird's (`route/route.go`, `api.Route`).
/// Group id lists are kept sorted and without duplicates (their order has no meaning).
public struct Route: Hashable, Sendable, Codable {
    public var id: RouteID
    /// NetBird `network_id`: the route's name; with the destination it forms the HA set key.
    public var networkID: String
    public var description: String
    public var destination: RouteDestination
    public var routingPeers: RoutingPeers
    /// 1...9999, lower wins.
    public var metric: Int
    public var masquerade: Bool
    /// Distribution groups: the peers that receive the route.
    public var groups: [GroupID]
    public var enabled: Bool
    public var keepRoute: Bool
    public var accessControlGroups: [GroupID]
    public var skipAutoApply: Bool
    /// The domains as the user wrote them (order and spelling, e.g. Unicode), when that differs from the canonical
    /// list in `destination`; nil otherwise. Answered back by the API; rules, views and uniqueness use `destination`.
    public var writtenDomains: [String]?

    public init(
        id: RouteID, networkID: String, description: String = "", destination: RouteDestination,
        routingPeers: RoutingPeers, metric: Int = 9999, masquerade: Bool = true, groups: [GroupID],
        enabled: Bool = true, keepRoute: Bool = false, accessControlGroups: [GroupID] = [],
        skipAutoApply: Bool = false, writtenDomains: [String]? = nil
    ) {
        self.id = id
        self.networkID = networkID
        self.description = description
        self.destination = destination
        self.routingPeers = routingPeers
        self.metric = metric
        self.masquerade = masquerade
        self.groups = groups
        self.enabled = enabled
        self.keepRoute = keepRoute
        self.accessControlGroups = accessControlGroups
        self.skipAutoApply = skipAutoApply
        self.writtenDomains = writtenDomains
    }

    /// The domains to show the user: as written, else the canonical ones (nil for a network route).
    public var displayDomains: [String]? { destination.domains.map { writtenDomains ?? $0 } }

    /// True when the route has no routing peer at all (`peer_groups: []`, or its single routing peer was deleted).
    public var hasNoRoutingPeer: Bool { routingPeers.peerGroups?.isEmpty == true }

    /// The HA set this route belongs to: same network id and same range (or domain list).
    public var haKey: HAKey { HAKey(networkID: networkID, destination: destination) }

    /// Every group id the route references, in any role.
    public var referencedGroups: Set<GroupID> {
        var s = Set(groups)
        s.formUnion(accessControlGroups)
        if let pg = routingPeers.peerGroups { s.formUnion(pg) }
        return s
    }

    enum CodingKeys: String, CodingKey {
        case id, description, network, domains, peer, metric, masquerade, groups, enabled
        case networkID = "network_id"
        case networkType = "network_type"
        case peerGroups = "peer_groups"
        case keepRoute = "keep_route"
        case accessControlGroups = "access_control_groups"
        case skipAutoApply = "skip_auto_apply"
        case writtenDomains = "written_domains"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(RouteID.self, forKey: .id)
        networkID = try c.decode(String.self, forKey: .networkID)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        if let n = try c.decodeIfPresent(Prefix.self, forKey: .network) {
            destination = .network(n)
        } else if let d = try c.decodeIfPresent([String].self, forKey: .domains) {
            destination = .domains(d)
        } else {
            throw DecodingError.dataCorruptedError(forKey: .network, in: c, debugDescription: "route has neither network nor domains")
        }
        if let p = try c.decodeIfPresent(PeerID.self, forKey: .peer) {
            routingPeers = .peer(p)
        } else if let g = try c.decodeIfPresent([GroupID].self, forKey: .peerGroups) {
            routingPeers = .peerGroups(g)
        } else {
            throw DecodingError.dataCorruptedError(forKey: .peer, in: c, debugDescription: "route has neither peer nor peer_groups")
        }
        metric = try c.decode(Int.self, forKey: .metric)
        masquerade = try c.decode(Bool.self, forKey: .masquerade)
        groups = try c.decode([GroupID].self, forKey: .groups)
        enabled = try c.decode(Bool.self, forKey: .enabled)
        keepRoute = try c.decodeIfPresent(Bool.self, forKey: .keepRoute) ?? false
        accessControlGroups = try c.decodeIfPresent([GroupID].self, forKey: .accessControlGroups) ?? []
        skipAutoApply = try c.decodeIfPresent(Bool.self, forKey: .skipAutoApply) ?? false
        // Absent in routes stored before it existed, and whenever the user wrote the canonical form.
        writtenDomains = try c.decodeIfPresent([String].self, forKey: .writtenDomains)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(networkID, forKey: .networkID)
        try c.encode(description, forKey: .description)
        try c.encode(destination.networkType, forKey: .networkType)
        switch destination {
        case .network(let p): try c.encode(p, forKey: .network)
        case .domains(let d): try c.encode(d, forKey: .domains)
        }
        switch routingPeers {
        case .peer(let p): try c.encode(p, forKey: .peer)
        case .peerGroups(let g): try c.encode(g, forKey: .peerGroups)
        }
        try c.encode(metric, forKey: .metric)
        try c.encode(masquerade, forKey: .masquerade)
        try c.encode(groups, forKey: .groups)
        try c.encode(enabled, forKey: .enabled)
        try c.encode(keepRoute, forKey: .keepRoute)
        try c.encode(accessControlGroups, forKey: .accessControlGroups)
        try c.encode(skipAutoApply, forKey: .skipAutoApply)
        // Written only when set, so routes keep their stored bytes otherwise.
        if let writtenDomains { try c.encode(writtenDomains, forKey: .writtenDomains) }
    }
}

/// The key of an HA set: routes sharing network id and destination are alternatives for the
/// same traffic; a client picks one routing peer among all their candidates.
public struct HAKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var networkID: String
    public var destination: RouteDestination

    public init(networkID: String, destination: RouteDestination) {
        self.networkID = networkID
        self.destination = destination
    }

    public static func < (a: HAKey, b: HAKey) -> Bool {
        if a.networkID != b.networkID { return a.networkID < b.networkID }
        return a.destination < b.destination
    }

    /// NetBird's HA unique id shape: `<network id>-<range or domains>`.
    public var description: String { "\(networkID)-\(destination)" }
}

/// A group of peers (NetBird `Group`). `peers` is sorted, without duplicates.
public struct Group: Hashable, Sendable, Codable {
    public var id: GroupID
    public var name: String
    public var peers: [PeerID]

    public init(id: GroupID, name: String, peers: [PeerID] = []) {
        self.id = id
        self.name = name
        self.peers = peers
    }
}

/// A machine in the mesh (NetBird `Peer`, reduced to what routes need).
public struct Peer: Hashable, Sendable, Codable {
    public var id: PeerID
    public var name: String
    /// Operating system as reported at enrollment, lowercased: "linux", "windows", "darwin", ….
    public var os: String
    /// The peer's address inside the mesh; routes are installed via this address.
    public var meshIP: IPAddress
    /// Marked by an operator for maintenance: as a routing peer it is chosen by clients only when no
    /// other candidate of the HA set is up (`PeerDrainingChanged`).
    public var draining: Bool
    /// The agent's WireGuard public key and underlay endpoints, as reported at enrollment; nil for peers enrolled
    /// without (before WireGuard, or by an agent that runs none).
    public var wireguard: WireGuardIdentity?

    public init(id: PeerID, name: String, os: String, meshIP: IPAddress, draining: Bool = false, wireguard: WireGuardIdentity? = nil) {
        self.id = id
        self.name = name
        self.os = os
        self.meshIP = meshIP
        self.draining = draining
        self.wireguard = wireguard
    }

    /// Only Linux peers can be routing peers (forwarding and masquerade need Linux).
    public var canRoute: Bool { os == "linux" }

    enum CodingKeys: String, CodingKey {
        case id, name, os, draining, wireguard
        case meshIP = "ip"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(PeerID.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
        os = try c.decode(String.self, forKey: .os)
        meshIP = try c.decode(IPAddress.self, forKey: .meshIP)
        // Absent in events written before drain mode existed (and whenever it is off).
        draining = try c.decodeIfPresent(Bool.self, forKey: .draining) ?? false
        // Absent in events written before WireGuard (and for peers that reported none).
        wireguard = try c.decodeIfPresent(WireGuardIdentity.self, forKey: .wireguard)
    }

    /// `draining` and `wireguard` are written only when set, so a peer that was never drained encodes as it always did
    /// (stored events and read-model bodies keep their bytes).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(os, forKey: .os)
        try c.encode(meshIP, forKey: .meshIP)
        if draining { try c.encode(true, forKey: .draining) }
        if let wireguard { try c.encode(wireguard, forKey: .wireguard) }
    }
}
