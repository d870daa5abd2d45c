import RouteAgent
import RouteModel
import Testing

/// The Linux planner's part for exit nodes: a default route of ours never goes beside another program's default route in
/// the same table (whatever its metric), and the `::/0` blackhole is an `unreachable` route with our marker.
@Suite("Linux planner: exit nodes")
struct ExitNodePlannerTests {
    let marking = RouteMarking()
    let exitRoute = ClientRoute(destination: pfx("0.0.0.0/0"), nextHop: addr("100.64.0.1"))

    func plan(_ desired: DesiredRouteState, _ observed: ObservedState) -> LinuxApplyPlanner.Plan {
        LinuxApplyPlanner.plan(desired: desired, observed: observed, forwardingEnabledByUs: [], marking: marking)
    }

    @Test("no default route of the host: the exit node's default route and the unreachable ::/0 are installed, and converge")
    func installsOnHostWithoutDefault() {
        let desired = DesiredRouteState(routes: [exitRoute], unreachable: [ExitNodes.v6Default])
        let p = plan(desired, ObservedState())
        #expect(p.conflicts.isEmpty)
        #expect(LinuxCommandScripts.ipBatch(p.actions) == """
            route add 0.0.0.0/0 via 100.64.0.1 proto 239 metric 0 table 254
            route add unreachable ::/0 proto 239 metric 1024 table 254

            """)
        let after = LinuxApplyPlanner.simulate(p.actions, on: ObservedState())
        #expect(plan(desired, after).actions.isEmpty)
        // Deselected: both go.
        let removed = plan(DesiredRouteState(), after)
        #expect(Set(removed.actions) == Set(p.actions.compactMap { if case .addRoute(let r) = $0 { .removeRoute(r) } else { nil } }))
        // Cleanup takes the blackhole too.
        #expect(LinuxApplyPlanner.planCleanup(observed: after, keepRoutes: true, forwardingEnabledByUs: [], marking: marking).actions.count == 2)
    }

    @Test("the host has a default route (any metric): the exit node is a conflict, never installed beside it; ours goes if one appears")
    func neverBesideTheHostDefault() {
        let host = KernelRoute(destination: pfx("0.0.0.0/0"), gateway: addr("192.168.1.1"), device: "eth0", metric: 600, protocolNumber: 16, table: 254)
        let desired = DesiredRouteState(routes: [exitRoute])
        let p = plan(desired, ObservedState(routes: [host]))
        #expect(p.actions.isEmpty)
        #expect(p.conflicts == [RouteConflict(route: exitRoute, existing: host)])
        let installed = LinuxApplyPlanner.simulate(plan(desired, ObservedState()).actions, on: ObservedState())
        var later = installed
        later.routes.append(host)
        let q = plan(desired, later)
        #expect(q.actions.count == 1 && q.conflicts.count == 1)
        if case .removeRoute(let r)? = q.actions.first { #expect(marking.isOurs(r) && r.destination.length == 0) } else { Issue.record("\(q.actions)") }
        // A range route of ours is not affected by the rule.
        let lan = ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.1"))
        #expect(plan(DesiredRouteState(routes: [lan]), ObservedState(routes: [host])).conflicts.isEmpty)
    }

    @Test("a unicast route of ours at ::/0 becomes the unreachable one (replaced in place), and back")
    func unicastToUnreachable() {
        let v6 = ClientRoute(destination: ExitNodes.v6Default, nextHop: addr("fd00::1"))
        let withPair = LinuxApplyPlanner.simulate(plan(DesiredRouteState(routes: [v6]), ObservedState()).actions, on: ObservedState())
        let p = plan(DesiredRouteState(unreachable: [ExitNodes.v6Default]), withPair)
        #expect(p.actions.count == 1)
        if case .replaceRoute(_, let new)? = p.actions.first { #expect(new.type == "unreachable" && new.gateway == nil) } else { Issue.record("\(p.actions)") }
    }

    @Test("the desired state refuses a destination both routed and unreachable")
    func validate() {
        let both = DesiredRouteState(routes: [ClientRoute(destination: ExitNodes.v6Default, nextHop: addr("fd00::1"))], unreachable: [ExitNodes.v6Default])
        #expect(throws: DesiredStateError.self) { try both.validate() }
    }

    @Test("ip -N prints an unreachable route's type as 7: read back as unreachable, so the blackhole converges and can be deleted")
    func numericRouteType() throws {
        let text = #"[{"type":"7","dst":"default","dev":"lo","protocol":"239","metric":1024,"flags":[],"pref":"medium"}]"#
        let routes = try KernelStateParser.routes(fromIPJSON: text, family: .v6, table: 254)
        #expect(routes.map(\.type) == ["unreachable"])
        let desired = DesiredRouteState(unreachable: [ExitNodes.v6Default])
        #expect(plan(desired, ObservedState(routes: routes)).actions.isEmpty)
        let removal = plan(DesiredRouteState(), ObservedState(routes: routes))
        #expect(LinuxCommandScripts.ipBatch(removal.actions) == "route del unreachable ::/0 dev lo proto 239 metric 1024 table 254\n")
    }
}
