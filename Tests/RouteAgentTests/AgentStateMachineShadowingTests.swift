import RouteAgent
import RouteModel
import RouteSelection
import ViewTransport
import Testing

/// HA sets of different network ids that lead to the same destination: the agent installs exactly one of them and
/// the rest of the view as usual, instead of handing `DesiredRouteState.validate()` a destination twice (which threw
/// and left the whole view unapplied). Pure: views, health reports and ticks in, actions and desired state out.
///
/// NetBird's client keys routes by HA unique id (`route/route.go` `GetHAUniqueID`: network id + range) and installs
/// every HA id (`client/internal/routemanager/manager.go` `updateSystemRoutes`); the range's allowed IP goes to the
/// first watcher that adds it, the next one logs "Prefix … is already routed by peer …. HA routing disabled"
/// (`client/internal/routemanager/static/route.go` `AddAllowedIPs`), so which network carries the traffic depends on
/// timing, and the first one's failover does not move it. Only exit nodes get one choice (`pickPreferredExitNode`),
/// which the user changes with `netbird routes select`.
@Suite("Agent state machine: one HA set per destination")
struct AgentStateMachineShadowingTests {
    let t0 = ContinuousClock.now
    func at(_ s: Int) -> ContinuousClock.Instant { t0 + .seconds(s) }

    static func key(_ networkID: String, _ prefix: String) -> HAKey {
        HAKey(networkID: networkID, destination: .network(try! Prefix(parsing: prefix)))
    }
    static func candidate(_ peer: String, _ ip: String, metric: Int = 100, route: String, skipAutoApply: Bool = false) -> RouteCandidate {
        RouteCandidate(peerID: PeerID(peer), meshIP: try! IPAddress(parsing: ip), metric: metric, masquerade: true,
                       keepRoute: false, skipAutoApply: skipAutoApply, routeID: RouteID(route))
    }

    let lanA = key("lan-a", "10.20.0.0/24")
    let lanB = key("lan-b", "10.20.0.0/24")
    let dc = key("dc", "10.30.0.0/16")
    let r1 = candidate("r1", "100.64.0.1", route: "route-a")
    let r2 = candidate("r2", "100.64.0.2", route: "route-b")
    let r3 = candidate("r3", "100.64.0.3", route: "route-dc")

    /// Each view one version after the held one.
    func receive(_ m: inout AgentStateMachine, _ sets: [HASet], at s: Int) -> [AgentStateMachine.Action] {
        let version = m.appliedVersion + 1
        let view = PeerRouteView(peerID: "client", haSets: sets.sorted { $0.key < $1.key })
        return m.receive(.init(version: version, digest: "d\(version)", body: [], view: view, source: .nats), now: at(s))
    }

    /// Destination → next hop, as the OS would hold it; also checks that the state would be accepted by the applier.
    func installed(_ m: AgentStateMachine) throws -> [String: String] {
        try m.desired.validate()
        return Dictionary(uniqueKeysWithValues: m.desired.routes.map { ($0.destination.description, $0.nextHop.description) })
    }

    func logs(_ actions: [AgentStateMachine.Action]) -> [String] {
        actions.compactMap { if case .log(let line) = $0 { line } else { nil } }
    }

    @Test("same range under two network ids: one installed (lower metric), the other shadowed, the rest of the view installed")
    func sameRangeTwoNetworkIDs() throws {
        var m = AgentStateMachine(configuration: .init(assumeCandidatesUp: true))
        let cheaper = Self.candidate("r2", "100.64.0.2", metric: 50, route: "route-b")
        let actions = receive(&m, [HASet(key: lanA, candidates: [r1]), HASet(key: lanB, candidates: [cheaper]), HASet(key: dc, candidates: [r3])], at: 0)
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.2", "10.30.0.0/16": "100.64.0.3"])
        #expect(m.arbiter.shadowedBy == [lanA: lanB])
        #expect(m.shadowed.map(\.networkID) == ["lan-a"])
        #expect(m.shadowed.first?.routeIDs == ["route-a"])
        #expect(m.shadowed.first?.shadowedByNetworkID == "lan-b")
        #expect(m.shadowed.first?.shadowedByRouteID == "route-b")
        #expect(logs(actions).contains { $0.hasPrefix("lan-a-10.20.0.0/24 shadowed by lan-b-10.20.0.0/24") && $0.contains("lower metric 50 < 100") })
        #expect(actions.contains(.publishStatus))
        #expect(m.counters.shadowings == 1)
    }

