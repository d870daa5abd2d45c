import Foundation
import ControlPlane
import RouteModel
import ViewDistribution

// NetBird's response shapes (`shared/management/http/api/types.gen.go`), built from our state.

struct RouteJSON: Encodable {
    var id: String
    var network_id: String
    var description: String
    var network_type: String
    var network: String?
    var domains: [String]?
    var peer: String?
    var peer_groups: [String]?
    var metric: Int
    var masquerade: Bool
    var groups: [String]
    var enabled: Bool
    var keep_route: Bool
    var access_control_groups: [String]?
    var skip_auto_apply: Bool

    init(_ r: Route) {
        id = r.id.rawValue
        network_id = r.networkID
        description = r.description
        network_type = r.destination.networkType
        network = r.destination.network?.description
        domains = r.destination.domains
        peer = r.routingPeers.peer?.rawValue
        peer_groups = r.routingPeers.peerGroups?.map(\.rawValue)
        metric = r.metric
        masquerade = r.masquerade
        groups = r.groups.map(\.rawValue)
        enabled = r.enabled
        keep_route = r.keepRoute
        access_control_groups = r.accessControlGroups.isEmpty ? nil : r.accessControlGroups.map(\.rawValue)
        skip_auto_apply = r.skipAutoApply
    }
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

struct PeerJSON: Encodable {
    var id: String
    var name: String
    var ip: String
    var connected: Bool
    var last_seen: String
    var os: String
    var version = ""
    var hostname: String
    var dns_label: String
    var groups: [GroupMinimumJSON]
    var ssh_enabled = false
    var login_expiration_enabled = false
    var login_expired = false
    var approval_required = false
    var accessible_peers_count = 0
    /// Routeplane: the route-view version the agent reports as applied.
    var applied_view_version: Int64
    /// Routeplane: operator drain mode (a draining routing peer is chosen only when nothing else is up).
    var draining: Bool
    /// Routeplane: HA sets the agent does not install because another network id's HA set with the same destination
    /// is installed instead (as its last status message reported them).
    var shadowed_routes: [ShadowedRouteStatus]

    init(_ p: Peer, in state: TenantState, status: PeerStatus?, now: Date) {
        id = p.id.rawValue
        name = p.name
        ip = p.meshIP.description
        os = p.os
        hostname = p.name
        dns_label = p.name.lowercased()
        groups = state.groups(of: p.id).sorted().compactMap { g in
            state.group(g).map { GroupMinimumJSON(id: $0.id.rawValue, name: $0.name, peers_count: $0.peers.count) }
        }
        let seen = status?.lastSeen
        // Connected: a status message within the last 30 s (agents send one every few seconds).
        connected = seen.map { now.timeIntervalSince($0) < 30 } ?? false
        last_seen = seen.map { ISO8601.format($0) } ?? "0001-01-01T00:00:00Z"
        applied_view_version = status?.appliedVersion ?? 0
        draining = p.draining
        shadowed_routes = status?.shadowed ?? []
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

    /// `plainKey` only in the answer to the request that created the key; later "****" + id suffix.
    init(_ k: SetupKey, in state: TenantState, now: Int64, plainKey: String?) {
        id = k.id.rawValue
        key = plainKey ?? "****"
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
        updated_at = ISO8601.format(Date(timeIntervalSince1970: TimeInterval(k.createdAt)))
        usage_limit = k.usageLimit
    }
}
