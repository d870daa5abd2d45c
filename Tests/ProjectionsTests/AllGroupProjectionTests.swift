@testable import Projections
import RouteModel
import Testing

/// The built-in "All" group is ordinary events: a tenant that gets it late (the repair of an existing tenant),
/// routes distributed to it, enrollments joining it and a routing peer deleted under it project incrementally to
/// the views a rebuild from zero gives, and a route distributed to All reaches every peer but its routing peer.
@Suite struct AllGroupProjectionTests {
    static func script() throws -> [SequencedEvent] {
        var state = TenantState()
        var events: [SequencedEvent] = []
        func run(_ evs: [RouteEvent]) {
            for e in evs {
                state.apply(e)
                events.append(SequencedEvent(sequence: Int64(events.count + 1), event: e))
            }
        }
        func run(_ c: Command) throws { run(try decideOrThrow(c, state)) }
        run([.tenantCreated(TenantCreated(name: "t"))])
        for i in 1...6 {
            try run(.enrollPeer(id: PeerID("p\(i)"), name: "p\(i)", os: i == 5 ? "windows" : "linux", meshIP: "100.64.0.\(i)"))
        }
        try run(.createGroup(id: "clients", name: "clients", peers: ["p2", "p3"]))
        try run(.createRoute(id: "old", RouteInput(networkID: "old", network: "10.1.0.0/16", peer: "p1", groups: ["clients"])))
        // The tenant existed before the group: its repair, then routes to All.
        run(state.allGroupRepair(newID: "all"))
        try run(.createRoute(id: "to-all", RouteInput(networkID: "lan", network: "10.2.0.0/16", peer: "p1", groups: ["all"])))
        try run(.createGroup(id: "gw", name: "gw", peers: ["p4", "p5"]))
        try run(.createRoute(id: "ha", RouteInput(networkID: "dmz", network: "10.3.0.0/16", peerGroups: ["gw"], groups: ["all"])))
        // A late peer joins All in its enrollment; a client leaves; the routing peer is deleted (its routes disabled).
        try run(.enrollPeer(id: "p7", name: "p7", os: "linux", meshIP: "100.64.0.7"))
        try run(.removePeer(id: "p3"))
        try run(.removePeer(id: "p1"))
        return events
    }

    @Test func incrementalViewsEqualARebuildAndAllReachesEveryone() throws {
        let events = try Self.script()
        for size in [1, 2, 3, 5, 40] {
            var incremental = TenantProjection(tenant: "t")
            var i = 0
            while i < events.count {
                let n = min(size, events.count - i)
                _ = try incremental.apply(Array(events[i..<i + n]), mode: .incremental)
                i += n
                var fold = TenantFold(tenant: "t")
                try fold.fold(Array(events[..<i]))
                let rebuilt = fold.result()
                #expect(Set(incremental.stored.keys) == Set(rebuilt.views.keys), "batch size \(size) after \(i)")
                for (p, v) in rebuilt.views { #expect(incremental.stored[p]?.digest == v.digest, "batch size \(size) after \(i): view of \(p)") }
            }
        }
        // Before p1 was deleted: every peer but the routing peer had "lan"; "dmz" reached everyone but p4 (its only
        // Linux routing peer; p5 is Windows and skipped).
        let removals = events.indices.filter { if case .peerRemoved = events[$0].event { true } else { false } }
        let beforeDelete = TenantState(events: events[..<removals[0]].map(\.event))
        for p in beforeDelete.peers.keys.sorted() {
            let keys = view(for: p, in: beforeDelete).haSets.map(\.key.networkID)
            #expect(keys.contains("lan") == (p != "p1"), "\(p): \(keys)")
            #expect(keys.contains("dmz") == (p != "p4"), "\(p): \(keys)")
        }
        // After: "lan" is disabled (no routing peer), "dmz" still reaches every peer but p4, the late p7 included.
        let after = TenantState(events: events.map(\.event))
        #expect(after.route("to-all")?.enabled == false && after.route("to-all")?.hasNoRoutingPeer == true)
        #expect(after.group("all")?.peers == ["p2", "p4", "p5", "p6", "p7"])
        for p in after.peers.keys { #expect(view(for: p, in: after).haSets.map(\.key.networkID) == (p == "p4" ? [] : ["dmz"]), "\(p)") }
    }
}
