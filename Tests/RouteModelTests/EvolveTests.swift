@testable import RouteModel
import Testing

@Suite struct EvolveTests {
    let state = baseTenant()

    func sample() -> Route {
        Route(id: "rt", networkID: "n", destination: .network(try! Prefix(parsing: "10.0.0.0/24")), routingPeers: .peer("r1"),
              metric: 10, masquerade: true, groups: ["clients"], accessControlGroups: ["others"])
    }

    @Test func routeCreatedUpdatedDeleted() {
        let r = sample()
        var s = evolve(state, .routeCreated(RouteCreated(route: r)))
        #expect(s.route("rt") == r)
        #expect(s.routes(using: "clients") == ["rt"])
        #expect(s.routes(using: "others") == ["rt"])
        #expect(s.routes(routedBy: "r1") == ["rt"])
        var r2 = r
        r2.routingPeers = .peerGroups(["routers"])
        r2.groups = ["others"]
        r2.accessControlGroups = []
        s = evolve(s, .routeUpdated(RouteUpdated(old: r, new: r2)))
        #expect(s.route("rt") == r2)
        #expect(s.routes(using: "clients") == [])
        #expect(s.routes(using: "routers") == ["rt"])
        #expect(s.routes(routedBy: "r1") == [])
        #expect(s.indexesAreConsistent)
        s = evolve(s, .routeDeleted(RouteDeleted(route: r2)))
        #expect(s.route("rt") == nil)
        #expect(s.routes(using: "others") == [])
        #expect(s == state)
        #expect(s.indexesAreConsistent)
    }

    @Test func groupEvents() {
        var s = evolve(state, .groupCreated(GroupCreated(group: Group(id: "g", name: "gee", peers: ["c1", "r1"]))))
        #expect(s.group("g")?.peers == ["c1", "r1"])
        #expect(s.groups(of: "c1") == ["clients", "g"])
        #expect(s.group(named: "gee") == "g")
        s = evolve(s, .groupUpdated(GroupUpdated(groupID: "g", oldName: "gee", name: "gamma")))
        #expect(s.group("g")?.name == "gamma")
        #expect(s.group(named: "gee") == nil && s.group(named: "gamma") == "g")
        s = evolve(s, .groupMembersChanged(GroupMembersChanged(groupID: "g", added: ["c3"], removed: ["c1"])))
        #expect(s.group("g")?.peers == ["c3", "r1"])
        #expect(s.groups(of: "c1") == ["clients"])
        #expect(s.groups(of: "c3") == ["g", "others"])
        #expect(s.indexesAreConsistent)
        s = evolve(s, .groupDeleted(GroupDeleted(group: s.group("g")!)))
        #expect(s.group("g") == nil)
        #expect(s.groups(of: "c3") == ["others"])
        #expect(s == state)
        #expect(s.indexesAreConsistent)
    }

    @Test func peerEvents() throws {
        let p = Peer(id: "n1", name: "new", os: "linux", meshIP: try IPAddress(parsing: "fd00::9"))
        var s = evolve(state, .peerEnrolled(PeerEnrolled(peer: p)))
        #expect(s.peer("n1") == p)
        #expect(s.peer(meshIP: try IPAddress(parsing: "fd00::9")) == "n1")
        s = evolve(s, .peerRenamed(PeerRenamed(peerID: "n1", oldName: "new", name: "newer")))
        #expect(s.peer("n1")?.name == "newer")
        s = build([.addGroupPeers(id: "clients", peers: ["n1"]), .addGroupPeers(id: "routers", peers: ["n1"])], from: s)
        #expect(s.groups(of: "n1") == ["clients", "routers"])
        let removal = events(.removePeer(id: "n1"), in: s)
        guard case .peerRemoved(let e)? = removal.first else { Issue.record("no event"); return }
        #expect(e.groups == ["clients", "routers"])
        #expect(e.peer.name == "newer")
        s = evolve(s, removal)
        #expect(s.peer("n1") == nil)
        #expect(s.group("clients")?.peers == ["c1", "c2"])
        #expect(s.peer(meshIP: try IPAddress(parsing: "fd00::9")) == nil)
        #expect(s == state)
        #expect(s.indexesAreConsistent)
    }

    @Test func groupCommandsProduceMembershipEvents() {
        let evs = events(.updateGroup(id: "clients", name: "clients2", peers: ["c2", "c3"]), in: state)
        #expect(evs == [
            .groupUpdated(GroupUpdated(groupID: "clients", oldName: "clients", name: "clients2")),
            .groupMembersChanged(GroupMembersChanged(groupID: "clients", added: ["c3"], removed: ["c1"])),
        ])
        #expect(events(.addGroupPeers(id: "clients", peers: ["c1"]), in: state).isEmpty)
        #expect(events(.removeGroupPeers(id: "clients", peers: ["c3"]), in: state).isEmpty)
        #expect(events(.removeGroupPeers(id: "clients", peers: ["c1", "c3"]), in: state)
                == [.groupMembersChanged(GroupMembersChanged(groupID: "clients", added: [], removed: ["c1"]))])
    }
}

