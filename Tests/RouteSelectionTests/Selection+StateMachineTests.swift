import RouteModel
import RouteSelection
import Testing

/// Scenario tables for the state machine. Peers r1 (metric 100) and r2 (metric 200) serve `key()` unless
/// a test says otherwise.
@Suite("Selection state machine")
struct SelectionStateMachineTests {
    let r1 = cand("r1", metric: 100)
    let r2 = cand("r2", metric: 200)
    let k = key()

    /// A machine with both candidates, both connected, r1 installed at t=0.
    func twoUp(_ config: Machine.Configuration = .init(minimumDwell: .zero)) -> (Machine, RouteTableModel) {
        var m = Machine(configuration: config)
        var table = RouteTableModel()
        table.apply(m.haSetsChanged([haSet(k, [r2, r1])], now: at(0)))
        table.apply(m.healthObserved(["r1": up(20), "r2": up(20)], now: at(0)))
        #expect(table.routes[k] == r1)
        return (m, table)
    }

    @Test("nothing is installed while no candidate is connected")
    func nothingUntilConnected() {
        var m = Machine()
        #expect(m.haSetsChanged([haSet(k, [r1, r2])], now: at(0)).isEmpty)
        #expect(m.healthObserved("r1", .connecting, now: at(1)).isEmpty)
        #expect(m.healthObserved("r2", .unreachable, now: at(1)).isEmpty)
        #expect(m.tick(now: at(2)).isEmpty)
        #expect(m.selection(for: k) == nil)
        #expect(m.healthObserved("r2", up(50), now: at(3)) == [.install(k, r2)])
        #expect(m.selection(for: k) == Selection(candidate: r2, status: .active, since: at(3)))
    }

    @Test("health known before the view: the view installs the best at once")
    func healthFirst() {
        var m = Machine()
        _ = m.healthObserved(["r1": up(80), "r2": up(5)], now: at(0))
        #expect(m.haSetsChanged([haSet(k, [r2, r1])], now: at(1)) == [.install(k, r1)])
    }

    /// A failover row: how the current peer (r1) stops being usable, and the reason given.
    @Test("the current peer is left in the same evaluation it goes down, whatever the dwell", arguments: [
        (PeerHealth?.some(.unreachable), SwitchReason.currentDown(.unreachable)),
        (.some(.connecting), .currentDown(.connecting)),
        (nil, .currentDown(nil)),
    ])
    func failover(observation: PeerHealth?, reason: SwitchReason) {
        var (m, table) = twoUp(.init(minimumDwell: .seconds(3600)))
        let actions = m.healthObserved("r1", observation, now: at(0.5))
        #expect(actions == [.switch(k, from: r1, to: r2, reason: reason)])
        table.apply(actions)
        #expect(m.selection(for: k)?.candidate == r2)
    }

    @Test("failover through a full health snapshot (missing peers count as down)")
    func failoverBySnapshot() {
        var (m, _) = twoUp()
        #expect(m.healthObserved(["r2": up(20)], now: at(1)) == [.switch(k, from: r1, to: r2, reason: .currentDown(nil))])
    }

    @Test("a better peer coming back waits for the minimum dwell, then a tick switches")
    func dwell() {
        var (m, table) = twoUp(.init(minimumDwell: .seconds(5)))
        table.apply(m.healthObserved("r1", .unreachable, now: at(10)))
        #expect(table.routes[k] == r2)
        #expect(m.healthObserved("r1", up(20), now: at(12)).isEmpty)
        #expect(m.nextDeadline == at(15))
        #expect(m.tick(now: at(14.9)).isEmpty)
        let back = m.tick(now: at(15))
        #expect(back == [.switch(k, from: r2, to: r1, reason: .lowerMetric(from: 200, to: 100))])
        #expect(m.nextDeadline == nil)
    }

    @Test("after the dwell, a better peer coming back is taken at once")
    func noDwellLeft() {
        var (m, table) = twoUp(.init(minimumDwell: .seconds(5)))
        table.apply(m.healthObserved("r1", .unreachable, now: at(10)))
        #expect(m.healthObserved("r1", up(20), now: at(16)) == [.switch(k, from: r2, to: r1, reason: .lowerMetric(from: 200, to: 100))])
    }

