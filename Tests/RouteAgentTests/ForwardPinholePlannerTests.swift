import RouteAgent
import RouteModel
import Testing

typealias Planner = ForwardPinholePlanner

@Suite(.timeLimit(.minutes(1))) struct ForwardPinholePlannerTests {
    static let dropChain = Planner.Chain(family: "inet", table: "x", name: "forward", dropPolicy: true)
    static let acceptChain = Planner.Chain(family: "ip", table: "other", name: "fwd", dropPolicy: false)

    @Test func aDropPolicyChainGetsOurRulesAnAcceptOneNothing() {
        let actions = Planner.plan(interface: "rp-wg", ranges: [pfx("10.20.0.0/24")], chains: [Self.dropChain, Self.acceptChain])
        #expect(actions.count == 3)
        let expressions = actions.compactMap { a -> String? in
            if case .insert(_, let table, _, let e, let comment) = a, table == "x", comment.hasPrefix("routeplane ") { return e }
            return nil
        }
        // Inserted at the top in reverse: the range's accept ends up first, the replies' second.
        #expect(expressions == [#"oifname "rp-wg" ct state established,related accept"#,
                                #"oifname "rp-wg" ip saddr { 10.20.0.0/24 } accept"#,
                                #"iifname "rp-wg" ip daddr { 10.20.0.0/24 } accept"#])
    }

    @Test func unchangedRulesStayChangedOnesAreReplacedAndAllGoWhenNotRouting() {
        let first = Planner.plan(interface: "rp-wg", ranges: [pfx("10.20.0.0/24")], chains: [Self.dropChain])
        var chain = Self.dropChain
        for (i, a) in first.enumerated() { if case .insert(_, _, _, _, let c) = a { chain.ourRules[10 + i] = c } }
        #expect(Planner.plan(interface: "rp-wg", ranges: [pfx("10.20.0.0/24")], chains: [chain]).isEmpty)
        let changed = Planner.plan(interface: "rp-wg", ranges: [pfx("10.20.0.0/24"), pfx("10.21.0.0/24")], chains: [chain])
        #expect(changed.prefix(3) == [.delete(family: "inet", table: "x", chain: "forward", handle: 10),
                                      .delete(family: "inet", table: "x", chain: "forward", handle: 11),
                                      .delete(family: "inet", table: "x", chain: "forward", handle: 12)])
        #expect(changed.count == 6)
        #expect(Planner.plan(interface: nil, ranges: [], chains: [chain]).count == 3)
        // A chain whose policy is no longer drop loses our rules too.
        chain.dropPolicy = false
        #expect(Planner.plan(interface: "rp-wg", ranges: [pfx("10.20.0.0/24")], chains: [chain]).count == 3)
    }

    @Test func familiesOnlyGetTheirRanges() {
        let ranges = [pfx("10.20.0.0/24"), pfx("fd20::/64")]
        #expect(Planner.expressions(interface: "w", ranges: ranges, family: "ip").allSatisfy { !$0.contains("ip6") })
        #expect(Planner.expressions(interface: "w", ranges: ranges, family: "ip6").allSatisfy { !$0.contains("ip daddr") })
        #expect(Planner.expressions(interface: "w", ranges: ranges, family: "inet").count == 5)
        #expect(Planner.expressions(interface: "w", ranges: [pfx("fd20::/64")], family: "ip").isEmpty)
    }

    @Test func parsesTheRulesetSkippingOurOwnTables() throws {
        let text = #"{"nftables":[{"metainfo":{"version":"1.0.6"}},{"table":{"family":"inet","name":"x","handle":1}},{"chain":{"family":"inet","table":"x","name":"forward","handle":1,"type":"filter","hook":"forward","prio":0,"policy":"drop"}},{"rule":{"family":"inet","table":"x","chain":"forward","handle":4,"comment":"routeplane abc","expr":[]}},{"rule":{"family":"inet","table":"x","chain":"forward","handle":5,"comment":"someone","expr":[]}},{"chain":{"family":"inet","table":"routeplane-filter","name":"forward","handle":1,"type":"filter","hook":"forward","prio":0,"policy":"accept"}},{"chain":{"family":"ip","table":"nat","name":"post","handle":2,"type":"nat","hook":"postrouting","prio":100,"policy":"accept"}}]}"#
        let chains = try Planner.parse(rulesetJSON: text, ownTables: ["routeplane", "routeplane-filter"])
        #expect(chains == [Planner.Chain(family: "inet", table: "x", name: "forward", dropPolicy: true, ourRules: [4: "routeplane abc"])])
    }
}
