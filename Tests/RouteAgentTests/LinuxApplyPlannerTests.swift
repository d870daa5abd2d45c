import RouteAgent
import RouteModel
import Testing

func pfx(_ s: String) -> Prefix { try! Prefix(parsing: s) }
func addr(_ s: String) -> IPAddress { try! IPAddress(parsing: s) }

private let marking = RouteMarking()

/// A route of ours as the kernel would hold it.
private func ours(_ dst: String, via gw: String, keep: Bool = false, metric: UInt32? = nil, dev: String? = nil) -> KernelRoute {
    let p = pfx(dst)
    return KernelRoute(destination: p, gateway: addr(gw), device: dev, metric: metric ?? marking.storedMetric(p.family),
                       protocolNumber: keep ? 238 : 239, table: 254)
}

private func foreign(_ dst: String, via gw: String?, proto: UInt8 = 4, metric: UInt32 = 0, table: UInt32 = 254) -> KernelRoute {
    KernelRoute(destination: pfx(dst), gateway: gw.map(addr), metric: metric, protocolNumber: proto, table: table)
}

private func plan(_ desired: DesiredRouteState, _ observed: ObservedState, byUs: Set<IPAddress.Family> = []) -> LinuxApplyPlanner.Plan {
    LinuxApplyPlanner.plan(desired: desired, observed: observed, forwardingEnabledByUs: byUs, marking: marking)
}