@Suite struct EventCodingTests {
    static func allKinds() -> [RouteEvent] {
        let r = Route(id: "rt", networkID: "ñet/1", description: "a \"quoted\" note\n", destination: .network(try! Prefix(parsing: "fd00::/64")),
                      routingPeers: .peer("r1"), metric: 10, masquerade: false, groups: ["clients"], keepRoute: true,
                      accessControlGroups: ["others"], skipAutoApply: true)
        var r2 = r
        r2.destination = .domains(["*.example.com", "b.example.com"])
        r2.routingPeers = .peerGroups(["routers"])
        let p = Peer(id: "p", name: "peer", os: "linux", meshIP: IPAddress(v4: 0x6440_0001))
        return [
            .routeCreated(RouteCreated(route: r)),
            .routeUpdated(RouteUpdated(old: r, new: r2)),
            .routeDeleted(RouteDeleted(route: r2)),
            .groupCreated(GroupCreated(group: Group(id: "g", name: "G", peers: ["a", "b"]))),
            .groupUpdated(GroupUpdated(groupID: "g", oldName: "G", name: "H")),
            .groupMembersChanged(GroupMembersChanged(groupID: "g", added: ["c"], removed: ["a"])),
            .groupDeleted(GroupDeleted(group: Group(id: "g", name: "H", peers: ["b", "c"]))),
            .peerEnrolled(PeerEnrolled(peer: p)),
            .peerRenamed(PeerRenamed(peerID: "p", oldName: "peer", name: "peer2")),
            .peerDrainingChanged(PeerDrainingChanged(peerID: "p", draining: true)),
            .peerRemoved(PeerRemoved(peer: p, groups: ["g"])),
        ] + accessEvents() + policyEvents()
    }

    @Test func roundTripEveryEventType() throws {
        let all = Self.allKinds()
        #expect(Set(all.map(\.type)) == Set(RouteEvent.knownTypes))
        for e in all {
            let (type, json) = e.encode()
            #expect(type == e.type)
            #expect(e.eventVersion == 1)
            let text = String(decoding: json, as: UTF8.self)
            #expect(text.contains("\"event_version\":1"), "\(text)")
            #expect(try RouteEvent.decode(type: type, json: json) == e)
            // Deterministic bytes.
            #expect(e.encode().json == json)
        }
    }

    @Test func netBirdShapedFieldNames() {
        let (_, json) = Self.allKinds()[0].encode()
        let text = String(decoding: json, as: UTF8.self)
        for key in ["\"network_id\":", "\"network\":\"fd00::/64\"", "\"network_type\":\"IPv6\"", "\"peer\":\"r1\"", "\"keep_route\":true",
                    "\"access_control_groups\":[\"others\"]", "\"skip_auto_apply\":true", "\"masquerade\":false", "\"metric\":10"] {
            #expect(text.contains(key), "\(key) missing in \(text)")
        }
        let (_, updated) = Self.allKinds()[1].encode()
        let u = String(decoding: updated, as: UTF8.self)
        #expect(u.contains("\"old\":{") && u.contains("\"new\":{") && u.contains("\"peer_groups\":[\"routers\"]"))
        #expect(u.contains("\"domains\":[\"*.example.com\",\"b.example.com\"]"))
    }

    @Test func decodingErrors() throws {
        #expect(throws: EventDecodingError.unknownType("NoSuchEvent")) {
            try RouteEvent.decode(type: "NoSuchEvent", json: Array("{}".utf8))
        }
        #expect(throws: EventDecodingError.unsupportedVersion(type: "PeerRenamed", version: 2)) {
            try RouteEvent.decode(type: "PeerRenamed", json: Array(#"{"event_version":2,"peer_id":"p","old_name":"a","name":"b"}"#.utf8))
        }
        #expect(throws: EventDecodingError.self) {
            try RouteEvent.decode(type: "PeerRenamed", json: Array(#"{"event_version":1}"#.utf8))
        }
        // A body without event_version is read as version 1.
        #expect(try RouteEvent.decode(type: "PeerRenamed", json: Array(#"{"peer_id":"p","old_name":"a","name":"b"}"#.utf8))
                == .peerRenamed(PeerRenamed(peerID: "p", oldName: "a", name: "b")))
    }
}

/// One of each access event (tenants, tokens, setup keys).
func accessEvents() -> [RouteEvent] {
    let key = SetupKey(id: "k", name: "office", type: .oneOff, expiresAt: 1_900_000_000, autoGroups: ["g"], usageLimit: 0, createdAt: 1_800_000_000)
    var revoked = key
    revoked.revoked = true
    return [
        .tenantCreated(TenantCreated(name: "acme")),
        .tokenCreated(TokenCreated(tokenID: "t", name: "ci")),
        .tokenRevoked(TokenRevoked(tokenID: "t", name: "ci")),
        .setupKeyCreated(SetupKeyCreated(setupKey: key)),
        .setupKeyUpdated(SetupKeyUpdated(old: key, new: revoked)),
        .setupKeyDeleted(SetupKeyDeleted(setupKey: revoked)),
        .peerEnrolled(PeerEnrolled(peer: Peer(id: "q", name: "q", os: "linux", meshIP: IPAddress(v4: 0x6440_0002)), setupKeyID: "k", enrolledAt: 1_800_000_001)),
    ]
}
