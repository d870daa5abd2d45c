import Foundation
import RouteModel

/// One entry of the `shadowed` list in an agent's status message (`routeplane.<tenant>.peer.<peer>.status`): an HA
/// set of the agent's view that is not installed because the HA set of another network id with the same destination
/// (range, domain list, or default route) is. The agent writes it; the controller reads it from `peer_status` and
/// serves it with the peer (`GET /api/peers/{id}`, `shadowed_routes`).
///
/// The list is optional in the message: agents from before it send none (read as empty), and controllers from before
/// it store it untouched in the status JSON and serve nothing of it.
public struct ShadowedRouteStatus: Hashable, Sendable, Codable {
    /// The shadowed HA set's network id.
    public var networkID: String
    public var destination: RouteDestination
    /// The routes of the shadowed HA set (route ids of its candidates), sorted.
    public var routeIDs: [String]
    /// The network id of the HA set installed instead.
    public var shadowedByNetworkID: String
    /// The route of the routing peer that HA set uses now (nil while it has none chosen).
    public var shadowedByRouteID: String?

    public init(networkID: String, destination: RouteDestination, routeIDs: [String], shadowedByNetworkID: String,
                shadowedByRouteID: String?) {
        self.networkID = networkID
        self.destination = destination
        self.routeIDs = routeIDs
        self.shadowedByNetworkID = shadowedByNetworkID
        self.shadowedByRouteID = shadowedByRouteID
    }

    enum CodingKeys: String, CodingKey {
        case network, domains
        case networkID = "network_id"
        case routeIDs = "route_ids"
        case shadowedByNetworkID = "shadowed_by_network_id"
        case shadowedByRouteID = "shadowed_by_route_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        networkID = try c.decode(String.self, forKey: .networkID)
        if let network = try c.decodeIfPresent(Prefix.self, forKey: .network) {
            destination = .network(network)
        } else {
            destination = .domains(try c.decode([String].self, forKey: .domains))
        }
        routeIDs = try c.decodeIfPresent([String].self, forKey: .routeIDs) ?? []
        shadowedByNetworkID = try c.decode(String.self, forKey: .shadowedByNetworkID)
        shadowedByRouteID = try c.decodeIfPresent(String.self, forKey: .shadowedByRouteID)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(networkID, forKey: .networkID)
        switch destination {
        case .network(let p): try c.encode(p, forKey: .network)
        case .domains(let d): try c.encode(d, forKey: .domains)
        }
        try c.encode(routeIDs, forKey: .routeIDs)
        try c.encode(shadowedByNetworkID, forKey: .shadowedByNetworkID)
        try c.encodeIfPresent(shadowedByRouteID, forKey: .shadowedByRouteID)
    }

    /// As a value for `JSONSerialization` (the agent builds its status message with it).
    public var jsonObject: [String: Any] {
        var object: [String: Any] = ["network_id": networkID, "route_ids": routeIDs, "shadowed_by_network_id": shadowedByNetworkID]
        switch destination {
        case .network(let p): object["network"] = p.description
        case .domains(let d): object["domains"] = d
        }
        if let shadowedByRouteID { object["shadowed_by_route_id"] = shadowedByRouteID }
        return object
    }

    /// The `shadowed` list of a stored status message (`peer_status.status->'shadowed'`, a JSON array); entries that do
    /// not decode are left out, so a malformed or future entry never hides the others. Empty for anything else.
    public static func list(fromJSON json: String?) -> [ShadowedRouteStatus] {
        struct Lenient: Decodable {
            var value: ShadowedRouteStatus?
            init(from decoder: any Decoder) throws { value = try? ShadowedRouteStatus(from: decoder) }
        }
        guard let json, let entries = try? JSONDecoder().decode([Lenient].self, from: Data(json.utf8)) else { return [] }
        return entries.compactMap(\.value)
    }
}
