import Foundation
import RouteModel
@testable import ViewDistribution
@testable import ViewTransport
import Testing

/// The `shadowed` list of an agent's status message: optional and additive, so agents and controllers of either
/// age keep understanding each other (pure; no I/O).
@Suite struct ShadowedRouteStatusTests {
    let range = ShadowedRouteStatus(networkID: "lan-b", destination: .network(try! Prefix(parsing: "10.20.0.0/24")),
                                    routeIDs: ["rb"], shadowedByNetworkID: "lan-a", shadowedByRouteID: "ra")
    let domains = ShadowedRouteStatus(networkID: "web-2", destination: .domains(["example.com"]), routeIDs: ["rw2"],
                                      shadowedByNetworkID: "web-1", shadowedByRouteID: nil)

    /// The JSON of the list as the agent writes it into its status message.
    func json(_ entries: [ShadowedRouteStatus]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: entries.map(\.jsonObject), options: [.sortedKeys]), as: UTF8.self)
    }

    @Test func agentEntriesRoundTripThroughTheRecorder() throws {
        let status = #"{"tenant_id":"t1","peer_id":"p1","applied_version":3,"shadowed":"# + (try json([range, domains])) + "}"
        let report = try PeerStatusRecorder.report(subject: "routeplane.t1.peer.p1.status", payload: Array(status.utf8)).get()
        let stored = try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as? [String: Any]
        let list = try JSONSerialization.data(withJSONObject: try #require(stored?["shadowed"]))
        #expect(ShadowedRouteStatus.list(fromJSON: String(decoding: list, as: UTF8.self)) == [range, domains])
        #expect(Set(range.jsonObject.keys) == ["network", "network_id", "route_ids", "shadowed_by_network_id", "shadowed_by_route_id"])
        #expect(Set(domains.jsonObject.keys) == ["domains", "network_id", "route_ids", "shadowed_by_network_id"])
    }

    @Test func missingOrMalformedListsReadAsEmptyWithoutHidingGoodEntries() throws {
        #expect(ShadowedRouteStatus.list(fromJSON: nil).isEmpty, "an agent from before the list sends none")
        #expect(ShadowedRouteStatus.list(fromJSON: "null").isEmpty)
        #expect(ShadowedRouteStatus.list(fromJSON: #"{"a":1}"#).isEmpty)
        let mixed = #"[{"network_id":"x"},"#.dropLast() + "," + (try json([range])).dropFirst()
        #expect(ShadowedRouteStatus.list(fromJSON: String(mixed)) == [range], "an entry that does not decode is left out")
        // A later agent may add keys: they are ignored.
        #expect(ShadowedRouteStatus.list(fromJSON: #"[{"network_id":"lan-b","network":"10.20.0.0/24","shadowed_by_network_id":"lan-a","since":5}]"#)
                == [ShadowedRouteStatus(networkID: "lan-b", destination: .network(try Prefix(parsing: "10.20.0.0/24")), routeIDs: [],
                                        shadowedByNetworkID: "lan-a", shadowedByRouteID: nil)])
    }
}
