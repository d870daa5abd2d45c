import Foundation
import ControlPlane
import RouteModel
import ViewDistribution

// NetBird's response shapes (`shared/management/http/api/types.gen.go`), built from our state.

/// NetBird's `api.Route` as its handler writes it (`routes_handler.go`, `toRouteResponse`): `peer`, `network` and
/// `domains` are always there — `peer` is "" for a route without a single routing peer, `network` of a domain route
/// is NetBird's placeholder `192.0.2.0/32` (`route.go`, `getPlaceholderIP`), `domains` of a network route is null;
/// `peer_groups` and `access_control_groups` only when not empty. Domains as the user wrote them.
/// Routeplane adds `skipped_routing_peers` when members of the peer groups cannot route (not Linux).
struct RouteJSON: Encodable {
    var id: String
    var network_id: String
    var description: String
    var network_type: String
    var network: String
    var domains: [String]?
    var peer: String
    var peer_groups: [String]?
    var metric: Int
    var masquerade: Bool
    var groups: [String]
    var enabled: Bool
    var keep_route: Bool
    var access_control_groups: [String]?
    var skip_auto_apply: Bool
    var skipped_routing_peers: [SkippedRoutingPeerJSON]?

    /// NetBird's placeholder network of a domain route.
    static let domainPlaceholderNetwork = "192.0.2.0/32"

    init(_ r: Route, in state: TenantState) {
        id = r.id.rawValue
        network_id = r.networkID
        description = r.description
        network_type = r.destination.networkType
        network = r.destination.network?.description ?? Self.domainPlaceholderNetwork
        domains = r.displayDomains
        peer = r.routingPeers.peer?.rawValue ?? ""
        peer_groups = r.routingPeers.peerGroups.flatMap { $0.isEmpty ? nil : $0.map(\.rawValue) }
        metric = r.metric
        masquerade = r.masquerade
        groups = r.groups.map(\.rawValue)
        enabled = r.enabled
        keep_route = r.keepRoute
        access_control_groups = r.accessControlGroups.isEmpty ? nil : r.accessControlGroups.map(\.rawValue)
        skip_auto_apply = r.skipAutoApply
        let skipped = state.skippedRoutingPeers(of: r)
        skipped_routing_peers = skipped.isEmpty ? nil : skipped.map { SkippedRoutingPeerJSON(id: $0.id.rawValue, name: $0.name, os: $0.os) }
    }

    enum CodingKeys: String, CodingKey {
        case id, network_id, description, network_type, network, domains, peer, peer_groups, metric, masquerade, groups
        case enabled, keep_route, access_control_groups, skip_auto_apply, skipped_routing_peers
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(network_id, forKey: .network_id)
        try c.encode(description, forKey: .description)
        try c.encode(network_type, forKey: .network_type)
        try c.encode(network, forKey: .network)
        try c.encode(domains, forKey: .domains)  // null for a network route, as NetBird's
        try c.encode(peer, forKey: .peer)
        try c.encodeIfPresent(peer_groups, forKey: .peer_groups)
        try c.encode(metric, forKey: .metric)
        try c.encode(masquerade, forKey: .masquerade)
        try c.encode(groups, forKey: .groups)
        try c.encode(enabled, forKey: .enabled)
        try c.encode(keep_route, forKey: .keep_route)
        try c.encodeIfPresent(access_control_groups, forKey: .access_control_groups)
        try c.encode(skip_auto_apply, forKey: .skip_auto_apply)
        try c.encodeIfPresent(skipped_routing_peers, forKey: .skipped_routing_peers)
    }
}

/// A member of a route's peer groups that forwards nothing (only Linux peers can be routing peers).
struct SkippedRoutingPeerJSON: Encodable {
    var id: String
    var name: String
    var os: String
}

struct PeerMinimumJSON: Encodable {
    var id: String
    var name: String
}

struct GroupJSON: Encodable {
    var id: String
    var name: String
    var peers_count: Int
    var resources_count = 0
    var issued = "api"
    var peers: [PeerMinimumJSON]
    var resources: [String] = []

    init(_ g: Group, in state: TenantState) {
        id = g.id.rawValue
        name = g.name
        peers_count = g.peers.count
        peers = g.peers.map { PeerMinimumJSON(id: $0.rawValue, name: state.peer($0)?.name ?? "") }
    }
}

struct GroupMinimumJSON: Encodable {
    var id: String
    var name: String
    var peers_count: Int
    var resources_count = 0
    var issued = "api"
}

