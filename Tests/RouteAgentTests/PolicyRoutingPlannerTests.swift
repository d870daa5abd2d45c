import RouteAgent
import RouteModel
import Testing

/// RouteModel has a `PolicyRule` of its own (access-control policies).
private typealias IPRule = RouteAgent.PolicyRule

private let config = PolicyRouting.default
private let controller = addr("10.99.0.1")
private let nats = addr("10.99.0.2")
private let endpoint = addr("10.99.1.1")

private func rule(_ priority: UInt32, _ selector: IPRule.Selector, family: IPAddress.Family = .v4, proto: UInt8? = 239) -> IPRule {
    IPRule(family: family, priority: priority, selector: selector, protocolNumber: proto)
}

@Suite(.timeLimit(.minutes(1))) struct PolicyRoutingPlannerTests {
    @Test func routesOfAFamilyBringTheirRulesAndTheExclusions() {
        let wanted = PolicyRoutingPlanner.wanted(routes: [pfx("10.20.0.0/24")], exclusions: [controller, nats, endpoint, addr("fd00::1")],
                                                 config: config)
        #expect(wanted == [
            rule(5200, .toMain(pfx("10.99.0.1/32"))), rule(5200, .toMain(pfx("10.99.0.2/32"))), rule(5200, .toMain(pfx("10.99.1.1/32"))),
            rule(5210, .suppressMainDefault), rule(5220, .table(7239, notFwmark: 0x1C470)),
        ])
        // No route: no rule at all (the host as without Routeplane); an IPv6 route brings the IPv6 set.
        #expect(PolicyRoutingPlanner.wanted(routes: [], exclusions: [controller], config: config).isEmpty)
        let v6 = PolicyRoutingPlanner.wanted(routes: [pfx("fd20::/64")], exclusions: [controller, addr("fd00::1")], config: config)
        #expect(v6.allSatisfy { $0.family == .v6 } && v6.count == 3)
    }

    @Test func exclusionsGoInBeforeTheTableAndLeaveAfterIt() {
        let wanted = PolicyRoutingPlanner.wanted(routes: [pfx("10.20.0.0/24")], exclusions: [controller], config: config)
        let adds = PolicyRoutingPlanner.plan(wanted: wanted, observed: [], config: config)
        #expect(adds.map(\.description) == [
            "ip rule add -4 to 10.99.0.1/32 lookup main priority 5200 protocol 239",
            "ip rule add -4 lookup main suppress_prefixlength 0 priority 5210 protocol 239",
            "ip rule add -4 not fwmark 0x1c470 lookup 7239 priority 5220 protocol 239",
        ])
        let installed = PolicyRoutingPlanner.simulate(adds, on: [])
        #expect(PolicyRoutingPlanner.plan(wanted: wanted, observed: installed, config: config).isEmpty)
        let removal = PolicyRoutingPlanner.planCleanup(observed: installed, config: config)
        #expect(removal.first == .delete(rule(5220, .table(7239, notFwmark: 0x1C470))))
        #expect(removal.last == .delete(rule(5200, .toMain(pfx("10.99.0.1/32")))))
        #expect(PolicyRoutingPlanner.simulate(removal, on: installed).isEmpty)
    }

    @Test func rulesWithoutOurProtocolAreNeverTouched() {
        // NetBird's rules, and a look-alike of ours at our priority without our protocol number.
        let foreign = [rule(105, .suppressMainDefault, proto: nil), rule(110, .table(7120, notFwmark: 0x1BD00), proto: nil),
                       rule(5220, .table(7239, notFwmark: 0x1C470), proto: nil)]
        let stale = rule(5200, .toMain(pfx("10.99.0.9/32")))
        let actions = PolicyRoutingPlanner.plan(wanted: [], observed: foreign + [stale], config: config)
        #expect(actions == [.delete(stale)])
        #expect(PolicyRoutingPlanner.planCleanup(observed: foreign, config: config).isEmpty)
    }

    @Test func parsesIpRuleShowJSON() throws {
        // `ip -j rule show` as iproute2 6.1 printed it on this machine for the rules above.
        let text = #"[{"priority":0,"src":"all","table":"local"},{"priority":5200,"src":"all","dst":"10.99.0.1","table":"main","protocol":"239"},{"priority":5210,"src":"all","table":"main","suppress_prefixlen":0,"protocol":"239"},{"priority":5220,"not":null,"src":"all","fwmark":"0x1c470","table":"7239","protocol":"239"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"}]"#
        let rules = try PolicyRoutingPlanner.parse(ipJSON: text, family: .v4)
        let wanted = PolicyRoutingPlanner.wanted(routes: [pfx("10.20.0.0/24")], exclusions: [controller], config: config)
        #expect(Set(rules.filter { $0.protocolNumber == 239 }) == wanted)
        #expect(PolicyRoutingPlanner.plan(wanted: wanted, observed: rules, config: config).isEmpty)
        #expect(rules.filter { $0.protocolNumber == nil }.count == 3)
    }
}