    @Test("latency-only changes wait for the tick, which applies the hysteresis")
    func latencyOnTick() {
        let a = cand("a"), b = cand("b")
        var m = Machine(configuration: .init(minimumDwell: .zero))
        _ = m.haSetsChanged([haSet(k, [a, b])], now: at(0))
        #expect(m.healthObserved(["a": up(30), "b": up(31)], now: at(0)) == [.install(k, a)])
        #expect(m.healthObserved("b", up(25), now: at(1)).isEmpty)       // latency only: no evaluation
        #expect(m.tick(now: at(2)).isEmpty)                                // 5 ms better: within the margin
        #expect(m.healthObserved("b", up(19), now: at(3)).isEmpty)       // latency only
        #expect(m.tick(now: at(4)) == [.switch(k, from: a, to: b, reason: .lowerLatency(from: ms(30), to: ms(19)))])
        #expect(m.tick(now: at(5)).isEmpty)
    }

    @Test("a path change (relayed to direct) is a connection event, evaluated at once")
    func pathChange() {
        let a = cand("a"), b = cand("b")
        var m = Machine(configuration: .init(minimumDwell: .zero))
        _ = m.haSetsChanged([haSet(k, [a, b])], now: at(0))
        #expect(m.healthObserved(["a": up(10), "b": up(5, relayed: true)], now: at(0)) == [.install(k, a)])
        // a relayed at 10 ms vs b relayed at 5 ms: evaluated, but within the margin, a stays.
        #expect(m.healthObserved("a", up(10, relayed: true), now: at(1)).isEmpty)
        #expect(m.selection(for: k)?.candidate == a)
        #expect(m.healthObserved("b", up(40), now: at(2)) == [.switch(k, from: a, to: b, reason: .directPath)])
    }

    @Test("all candidates down: keep the last choice, say so once, recover in place")
    func allDownRecoverSame() {
        var (m, table) = twoUp()
        #expect(m.healthObserved("r2", .unreachable, now: at(1)).isEmpty)
        #expect(m.healthObserved("r1", .unreachable, now: at(2)) == [.allDown(k, keeping: r1)])
        #expect(m.selection(for: k)?.status == .allDown)
        #expect(m.selection(for: k)?.candidate == r1)
        #expect(m.healthObserved("r1", .connecting, now: at(3)).isEmpty)
        #expect(m.tick(now: at(4)).isEmpty)
        #expect(m.healthObserved("r1", up(20), now: at(5)) == [.recovered(k, r1)])
        #expect(m.selection(for: k)?.status == .active)
        table.apply([.allDown(k, keeping: r1), .recovered(k, r1)])
    }

    @Test("all candidates down, another one comes back first: move to it")
    func allDownRecoverOther() {
        var (m, _) = twoUp()
        _ = m.healthObserved(["r1": .unreachable, "r2": .unreachable], now: at(1))
        #expect(m.selection(for: k)?.status == .allDown)
        #expect(m.healthObserved("r2", up(20), now: at(2)) == [.switch(k, from: r1, to: r2, reason: .currentDown(.unreachable))])
        #expect(m.selection(for: k)?.status == .active)
    }

    @Test("all down, then the kept peer leaves the view: still kept, until another one is up")
    func allDownKeptRemoved() {
        var (m, _) = twoUp()
        _ = m.healthObserved(["r1": .unreachable, "r2": .unreachable], now: at(1))
        #expect(m.haSetsChanged([haSet(k, [r2])], now: at(2)).isEmpty)
        #expect(m.selection(for: k)?.candidate == r1)
        #expect(m.healthObserved("r2", up(), now: at(3)) == [.switch(k, from: r1, to: r2, reason: .currentRemoved)])
    }

    @Test("all down, the view changes the kept peer's entry: follow it, stay all-down")
    func allDownUpdate() {
        var (m, _) = twoUp()
        _ = m.healthObserved(["r1": .unreachable, "r2": .unreachable], now: at(1))
        let moved = cand("r1", metric: 100, mesh: IPAddress(v4: 0x6440_FFFE))
        #expect(m.haSetsChanged([haSet(k, [moved, r2])], now: at(2)) == [.update(k, from: r1, to: moved)])
        #expect(m.selection(for: k) == Selection(candidate: moved, status: .allDown, since: at(0)))
    }

    @Test("draining the current peer moves away at once, even within the dwell")
    func drainCurrent() {
        var (m, _) = twoUp(.init(minimumDwell: .seconds(3600)))
        #expect(m.drainingChanged(["r1"], now: at(1)) == [.switch(k, from: r1, to: r2, reason: .currentDraining)])
        // Undrained: r1 is better again, but a voluntary switch respects the dwell.
        #expect(m.drainingChanged([], now: at(2)).isEmpty)
        #expect(m.nextDeadline == at(3601))
        #expect(m.tick(now: at(3601)) == [.switch(k, from: r2, to: r1, reason: .lowerMetric(from: 200, to: 100))])
    }

