import Foundation
import RouteAgent
import RouteModel
import Testing

/// The routing peer's forward filter: from the view's forward rules to nftables text, the planner's reconciliation
/// (fingerprint, nothing left behind), and the parser of `nft -j list table` (counters).
@Suite(.timeLimit(.minutes(10))) struct ForwardFilterTests {
    let marking = RouteMarking()
    let mesh = [pfx("100.64.0.0/10")]

    func key(_ p: String) -> HAKey { HAKey(networkID: "lan", destination: .network(pfx(p))) }

    var web: ForwardRule { ForwardRule(action: .accept, protocol: .tcp, sources: [addr("100.64.1.1")], ports: [80]) }

    func desired(_ filters: [ForwardFilter]) -> DesiredRouteState {
        DesiredRouteState(routingPeer: RoutingPeerState(forwardIPv4: true, forwardIPv6: false, filters: filters))
    }

    @Test func guardedRangesComeFromRulesAndOneOpenRouteLeavesARangeOpen() {
        let forwards = [
            ForwardedRoute(routeID: "a", key: key("10.20.0.0/24"), masquerade: true, rules: [web]),
            ForwardedRoute(routeID: "b", key: key("10.30.0.0/24"), masquerade: true, rules: []),
            ForwardedRoute(routeID: "c", key: key("10.40.0.0/24"), masquerade: true, rules: [web]),
            ForwardedRoute(routeID: "d", key: key("10.40.0.0/24"), masquerade: true, rules: nil),
            ForwardedRoute(routeID: "e", key: HAKey(networkID: "d", destination: .domains(["x.example"])), masquerade: true, rules: []),
        ]
        let filters = ForwardFilter.filters(from: forwards, meshRanges: mesh + [pfx("fd7a::/48")])
        #expect(filters == [
            ForwardFilter(destination: pfx("10.20.0.0/24"), rules: [web], meshSources: mesh),
            ForwardFilter(destination: pfx("10.30.0.0/24"), rules: [], meshSources: mesh),
        ])
    }

    @Test func scriptAllowsTheRulesThenDropsTheRestOfTheMesh() {
        let drop = ForwardRule(action: .drop, protocol: .icmp, sources: [addr("100.64.1.3")])
        let ranged = ForwardRule(action: .accept, protocol: .udp, sources: [addr("100.64.1.1"), addr("100.64.1.2")],
                                 portRanges: [PortRange(start: 5000, end: 5010)])
        let script = LinuxCommandScripts.nftReplaceFilterTable("routeplane-filter", filters: [
            ForwardFilter(destination: pfx("10.20.0.0/24"), rules: [drop, web, ranged], meshSources: mesh)])
        let lines = script.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.prefix(3) == ["table inet routeplane-filter", "delete table inet routeplane-filter", "table inet routeplane-filter {"])
        #expect(lines.contains("type filter hook forward priority filter; policy accept;"))
        let rules = lines.filter { $0.contains("daddr 10.20.0.0/24") }
        #expect(rules == [
            #"ip saddr { 100.64.1.3 } ip daddr 10.20.0.0/24 meta l4proto icmp counter drop comment "10.20.0.0/24 drop icmp""#,
            #"ip saddr { 100.64.1.1 } ip daddr 10.20.0.0/24 tcp dport { 80 } counter accept comment "10.20.0.0/24 accept tcp 80""#,
            #"ip saddr { 100.64.1.1, 100.64.1.2 } ip daddr 10.20.0.0/24 udp dport { 5000-5010 } counter accept comment "10.20.0.0/24 accept udp 5000-5010""#,
            #"ip saddr 100.64.0.0/10 ip daddr 10.20.0.0/24 counter drop comment "10.20.0.0/24 default drop""#,
        ])
        // Replies come back through the established rule, which carries the fingerprint.
        #expect(lines.contains { $0.hasPrefix("ct state established,related accept comment \"routeplane-filter ") })
    }

    @Test func plannerWritesOnFingerprintChangeOnlyAndDeletesWhenNothingIsGuarded() {
        let filters = [ForwardFilter(destination: pfx("10.20.0.0/24"), rules: [web], meshSources: mesh)]
        let first = LinuxApplyPlanner.plan(desired: desired(filters), observed: ObservedState(forwarding: [.v4: true]),
                                           forwardingEnabledByUs: [], marking: marking)
        #expect(first.actions == [.replaceFilterTable(filters)])
        let after = LinuxApplyPlanner.simulate(first.actions, on: ObservedState(forwarding: [.v4: true]))
        #expect(LinuxApplyPlanner.plan(desired: desired(filters), observed: after, forwardingEnabledByUs: [], marking: marking).actions.isEmpty)
        // Another rule: the table is rewritten.
        var changed = filters
        changed[0].rules = []
        #expect(LinuxApplyPlanner.plan(desired: desired(changed), observed: after, forwardingEnabledByUs: [], marking: marking).actions
                == [.replaceFilterTable(changed)])
        // A table someone edited (no fingerprint) is rewritten too.
        var edited = after
        edited.filterTable = ObservedFilterTable(fingerprint: nil)
        #expect(LinuxApplyPlanner.plan(desired: desired(filters), observed: edited, forwardingEnabledByUs: [], marking: marking).actions
                == [.replaceFilterTable(filters)])
        // Nothing guarded any more: the table goes; cleanup removes it as well.
        #expect(LinuxApplyPlanner.plan(desired: desired([]), observed: after, forwardingEnabledByUs: [], marking: marking).actions
                == [.deleteFilterTable])
        let cleanup = LinuxApplyPlanner.planCleanup(observed: after, keepRoutes: false, forwardingEnabledByUs: [], marking: marking)
        #expect(cleanup.actions == [.deleteFilterTable])
        #expect(LinuxApplyPlanner.simulate(cleanup.actions, on: after).filterTable == nil)
    }

    @Test func dryRunApplierKeepsWorkingWithFilters() async throws {
        let applier = DryRunApplier()
        let filters = [ForwardFilter(destination: pfx("10.20.0.0/24"), rules: [web], meshSources: mesh)]
        let report = try await applier.apply(desired(filters))
        #expect(report.actions.contains(.replaceFilterTable(filters)))
        #expect(try await applier.apply(desired(filters)).actions.isEmpty)
        #expect(try await applier.cleanup(keepRoutes: false).actions.contains(.deleteFilterTable))
        #expect(await applier.kernel.filterTable == nil)
    }

    /// `nft -j list table inet routeplane-filter` from nft 1.0.6 (Debian 12) after the script above.
    static let listed = #"""
    {"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "routeplane-filter", "handle": 2}}, {"chain": {"family": "inet", "table": "routeplane-filter", "name": "forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "routeplane-filter", "chain": "forward", "handle": 2, "comment": "routeplane-filter abcdef0123456789", "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "routeplane-filter", "chain": "forward", "handle": 4, "comment": "10.20.0.0/24 accept tcp 80", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"set": ["100.64.1.1", "100.64.1.3"]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "10.20.0.0", "len": 24}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"counter": {"packets": 7, "bytes": 420}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "routeplane-filter", "chain": "forward", "handle": 9, "comment": "10.20.0.0/24 default drop", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "100.64.0.0", "len": 10}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "10.20.0.0", "len": 24}}}}, {"counter": {"packets": 3, "bytes": 180}}, {"drop": null}]}}]}
    """#

    @Test func parserReadsFingerprintAndCounters() throws {
        let t = try KernelStateParser.filterTable(fromNftJSON: Self.listed, tableName: "routeplane-filter")
        #expect(t.fingerprint == "abcdef0123456789")
        #expect(t.counters == [ForwardCounter(rule: "10.20.0.0/24 accept tcp 80", packets: 7, bytes: 420),
                               ForwardCounter(rule: "10.20.0.0/24 default drop", packets: 3, bytes: 180)])
        // Another chain in the table: not Routeplane's shape, no fingerprint (the planner rewrites it).
        let odd = Self.listed.replacingOccurrences(of: #""name": "forward""#, with: #""name": "input""#)
        #expect(try KernelStateParser.filterTable(fromNftJSON: odd, tableName: "routeplane-filter").fingerprint == nil)
        #expect(throws: KernelStateParseError.self) { _ = try KernelStateParser.filterTable(fromNftJSON: "[]", tableName: "x") }
    }
}
