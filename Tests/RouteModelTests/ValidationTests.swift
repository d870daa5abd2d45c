@testable import RouteModel
import Testing

@Suite struct RouteValidationTests {
    let state = baseTenant()

    func expectRefused(_ input: RouteInput, kind: ValidationError.Kind, field: String, message: String,
                       in s: TenantState? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let e = refusal(.createRoute(id: "new", input), in: s ?? state, sourceLocation: sourceLocation) else { return }
        #expect(e.kind == kind, sourceLocation: sourceLocation)
        #expect(e.field == field, sourceLocation: sourceLocation)
        #expect(e.message == message, sourceLocation: sourceLocation)
    }

    @Test func validRouteIsStoredMasked() {
        let evs = events(.createRoute(id: "rt1", route(network: "10.0.0.5/24", groups: ["clients", "clients", "others"])), in: state)
        guard case .routeCreated(let e)? = evs.first else { Issue.record("no RouteCreated"); return }
        #expect(e.route.destination == .network(try! Prefix(parsing: "10.0.0.0/24")))
        #expect(e.route.groups == ["clients", "others"])
        #expect(e.route.routingPeers == .peer("r1"))
        #expect(e.route.skipAutoApply == false)
    }

    @Test func networkAndDomainsExclusive() {
        expectRefused(route(network: "10.0.0.0/24", domains: ["a.com"]), kind: .invalidArgument, field: "network",
                      message: "only one of 'network' or 'domains' should be provided")
        expectRefused(route(network: nil, domains: nil), kind: .invalidArgument, field: "network",
                      message: "either 'network' or 'domains' should be provided")
    }

    @Test func peerAndPeerGroupsExclusive() {
        expectRefused(route(peer: "r1", peerGroups: ["routers"]), kind: .invalidArgument, field: "peer",
                      message: "only one of 'peer' or 'peer_groups' should be provided")
        expectRefused(route(peer: nil, peerGroups: nil), kind: .invalidArgument, field: "peer",
                      message: "either 'peer' or 'peer_groups' should be provided")
        // NetBird accepts `peer_groups: []` (routes_handler.go `validateRouteCommon` checks only that the key is there;
        // route.go `validateRoute` asks for no member): a route without routing peer.
        guard case .routeCreated(let e)? = events(.createRoute(id: "none", route(peer: nil, peerGroups: [])), in: state).first else {
            Issue.record("no RouteCreated"); return
        }
        #expect(e.route.routingPeers == .peerGroups([]) && e.route.hasNoRoutingPeer)
    }

    @Test func networkIDLengthInUnicodeScalars() {
        expectRefused(route(String(repeating: "n", count: 41)), kind: .invalidArgument, field: "network_id",
                      message: "identifier should be between 1 and 40 characters (network_id), got 41")
        expectRefused(route(""), kind: .invalidArgument, field: "network_id",
                      message: "identifier should be between 1 and 40 characters (network_id), got 0")
        // 40 scalars of 2 bytes each: 80 bytes, still fine.
        _ = events(.createRoute(id: "x", route(String(repeating: "é", count: 40))), in: state)
        expectRefused(route(String(repeating: "é", count: 41)), kind: .invalidArgument, field: "network_id",
                      message: "identifier should be between 1 and 40 characters (network_id), got 41")
    }

    @Test func metricRange() {
        expectRefused(route(metric: 0), kind: .invalidArgument, field: "metric", message: "metric should be between 1 and 9999, got 0")
        expectRefused(route(metric: 10000), kind: .invalidArgument, field: "metric", message: "metric should be between 1 and 9999, got 10000")
        _ = events(.createRoute(id: "a", route(metric: 1)), in: state)
        _ = events(.createRoute(id: "b", route(metric: 9999)), in: state)
    }

    @Test func descriptionLimit() {
        _ = events(.createRoute(id: "a", route(description: String(repeating: "d", count: 1000))), in: state)
        expectRefused(route(description: String(repeating: "d", count: 1001)), kind: .invalidArgument, field: "description",
                      message: "description must be at most 1000 characters, got 1001")
    }

