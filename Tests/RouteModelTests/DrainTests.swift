#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
@testable import RouteModel
import Testing

/// Operator drain mode: `setPeerDraining` → `PeerDrainingChanged` → `Peer.draining` → the `draining`
/// flag on the peer's candidate entries in its clients' views.
@Suite struct DrainTests {
    /// Route "a" (lan, r1, metric 100) and "b" (lan, r2, metric 200) to clients; "pg" (dc, peer group
    /// routers = r1, r2) to others.
    let base = build([
        .createRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r1", metric: 100)),
        .createRoute(id: "b", route("lan", network: "10.20.0.0/24", peer: "r2", metric: 200)),
        .createRoute(id: "pg", route("dc", network: "10.30.0.0/16", peer: nil, peerGroups: ["routers"], groups: ["others"])),
    ], from: baseTenant())

    @Test func decideAndEvolve() {
        #expect(base.peer("r1")?.draining == false)
        let drain = events(.setPeerDraining(id: "r1", draining: true), in: base)
        #expect(drain == [.peerDrainingChanged(PeerDrainingChanged(peerID: "r1", draining: true))])
        let drained = evolve(base, drain)
        #expect(drained.peer("r1")?.draining == true)
        #expect(drained.indexesAreConsistent)
        // No event when unchanged.
        #expect(events(.setPeerDraining(id: "r1", draining: true), in: drained).isEmpty)
        #expect(events(.setPeerDraining(id: "r2", draining: false), in: base).isEmpty)
        // Unknown peer: 404 on peer_id.
        let refused = refusal(.setPeerDraining(id: "ghost", draining: true), in: base)
        #expect(refused?.kind == .notFound)
        #expect(refused?.kind.httpStatus == 404)
        #expect(refused?.field == "peer_id")
        // Undrain goes back to the state before.
        let undrained = evolve(drained, events(.setPeerDraining(id: "r1", draining: false), in: drained))
        #expect(undrained == base)
        // The flag rides along when the peer is removed (the event carries it whole).
        let lone = build([enroll("r9", ip: "100.64.9.9"), .setPeerDraining(id: "r9", draining: true)], from: base)
        guard case .peerRemoved(let e)? = events(.removePeer(id: "r9"), in: lone).first else { Issue.record("no removal"); return }
        #expect(e.peer.draining)
    }

