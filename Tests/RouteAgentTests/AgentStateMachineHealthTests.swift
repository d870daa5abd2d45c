import RouteAgent
import RouteModel
import RouteSelection
import Testing

/// The prober reports one peer's reachability change at a time: a report about one candidate must not
/// count the others as gone (found by ops/netns-e2e: R2 coming up moved the client off a healthy R1).
@Suite("Agent state machine: health reports")
struct AgentStateMachineHealthTests {
    let t0 = ContinuousClock.now
    let lan = HAKey(networkID: "office-lan", destination: .network(try! Prefix(parsing: "10.20.0.0/24")))
    let r1 = RouteCandidate(peerID: "r1", meshIP: try! IPAddress(parsing: "100.64.0.1"), metric: 100, masquerade: true,
                            keepRoute: false, skipAutoApply: false, routeID: RouteID("route-r1"))
    let r2 = RouteCandidate(peerID: "r2", meshIP: try! IPAddress(parsing: "100.64.0.2"), metric: 200, masquerade: true,
                            keepRoute: false, skipAutoApply: false, routeID: RouteID("route-r2"))

    func at(_ s: Int) -> ContinuousClock.Instant { t0 + .seconds(s) }

    func machine(_ candidates: [RouteCandidate]) -> AgentStateMachine {
        var m = AgentStateMachine()
        let view = PeerRouteView(peerID: "client", haSets: [HASet(key: lan, candidates: candidates)])
        _ = m.receive(.init(version: 1, digest: "d1", body: [], view: view, source: .nats), now: at(0))
        return m
    }

    func nextHop(_ m: AgentStateMachine) -> IPAddress? { m.desired.routes.first?.nextHop }

    @Test("a report about R2 alone keeps the client on R1")
    func partialReportsKeepOthers() {
        var m = machine([r1, r2])
        _ = m.healthObserved(["r1": .connected()], now: at(1))
        #expect(nextHop(m) == r1.meshIP)
        let actions = m.healthObserved(["r2": .connected()], now: at(2))
        #expect(actions.isEmpty)
        #expect(nextHop(m) == r1.meshIP)
        #expect(m.counters.switches == 0)
    }

    @Test("R1 down moves to R2 at once; R1 back returns once, after the dwell")
    func failoverAndReturn() {
        var m = machine([r1, r2])
        _ = m.healthObserved(["r1": .connected()], now: at(1))
        _ = m.healthObserved(["r2": .connected()], now: at(1))
        _ = m.healthObserved(["r1": .unreachable], now: at(10))
        #expect(nextHop(m) == r2.meshIP)
        _ = m.healthObserved(["r1": .connected()], now: at(12))   // within the 5 s dwell: stays
        #expect(nextHop(m) == r2.meshIP)
        _ = m.tick(now: at(16))
        #expect(nextHop(m) == r1.meshIP)
        _ = m.tick(now: at(17))
        #expect(m.counters.switches == 2)
    }

    @Test("a candidate that leaves the view is forgotten: back in the view it waits for a fresh probe")
    func removedCandidateForgotten() {
        var m = machine([r1, r2])
        _ = m.healthObserved(["r1": .connected()], now: at(1))
        _ = m.healthObserved(["r2": .connected()], now: at(1))
        let onlyR2 = PeerRouteView(peerID: "client", haSets: [HASet(key: lan, candidates: [r2])])
        _ = m.receive(.init(version: 2, digest: "d2", body: [], view: onlyR2, source: .nats), now: at(2))
        #expect(nextHop(m) == r2.meshIP)
        let both = PeerRouteView(peerID: "client", haSets: [HASet(key: lan, candidates: [r1, r2])])
        _ = m.receive(.init(version: 3, digest: "d3", body: [], view: both, source: .nats), now: at(20))
        #expect(nextHop(m) == r2.meshIP)   // r1 not observed since it came back
        _ = m.healthObserved(["r1": .connected()], now: at(21))
        #expect(nextHop(m) == r1.meshIP)
    }
}