/// Every action names only routes of ours (removals and replacements).
private func touchesOnlyOurs(_ actions: [ApplierAction]) -> Bool {
    actions.allSatisfy {
        switch $0 {
        case .removeRoute(let r): return marking.isOurs(r)
        case .replaceRoute(let old, let new): return marking.isOurs(old) && marking.isOurs(new)
        case .addRoute(let r): return marking.isOurs(r)
        default: return true
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct LinuxApplyPlannerTests {
    @Test func addsRoutesWithTheMarkerAndConverges() {
        let desired = DesiredRouteState(routes: [
            ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.2")),
            ClientRoute(destination: pfx("fd00:20::/64"), nextHop: addr("fd00:64::2"), keepRoute: true, device: "wt0"),
        ])
        let p = plan(desired, ObservedState())
        #expect(p.actions == [
            .addRoute(KernelRoute(destination: pfx("10.20.0.0/24"), gateway: addr("100.64.0.2"), metric: 0, protocolNumber: 239, table: 254)),
            .addRoute(KernelRoute(destination: pfx("fd00:20::/64"), gateway: addr("fd00:64::2"), device: "wt0", metric: 1024,
                                  protocolNumber: 238, table: 254)),
        ])
        #expect(p.conflicts.isEmpty)
        let after = LinuxApplyPlanner.simulate(p.actions, on: ObservedState())
        #expect(plan(desired, after).actions.isEmpty)
        #expect(LinuxCommandScripts.ipBatch(p.actions) == """
            route add 10.20.0.0/24 via 100.64.0.2 proto 239 metric 0 table 254
            route add fd00:20::/64 via fd00:64::2 dev wt0 proto 238 metric 1024 table 254

            """)
    }

    @Test func replacesTheNextHopInPlace() {
        let old = ours("10.20.0.0/24", via: "100.64.0.2")
        let desired = DesiredRouteState(routes: [ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.3"))])
        let p = plan(desired, ObservedState(routes: [old]))
        #expect(p.actions == [.replaceRoute(old: old, new: ours("10.20.0.0/24", via: "100.64.0.3"))])
        #expect(LinuxCommandScripts.ipBatch(p.actions) == "route replace 10.20.0.0/24 via 100.64.0.3 proto 239 metric 0 table 254\n")
    }

    @Test func keepFlagChangeReplacesTheProtocol() {
        let old = ours("10.20.0.0/24", via: "100.64.0.2")
        let desired = DesiredRouteState(routes: [ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.2"), keepRoute: true)])
        #expect(plan(desired, ObservedState(routes: [old])).actions
            == [.replaceRoute(old: old, new: ours("10.20.0.0/24", via: "100.64.0.2", keep: true))])
    }

    @Test func sameRouteAgainIsNoAction() {
        let desired = DesiredRouteState(routes: [ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.2"))])
        // The kernel fills in the device; an undemanded device is not a difference.
        #expect(plan(desired, ObservedState(routes: [ours("10.20.0.0/24", via: "100.64.0.2", dev: "wt0")])).actions.isEmpty)
        // A demanded one is.
        var withDev = desired
        withDev.routes[0].device = "wt1"
        #expect(plan(withDev, ObservedState(routes: [ours("10.20.0.0/24", via: "100.64.0.2", dev: "wt0")])).actions.count == 1)
    }

    @Test func removesOnlyOurs() {
        let observed = ObservedState(routes: [
            ours("10.30.0.0/24", via: "100.64.0.3"),
            ours("10.31.0.0/24", via: "100.64.0.3", keep: true),
            foreign("10.40.0.0/24", via: "192.168.1.1"),                       // static
            foreign("0.0.0.0/0", via: "192.168.1.1", proto: 16),                // dhcp default
            foreign("10.32.0.0/24", via: "100.64.0.3", proto: 239, table: 100), // our number, not our table
            foreign("100.64.0.0/10", via: nil, proto: 2),                       // kernel
        ])
        let p = plan(.empty, observed)
        #expect(p.actions == [.removeRoute(ours("10.30.0.0/24", via: "100.64.0.3")),
                              .removeRoute(ours("10.31.0.0/24", via: "100.64.0.3", keep: true))])
        #expect(LinuxCommandScripts.ipBatch(p.actions).contains("route del 10.30.0.0/24 via 100.64.0.3 proto 239 metric 0 table 254"))
    }

    @Test func neverOverwritesSomeoneElsesRouteWithTheSameKey() {
        let theirs = foreign("10.20.0.0/24", via: "192.168.1.1")
        let desired = DesiredRouteState(routes: [ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.2"))])
        let p = plan(desired, ObservedState(routes: [theirs]))
        #expect(p.actions.isEmpty)
        #expect(p.conflicts == [RouteConflict(route: desired.routes[0], existing: theirs)])
        // Another metric is another key: both coexist.
        let other = foreign("10.20.0.0/24", via: "192.168.1.1", metric: 100)
        #expect(plan(desired, ObservedState(routes: [other])).actions.count == 1)
        // Ours with a stale next hop beside theirs at the same key: take ours away, never `replace`.
        let stale = ours("10.20.0.0/24", via: "100.64.0.9")
        let q = plan(desired, ObservedState(routes: [theirs, stale]))
        #expect(q.actions == [.removeRoute(stale)])
        #expect(q.conflicts.count == 1)
    }

    @Test func duplicatesOfOursAreRemoved() {
        let a = ours("10.20.0.0/24", via: "100.64.0.2")
        let b = ours("10.20.0.0/24", via: "100.64.0.2", metric: 50)
        let desired = DesiredRouteState(routes: [ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.2"))])
        #expect(plan(desired, ObservedState(routes: [a, b])).actions == [.removeRoute(b)])
    }

    @Test func cleanupKeepsKeepRoutesOnlyWhenAsked() {
        let observed = ObservedState(
            routes: [ours("10.30.0.0/24", via: "100.64.0.3"), ours("10.31.0.0/24", via: "100.64.0.3", keep: true),
                     foreign("10.40.0.0/24", via: "192.168.1.1")],
            forwarding: [.v4: true, .v6: true],
            natTable: ObservedNATTable(rules: [], wellFormed: true))
        let keep = LinuxApplyPlanner.planCleanup(observed: observed, keepRoutes: true, forwardingEnabledByUs: [.v4], marking: marking)
        #expect(keep.actions == [.removeRoute(ours("10.30.0.0/24", via: "100.64.0.3")), .deleteNATTable, .setForwarding(.v4, false)])
        let all = LinuxApplyPlanner.planCleanup(observed: observed, keepRoutes: false, forwardingEnabledByUs: [], marking: marking)
        #expect(all.actions == [.removeRoute(ours("10.30.0.0/24", via: "100.64.0.3")),
                                .removeRoute(ours("10.31.0.0/24", via: "100.64.0.3", keep: true)), .deleteNATTable])
        #expect(touchesOnlyOurs(all.actions))
    }

    @Test func masqueradeOnOffAndRepair() {
        let rule = MasqueradeRule(source: pfx("100.64.0.0/10"), destination: pfx("10.20.0.0/24"))
        let on = DesiredRouteState(routingPeer: RoutingPeerState(forwardIPv4: true, forwardIPv6: false, masquerade: [rule]))
        // Absent → written, forwarding first.
        #expect(plan(on, ObservedState(forwarding: [.v4: false, .v6: false])).actions
            == [.setForwarding(.v4, true), .replaceNATTable([rule])])
        // Exactly right → nothing.
        let right = ObservedState(forwarding: [.v4: true, .v6: false], natTable: ObservedNATTable(rules: [rule], wellFormed: true))
        #expect(plan(on, right).actions.isEmpty)
        // Someone added a rule or changed the chain → rewritten as a whole.
        var tampered = right
        tampered.natTable = ObservedNATTable(rules: [rule], wellFormed: false)
        #expect(plan(on, tampered).actions == [.replaceNATTable([rule])])
        tampered.natTable = ObservedNATTable(rules: [rule, MasqueradeRule(source: pfx("0.0.0.0/0"), destination: pfx("0.0.0.0/0"))], wellFormed: true)
        #expect(plan(on, tampered).actions == [.replaceNATTable([rule])])
        // Masquerade off → no NAT table at all; forwarding we turned on goes off when no longer routing.
        let off = DesiredRouteState(routingPeer: RoutingPeerState(forwardIPv4: true, forwardIPv6: false))
        #expect(plan(off, right).actions == [.deleteNATTable])
        #expect(plan(.empty, right, byUs: [.v4]).actions == [.deleteNATTable, .setForwarding(.v4, false)])
        // Forwarding someone else turned on stays on.
        #expect(plan(.empty, right, byUs: []).actions == [.deleteNATTable])
        #expect(plan(.empty, ObservedState()).actions.isEmpty)

        #expect(LinuxCommandScripts.nftReplaceTable("routeplane", rules: [
            rule, MasqueradeRule(source: pfx("fd00:64::/64"), destination: pfx("fd00:20::/64")),
        ]) == """
            table inet routeplane
            delete table inet routeplane
            table inet routeplane {
            \tchain postrouting {
            \t\ttype nat hook postrouting priority srcnat; policy accept;
            \t\tip saddr 100.64.0.0/10 ip daddr 10.20.0.0/24 masquerade
            \t\tip6 saddr fd00:64::/64 ip6 daddr fd00:20::/64 masquerade
            \t}
            }

            """)
    }

    @Test func routingPeerStateFromNetworks() {
        let s = RoutingPeerState(networks: [(pfx("10.20.0.0/24"), true), (pfx("10.21.0.0/24"), false), (pfx("fd00:20::/64"), true)],
                                 meshRanges: [pfx("100.64.0.0/10")])
        #expect(s.forwardIPv4 && s.forwardIPv6)
        // No IPv6 mesh range: the v6 network is forwarded but not masqueraded.
        #expect(s.masquerade == [MasqueradeRule(source: pfx("100.64.0.0/10"), destination: pfx("10.20.0.0/24"))])
    }

    @Test func invalidDesiredStatesAreRefused() {
        let mixed = DesiredRouteState(routes: [ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("fd00::1"))])
        #expect(throws: DesiredStateError.self) { try mixed.validate() }
        let twice = DesiredRouteState(routes: [ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.1")),
                                               ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.2"))])
        #expect(throws: DesiredStateError.self) { try twice.validate() }
        let badDev = DesiredRouteState(routes: [ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.1"), device: "wt0 table 1")])
        #expect(throws: DesiredStateError.self) { try badDev.validate() }
        #expect(throws: ApplierError.self) { try RouteMarking(routeProtocol: 2).validate() }
        #expect(throws: ApplierError.self) { try RouteMarking(natTableName: "x; flush ruleset").validate() }
    }

    /// Random kernels (ours and others' routes mixed) and random desired states: one plan always
    /// converges (re-planning on the result is empty), and no action names a route that is not ours.
    @Test func randomStatesConvergeAndNeverTouchOthers() {
        var rng = TestRNG(seed: 7)
        let dsts = (0..<6).map { pfx("10.\($0).0.0/24") } + [pfx("fd00:\(1)::/64"), pfx("fd00:\(2)::/64")]
        func hop(_ d: Prefix) -> IPAddress {
            d.isV4 ? IPAddress(v4: 0x6440_0000 | UInt32(rng.next(4) + 1)) : addr("fd00:64::\(rng.next(4) + 1)")
        }
        for _ in 0..<500 {
            var kernel: [KernelRoute] = []
            for d in dsts {
                switch rng.next(5) {
                case 0: kernel.append(KernelRoute(destination: d, gateway: hop(d), metric: marking.storedMetric(d.family),
                                                  protocolNumber: rng.next(2) == 0 ? 239 : 238, table: 254))
                case 1: kernel.append(KernelRoute(destination: d, gateway: hop(d), metric: marking.storedMetric(d.family),
                                                  protocolNumber: 4, table: 254))
                case 2: kernel.append(KernelRoute(destination: d, gateway: hop(d), metric: 77, protocolNumber: 16, table: 254))
                default: break
                }
            }
            var desired = DesiredRouteState()
            for d in dsts where rng.next(2) == 0 {
                desired.routes.append(ClientRoute(destination: d, nextHop: hop(d), keepRoute: rng.next(3) == 0))
            }
            let observed = ObservedState(routes: kernel)
            let p = plan(desired, observed)
            #expect(touchesOnlyOurs(p.actions))
            let after = LinuxApplyPlanner.simulate(p.actions, on: observed)
            #expect(plan(desired, after).actions.isEmpty)
            // Others' routes are all still there.
            for r in kernel where !marking.isOurs(r) { #expect(after.routes.contains(r)) }
            // Every desired route is installed or reported as a conflict.
            for r in desired.routes {
                let installed = after.routes.contains { marking.isOurs($0) && $0.destination == r.destination && $0.gateway == r.nextHop }
                #expect(installed || p.conflicts.contains { $0.route == r })
            }
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct DryRunApplierTests {
    @Test func recordsAndIsIdempotent() async throws {
        let dry = DryRunApplier(kernel: ObservedState(forwarding: [.v4: false, .v6: false]))
        let rule = MasqueradeRule(source: pfx("100.64.0.0/10"), destination: pfx("10.20.0.0/24"))
        let desired = DesiredRouteState(
            routes: [ClientRoute(destination: pfx("10.30.0.0/24"), nextHop: addr("100.64.0.2"), keepRoute: true),
                     ClientRoute(destination: pfx("10.31.0.0/24"), nextHop: addr("100.64.0.2"))],
            routingPeer: RoutingPeerState(forwardIPv4: true, forwardIPv6: false, masquerade: [rule]))
        let first = try await dry.apply(desired)
        #expect(first.actions.count == 4)
        let second = try await dry.apply(desired)
        #expect(!second.changed)
        #expect(await dry.lastDesired == desired)
        let cleanup = try await dry.cleanup(keepRoutes: true)
        #expect(cleanup.actions.count == 3) // one route, the NAT table, forwarding back off
        let kernel = await dry.kernel
        #expect(kernel.routes.map(\.destination) == [pfx("10.30.0.0/24")])
        #expect(kernel.forwarding[.v4] == false && kernel.natTable == nil)
        #expect(await dry.history.count == 3)
        await #expect(throws: DesiredStateError.self) {
            try await dry.apply(DesiredRouteState(routes: [ClientRoute(destination: pfx("10.0.0.0/8"), nextHop: addr("fd00::1"))]))
        }
    }
}

/// Deterministic test randomness.
typealias TestRNG = SplitMix64

extension SplitMix64 {
    mutating func next(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