    @Test("two exit nodes: no default route until the user selects one; then exactly that one, nothing shadowed")
    func twoExitNodes() throws {
        var m = AgentStateMachine(configuration: .init(assumeCandidatesUp: true))
        let exitB = Self.key("exit-b", "0.0.0.0/0"), exitA = Self.key("exit-a", "0.0.0.0/0")
        _ = receive(&m, [HASet(key: exitB, candidates: [r2]), HASet(key: exitA, candidates: [r1]), HASet(key: dc, candidates: [r3])], at: 0)
        #expect(try installed(m) == ["10.30.0.0/16": "100.64.0.3"])
        _ = m.choicesChanged(RouteChoices(exitNode: "exit-b", generation: 1), now: at(1))
        #expect(try installed(m) == ["0.0.0.0/0": "100.64.0.2", "10.30.0.0/16": "100.64.0.3"])
        #expect(m.arbiter.shadowedBy.isEmpty, "the exit node not selected does not compete")
    }

    @Test("equal metric: the better connection wins (direct over relayed, then latency), and only then the network id")
    func tiesByQualityThenNetworkID() throws {
        var m = AgentStateMachine()
        _ = receive(&m, [HASet(key: lanA, candidates: [r1]), HASet(key: lanB, candidates: [r2])], at: 0)
        #expect(try installed(m).isEmpty, "nothing up yet: nothing installed")
        _ = m.healthObserved(["r1": .connected(relayed: true, latency: .milliseconds(5)), "r2": .connected(latency: .milliseconds(40))], now: at(1))
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.2"], "direct beats relayed")
        #expect(m.arbiter.shadowedBy == [lanA: lanB])

        var fresh = AgentStateMachine()
        _ = receive(&fresh, [HASet(key: lanA, candidates: [r1]), HASet(key: lanB, candidates: [r2])], at: 0)
        _ = fresh.healthObserved(["r1": .connected(latency: .milliseconds(60)), "r2": .connected(latency: .milliseconds(20))], now: at(1))
        #expect(try installed(fresh) == ["10.20.0.0/24": "100.64.0.2"], "lower latency")

        var tie = AgentStateMachine()
        _ = receive(&tie, [HASet(key: lanB, candidates: [r2]), HASet(key: lanA, candidates: [r1])], at: 0)
        _ = tie.healthObserved(["r1": .connected(latency: .milliseconds(20)), "r2": .connected(latency: .milliseconds(20))], now: at(1))
        #expect(try installed(tie) == ["10.20.0.0/24": "100.64.0.1"], "all equal: lower network id (lan-a)")
    }

    @Test("failover of the chosen set moves the destination to the other network id; its recovery moves it back")
    func failoverReevaluates() throws {
        var m = AgentStateMachine()
        let expensive = Self.candidate("r2", "100.64.0.2", metric: 200, route: "route-b")
        _ = receive(&m, [HASet(key: lanA, candidates: [r1]), HASet(key: lanB, candidates: [expensive])], at: 0)
        _ = m.healthObserved(["r1": .connected(), "r2": .connected()], now: at(1))
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.1"])
        let down = m.healthObserved(["r1": .unreachable], now: at(10))
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.2"])
        #expect(m.arbiter.shadowedBy == [lanA: lanB])
        #expect(logs(down).contains { $0.contains("lan-a-10.20.0.0/24 shadowed by lan-b-10.20.0.0/24") && $0.contains("not connected") })
        #expect(down.contains(.publishStatus))
        _ = m.healthObserved(["r1": .connected()], now: at(12))
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.1"])
        #expect(m.arbiter.shadowedBy == [lanB: lanA])
    }

