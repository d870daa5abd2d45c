@testable import RouteModel
import Testing

/// The pure rules behind NetBird compatibility: domain spelling, the built-in "All" group, group links,
/// non-Linux members of peer groups. Each expected value cites the NetBird code it follows.
@Suite struct NetBirdCompatRulesTests {
    let state = baseTenant()

    // MARK: domains

    @Test func domainsTakeUnderscoresWhereNetBirdsRegexDoes() throws {
        // shared/management/domain/validate.go `domainRegex`: `_` inside a label and first in any label but the
        // last; a label ends with a letter or digit.
        for ok in ["_acme-challenge.example.com", "a_b.example.com", "_.example.com", "x_y_z.b_c.org", "*._srv.example.com"] {
            #expect(throws: Never.self, "\(ok)") { try DomainName.canonical(ok).get() }
        }
        for bad in ["example._com", "a_.example.com", "example.com_", "_", "-a.example.com", "a.-b.com"] {
            #expect(throws: DomainNameError.self, "\(bad)") { try DomainName.canonical(bad).get() }
        }
        #expect(try DomainName.canonical("_Acme.Example.COM").get() == "_acme.example.com")
    }

    @Test func domainsAreKeptAsWrittenBesideTheCanonicalList() {
        // NetBird answers domains in Unicode (routes_handler.go `toRouteResponse` → domain.List.ToStringList);
        // Routeplane keeps the user's own spelling and order for answers, the canonical list for rules and views.
        let written = ["Bücher.Example", "a_b.example.com"]
        guard case .routeCreated(let e)? = events(.createRoute(id: "d", route(network: nil, domains: written)), in: state).first else {
            Issue.record("no RouteCreated"); return
        }
        #expect(e.route.destination == .domains(["a_b.example.com", "xn--bcher-kva.example"]))
        #expect(e.route.writtenDomains == written && e.route.displayDomains == written)
        // Written in canonical form and order: nothing extra is stored.
        guard case .routeCreated(let plain)? = events(.createRoute(id: "p", route("p", network: nil, domains: ["a.com", "b.com"])), in: state).first else {
            Issue.record("no RouteCreated"); return
        }
        #expect(plain.route.writtenDomains == nil && plain.route.displayDomains == ["a.com", "b.com"])
        #expect(!String(decoding: RouteEvent.routeCreated(plain).encode().json, as: UTF8.self).contains("written_domains"))
        // The same names in another spelling are the same destination (one HA set; the duplicate rule applies).
        let s = build([.createRoute(id: "d", route(network: nil, domains: written))], from: state)
        #expect(refusal(.createRoute(id: "e", route(network: nil, domains: ["xn--bcher-kva.example", "A_B.example.com"])), in: s)?.kind == .alreadyExists)
    }

    // MARK: the All group