    @Test func invalidNetwork() {
        expectRefused(route(network: "10.0.0.0/33"), kind: .invalidArgument, field: "network",
                      message: "invalid network 10.0.0.0/33: prefix length 33 is over 32")
        expectRefused(route(network: "banana"), kind: .invalidArgument, field: "network",
                      message: "invalid network banana: missing prefix length (expected address/length)")
    }

    @Test func domains() {
        let evs = events(.createRoute(id: "d", route(network: nil, domains: ["B.example.com", "*.a.example.com", "münchen.de"])), in: state)
        guard case .routeCreated(let e)? = evs.first else { Issue.record("no event"); return }
        #expect(e.route.destination == .domains(["*.a.example.com", "b.example.com", "xn--mnchen-3ya.de"]))
        expectRefused(route(network: nil, domains: []), kind: .invalidArgument, field: "domains",
                      message: "domains must hold 1 to 32 entries, got 0")
        expectRefused(route(network: nil, domains: (0..<33).map { "d\($0).com" }), kind: .invalidArgument, field: "domains",
                      message: "domains must hold 1 to 32 entries, got 33")
        _ = events(.createRoute(id: "d32", route(network: nil, domains: (0..<32).map { "d\($0).com" })), in: state)
        expectRefused(route(network: nil, domains: ["a..com"]), kind: .invalidArgument, field: "domains",
                      message: "invalid domains: a..com: empty label")
        expectRefused(route(network: nil, domains: ["a.com", "A.com"]), kind: .invalidArgument, field: "domains",
                      message: "invalid domains: duplicate domain a.com")
        expectRefused(route(network: nil, domains: [String(repeating: "x", count: 64) + ".com"]), kind: .invalidArgument,
                      field: "domains",
                      message: "invalid domains: \(String(repeating: "x", count: 64)).com: label \"\(String(repeating: "x", count: 64))\" is over 63 characters")
    }

    @Test func groupsMustBeNonEmptyAndExist() {
        expectRefused(route(groups: []), kind: .invalidArgument, field: "groups", message: "groups must not be empty")
        expectRefused(route(groups: ["clients", "nope"]), kind: .invalidArgument, field: "groups", message: "group id nope not found")
        expectRefused(route(peer: nil, peerGroups: ["ghost"]), kind: .invalidArgument, field: "peer_groups",
                      message: "group id ghost not found")
        expectRefused(route(acl: ["ghost"]), kind: .invalidArgument, field: "access_control_groups",
                      message: "group id ghost not found")
    }

    @Test func peerMustExistAndBeLinux() {
        expectRefused(route(peer: "ghost"), kind: .invalidArgument, field: "peer", message: "peer with ID ghost not found")
        expectRefused(route(peer: "w1"), kind: .preconditionFailed, field: "peer",
                      message: "non-linux peers are not supported as network routes: peer w1 runs windows")
        #expect(refusal(.createRoute(id: "x", route(peer: "w1")), in: state)?.httpStatus == 412)
    }

