#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
@testable import RouteModel
import TestSupport
import Testing

/// Policies: NetBird's validation, the group-deletion link, and the forward rules a routing peer gets for a route
/// with access-control groups.
@Suite struct PolicyTests {
    let base = baseTenant()

    static func rule(_ sources: [String]?, _ destinations: [String]?, action: String = "accept", protocol proto: String = "all",
                     ports: [String]? = nil, ranges: [PortRange]? = nil, enabled: Bool = true, id: String? = nil) -> PolicyRuleInput {
        PolicyRuleInput(id: id, name: "r", enabled: enabled, action: action, protocol: proto, sources: sources?.map { GroupID($0) },
                        destinations: destinations?.map { GroupID($0) }, ports: ports, portRanges: ranges)
    }

    static func create(_ id: String, _ rules: [PolicyRuleInput], enabled: Bool = true, name: String = "p") -> PolicyCommand {
        .createPolicy(id: PolicyID(id), PolicyInput(name: name, enabled: enabled, rules: rules),
                      newRuleIDs: (0..<rules.count).map { "\(id)-rule\($0)" })
    }

    func apply(_ commands: [PolicyCommand], to state: TenantState, sourceLocation: SourceLocation = #_sourceLocation) -> TenantState {
        var s = state
        for c in commands {
            switch decide(c, s) {
            case .success(let evs): s = evolve(s, evs)
            case .failure(let e): Issue.record("\(c) refused: \(e)", sourceLocation: sourceLocation)
            }
        }
        return s
    }

    func refusal(_ c: PolicyCommand, in s: TenantState) -> ValidationError? {
        if case .failure(let e) = decide(c, s) { return e }
        Issue.record("\(c) accepted")
        return nil
    }

    // MARK: - validation (NetBird's words)

