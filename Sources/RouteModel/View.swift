/// One routing peer a client may send an HA set's traffic through.
public struct RouteCandidate: Hashable, Comparable, Sendable, Codable {
    public var peerID: PeerID
    /// The routing peer's mesh address: the next hop the client installs.
    public var meshIP: IPAddress
    public var metric: Int
    public var masquerade: Bool
    public var keepRoute: Bool
    public var skipAutoApply: Bool
    public var routeID: RouteID
    /// The routing peer is in operator drain mode: the agent picks it only when no other candidate is up.
    /// Not part of the order (all entries of one peer carry the same flag).
    public var draining: Bool

    public init(peerID: PeerID, meshIP: IPAddress, metric: Int, masquerade: Bool, keepRoute: Bool,
                skipAutoApply: Bool, routeID: RouteID, draining: Bool = false) {
        self.peerID = peerID
        self.meshIP = meshIP
        self.metric = metric
        self.masquerade = masquerade
        self.keepRoute = keepRoute
        self.skipAutoApply = skipAutoApply
        self.routeID = routeID
        self.draining = draining
    }

    /// Canonical order: metric (lower first), then peer id, then route id.
    public static func < (a: RouteCandidate, b: RouteCandidate) -> Bool {
        if a.metric != b.metric { return a.metric < b.metric }
        if a.peerID != b.peerID { return a.peerID < b.peerID }
        return a.routeID < b.routeID
    }

    enum CodingKeys: String, CodingKey {
        case metric, masquerade, draining
        case peerID = "peer_id"
        case meshIP = "mesh_ip"
        case keepRoute = "keep_route"
        case skipAutoApply = "skip_auto_apply"
        case routeID = "route_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        peerID = try c.decode(PeerID.self, forKey: .peerID)
        meshIP = try c.decode(IPAddress.self, forKey: .meshIP)
        metric = try c.decode(Int.self, forKey: .metric)
        masquerade = try c.decode(Bool.self, forKey: .masquerade)
        keepRoute = try c.decode(Bool.self, forKey: .keepRoute)
        skipAutoApply = try c.decode(Bool.self, forKey: .skipAutoApply)
        routeID = try c.decode(RouteID.self, forKey: .routeID)
        // Views published before drain mode existed (and every candidate not draining) lack the key.
        draining = try c.decodeIfPresent(Bool.self, forKey: .draining) ?? false
    }

    /// As `canonicalJSON()` writes it: `draining` only when true.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(peerID, forKey: .peerID)
        try c.encode(meshIP, forKey: .meshIP)
        try c.encode(metric, forKey: .metric)
        try c.encode(masquerade, forKey: .masquerade)
        try c.encode(keepRoute, forKey: .keepRoute)
        try c.encode(skipAutoApply, forKey: .skipAutoApply)
        try c.encode(routeID, forKey: .routeID)
        if draining { try c.encode(true, forKey: .draining) }
    }
}

/// The routes a client must install for one (network id, range or domain list): all candidate
/// routing peers, of which the agent picks one itself.
public struct HASet: Hashable, Sendable, Codable {
    public var key: HAKey
    /// Sorted canonically, never empty.
    public var candidates: [RouteCandidate]

    public init(key: HAKey, candidates: [RouteCandidate]) {
        self.key = key
        self.candidates = candidates
    }

    enum CodingKeys: String, CodingKey {
        case candidates, network, domains
        case networkID = "network_id"
        case networkType = "network_type"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = HAKey(networkID: try c.decode(String.self, forKey: .networkID),
                    destination: try decodeDestination(c, network: .network, domains: .domains))
        candidates = try c.decode([RouteCandidate].self, forKey: .candidates)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(key.networkID, forKey: .networkID)
        try c.encode(key.destination.networkType, forKey: .networkType)
        switch key.destination {
        case .network(let p): try c.encode(p, forKey: .network)
        case .domains(let d): try c.encode(d, forKey: .domains)
        }
        try c.encode(candidates, forKey: .candidates)
    }
}

