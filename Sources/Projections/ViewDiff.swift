import RouteModel

/// What changed in one peer's route view between two points (pure): the routes it gained, lost, and
/// those whose fields changed, old → new. Dry runs answer it for each affected peer; history diffs
/// answer it for each peer whose view differs.
///
/// A view is compared as a flat list of `ViewRoute`s, identified by (role, route id, routing peer):
/// a client route appears once per candidate routing peer (a route of peer groups has several), a
/// forwarded route once. A route that moves to another network id or destination is "changed" (those
/// are fields); a route that gains or loses a candidate adds or removes that candidate's entry.
public struct ViewDiff: Hashable, Sendable, Codable {
    public var peerID: PeerID
    /// Sorted by (role, route id, routing peer).
    public var added: [ViewRoute]
    /// Sorted by (role, route id, routing peer).
    public var removed: [ViewRoute]
    /// Sorted by (role, route id, routing peer); every entry has at least one field change.
    public var changed: [ViewRouteChange]

    public init(peerID: PeerID, added: [ViewRoute] = [], removed: [ViewRoute] = [], changed: [ViewRouteChange] = []) {
        self.peerID = peerID
        self.added = added
        self.removed = removed
        self.changed = changed
    }

    /// The two views install the same routes.
    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }

    enum CodingKeys: String, CodingKey {
        case added, removed, changed
        case peerID = "peer_id"
    }

    /// The diff from `before` to `after` (both views of `after.peerID`; an absent peer's view is `.empty`).
    public init(from before: PeerRouteView, to after: PeerRouteView) {
        self.init(peerID: after.peerID)
        var old: [ViewRoute.Key: ViewRoute] = [:]
        for r in ViewRoute.routes(of: before) { old[r.key] = r }
        for r in ViewRoute.routes(of: after) {
            guard let o = old.removeValue(forKey: r.key) else {
                added.append(r)
                continue
            }
            let fields = ViewRoute.fieldChanges(from: o, to: r)
            if !fields.isEmpty {
                changed.append(ViewRouteChange(role: r.role, routeID: r.routeID, networkID: r.networkID, via: r.via, fields: fields))
            }
        }
        removed = old.values.sorted()
        added.sort()
        changed.sort { $0.key < $1.key }
    }
}

/// One route as a peer's view carries it.
public struct ViewRoute: Hashable, Comparable, Sendable, Codable {
    public enum Role: String, Hashable, Comparable, Sendable, Codable {
        /// The peer installs the route towards `via`.
        case client
        /// The peer is the route's routing peer and forwards its traffic.
        case forward

        public static func < (a: Role, b: Role) -> Bool { a.rawValue < b.rawValue }
    }

    /// What identifies an entry of one view.
    public struct Key: Hashable, Comparable, Sendable {
        public var role: Role
        public var routeID: RouteID
        public var via: PeerID?

        public static func < (a: Key, b: Key) -> Bool {
            if a.role != b.role { return a.role < b.role }
            if a.routeID != b.routeID { return a.routeID < b.routeID }
            return (a.via?.rawValue ?? "") < (b.via?.rawValue ?? "")
        }
    }

    public var role: Role
    public var routeID: RouteID
    public var networkID: String
    /// Client routes: the candidate routing peer. Forwarded routes: nil.
    public var via: PeerID?
    public var destination: RouteDestination
    public var masquerade: Bool
    /// Client routes only (nil for forwarded routes): the candidate's fields.
    public var meshIP: IPAddress?
    public var metric: Int?
    public var keepRoute: Bool?
    public var skipAutoApply: Bool?
    public var draining: Bool?

    public init(role: Role, routeID: RouteID, networkID: String, via: PeerID?, destination: RouteDestination,
                masquerade: Bool, meshIP: IPAddress? = nil, metric: Int? = nil, keepRoute: Bool? = nil,
                skipAutoApply: Bool? = nil, draining: Bool? = nil) {
        self.role = role
        self.routeID = routeID
        self.networkID = networkID
        self.via = via
        self.destination = destination
        self.masquerade = masquerade
        self.meshIP = meshIP
        self.metric = metric
        self.keepRoute = keepRoute
        self.skipAutoApply = skipAutoApply
        self.draining = draining
    }

    public var key: Key { Key(role: role, routeID: routeID, via: via) }

    public static func < (a: ViewRoute, b: ViewRoute) -> Bool { a.key < b.key }

    /// Every route of `view`: forwarded routes, then each HA set's candidates.
    public static func routes(of view: PeerRouteView) -> [ViewRoute] {
        var out: [ViewRoute] = []
        for f in view.forwards {
            out.append(ViewRoute(role: .forward, routeID: f.routeID, networkID: f.key.networkID, via: nil,
                                 destination: f.key.destination, masquerade: f.masquerade))
        }
        for s in view.haSets {
            for c in s.candidates {
                out.append(ViewRoute(role: .client, routeID: c.routeID, networkID: s.key.networkID, via: c.peerID,
                                     destination: s.key.destination, masquerade: c.masquerade, meshIP: c.meshIP,
                                     metric: c.metric, keepRoute: c.keepRoute, skipAutoApply: c.skipAutoApply,
                                     draining: c.draining))
            }
        }
        return out
    }

