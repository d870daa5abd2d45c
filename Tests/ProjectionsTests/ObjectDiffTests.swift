import Projections
import RouteModel
import Testing

/// Field-by-field object differences between two tenant states.
@Suite struct ObjectDiffTests {
    static func state(_ commands: [Command]) throws -> TenantState {
        var s = TenantState()
        for c in commands { s = evolve(s, try decide(c, s).get()) }
        return s
    }

    static let base: [Command] = [
        .enrollPeer(id: PeerID("p1"), name: "one", os: "linux", meshIP: "100.64.0.1"),
        .createGroup(id: GroupID("g1"), name: "lan", peers: [PeerID("p1")]),
        .createRoute(id: RouteID("r1"), RouteInput(networkID: "office", network: "10.0.0.0/24", peer: PeerID("p1"),
                                                   metric: 100, masquerade: true, groups: [GroupID("g1")], enabled: true)),
    ]

    @Test func sameStateHasNoChanges() throws {
        let s = try Self.state(Self.base)
        #expect(ObjectDiff.between(s, s).isEmpty)
    }

    /// A changed metric is one field, old → new, integers as integers; nothing else of the route is listed.
    @Test func changedRouteListsOnlyTheChangedFields() throws {
        let a = try Self.state(Self.base)
        let b = try Self.state(Self.base + [
            .updateRoute(id: RouteID("r1"), RouteInput(networkID: "office", network: "10.0.0.0/24", peer: PeerID("p1"),
                                                       metric: 200, masquerade: true, groups: [GroupID("g1")], enabled: true)),
        ])
        let changes = ObjectDiff.between(a, b)
        #expect(changes == [ObjectChange(kind: .route, id: "r1", change: .changed,
                                         fields: [ObjectFieldChange(field: "metric", old: .integer(100), new: .integer(200))])])
    }

    /// Added and removed objects list every field, on the side they exist; a rename touches only `name`.
    @Test func addedRemovedAndRenamed() throws {
        let a = try Self.state(Self.base)
        let b = try Self.state(Self.base + [
            .deleteRoute(id: RouteID("r1")),
            .renamePeer(id: PeerID("p1"), name: "uno"),
            .createGroup(id: GroupID("g2"), name: "wan", peers: []),
        ])
        let changes = ObjectDiff.between(a, b)
        #expect(changes.map { "\($0.kind.rawValue) \($0.id) \($0.change.rawValue)" } == ["group g2 added", "peer p1 changed", "route r1 removed"])
        let added = changes[0]
        #expect(added.fields.allSatisfy { $0.old == nil && $0.new != nil })
        #expect(added.fields.contains(ObjectFieldChange(field: "name", old: nil, new: .string("wan"))))
        #expect(changes[1].fields == [ObjectFieldChange(field: "name", old: .string("one"), new: .string("uno"))])
        #expect(changes[2].fields.allSatisfy { $0.old != nil && $0.new == nil })
        #expect(changes[2].fields.contains { $0.field == "network" && $0.old == .string("10.0.0.0/24") })
    }

    /// Group membership is a field (the sorted member list).
    @Test func membershipIsAField() throws {
        let a = try Self.state(Self.base)
        let b = try Self.state(Self.base + [
            .enrollPeer(id: PeerID("p2"), name: "two", os: "linux", meshIP: "100.64.0.2"),
            .addGroupPeers(id: GroupID("g1"), peers: [PeerID("p2")]),
        ])
        let g = ObjectDiff.between(a, b).first { $0.kind == .group }
        #expect(g?.fields == [ObjectFieldChange(field: "peers", old: .array([.string("p1")]), new: .array([.string("p1"), .string("p2")]))])
    }
}