    @Test func peerMayNotServeSameRangeTwice() {
        // Messages and rule after NetBird's route.go `checkRoutePrefixOrDomainsExistForPeers` / `getRouteDescriptor`.
        let s = build([.createRoute(id: "rt1", route("a", network: "10.0.0.0/24", peer: "r1"))], from: state)
        // Same range, same single peer, other network id: accepted as NetBird accepts it.
        _ = events(.createRoute(id: "ok0", route("b", network: "10.0.0.7/24", peer: "r1")), in: s)
        // Same network id: one HA set listing r1 twice, refused.
        expectRefused(route("a", network: "10.0.0.7/24", peer: "r1"), kind: .alreadyExists, field: "peer",
                      message: "failed to add route with prefix 10.0.0.0/24 - peer r1 already has this route (route rt1, same network_id)", in: s)
        // Through a peer group containing r1 (NetBird misses this one; Routeplane refuses it as the reverse order).
        expectRefused(route("b", network: "10.0.0.0/24", peer: nil, peerGroups: ["routers"]), kind: .alreadyExists,
                      field: "peer_groups",
                      message: "failed to add route with prefix 10.0.0.0/24 - peer r1 from the group routers already has this route (route rt1)", in: s)
        // Other peer, or other range: fine.
        _ = events(.createRoute(id: "ok1", route("a", network: "10.0.0.0/24", peer: "r3")), in: s)
        _ = events(.createRoute(id: "ok2", route("a", network: "10.0.1.0/24", peer: "r1")), in: s)
        // Same peer group twice (named by the group's name, as NetBird).
        let s2 = build([.createRoute(id: "pg1", route("p", network: "10.9.0.0/16", peer: nil, peerGroups: ["routers"]))], from: state)
        expectRefused(route("q", network: "10.9.0.0/16", peer: nil, peerGroups: ["routers"]), kind: .alreadyExists,
                      field: "peer_groups",
                      message: "failed to add route with prefix 10.9.0.0/16 - peer group routers already has this route (route pg1)", in: s2)
        // A single peer that is a member of another route's peer group (NetBird refuses it too).
        expectRefused(route("q", network: "10.9.0.0/16", peer: "r2"), kind: .alreadyExists, field: "peer",
                      message: "failed to add route with prefix 10.9.0.0/16 - peer r2 from the group routers already has this route (route pg1)", in: s2)
        // Domain lists, order-insensitive; same single peer under another network id accepted, under the same refused.
        let s3 = build([.createRoute(id: "dm", route(network: nil, domains: ["a.com", "b.com"]))], from: state)
        _ = events(.createRoute(id: "dm2", route("z", network: nil, domains: ["B.com", "a.com"])), in: s3)
        expectRefused(route("net", network: nil, domains: ["B.com", "a.com"]), kind: .alreadyExists, field: "peer",
                      message: "failed to add route with domains [a.com, b.com] - peer r1 already has this route (route dm, same network_id)", in: s3)
        // Updating a route does not conflict with itself.
        _ = events(.updateRoute(id: "rt1", route("a", network: "10.0.0.0/24", peer: "r1", metric: 5)), in: s)
    }

    @Test func createUpdateDeleteIds() {
        let s = build([.createRoute(id: "rt1", route())], from: state)
        let dup = refusal(.createRoute(id: "rt1", route("other", network: "10.1.0.0/16")), in: s)
        #expect(dup == ValidationError(.alreadyExists, field: "id", "route rt1 already exists"))
        #expect(refusal(.createRoute(id: "", route()), in: s) == ValidationError(.invalidArgument, field: "id", "route id must not be empty"))
        #expect(refusal(.updateRoute(id: "nope", route()), in: s) == ValidationError(.notFound, field: "route_id", "route nope not found"))
        #expect(refusal(.deleteRoute(id: "nope"), in: s)?.httpStatus == 404)
        // An update to identical values is no event.
        #expect(events(.updateRoute(id: "rt1", route()), in: s).isEmpty)
    }
}

@Suite struct GroupAndPeerValidationTests {
    let state = baseTenant()