    /// The fields compared, by their JSON names, in a fixed order (absent ones nil).
    var fields: [(name: String, value: ViewDiffValue?)] {
        [
            ("network_id", .string(networkID)),
            ("network_type", .string(destination.networkType)),
            ("network", destination.network.map { .string($0.description) }),
            ("domains", destination.domains.map { .strings($0) }),
            ("masquerade", .bool(masquerade)),
            ("mesh_ip", meshIP.map { .string($0.description) }),
            ("metric", metric.map { .int($0) }),
            ("keep_route", keepRoute.map { .bool($0) }),
            ("skip_auto_apply", skipAutoApply.map { .bool($0) }),
            ("draining", draining.map { .bool($0) }),
        ]
    }

    /// The fields that differ, old → new, in `fields` order.
    static func fieldChanges(from old: ViewRoute, to new: ViewRoute) -> [FieldChange] {
        zip(old.fields, new.fields).compactMap { o, n in
            o.value == n.value ? nil : FieldChange(field: o.name, old: o.value, new: n.value)
        }
    }

    enum CodingKeys: String, CodingKey {
        case role, network, domains, masquerade, metric, draining, via
        case routeID = "route_id"
        case networkID = "network_id"
        case networkType = "network_type"
        case meshIP = "mesh_ip"
        case keepRoute = "keep_route"
        case skipAutoApply = "skip_auto_apply"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(Role.self, forKey: .role)
        routeID = try c.decode(RouteID.self, forKey: .routeID)
        networkID = try c.decode(String.self, forKey: .networkID)
        via = try c.decodeIfPresent(PeerID.self, forKey: .via)
        if let p = try c.decodeIfPresent(Prefix.self, forKey: .network) {
            destination = .network(p)
        } else if let d = try c.decodeIfPresent([String].self, forKey: .domains) {
            destination = .domains(d)
        } else {
            throw DecodingError.dataCorruptedError(forKey: .network, in: c, debugDescription: "neither network nor domains")
        }
        masquerade = try c.decode(Bool.self, forKey: .masquerade)
        meshIP = try c.decodeIfPresent(IPAddress.self, forKey: .meshIP)
        metric = try c.decodeIfPresent(Int.self, forKey: .metric)
        keepRoute = try c.decodeIfPresent(Bool.self, forKey: .keepRoute)
        skipAutoApply = try c.decodeIfPresent(Bool.self, forKey: .skipAutoApply)
        draining = try c.decodeIfPresent(Bool.self, forKey: .draining)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(routeID, forKey: .routeID)
        try c.encode(networkID, forKey: .networkID)
        try c.encodeIfPresent(via, forKey: .via)
        try c.encode(destination.networkType, forKey: .networkType)
        switch destination {
        case .network(let p): try c.encode(p, forKey: .network)
        case .domains(let d): try c.encode(d, forKey: .domains)
        }
        try c.encode(masquerade, forKey: .masquerade)
        try c.encodeIfPresent(meshIP, forKey: .meshIP)
        try c.encodeIfPresent(metric, forKey: .metric)
        try c.encodeIfPresent(keepRoute, forKey: .keepRoute)
        try c.encodeIfPresent(skipAutoApply, forKey: .skipAutoApply)
        try c.encodeIfPresent(draining, forKey: .draining)
    }
}

/// A route present in both views whose fields differ.
public struct ViewRouteChange: Hashable, Sendable, Codable {
    public var role: ViewRoute.Role
    public var routeID: RouteID
    /// The network id after the change (a change of network id is one of `fields`).
    public var networkID: String
    public var via: PeerID?
    /// In a fixed field order; never empty.
    public var fields: [FieldChange]

    public init(role: ViewRoute.Role, routeID: RouteID, networkID: String, via: PeerID?, fields: [FieldChange]) {
        self.role = role
        self.routeID = routeID
        self.networkID = networkID
        self.via = via
        self.fields = fields
    }

    public var key: ViewRoute.Key { ViewRoute.Key(role: role, routeID: routeID, via: via) }

    enum CodingKeys: String, CodingKey {
        case role, via, fields
        case routeID = "route_id"
        case networkID = "network_id"
    }
}

/// One field's old and new value; nil where the field is absent on that side (e.g. `network` when a
/// route turns into a domain route).
public struct FieldChange: Hashable, Sendable, Codable {
    public var field: String
    public var old: ViewDiffValue?
    public var new: ViewDiffValue?

    public init(field: String, old: ViewDiffValue?, new: ViewDiffValue?) {
        self.field = field
        self.old = old
        self.new = new
    }

    enum CodingKeys: String, CodingKey { case field, old, new }

    /// `old` and `new` are always present, `null` when absent, so a reader sees both sides.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(field, forKey: .field)
        if let old { try c.encode(old, forKey: .old) } else { try c.encodeNil(forKey: .old) }
        if let new { try c.encode(new, forKey: .new) } else { try c.encodeNil(forKey: .new) }
    }
}

/// A field value as JSON shows it.
public enum ViewDiffValue: Hashable, Sendable, Codable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case strings([String])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .strings(try c.decode([String].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .bool(let b): try c.encode(b)
        case .strings(let s): try c.encode(s)
        }
    }
}
