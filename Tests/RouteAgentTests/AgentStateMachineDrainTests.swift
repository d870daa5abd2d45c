import RouteAgent
import RouteModel
import RouteSelection
import Testing

/// Operator drain mode reaches the agent as the `draining` flag of a view's candidates: a drained routing
/// peer is left at once when another candidate is up, and chosen only when nothing else is.
@Suite("Agent state machine: drain mode from the view")
struct AgentStateMachineDrainTests {
    let t0 = ContinuousClock.now
    let lan = HAKey(networkID: "office-lan", destination: .network(try! Prefix(parsing: "10.20.0.0/24")))
    let r1 = RouteCandidate(peerID: "r1", meshIP: try! IPAddress(parsing: "100.64.0.1"), metric: 100, masquerade: true,
                            keepRoute: false, skipAutoApply: false, routeID: RouteID("route-r1"))
    let r2 = RouteCandidate(peerID: "r2", meshIP: try! IPAddress(parsing: "100.64.0.2"), metric: 200, masquerade: true,
                            keepRoute: false, skipAutoApply: false, routeID: RouteID("route-r2"))

    func at(_ s: Int) -> ContinuousClock.Instant { t0 + .seconds(s) }

    func drained(_ c: RouteCandidate) -> RouteCandidate {
        var d = c
        d.draining = true
        return d
    }

    func update(_ version: Int64, _ candidates: [RouteCandidate]) -> AgentStateMachine.ViewUpdate {
        let view = PeerRouteView(peerID: "client", haSets: [HASet(key: lan, candidates: candidates)])
        return .init(version: version, digest: "d\(version)", body: [], view: view, source: .nats)
    }

    func nextHop(_ m: AgentStateMachine) -> IPAddress? { m.desired.routes.first?.nextHop }

    @Test("draining the current routing peer moves the client to the other one at once; undraining returns after the dwell")
    func drainCurrentSwitches() {
        var m = AgentStateMachine()
        _ = m.receive(update(1, [r1, r2]), now: at(0))
        _ = m.healthObserved(["r1": .connected(), "r2": .connected()], now: at(1))
        #expect(nextHop(m) == r1.meshIP)
        let actions = m.receive(update(2, [drained(r1), r2]), now: at(2))   // within the dwell: a forced switch anyway
        #expect(nextHop(m) == r2.meshIP)
        #expect(m.selection.drainingPeers == ["r1"])
        #expect(m.counters.switches == 1)
        #expect(actions.contains { if case .log(let line) = $0 { return line.contains("switch") && line.contains("r2") }; return false })
        #expect(actions.contains { if case .apply(let d) = $0 { return d.routes.first?.nextHop == r2.meshIP }; return false })
        // Undrained: r1 wins on metric again, as a voluntary switch (after the dwell on r2).
        _ = m.receive(update(3, [r1, r2]), now: at(3))
        #expect(m.selection.drainingPeers.isEmpty)
        #expect(nextHop(m) == r2.meshIP)
        _ = m.tick(now: at(10))
        #expect(nextHop(m) == r1.meshIP)
        #expect(m.counters.switches == 2)
    }

    @Test("draining the only routing peer that is up keeps it; another coming up takes over at once")
    func drainOnlyUpKeepsIt() {
        var m = AgentStateMachine()
        _ = m.receive(update(1, [r1, r2]), now: at(0))
        _ = m.healthObserved(["r1": .connected(), "r2": .unreachable], now: at(1))
        #expect(nextHop(m) == r1.meshIP)
        _ = m.receive(update(2, [drained(r1), r2]), now: at(2))
        #expect(nextHop(m) == r1.meshIP)
        #expect(m.counters.switches == 0)
        _ = m.healthObserved(["r2": .connected()], now: at(3))
        #expect(nextHop(m) == r2.meshIP)
        #expect(m.counters.switches == 1)
    }

    @Test("a new HA set of the same view starts on the undrained peer (no install on the drained one, then a switch)")
    func newSetAvoidsDrained() {
        let dc = HAKey(networkID: "dc", destination: .network(try! Prefix(parsing: "10.30.0.0/16")))
        var m = AgentStateMachine()
        _ = m.receive(update(1, [r1, r2]), now: at(0))
        _ = m.healthObserved(["r1": .connected(), "r2": .connected()], now: at(1))
        var dcR1 = drained(r1), dcR2 = r2
        dcR1.routeID = "dc-r1"
        dcR2.routeID = "dc-r2"
        dcR2.metric = 100
        let view = PeerRouteView(peerID: "client", haSets: [HASet(key: dc, candidates: [dcR1, dcR2]), HASet(key: lan, candidates: [drained(r1), r2])])
        let actions = m.receive(.init(version: 2, digest: "d2", body: [], view: view, source: .nats), now: at(2))
        #expect(m.selection.selection(for: dc)?.candidate.peerID == "r2")
        #expect(m.selection.selection(for: lan)?.candidate.peerID == "r2")
        #expect(m.counters.switches == 1, "\(actions)")
        #expect(m.desired.routes.allSatisfy { $0.nextHop == r2.meshIP })
    }
}