/// A network a routing peer must forward for clients (one per route it serves).
public struct ForwardedRoute: Hashable, Comparable, Sendable, Codable {
    public var routeID: RouteID
    public var key: HAKey
    /// Add a masquerade (SNAT) rule for traffic from the mesh into this network.
    public var masquerade: Bool
    /// What may be forwarded to the range (`forwardRules(of:servedBy:in:)`): nil = everything (the route has no
    /// access-control groups; also what views written before policies existed decode as), empty = nothing.
    public var rules: [ForwardRule]?

    public init(routeID: RouteID, key: HAKey, masquerade: Bool, rules: [ForwardRule]? = nil) {
        self.routeID = routeID
        self.key = key
        self.masquerade = masquerade
        self.rules = rules
    }

    public static func < (a: ForwardedRoute, b: ForwardedRoute) -> Bool { a.routeID < b.routeID }

    enum CodingKeys: String, CodingKey {
        case masquerade, network, domains, rules
        case routeID = "route_id"
        case networkID = "network_id"
        case networkType = "network_type"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        routeID = try c.decode(RouteID.self, forKey: .routeID)
        key = HAKey(networkID: try c.decode(String.self, forKey: .networkID),
                    destination: try decodeDestination(c, network: .network, domains: .domains))
        masquerade = try c.decode(Bool.self, forKey: .masquerade)
        rules = try c.decodeIfPresent([ForwardRule].self, forKey: .rules)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(routeID, forKey: .routeID)
        try c.encode(key.networkID, forKey: .networkID)
        try c.encode(key.destination.networkType, forKey: .networkType)
        switch key.destination {
        case .network(let p): try c.encode(p, forKey: .network)
        case .domains(let d): try c.encode(d, forKey: .domains)
        }
        try c.encode(masquerade, forKey: .masquerade)
        try c.encodeIfPresent(rules, forKey: .rules)
    }
}

private func decodeDestination<K: CodingKey>(_ c: KeyedDecodingContainer<K>, network: K, domains: K) throws -> RouteDestination {
    if let p = try c.decodeIfPresent(Prefix.self, forKey: network) { return .network(p) }
    if let d = try c.decodeIfPresent([String].self, forKey: domains) { return .domains(d) }
    throw DecodingError.dataCorruptedError(forKey: network, in: c, debugDescription: "neither network nor domains")
}

/// What one peer must install: its client routes grouped into HA sets, and (for a routing peer)
/// the networks it forwards. Equal views have equal `canonicalJSON()` bytes and `digest`.
public struct PeerRouteView: Hashable, Sendable, Codable {
    public var peerID: PeerID
    /// Sorted by key (network id, then destination).
    public var haSets: [HASet]
    /// Sorted by route id.
    public var forwards: [ForwardedRoute]
    /// The WireGuard peers the agent must reach (`TenantState.wireGuardPeers`), sorted by peer id; written only when not
    /// empty, so views of tenants without WireGuard keep their bytes and digests.
    public var wireguardPeers: [WireGuardPeer]

    public init(peerID: PeerID, haSets: [HASet] = [], forwards: [ForwardedRoute] = [], wireguardPeers: [WireGuardPeer] = []) {
        self.peerID = peerID
        self.haSets = haSets
        self.forwards = forwards
        self.wireguardPeers = wireguardPeers
    }

    /// The view of a peer that does not exist or has nothing to install.
    public static func empty(_ peerID: PeerID) -> PeerRouteView { PeerRouteView(peerID: peerID) }

    public var isEmpty: Bool { haSets.isEmpty && forwards.isEmpty }

    enum CodingKeys: String, CodingKey {
        case forwards
        case peerID = "peer_id"
        case haSets = "ha_sets"
        case wireguardPeers = "wireguard_peers"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        peerID = try c.decode(PeerID.self, forKey: .peerID)
        haSets = try c.decode([HASet].self, forKey: .haSets)
        forwards = try c.decode([ForwardedRoute].self, forKey: .forwards)
        // Absent in views written before WireGuard, and whenever no peer to reach has a key.
        wireguardPeers = try c.decodeIfPresent([WireGuardPeer].self, forKey: .wireguardPeers) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(forwards, forKey: .forwards)
        try c.encode(haSets, forKey: .haSets)
        try c.encode(peerID, forKey: .peerID)
        if !wireguardPeers.isEmpty { try c.encode(wireguardPeers, forKey: .wireguardPeers) }
    }
}

