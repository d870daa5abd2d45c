@testable import RouteModel
import Testing

/// affectedPeers is a superset of the changed views (property tests); these pin down that it
/// stays small: the peers a change touches, not the tenant.
@Suite struct ImpactTests {
    let base = build([
        .createRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r1", groups: ["clients"])),
        .createRoute(id: "pg", route("dc", network: "10.30.0.0/16", peer: nil, peerGroups: ["routers"], groups: ["others"])),
    ], from: baseTenant())

    func affected(_ c: Command, in s: TenantState) -> Set<PeerID> {
        var state = s
        var out = Set<PeerID>()
        for e in events(c, in: s) { state.apply(e, affected: &out) }
        return out
    }

    @Test func routeChangeTouchesItsClientsAndRoutingPeers() {
        #expect(affected(.updateRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r1", metric: 7, groups: ["clients"])), in: base)
                == ["c1", "c2", "r1"])
        // Moving the route to another routing peer touches both.
        #expect(affected(.updateRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r3", groups: ["clients"])), in: base)
                == ["c1", "c2", "r1", "r3"])
        #expect(affected(.deleteRoute(id: "pg"), in: base) == ["c3", "r1", "r2"])
    }

    @Test func descriptionOnlyAndDisabledRoutesTouchNobody() {
        #expect(affected(.updateRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r1", groups: ["clients"], description: "new")), in: base).isEmpty)
        let off = build([.createRoute(id: "off", route("x", network: "10.99.0.0/16", peer: "r2", enabled: false))], from: base)
        #expect(affected(.updateRoute(id: "off", route("x", network: "10.98.0.0/16", peer: "r2", enabled: false)), in: off).isEmpty)
    }

    @Test func membershipChanges() {
        // A client joining a distribution group: only itself.
        #expect(affected(.addGroupPeers(id: "clients", peers: ["c3"]), in: base) == ["c3"])
        // A group no route uses: nobody.
        #expect(affected(.addGroupPeers(id: "empty", peers: ["c3"]), in: base).isEmpty)
        // A routing peer joining a peer group: itself and the clients of the routes it now serves.
        #expect(affected(.addGroupPeers(id: "routers", peers: ["r3"]), in: base) == ["r3", "c3"])
        // A windows peer joining a peer group is never a candidate: only itself.
        #expect(affected(.addGroupPeers(id: "routers", peers: ["w1"]), in: base) == ["w1"])
        // Removing a member of a routing peer group.
        #expect(affected(.removePeer(id: "r2"), in: base) == ["r2", "c3"])
        #expect(affected(.renamePeer(id: "c1", name: "x"), in: base).isEmpty)
        #expect(affected(enroll("n1", ip: "100.64.9.9"), in: base) == ["n1"])
    }
}