    @Test("a shadowed HA set is installed when the winner leaves the view")
    func shadowedBecomesActive() throws {
        var m = AgentStateMachine(configuration: .init(assumeCandidatesUp: true))
        _ = receive(&m, [HASet(key: lanA, candidates: [r1]), HASet(key: lanB, candidates: [r2])], at: 0)
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.1"])
        let actions = receive(&m, [HASet(key: lanB, candidates: [r2])], at: 1)
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.2"])
        #expect(m.shadowed.isEmpty)
        #expect(logs(actions).contains("lan-b-10.20.0.0/24 no longer shadowed"))
    }

    @Test("the same routing peer under two network ids (NetBird accepts it): one installed, through that peer")
    func samePeerTwoNetworkIDs() throws {
        var m = AgentStateMachine()
        let viaA = Self.candidate("r1", "100.64.0.1", route: "route-a"), viaB = Self.candidate("r1", "100.64.0.1", route: "route-b")
        _ = receive(&m, [HASet(key: lanB, candidates: [viaB]), HASet(key: lanA, candidates: [viaA])], at: 0)
        _ = m.healthObserved(["r1": .connected(latency: .milliseconds(3))], now: at(1))
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.1"])
        #expect(m.shadowed.map(\.networkID) == ["lan-b"])
        #expect(m.shadowed.first?.shadowedByRouteID == "route-a")
        // The peer goes away: both sets are down together; the route stays (traffic dropped, not leaked), no shadow change.
        let down = m.healthObserved(["r1": .unreachable], now: at(5))
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.1"])
        #expect(!logs(down).contains { $0.contains("shadowed") })
    }

    @Test("a skip_auto_apply HA set neither installs nor shadows the other network id")
    func skipAutoApplyDoesNotCompete() throws {
        var m = AgentStateMachine(configuration: .init(assumeCandidatesUp: true))
        let offered = Self.candidate("r1", "100.64.0.1", metric: 1, route: "route-a", skipAutoApply: true)
        _ = receive(&m, [HASet(key: lanA, candidates: [offered]), HASet(key: lanB, candidates: [r2])], at: 0)
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.2"])
        #expect(m.shadowed.isEmpty)
    }

    @Test("shadowing is logged once per change, never per tick or per latency report")
    func logOncePerChange() throws {
        var m = AgentStateMachine()
        _ = receive(&m, [HASet(key: lanA, candidates: [r1]), HASet(key: lanB, candidates: [r2])], at: 0)
        let first = m.healthObserved(["r1": .connected(latency: .milliseconds(10)), "r2": .connected(latency: .milliseconds(30))], now: at(1))
        #expect(logs(first).filter { $0.hasPrefix("lan-b-10.20.0.0/24 shadowed by lan-a") }.count == 1, "\(logs(first))")
        #expect(logs(first).contains("install lan-b-10.20.0.0/24 via r2 (100.64.0.2, metric 100) (shadowed by lan-a-10.20.0.0/24: not installed)"),
                "the selection's own line says the set installs nothing")
        var later: [AgentStateMachine.Action] = []
        for s in 2..<30 {
            // r2 is faster than r1 now, but by less than the 10 ms hysteresis: lan-a stays installed.
            later += m.healthObserved(["r2": .connected(latency: .milliseconds(3 + Int64(s % 5)))], now: at(s))
            later += m.tick(now: at(s))
        }
        #expect(logs(later).isEmpty, "\(logs(later))")
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.1"])
        #expect(!later.contains(.publishStatus))
        #expect(m.counters.shadowings == 1)
    }
}