/// NetBird's `api.PeerBatch` (list) / `api.Peer` (single): every field its spec marks required
/// (`openapi.yml`, `Peer`, `PeerBatch`), with Routeplane's values where it knows them and NetBird's zero values
/// where it does not (no geolocation, kernel, UI version, serial number, user, extra DNS labels; peers are never
/// ephemeral). `created_at` and `last_login` are the enrollment time (NetBird sets both at `AddPeer`), or the zero
/// time for a peer not enrolled through the API.
struct PeerJSON: Encodable {
    var id: String
    var name: String
    var created_at: String
    var ip: String
    var connection_ip = ""
    var connected: Bool
    var last_seen: String
    var os: String
    var kernel_version = ""
    var geoname_id = 0
    var version = ""
    var groups: [GroupMinimumJSON]
    var ssh_enabled = false
    var user_id = ""
    var hostname: String
    var ui_version = ""
    var dns_label: String
    var login_expiration_enabled = false
    var login_expired = false
    var last_login: String
    var inactivity_expiration_enabled = false
    var approval_required = false
    var country_code = ""
    var city_name = ""
    var serial_number = ""
    var extra_dns_labels: [String] = []
    var ephemeral = false
    var accessible_peers_count = 0
    /// Routeplane: the route-view version the agent reports as applied.
    var applied_view_version: Int64
    /// Routeplane: operator drain mode (a draining routing peer is chosen only when nothing else is up).
    var draining: Bool
    /// Routeplane: HA sets the agent does not install because another network id's HA set with the same destination
    /// is installed instead (as its last status message reported them).
    var shadowed_routes: [ShadowedRouteStatus]
    /// Routeplane: the routing peer the agent uses now for each HA set of its view (its last status message).
    var route_selections: [RouteSelectionReport]

    /// NetBird's zero time (Go's `time.Time{}`).
    static let zeroTime = "0001-01-01T00:00:00Z"

    /// Groups as NetBird lists them (`groups.ToGroupsInfoMap` over the account's groups): All first, then in
    /// creation order.
    init(_ p: Peer, in snapshot: TenantSnapshot, status: PeerStatus?, now: Date) {
        let state = snapshot.state
        let enrolledAt = snapshot.peerEnrolledAt[p.id]
        id = p.id.rawValue
        name = p.name
        ip = p.meshIP.description
        os = p.os
        hostname = p.name
        dns_label = p.name.lowercased()
        let all = state.allGroupID
        let mine = snapshot.inCreationOrder(state.groups(of: p.id).compactMap(state.group)) { ObjectRef(.group, $0.id.rawValue) }
        groups = (mine.filter { $0.id == all } + mine.filter { $0.id != all }).map {
            GroupMinimumJSON(id: $0.id.rawValue, name: $0.name, peers_count: $0.peers.count)
        }
        let seen = status?.lastSeen
        // Connected: a status message within the last 30 s (agents send one every few seconds).
        connected = seen.map { now.timeIntervalSince($0) < 30 } ?? false
        last_seen = seen.map { ISO8601.format($0) } ?? Self.zeroTime
        created_at = enrolledAt.map { ISO8601.format(Date(timeIntervalSince1970: TimeInterval($0))) } ?? Self.zeroTime
        last_login = created_at
        applied_view_version = status?.appliedVersion ?? 0
        draining = p.draining
        shadowed_routes = status?.shadowed ?? []
        route_selections = status?.selections ?? []
    }
}

struct SetupKeyJSON: Encodable {
    var id: String
    var key: String
    var name: String
    var expires: String
    var type: String
    var valid: Bool
    var revoked: Bool
    var used_times: Int
    var last_used: String
    var state: String
    var auto_groups: [String]
    var updated_at: String
    var usage_limit: Int
    var ephemeral = false
    var allow_extra_dns_labels = false

    /// `plainKey` only in the answer to the request that created the key; later NetBird's masked key (the first 5
    /// characters and `****`, `types.HiddenKey(key, 4)`), or `****` for a key created before it was recorded.
    init(_ k: SetupKey, in state: TenantState, now: Int64, plainKey: String?) {
        id = k.id.rawValue
        key = plainKey ?? k.keySecret ?? "****"
        name = k.name
        expires = k.expiresAt.map { ISO8601.format(Date(timeIntervalSince1970: TimeInterval($0))) } ?? "0001-01-01T00:00:00Z"
        type = k.type.rawValue
        let s = state.setupKeyState(k.id, now: now) ?? .revoked
        self.state = s.rawValue
        valid = s == .valid
        revoked = k.revoked
        let usage = state.setupKeyUsage[k.id]
        used_times = usage?.usedTimes ?? 0
        last_used = usage?.lastUsed.map { ISO8601.format(Date(timeIntervalSince1970: TimeInterval($0))) } ?? "0001-01-01T00:00:00Z"
        auto_groups = k.autoGroups.map(\.rawValue)
        updated_at = ISO8601.format(Date(timeIntervalSince1970: TimeInterval(k.updatedAt ?? k.createdAt)))
        usage_limit = k.usageLimit
        ephemeral = k.ephemeral
    }
}