    @Test func groupRules() {
        #expect(refusal(.createGroup(id: "clients", name: "x", peers: []), in: state)
                == ValidationError(.alreadyExists, field: "id", "group clients already exists"))
        #expect(refusal(.createGroup(id: "g9", name: "routers", peers: []), in: state)
                == ValidationError(.alreadyExists, field: "name", "group with name routers already exists"))
        #expect(refusal(.createGroup(id: "g9", name: "", peers: []), in: state)
                == ValidationError(.invalidArgument, field: "name", "name must be 1 to 255 characters, got 0"))
        #expect(refusal(.createGroup(id: "g9", name: "g9", peers: ["ghost"]), in: state)
                == ValidationError(.invalidArgument, field: "peers", "peer with ID ghost not found"))
        #expect(refusal(.updateGroup(id: "ghost", name: "x", peers: []), in: state)
                == ValidationError(.notFound, field: "group_id", "group ghost not found"))
        #expect(refusal(.addGroupPeers(id: "clients", peers: ["ghost"]), in: state)?.message == "peer with ID ghost not found")
        #expect(refusal(.deleteGroup(id: "ghost"), in: state)?.httpStatus == 404)
        // Keeping its own name is fine.
        #expect(events(.updateGroup(id: "clients", name: "clients", peers: ["c1", "c2"]), in: state).isEmpty)
    }

    @Test func deletingAGroupInUseIsRefusedWithNetBirdsLinkError() {
        // NetBird group.go `validateDeleteGroup` → `GroupLinkError{"route", route.NetID}`; groups_handler.go answers 400.
        let s = build([
            .createRoute(id: "b-route", route("b", network: "10.1.0.0/16", groups: ["clients"])),
            .createRoute(id: "a-route", route("a", network: "10.2.0.0/16", peer: nil, peerGroups: ["routers"], groups: ["others"])),
            .createRoute(id: "c-route", route("c", network: "10.3.0.0/16", groups: ["others"], acl: ["empty"])),
        ], from: state)
        #expect(refusal(.deleteGroup(id: "clients"), in: s)
                == ValidationError(.badRequest, field: "group_id", "group has been linked to route: b"))
        #expect(refusal(.deleteGroup(id: "routers"), in: s)?.message == "group has been linked to route: a")
        #expect(refusal(.deleteGroup(id: "others"), in: s)?.message == "group has been linked to route: a")
        #expect(refusal(.deleteGroup(id: "empty"), in: s)?.message == "group has been linked to route: c")
        #expect(refusal(.deleteGroup(id: "empty"), in: s)?.httpStatus == 400)
        let s2 = build([.deleteRoute(id: "c-route")], from: s)
        #expect(events(.deleteGroup(id: "empty"), in: s2).count == 1)
    }

    @Test func peerRules() {
        #expect(refusal(enroll("r1", ip: "100.64.9.9"), in: state) == ValidationError(.alreadyExists, field: "id", "peer r1 already exists"))
        #expect(refusal(enroll("n1", ip: "100.64.0.1"), in: state)
                == ValidationError(.alreadyExists, field: "ip", "mesh ip 100.64.0.1 is already used by peer r1"))
        #expect(refusal(enroll("n1", ip: "100.64.0.300"), in: state)
                == ValidationError(.invalidArgument, field: "ip", "invalid mesh ip 100.64.0.300: IPv4 octet over 255"))
        #expect(refusal(.enrollPeer(id: "n1", name: "", os: "linux", meshIP: "100.64.9.9"), in: state)?.field == "name")
        #expect(refusal(.enrollPeer(id: "n1", name: "n", os: "", meshIP: "100.64.9.9"), in: state)
                == ValidationError(.invalidArgument, field: "os", "os must not be empty"))
        #expect(refusal(.enrollPeer(id: "", name: "n", os: "linux", meshIP: "100.64.9.9"), in: state)?.message == "peer id must not be empty")
        #expect(refusal(.renamePeer(id: "ghost", name: "x"), in: state) == ValidationError(.notFound, field: "peer_id", "peer ghost not found"))
        #expect(refusal(.removePeer(id: "ghost"), in: state)?.httpStatus == 404)
        #expect(events(.renamePeer(id: "r1", name: "r1"), in: state).isEmpty)
        // OS is normalized.
        guard case .peerEnrolled(let e)? = events(.enrollPeer(id: "n1", name: "n", os: "Linux", meshIP: "fd00::5"), in: state).first else {
            Issue.record("no event"); return
        }
        #expect(e.peer.os == "linux" && e.peer.canRoute)
    }

    @Test func removingARoutingPeerDisablesItsRoutes() {
        // NetBird types/account.go `Account.DeletePeer`: routes whose peer it was stay, with `Enabled = false` and
        // `Peer = ""`; the peer is removed (no 409).
        let s = build([
            .createRoute(id: "rt2", route("b", network: "10.1.0.0/16", peer: "r1")),
            .createRoute(id: "rt1", route("a", network: "10.2.0.0/16", peer: "r1")),
            .createRoute(id: "rt3", route("c", network: "10.3.0.0/16", peer: nil, peerGroups: ["routers"])),
        ], from: state)
        let evs = events(.removePeer(id: "r1"), in: s)
        #expect(evs.count == 3)
        guard case .peerRemoved? = evs.last else { Issue.record("PeerRemoved must come last"); return }
        let after = evolve(s, evs)
        for id: RouteID in ["rt1", "rt2"] {
            #expect(after.route(id)?.enabled == false)
            #expect(after.route(id)?.routingPeers == .peerGroups([]))
        }
        #expect(after.route("rt3") == s.route("rt3"))
        #expect(after.peer("r1") == nil && after.routes(routedBy: "r1").isEmpty && after.indexesAreConsistent)
        // A member of a routing peer group leaves its groups only.
        #expect(events(.removePeer(id: "r2"), in: s).count == 1)
    }
}