    @Test("a draining peer is chosen only when nothing else is up, and left when something is")
    func drainingFallback() {
        var m = Machine(configuration: .init(minimumDwell: .seconds(3600)))
        _ = m.haSetsChanged([haSet(k, [r1, r2])], now: at(0))
        _ = m.drainingChanged(["r1"], now: at(0))
        #expect(m.healthObserved("r1", up(1), now: at(1)) == [.install(k, r1)])
        #expect(m.healthObserved("r2", up(900, relayed: true), now: at(2)) == [.switch(k, from: r1, to: r2, reason: .currentDraining)])
        #expect(m.healthObserved("r2", .unreachable, now: at(3)) == [.switch(k, from: r2, to: r1, reason: .currentDown(.unreachable))])
    }

    @Test("draining a peer that is not chosen changes nothing")
    func drainOther() {
        var (m, _) = twoUp()
        #expect(m.drainingChanged(["r2"], now: at(1)).isEmpty)
        #expect(m.healthObserved("r1", .unreachable, now: at(2)) == [.switch(k, from: r1, to: r2, reason: .currentDown(.unreachable))])
    }

    @Test("the current peer leaves the view: forced switch")
    func currentRemoved() {
        var (m, _) = twoUp(.init(minimumDwell: .seconds(3600)))
        #expect(m.haSetsChanged([haSet(k, [r2])], now: at(1)) == [.switch(k, from: r1, to: r2, reason: .currentRemoved)])
    }

    @Test("a metric change in the view re-evaluates the set (voluntary, after the dwell)")
    func metricChange() {
        var (m, _) = twoUp(.init(minimumDwell: .seconds(5)))
        let r2better = cand("r2", metric: 50)
        #expect(m.haSetsChanged([haSet(k, [r1, r2better])], now: at(1)).isEmpty)
        #expect(m.tick(now: at(5)) == [.switch(k, from: r1, to: r2better, reason: .lowerMetric(from: 100, to: 50))])
    }

    @Test("the chosen peer's entry changes (mesh address, keep_route): update, not switch")
    func updateCurrent() {
        var (m, _) = twoUp()
        let r1moved = cand("r1", metric: 100, keepRoute: true, mesh: IPAddress(v4: 0x6440_FFFE))
        #expect(m.haSetsChanged([haSet(k, [r1moved, r2])], now: at(1)) == [.update(k, from: r1, to: r1moved)])
        #expect(m.selection(for: k)?.candidate == r1moved)
    }

    @Test("an unchanged view is not re-evaluated (latency waits for the tick)")
    func unchangedView() {
        let a = cand("a"), b = cand("b")
        var m = Machine(configuration: .init(minimumDwell: .zero))
        _ = m.haSetsChanged([haSet(k, [a, b])], now: at(0))
        _ = m.healthObserved(["a": up(50), "b": up(50)], now: at(0))
        _ = m.healthObserved("b", up(1), now: at(1))
        #expect(m.haSetsChanged([haSet(k, [b, a])], now: at(2)).isEmpty)
        #expect(m.tick(now: at(3)).count == 1)
    }

    @Test("a removed HA set yields remove, carrying keep_route", arguments: [false, true])
    func removeSet(keepRoute: Bool) {
        let a = cand("a", keepRoute: keepRoute)
        let other = key("office", "10.30.0.0/24")
        var m = Machine()
        _ = m.haSetsChanged([haSet(k, [a]), haSet(other, [cand("b")])], now: at(0))
        _ = m.healthObserved(["a": up(), "b": up()], now: at(0))
        #expect(m.haSetsChanged([haSet(other, [cand("b")])], now: at(1)) == [.remove(k, a, keepRoute: keepRoute)])
        #expect(m.keys == [other])
        #expect(m.selection(for: k) == nil)
    }

    @Test("a removed HA set with nothing installed yields nothing; an empty set counts as removed")
    func removeUninstalled() {
        var m = Machine()
        _ = m.haSetsChanged([haSet(k, [r1])], now: at(0))
        #expect(m.haSetsChanged([haSet(k, [])], now: at(1)).isEmpty)
        #expect(m.keys.isEmpty)
    }