/// The route view of `peerID` in `state`. Cost: the peer's groups, the routes distributed to
/// them, and their candidates, never the whole tenant.
///
/// Rules:
/// - A client route is an enabled route whose distribution groups contain the peer.
/// - Access control does not decide who receives a route: `access_control_groups` are the
///   destination of policies, enforced by the routing peer (its `forwards[].rules`, see
///   `forwardRules(of:servedBy:in:)`), as in NetBird.
/// - Routes of an HA set the peer itself serves (as an enabled route's routing peer) are not client
///   routes for it: it serves them instead.
/// - Candidates of a route are its routing peer, or every Linux member of its peer groups; peers
///   that cannot route (non-Linux members of a peer group) are never candidates, and an HA set
///   without candidates is left out.
/// - `forwards`: every enabled route the peer serves, if it can route, with its masquerade flag and
///   its forward rules (nil when the route has no access-control groups).
/// - `wireguardPeers`: the candidates of its HA sets and the clients of the routes it forwards (members of their
///   distribution groups), each with its WireGuard key, endpoints and mesh address; peers without a key are left out.
public func view(for peerID: PeerID, in state: TenantState) -> PeerRouteView {
    guard let peer = state.peer(peerID) else { return .empty(peerID) }
    let myGroups = state.groups(of: peerID)

    // Routes this peer serves.
    var forwards: [ForwardedRoute] = []
    var servedKeys = Set<HAKey>()
    if peer.canRoute {
        var ids = state.routeIDs(directPeer: peerID)
        for g in myGroups { ids.formUnion(state.routeIDs(withPeerGroup: g)) }
        for id in ids {
            guard let r = state.route(id), r.enabled else { continue }
            let key = r.haKey
            servedKeys.insert(key)
            forwards.append(ForwardedRoute(routeID: id, key: key, masquerade: r.masquerade,
                                           rules: forwardRules(of: r, servedBy: peerID, in: state)))
        }
        forwards.sort()
    }

    // Client routes.
    var routeIDs: Set<RouteID> = []
    if myGroups.count == 1, let only = myGroups.first {
        routeIDs = state.routeIDs(distributedTo: only)
    } else {
        for g in myGroups { routeIDs.formUnion(state.routeIDs(distributedTo: g)) }
    }
    var sets: [HAKey: [RouteCandidate]] = [:]
    for id in routeIDs {
        guard let r = state.route(id), r.enabled else { continue }
        let key = r.haKey
        if servedKeys.contains(key) { continue }
        var candidates = sets.removeValue(forKey: key) ?? []
        func add(_ q: PeerID) {
            guard let rp = state.peer(q), rp.canRoute else { return }
            candidates.append(RouteCandidate(
                peerID: q, meshIP: rp.meshIP, metric: r.metric, masquerade: r.masquerade,
                keepRoute: r.keepRoute, skipAutoApply: r.skipAutoApply, routeID: r.id, draining: rp.draining))
        }
        switch r.routingPeers {
        case .peer(let q): add(q)
        case .peerGroups(let gs):
            for g in gs { for q in state.group(g)?.peers ?? [] { add(q) } }
        }
        sets[key] = candidates
    }
    var haSets: [HASet] = []
    haSets.reserveCapacity(sets.count)
    for (key, var candidates) in sets where !candidates.isEmpty {
        candidates.sort()
        // A peer in two peer groups of one route appears twice: identical entries, adjacent.
        var unique: [RouteCandidate] = []
        unique.reserveCapacity(candidates.count)
        for c in candidates where unique.last != c { unique.append(c) }
        haSets.append(HASet(key: key, candidates: unique))
    }
    haSets.sort { $0.key < $1.key }
    return PeerRouteView(peerID: peerID, haSets: haSets, forwards: forwards,
                         wireguardPeers: state.wireGuardPeers(for: peerID, haSets: haSets, forwards: forwards))
}