    @Test func viewMarksTheDrainedCandidate() throws {
        let s = build([.setPeerDraining(id: "r1", draining: true)], from: base)
        let v = view(for: "c1", in: s)
        #expect(v.haSets.count == 1)
        // Order unchanged (metric, peer id, route id): the agent, not the view, demotes a draining peer.
        #expect(v.haSets[0].candidates.map(\.peerID) == ["r1", "r2"])
        #expect(v.haSets[0].candidates.map(\.draining) == [true, false])
        // Peer groups too.
        #expect(view(for: "c3", in: s).haSets[0].candidates.map(\.draining) == [true, false])
        // Canonical JSON: `"draining":true` first in the candidate object (keys in byte order), absent when false.
        let text = String(decoding: v.canonicalJSON(), as: UTF8.self)
        #expect(text.contains(#"{"candidates":[{"draining":true,"keep_route":false,"masquerade":true,"mesh_ip":"100.64.0.1","metric":100,"peer_id":"r1","route_id":"a","skip_auto_apply":false},{"keep_route":false,"#),
                "\(text)")
        #expect(try JSONDecoder().decode(PeerRouteView.self, from: Data(v.canonicalJSON())) == v)
        // The digest moves with the flag, and comes back with it.
        #expect(v.digest != view(for: "c1", in: base).digest)
        let back = build([.setPeerDraining(id: "r1", draining: false)], from: s)
        #expect(view(for: "c1", in: back).canonicalJSON() == view(for: "c1", in: base).canonicalJSON())
        // The routing peer's own forwards do not carry it.
        #expect(view(for: "r1", in: s).forwards == view(for: "r1", in: base).forwards)
    }

    @Test func impactIsTheClientsOfTheRoutesItServes() {
        func affected(_ c: Command, in s: TenantState) -> Set<PeerID> {
            var state = s
            var out = Set<PeerID>()
            for e in events(c, in: s) { state.apply(e, affected: &out) }
            return out
        }
        // r1 routes "a" directly (clients c1, c2) and "pg" through the routers group (others: c3).
        #expect(affected(.setPeerDraining(id: "r1", draining: true), in: base) == ["c1", "c2", "c3"])
        // A peer that routes nothing, or cannot route, is in no view as a candidate.
        #expect(affected(.setPeerDraining(id: "r3", draining: true), in: base).isEmpty)
        #expect(affected(.setPeerDraining(id: "c1", draining: true), in: base).isEmpty)
        // A disabled route reaches nobody.
        let off = build([.createRoute(id: "off", route("x", network: "10.99.0.0/16", peer: "r3", enabled: false))], from: base)
        #expect(affected(.setPeerDraining(id: "r3", draining: true), in: off).isEmpty)
    }

    /// Events stored before drain mode existed: peers without the key decode as not draining, through
    /// both the hand-written reader and the Codable reference; a peer never drained encodes as before.
    @Test func oldEventsDecodeWithoutTheKey() throws {
        let old = #"{"event_version":1,"peer":{"id":"p","ip":"100.64.0.1","name":"n","os":"linux"}}"#
        let expected = RouteEvent.peerEnrolled(PeerEnrolled(peer: Peer(id: "p", name: "n", os: "linux", meshIP: try IPAddress(parsing: "100.64.0.1"))))
        #expect(try RouteEvent.decode(type: "PeerEnrolled", json: Array(old.utf8)) == expected)
        #expect(try RouteEvent.decodeWithFoundation(type: "PeerEnrolled", json: Array(old.utf8)) == expected)
        #expect(String(decoding: expected.encode().json, as: UTF8.self) == old)
        let removed = #"{"event_version":1,"peer":{"id":"p","ip":"100.64.0.1","name":"n","os":"linux"},"removed_from_groups":["g"]}"#
        guard case .peerRemoved(let e) = try RouteEvent.decode(type: "PeerRemoved", json: Array(removed.utf8)) else { Issue.record("not a removal"); return }
        #expect(!e.peer.draining)
        // A drained peer carries the key.
        var drained = Peer(id: "p", name: "n", os: "linux", meshIP: try IPAddress(parsing: "100.64.0.1"))
        drained.draining = true
        let json = RouteEvent.peerEnrolled(PeerEnrolled(peer: drained)).encode().json
        #expect(String(decoding: json, as: UTF8.self).contains(#""draining":true"#))
        #expect(try RouteEvent.decode(type: "PeerEnrolled", json: json) == .peerEnrolled(PeerEnrolled(peer: drained)))
        // The new event's shape.
        let changed = RouteEvent.peerDrainingChanged(PeerDrainingChanged(peerID: "p", draining: true))
        #expect(changed.type == "PeerDrainingChanged" && changed.eventVersion == 1)
        #expect(String(decoding: changed.encode().json, as: UTF8.self) == #"{"draining":true,"event_version":1,"peer_id":"p"}"#)
        // Views published before drain mode: candidates without the key are not draining.
        let view = #"{"forwards":[],"ha_sets":[{"candidates":[{"keep_route":false,"masquerade":true,"mesh_ip":"100.64.0.1","metric":100,"peer_id":"r1","route_id":"a","skip_auto_apply":false}],"network":"10.20.0.0/24","network_id":"lan","network_type":"IPv4"}],"peer_id":"c1"}"#
        let decoded = try JSONDecoder().decode(PeerRouteView.self, from: Data(view.utf8))
        #expect(decoded.haSets.first?.candidates.first?.draining == false)
        #expect(String(decoding: decoded.canonicalJSON(), as: UTF8.self) == view)
    }
}