    @Test("several HA sets: actions ordered by key; a peer's failure moves every set it serves")
    func severalSets() {
        let k1 = key("a-net", "10.1.0.0/24"), k2 = key("b-net", "10.2.0.0/24"), k3 = key("c-net", "10.3.0.0/24")
        let shared = cand("s", metric: 10)
        var m = Machine()
        _ = m.haSetsChanged([haSet(k3, [shared, cand("x")]), haSet(k1, [shared, cand("y")]), haSet(k2, [cand("z")])], now: at(0))
        let installs = m.healthObserved(["s": up(), "x": up(), "y": up(), "z": up()], now: at(0))
        #expect(installs == [.install(k1, shared), .install(k2, cand("z")), .install(k3, shared)])
        #expect(m.healthObserved("s", .unreachable, now: at(1)) == [
            .switch(k1, from: shared, to: cand("y"), reason: .currentDown(.unreachable)),
            .switch(k3, from: shared, to: cand("x"), reason: .currentDown(.unreachable)),
        ])
    }

    @Test("deterministic tie-break: equal candidates go to the lowest peer id")
    func tieBreak() {
        var m = Machine()
        _ = m.haSetsChanged([haSet(k, [cand("p3"), cand("p1"), cand("p2")])], now: at(0))
        #expect(m.healthObserved(["p3": up(relayed: true), "p2": up(relayed: true), "p1": up(relayed: true)], now: at(0))
            == [.install(k, cand("p1"))])
    }

    @Test("shutdown removes every installed route, flagging keep_route")
    func shutdown() {
        let kk = key("keep", "10.9.0.0/24")
        var m = Machine()
        _ = m.haSetsChanged([haSet(k, [r1]), haSet(kk, [cand("r9", keepRoute: true)]), haSet(key("idle", "10.8.0.0/24"), [cand("q")])],
                            now: at(0))
        _ = m.healthObserved(["r1": up(), "r9": up()], now: at(0))
        #expect(m.shutdown() == [.remove(kk, cand("r9", keepRoute: true), keepRoute: true), .remove(k, r1, keepRoute: false)])
        #expect(m.keys.isEmpty)
    }

    @Test("minimum uptime: a flapping better peer never takes the route back")
    func minimumUptime() {
        var (m, table) = twoUp(.init(minimumDwell: .zero, minimumUptime: .seconds(3)))
        var changes = 0
        for step in 1...120 {
            let now = at(Double(step) * 0.5)
            let actions = m.healthObserved("r1", step % 2 == 0 ? up(20) : .unreachable, now: now) + m.tick(now: now)
            table.apply(actions)
            changes += actions.filter(\.changesRoutes).count
        }
        #expect(changes == 1)   // the first failure
        #expect(table.routes[k] == r2)
        // r1 came up at t=60 (the last step) and now stays up: back to r1 once it has been up for 3 s.
        #expect(m.nextDeadline == at(63))
        #expect(m.tick(now: at(62.9)).isEmpty)
        #expect(m.tick(now: at(63)) == [.switch(k, from: r2, to: r1, reason: .lowerMetric(from: 200, to: 100))])
    }

    @Test("minimum dwell bounds the route changes of a flapping link", arguments: [1.0, 2.0, 5.0, 10.0])
    func dwellBoundsFlapping(dwell: Double) {
        var (m, table) = twoUp(.init(minimumDwell: .milliseconds(Int64(dwell * 1000))))
        var changes = 0
        let seconds = 120
        for step in 1...(seconds * 4) {
            let now = at(Double(step) * 0.25)
            // r1 flaps: up 0.75 s, down 0.25 s.
            let actions = m.healthObserved("r1", step % 4 == 0 ? .unreachable : up(20), now: now) + m.tick(now: now)
            table.apply(actions)
            changes += actions.filter(\.changesRoutes).count
        }
        // Each return to r1 needs a dwell on r2 first: at most two changes per dwell period.
        #expect(changes <= 2 * Int((Double(seconds) / dwell).rounded(.up)) + 1)
        #expect(table.routes[k] == m.selection(for: k)?.candidate)
    }

    @Test("action descriptions carry the reason")
    func descriptions() {
        let s = Action.switch(k, from: r1, to: r2, reason: .currentDown(.unreachable)).description
        #expect(s.contains("r1") && s.contains("r2") && s.contains("unreachable") && s.contains("lan-10.20.0.0/24"))
        #expect(Action.remove(k, r1, keepRoute: true).description.contains("keep_route"))
        #expect(Action.allDown(k, keeping: r1).description.contains("dropped"))
    }
}
