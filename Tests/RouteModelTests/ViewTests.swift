#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import JSONKit
@testable import RouteModel
import TestSupport
import Testing

@Suite struct ViewTests {
    let base = baseTenant()

    @Test func haSetListsEveryCandidateSortedByMetric() throws {
        let s = build([
            .createRoute(id: "b", route("lan", network: "10.20.0.0/24", peer: "r2", metric: 200)),
            .createRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r1", metric: 100, masquerade: false, keepRoute: true)),
            .createRoute(id: "c", route("other-name", network: "10.20.0.0/24", peer: "r3", metric: 50)),
        ], from: base)
        let v = view(for: "c1", in: s)
        #expect(v.haSets.map(\.key.networkID) == ["lan", "other-name"])
        let lan = v.haSets[0]
        #expect(lan.key.destination == .network(try Prefix(parsing: "10.20.0.0/24")))
        #expect(lan.candidates == [
            RouteCandidate(peerID: "r1", meshIP: try IPAddress(parsing: "100.64.0.1"), metric: 100, masquerade: false,
                           keepRoute: true, skipAutoApply: false, routeID: "a"),
            RouteCandidate(peerID: "r2", meshIP: try IPAddress(parsing: "100.64.0.2"), metric: 200, masquerade: true,
                           keepRoute: false, skipAutoApply: false, routeID: "b"),
        ])
        #expect(v.forwards.isEmpty)
        // Peers outside the distribution group get nothing.
        #expect(view(for: "c3", in: s).isEmpty)
        // Routing peers forward, with the masquerade flag.
        #expect(view(for: "r1", in: s).forwards == [ForwardedRoute(routeID: "a", key: lan.key, masquerade: false)])
        #expect(view(for: "r2", in: s).forwards.map(\.masquerade) == [true])
    }

    @Test func peerGroupExpandsToLinuxMembers() {
        let s = build([
            .addGroupPeers(id: "routers", peers: ["w1", "r3"]),
            .createRoute(id: "pg", route("lan", network: "10.30.0.0/16", peer: nil, peerGroups: ["routers"], metric: 10)),
        ], from: base)
        let v = view(for: "c2", in: s)
        #expect(v.haSets.count == 1)
        #expect(v.haSets[0].candidates.map(\.peerID) == ["r1", "r2", "r3"])
        // A windows member is never a candidate and forwards nothing.
        #expect(view(for: "w1", in: s).isEmpty)
        #expect(view(for: "r3", in: s).forwards.map(\.routeID) == ["pg"])
    }

    @Test func routingPeerInDistributionGroupDoesNotGetItsOwnHASet() {
        let s = build([
            .addGroupPeers(id: "clients", peers: ["r1", "r3"]),
            .createRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r1", metric: 100)),
            .createRoute(id: "b", route("lan", network: "10.20.0.0/24", peer: "r2", metric: 200)),
            .createRoute(id: "other", route("lan2", network: "10.21.0.0/24", peer: "r2")),
        ], from: base)
        let r1 = view(for: "r1", in: s)
        // r1 serves the "lan" HA set, so it gets none of its candidates (not even r2's) ...
        #expect(r1.haSets.map(\.key.networkID) == ["lan2"])
        #expect(r1.forwards.map(\.routeID) == ["a"])
        // ... while r3 (a plain client that could route) gets both.
        #expect(view(for: "r3", in: s).haSets.first?.candidates.map(\.peerID) == ["r1", "r2"])
        // Same range under another network id is another HA set: r1 still receives it.
        let s2 = build([.createRoute(id: "z", route("lan-z", network: "10.20.0.0/24", peer: "r3"))], from: s)
        #expect(view(for: "r1", in: s2).haSets.map(\.key.networkID) == ["lan-z", "lan2"])
    }

    @Test func disabledRouteIsInNoView() {
        let s = build([
            .createRoute(id: "off", route("lan", network: "10.20.0.0/24", peer: "r1", enabled: false)),
        ], from: base)
        #expect(view(for: "c1", in: s).isEmpty)
        #expect(view(for: "r1", in: s).isEmpty)
        // A disabled route of an HA set the peer serves does not hide the enabled ones.
        let s2 = build([
            .addGroupPeers(id: "clients", peers: ["r1"]),
            .createRoute(id: "on", route("lan", network: "10.20.0.0/24", peer: "r2")),
        ], from: s)
        #expect(view(for: "r1", in: s2).haSets.first?.candidates.map(\.peerID) == ["r2"])
    }

    @Test func ipv6AndDomainRoutes() throws {
        let s = build([
            .createRoute(id: "v6", route("v6net", network: "fd00:1::5/48", peer: "r1")),
            .createRoute(id: "dns", route("dns", network: nil, domains: ["Example.com", "*.corp.example"], peer: "r2")),
        ], from: base)
        let v = view(for: "c1", in: s)
        #expect(v.haSets.map(\.key.destination) == [
            .domains(["*.corp.example", "example.com"]),
            .network(try Prefix(parsing: "fd00:1::/48")),
        ])
        let text = String(decoding: v.canonicalJSON(), as: UTF8.self)
        #expect(text.contains(#""domains":["*.corp.example","example.com"],"network_id":"dns","network_type":"Domain""#))
        #expect(text.contains(#""network":"fd00:1::/48","network_id":"v6net","network_type":"IPv6""#))
    }

    @Test func accessControlGroupsDoNotGateClients() {
        let s = build([
            .createRoute(id: "acl", route("lan", network: "10.20.0.0/24", peer: "r1", groups: ["clients", "others"], acl: ["others"])),
        ], from: base)
        // As in NetBird, distribution groups decide who receives the route; access-control groups are the destination
        // of policies, enforced by the routing peer (no policy yet: it forwards nothing).
        #expect(view(for: "c1", in: s).haSets.count == 1)
        #expect(view(for: "c3", in: s).haSets.count == 1)
        #expect(view(for: "r1", in: s).forwards.map(\.rules) == [[]])
    }

    @Test func emptyDistributionGroupReachesNobody() {
        let s = build([.createRoute(id: "e", route(groups: ["empty"]))], from: base)
        for p in ["c1", "c2", "c3", "w1", "r2", "r3"] { #expect(view(for: PeerID(p), in: s).isEmpty) }
        #expect(view(for: "r1", in: s).forwards.count == 1)
    }

    @Test func emptyAndMissingPeersHaveEncodableEmptyViews() {
        let ghost = view(for: "ghost", in: base)
        #expect(ghost == .empty("ghost"))
        #expect(String(decoding: ghost.canonicalJSON(), as: UTF8.self) == #"{"forwards":[],"ha_sets":[],"peer_id":"ghost"}"#)
        #expect(ghost.digest.count == 64)
        #expect(view(for: "c1", in: base).canonicalJSON() == PeerRouteView.empty("c1").canonicalJSON())
    }

    @Test func canonicalJSONExactBytesAndDecoding() throws {
        let s = build([
            .addGroupPeers(id: "clients", peers: ["r2"]),
            .createRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r1", metric: 100)),
            .createRoute(id: "d", route("dns", network: nil, domains: ["x.com"], peer: "r2", masquerade: false)),
        ], from: base)
        let v = view(for: "r2", in: s)
        let expected = #"{"forwards":[{"domains":["x.com"],"masquerade":false,"network_id":"dns","network_type":"Domain","route_id":"d"}],"#
            + #""ha_sets":[{"candidates":[{"keep_route":false,"masquerade":true,"mesh_ip":"100.64.0.1","metric":100,"peer_id":"r1","route_id":"a","skip_auto_apply":false}],"#
            + #""network":"10.20.0.0/24","network_id":"lan","network_type":"IPv4"}],"peer_id":"r2"}"#
        #expect(String(decoding: v.canonicalJSON(), as: UTF8.self) == expected)
        let decoded = try JSONDecoder().decode(PeerRouteView.self, from: Data(v.canonicalJSON()))
        #expect(decoded == v)
        let r1 = view(for: "r1", in: s)
        #expect(String(decoding: r1.canonicalJSON(), as: UTF8.self).contains(#"{"masquerade":true,"network":"10.20.0.0/24","network_id":"lan""#))
        #expect(try JSONDecoder().decode(PeerRouteView.self, from: Data(r1.canonicalJSON())) == r1)
        // Same view, same digest; different view, different digest.
        #expect(v.digest == view(for: "r2", in: s).digest)
        #expect(v.digest != r1.digest)
        #expect(v.encoded().digest == v.digest)
    }

    @Test func stringsAreEscapedOneWay() {
        var w = JSONWriter()
        w.string("a\"b\\c\n\t\u{01}é/")
        #expect(String(decoding: w.bytes, as: UTF8.self) == #""a\"b\\c\n\t\u0001é/""#)
    }
}

@Suite struct CanonicalWriterTests {
    @Test func fastPathsMatchDescriptions() throws {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<500 {
            let a = IPAddress(v4: UInt32(truncatingIfNeeded: rng.next()))
            let p = Prefix(a, length: Int.random(in: 0...32, using: &rng))
            var w = JSONWriter()
            w.address(a); w.raw(" "); w.prefix(p); w.raw(" ")
            let n = Int(truncatingIfNeeded: rng.next() >> UInt64.random(in: 0...63, using: &rng)) * (Bool.random(using: &rng) ? -1 : 1)
            w.int(n)
            #expect(String(decoding: w.bytes, as: UTF8.self) == "\"\(a)\" \"\(p)\" \(n)")
        }
        var w = JSONWriter()
        w.int(Int.min); w.raw(" "); w.int(0); w.raw(" "); w.prefix(try Prefix(parsing: "fd00::/8"))
        #expect(String(decoding: w.bytes, as: UTF8.self) == "\(Int.min) 0 \"fd00::/8\"")
    }
}