    @Test func validationFollowsNetBird() {
        let cases: [(PolicyCommand, String, String)] = [
            (.createPolicy(id: "x", PolicyInput(name: "", rules: [Self.rule(["clients"], ["others"])]), newRuleIDs: ["a"]),
             "name", "policy name shouldn't be empty"),
            (.createPolicy(id: "x", PolicyInput(name: "p", rules: []), newRuleIDs: []), "rules", "policy rules shouldn't be empty"),
            (Self.create("x", [Self.rule(nil, ["others"])]), "rules[0].sources",
             "specify either sources or source resources and destinations or destination resources"),
            (Self.create("x", [Self.rule(["clients"], nil)]), "rules[0].destinations",
             "specify either sources or source resources and destinations or destination resources"),
            (Self.create("x", [Self.rule(["clients"], ["others"], action: "allow")]), "rules[0].action", "unknown action type"),
            (Self.create("x", [Self.rule(["clients"], ["others"], protocol: "sctp")]), "rules[0].protocol", "unknown protocol type: sctp"),
            (Self.create("x", [Self.rule(["clients"], ["others"], protocol: "tcp", ports: ["80"], ranges: [PortRange(start: 1, end: 2)])]),
             "rules[0].ports", "specify either individual ports or port ranges, not both"),
            (Self.create("x", [Self.rule(["clients"], ["others"], protocol: "tcp", ports: ["0"])]), "rules[0].ports",
             "valid port value is in 1..65535 range"),
            (Self.create("x", [Self.rule(["clients"], ["others"], protocol: "tcp", ports: ["http"])]), "rules[0].ports",
             "valid port value is in 1..65535 range"),
            (Self.create("x", [Self.rule(["clients"], ["others"], protocol: "udp", ranges: [PortRange(start: 1, end: 65536)])]),
             "rules[0].port_ranges", "valid port value is in 1..65535 range"),
            (Self.create("x", [Self.rule(["clients"], ["others"], protocol: "udp", ranges: [PortRange(start: 90, end: 80)])]),
             "rules[0].port_ranges", "port range start 90 is after its end 80"),
            (Self.create("x", [Self.rule(["clients"], ["others"], protocol: "icmp", ports: ["80"])]), "rules[0].ports",
             "for ALL or ICMP protocol ports is not allowed"),
            (Self.create("x", [Self.rule(["clients"], ["others"]), Self.rule(["ghost"], ["others"])]), "rules[1].sources",
             "group ghost not found"),
        ]
        for (command, field, message) in cases {
            let e = refusal(command, in: base)
            #expect(e?.kind == .invalidArgument, "\(command)")
            #expect(e?.field == field, "\(command)")
            #expect(e?.message == message, "\(command)")
        }
        #expect(refusal(.updatePolicy(id: "ghost", PolicyInput(name: "p", rules: [Self.rule(["clients"], ["others"])]), newRuleIDs: ["a"]),
                        in: base)?.kind == .notFound)
        #expect(refusal(.deletePolicy(id: "ghost"), in: base)?.kind == .notFound)
    }

    @Test func updateKeepsKnownRuleIDsAndIdenticalUpdateIsNoEvent() {
        let s = apply([Self.create("p1", [Self.rule(["clients"], ["others"], protocol: "tcp", ports: ["443", "80", "80"])])], to: base)
        let stored = s.policies["p1"]!
        #expect(stored.rules.map(\.id) == ["p1-rule0"])
        #expect(stored.rules[0].ports == [80, 443])
        let same = PolicyInput(name: "p", rules: [Self.rule(["clients"], ["others"], protocol: "tcp", ports: ["80", "443"], id: "p1-rule0")])
        #expect(events(decide(.updatePolicy(id: "p1", same, newRuleIDs: ["fresh"]), s)).isEmpty)
        // A rule naming an id the policy does not have gets a fresh one.
        let foreign = PolicyInput(name: "p", rules: [Self.rule(["clients"], ["others"], id: "other")])
        guard case .success(let evs) = decide(.updatePolicy(id: "p1", foreign, newRuleIDs: ["fresh"]), s),
              case .policyUpdated(let u)? = evs.first else { Issue.record("no update"); return }
        #expect(u.new.rules.map(\.id) == ["fresh"])
    }

    func events(_ r: Result<[RouteEvent], ValidationError>) -> [RouteEvent] { (try? r.get()) ?? [RouteEvent.tenantCreated(TenantCreated(name: "refused"))] }

    @Test func groupUsedByAPolicyCannotBeDeleted() {
        let s = apply([Self.create("p1", [Self.rule(["empty"], ["others"])], name: "web")], to: base)
        for g in ["empty", "others"] {
            guard case .failure(let e) = decide(Command.deleteGroup(id: GroupID(g)), s) else { Issue.record("deleted \(g)"); continue }
            #expect(e.kind == .badRequest)
            #expect(e.message == "group has been linked to policy: web")
        }
        // Once the policy is gone, the group goes.
        let freed = apply([.deletePolicy(id: "p1")], to: s)
        #expect((try? decide(Command.deleteGroup(id: "empty"), freed).get())?.count == 1)
    }

    @Test func policyEventsRoundTripThroughStorage() throws {
        let s = apply([Self.create("p1", [Self.rule(["clients"], ["others"], action: "drop", protocol: "udp",
                                                    ranges: [PortRange(start: 53, end: 54)])])], to: base)
        let created = RouteEvent.policyCreated(PolicyCreated(policy: s.policies["p1"]!))
        let (type, json) = created.encode()
        #expect(try RouteEvent.decode(type: type, json: json) == created)
        let deleted = RouteEvent.policyDeleted(PolicyDeleted(policy: s.policies["p1"]!))
        #expect(try RouteEvent.decode(type: deleted.type, json: deleted.encode().json) == deleted)
        #expect(RouteEvent.knownTypes.contains("PolicyUpdated"))
    }

    @Test func quotaCountsPolicies() {
        let quotas = TenantQuotas(peers: 100, routes: 100, groups: 100, setupKeys: 100, tokens: 100, policies: 1)
        let one = apply([Self.create("p1", [Self.rule(["clients"], ["others"])])], to: base)
        guard case .success(let evs) = decide(Self.create("p2", [Self.rule(["clients"], ["others"])]), one) else { Issue.record("refused"); return }
        #expect(throws: ValidationError.self) { try quotas.check(evs, on: one) }
        #expect(TenantQuotas.defaults.policies == 500)
    }

    // MARK: - forward rules

    /// r1 routes 10.20.0.0/24 to clients {c1, c2} and others {c3}, with access-control group `servers` (empty).
    func guarded(acl: [String]? = ["servers"]) -> TenantState {
        build([group("servers", []), group("web-clients", ["c1", "c3", "w1", "r1"]),
               .createRoute(id: "lan", route("lan", network: "10.20.0.0/24", peer: "r1", groups: ["clients", "others"], acl: acl))],
              from: base)
    }

    func ip(_ s: String) -> IPAddress { try! IPAddress(parsing: s) }

    @Test func routeWithoutAccessControlGroupsIsOpen() {
        let s = apply([Self.create("p1", [Self.rule(["web-clients"], ["servers"], protocol: "tcp", ports: ["80"])])], to: guarded(acl: nil))
        #expect(view(for: "r1", in: s).forwards.map(\.rules) == [nil])
    }

    @Test func noPolicyMeansNothingIsForwarded() {
        let s = guarded()
        #expect(view(for: "r1", in: s).forwards.map(\.rules) == [[]])
        // Clients still receive the route (distribution decides that).
        #expect(view(for: "c2", in: s).haSets.count == 1)
    }

    @Test func policyAllowsItsSourcesThatAreInTheDistributionGroups() {
        let s = apply([Self.create("p1", [Self.rule(["web-clients"], ["servers"], protocol: "tcp", ports: ["80"])])], to: guarded())
        // web-clients = c1, c3, w1, r1: w1 is not in the distribution groups, r1 is the routing peer itself.
        #expect(view(for: "r1", in: s).forwards.first?.rules == [
            ForwardRule(action: .accept, protocol: .tcp, sources: [ip("100.64.1.1"), ip("100.64.1.3")], ports: [80]),
        ])
    }

    @Test func disabledPoliciesAndRulesGiveNothingAndOtherDestinationsDoNotApply() {
        let s = apply([
            Self.create("off", [Self.rule(["clients"], ["servers"])], enabled: false),
            Self.create("rule-off", [Self.rule(["clients"], ["servers"], enabled: false)]),
            Self.create("elsewhere", [Self.rule(["clients"], ["others"])]),
        ], to: guarded())
        #expect(view(for: "r1", in: s).forwards.first?.rules == [])
    }

    @Test func wholePolicyAppliesAndDropsComeFirst() {
        // NetBird takes the whole policy when one rule's destinations hold the access-control group.
        let s = apply([Self.create("p1", [
            Self.rule(["clients"], ["servers"], protocol: "tcp", ports: ["22"]),
            Self.rule(["others"], ["empty"], action: "drop", protocol: "icmp"),
        ])], to: guarded())
        #expect(view(for: "r1", in: s).forwards.first?.rules == [
            ForwardRule(action: .drop, protocol: .icmp, sources: [ip("100.64.1.3")]),
            ForwardRule(action: .accept, protocol: .tcp, sources: [ip("100.64.1.1"), ip("100.64.1.2")], ports: [22]),
        ])
    }

    @Test func forwardRulesEncodeCanonicallyAndDecode() throws {
        let s = apply([Self.create("p1", [Self.rule(["web-clients"], ["servers"], protocol: "udp",
                                                    ranges: [PortRange(start: 5000, end: 5010)])])], to: guarded())
        let v = view(for: "r1", in: s)
        let text = String(decoding: v.canonicalJSON(), as: UTF8.self)
        #expect(text.contains(#""route_id":"lan","rules":[{"action":"accept","port_ranges":[{"end":5010,"start":5000}],"ports":[],"protocol":"udp","sources":["100.64.1.1","100.64.1.3"]}]}"#))
        #expect(try JSONDecoder().decode(PeerRouteView.self, from: Data(v.canonicalJSON())) == v)
        // A view written before rules existed decodes as open.
        let old = #"{"forwards":[{"masquerade":true,"network":"10.0.0.0/24","network_id":"n","network_type":"IPv4","route_id":"r"}],"ha_sets":[],"peer_id":"p"}"#
        #expect(try JSONDecoder().decode(PeerRouteView.self, from: Data(old.utf8)).forwards.first?.rules == nil)
    }

    @Test func membershipAndPolicyChangesReachTheRoutingPeer() {
        let s = apply([Self.create("p1", [Self.rule(["web-clients"], ["servers"])])], to: guarded())
        // c2 joins web-clients (a source group used by no route): r1's rules change.
        let join = RouteEvent.groupMembersChanged(GroupMembersChanged(groupID: "web-clients", added: ["c2"], removed: []))
        #expect(affectedPeers(join, before: s, after: evolve(s, join)).contains("r1"))
        let deleted = RouteEvent.policyDeleted(PolicyDeleted(policy: s.policies["p1"]!))
        #expect(affectedPeers(deleted, before: s, after: evolve(s, deleted)) == ["r1"])
        #expect(view(for: "r1", in: evolve(s, deleted)).forwards.first?.rules == [])
    }
}

/// One of each policy event, with every rule field set (for the coding tests of every event type).
func policyEvents() -> [RouteEvent] {
    let rule = PolicyRule(id: "r1", name: "web \"ü\"", description: "line\nnext", enabled: true, action: .accept, bidirectional: true,
                          protocol: .tcp, sources: ["a", "b"], destinations: ["c"], ports: [80, 443])
    let ranged = PolicyRule(id: "r2", enabled: false, action: .drop, protocol: .udp, sources: ["a"], destinations: ["d"],
                            portRanges: [PortRange(start: 5000, end: 5010)])
    let old = Policy(id: "pol", name: "web", description: "", enabled: true, rules: [rule])
    var new = old
    new.rules.append(ranged)
    new.enabled = false
    return [
        .policyCreated(PolicyCreated(policy: old)),
        .policyUpdated(PolicyUpdated(old: old, new: new)),
        .policyDeleted(PolicyDeleted(policy: new)),
    ]
}