    @Test func enrollmentJoinsTheAllGroupInTheSameEvents() {
        // management/server/peer.go `AddPeer`: `transaction.AddPeerToAllGroup` in the enrollment's transaction.
        let s = evolve(state, state.allGroupRepair(newID: "all"))
        #expect(s.allGroupID == "all" && s.group("all")?.peers.count == s.peers.count)
        let evs = events(enroll("n1", ip: "100.64.9.1"), in: s)
        #expect(evs == [.peerEnrolled(PeerEnrolled(peer: Peer(id: "n1", name: "n1", os: "linux", meshIP: IPAddress(v4: 0x6440_0901)))),
                        .groupMembersChanged(GroupMembersChanged(groupID: "all", added: ["n1"], removed: []))])
        #expect(evolve(s, evs).allGroupRepair(newID: "x").isEmpty)
        // Removing a peer takes it out of All with its other groups.
        let removed = evolve(evolve(s, evs), events(.removePeer(id: "n1"), in: evolve(s, evs)))
        #expect(removed.group("all")?.peers.contains("n1") == false)
    }

    @Test func allGroupRepairGivesEveryTenantTheGroupOnce() {
        // A tenant created before the group existed: created with every peer (NetBird creates it with the account).
        let repair = state.allGroupRepair(newID: "g-all")
        #expect(repair == [.groupCreated(GroupCreated(group: Group(id: "g-all", name: "All", peers: state.peers.keys.sorted())))])
        let s = evolve(state, repair)
        #expect(s.allGroupRepair(newID: "other").isEmpty)
        // A tenant whose "All" lacks peers (written by an older controller) gets them added, not a second group.
        let partial = TenantState(events: [
            .peerEnrolled(PeerEnrolled(peer: Peer(id: "a", name: "a", os: "linux", meshIP: IPAddress(v4: 1)))),
            .groupCreated(GroupCreated(group: Group(id: "g", name: "All", peers: []))),
            .peerEnrolled(PeerEnrolled(peer: Peer(id: "b", name: "b", os: "linux", meshIP: IPAddress(v4: 2)))),
        ])
        #expect(partial.allGroupRepair(newID: "x") == [.groupMembersChanged(GroupMembersChanged(groupID: "g", added: ["a", "b"], removed: []))])
        // No tenant yet: nothing.
        #expect(TenantState().allGroupRepair(newID: "x").isEmpty)
        // A new tenant (only TenantCreated): an empty All.
        let fresh = TenantState(events: [.tenantCreated(TenantCreated(name: "t"))])
        #expect(fresh.allGroupRepair(newID: "x") == [.groupCreated(GroupCreated(group: Group(id: "x", name: "All", peers: [])))])
    }

    @Test func theAllGroupCannotBeDeletedUpdatedOrTaken() {
        let s = evolve(state, state.allGroupRepair(newID: "all"))
        // management/server/group.go `validateDeleteGroup`: InvalidArgument "deleting group ALL is not allowed",
        // answered 400 by groups_handler.go `deleteGroup` (joined errors → WriteErrorResponse 400).
        #expect(refusal(.deleteGroup(id: "all"), in: s) == ValidationError(.badRequest, field: "group_id", "deleting group ALL is not allowed"))
        // groups_handler.go `updateGroup`: InvalidArgument (422) "updating group ALL is not allowed", whatever the body.
        #expect(refusal(.updateGroup(id: "all", name: "Everyone", peers: []), in: s)
                == ValidationError(.invalidArgument, field: "group_id", "updating group ALL is not allowed"))
        #expect(refusal(.updateGroup(id: "all", name: "All", peers: s.group("all")!.peers), in: s)?.httpStatus == 422)
        #expect(refusal(.removeGroupPeers(id: "all", peers: ["r1"]), in: s)?.message == "updating group ALL is not allowed")
        // group.go `validateNewGroup`: "group with name All already exists" (409) for a second group or a rename.
        #expect(refusal(.createGroup(id: "g2", name: "All", peers: []), in: s)
                == ValidationError(.alreadyExists, field: "name", "group with name All already exists"))
        #expect(refusal(.updateGroup(id: "clients", name: "All", peers: []), in: s)?.kind == .alreadyExists)
        // A route distributed to All reaches every peer that is not its routing peer.
        let routed = build([.createRoute(id: "to-all", route(groups: ["all"]))], from: s)
        for p in routed.peers.keys where p != "r1" {
            #expect(view(for: p, in: routed).haSets.map(\.key.networkID) == ["net"], "\(p)")
        }
    }

    @Test func aGroupLinkedToASetupKeyCannotBeDeleted() {
        // group.go `validateDeleteGroup`: route first, then `GroupLinkError{"setup key", key.Name}` → 400.
        let s = evolve(state, try! decideOrThrow(AccessCommand.createSetupKey(id: "k1", name: "office key", type: .reusable, expiresIn: 0,
                                                                            autoGroups: ["empty"], usageLimit: 0, now: 1), state))
        #expect(refusal(.deleteGroup(id: "empty"), in: s) == ValidationError(.badRequest, field: "group_id", "group has been linked to setup key: office key"))
        let both = build([.createRoute(id: "r", route(groups: ["empty"]))], from: s)
        #expect(refusal(.deleteGroup(id: "empty"), in: both)?.message == "group has been linked to route: net")
    }

    // MARK: non-Linux members of peer groups

    @Test func nonLinuxMembersOfPeerGroupsAreReportedNotDropped() throws {
        // Only Linux peers route (Routeplane's rule, NetBird's old route.go "non-linux peers are not supported as
        // network routes"): a Windows member of a peer group forwards nothing, and the event says so.
        let s = build([.createGroup(id: "mixed", name: "mixed", peers: ["r3", "w1", "c1"])], from: state)
        guard case .routeCreated(let e)? = events(.createRoute(id: "m", route(peer: nil, peerGroups: ["mixed"])), in: s).first else {
            Issue.record("no RouteCreated"); return
        }
        #expect(e.skippedRoutingPeers == [SkippedRoutingPeer(id: "c1", name: "c1", os: "darwin"), SkippedRoutingPeer(id: "w1", name: "w1", os: "windows")])
        let after = evolve(s, [.routeCreated(e)])
        #expect(after.skippedRoutingPeers(of: after.route("m")!) == e.skippedRoutingPeers)
        guard case .routeUpdated(let u)? = events(.updateRoute(id: "m", route(peer: nil, peerGroups: ["mixed"], metric: 7)), in: after).first else {
            Issue.record("no RouteUpdated"); return
        }
        #expect(u.skippedRoutingPeers == e.skippedRoutingPeers)
        // Linux-only groups: nothing to report, and the event keeps its old shape.
        guard case .routeCreated(let linux)? = events(.createRoute(id: "l", route("l", peer: nil, peerGroups: ["routers"])), in: s).first else {
            Issue.record("no RouteCreated"); return
        }
        #expect(linux.skippedRoutingPeers.isEmpty)
        #expect(!String(decoding: RouteEvent.routeCreated(linux).encode().json, as: UTF8.self).contains("skipped"))
        // Stored before the field existed: decodes with nothing skipped.
        let old = #"{"event_version":1,"route":{"enabled":true,"groups":["g"],"id":"x","masquerade":true,"metric":1,"network":"10.0.0.0/8","network_id":"n","peer_groups":["mixed"]}}"#
        #expect(try RouteEvent.decode(type: "RouteCreated", json: Array(old.utf8)) == .routeCreated(RouteCreated(route: Route(
            id: "x", networkID: "n", destination: .network(try Prefix(parsing: "10.0.0.0/8")), routingPeers: .peerGroups(["mixed"]), metric: 1,
            groups: ["g"]))))
    }
}
