import Foundation

/// One entry of the `selections` list in an agent's status message (`routeplane.<tenant>.peer.<peer>.status`): the
/// routing peer the agent uses now for one HA set of its view, and whether it carries traffic (`active`) or every
/// candidate is down (`allDown`, the route stays on the last choice). The agent writes it; the controller reads it
/// from `peer_status` and serves it with the peer (`GET /api/peers`, `route_selections`), so an operator sees which
/// routing peer the clients use.
///
/// Agents have sent it from the first status version; a malformed entry is left out, never fatal.
public struct RouteSelectionReport: Hashable, Sendable, Codable {
    /// The HA set's network id.
    public var networkID: String
    /// Its destination as the agent wrote it: a range, or the domain list.
    public var network: String
    /// The routing peer in use.
    public var peerID: String
    /// `active` or `allDown`.
    public var status: String

    public init(networkID: String, network: String, peerID: String, status: String) {
        self.networkID = networkID
        self.network = network
        self.peerID = peerID
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case network, status
        case networkID = "network_id"
        case peerID = "peer_id"
    }

    /// The `selections` list of a stored status message (`peer_status.status->'selections'`, a JSON array); entries
    /// that do not decode are left out. Empty for anything else.
    public static func list(fromJSON json: String?) -> [RouteSelectionReport] {
        struct Lenient: Decodable {
            var value: RouteSelectionReport?
            init(from decoder: any Decoder) throws { value = try? RouteSelectionReport(from: decoder) }
        }
        guard let json, let entries = try? JSONDecoder().decode([Lenient].self, from: Data(json.utf8)) else { return [] }
        return entries.compactMap(\.value)
    }
}
