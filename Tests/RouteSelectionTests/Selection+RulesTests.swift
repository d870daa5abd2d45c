import RouteModel
import RouteSelection
import Testing

@Suite("Selection rules (pure functions)")
struct SelectionRulesTests {
    @Test("only connected peers are eligible", arguments: [
        (PeerHealth?.some(.connected()), true),
        (.some(.connected(relayed: true, latency: ms(900))), true),
        (.some(.connecting), false),
        (.some(.unreachable), false),
        (.some(PeerHealth(.unreachable, relayed: false, latency: ms(1))), false),
        (nil, false),
    ])
    func eligibility(health: PeerHealth?, eligible: Bool) {
        #expect(SelectionRules.isEligible(health) == eligible)
    }

    /// One row: candidates as (peer, metric, health, draining); the expected choice (nil: none up).
    struct BestRow: Sendable, CustomTestStringConvertible {
        var name: String
        var candidates: [(String, Int, PeerHealth?, Bool)]
        var expected: String?
        var testDescription: String { name }
    }

    static let bestRows: [BestRow] = [
        BestRow(name: "nothing observed", candidates: [("a", 100, nil, false), ("b", 100, nil, false)], expected: nil),
        BestRow(name: "all unreachable or connecting",
                candidates: [("a", 100, .unreachable, false), ("b", 100, .connecting, false)], expected: nil),
        BestRow(name: "the only connected one, whatever its metric",
                candidates: [("a", 1, .unreachable, false), ("b", 9999, up(500, relayed: true), false)], expected: "b"),
        BestRow(name: "lower metric beats direct and faster",
                candidates: [("a", 200, up(1), false), ("b", 100, up(900, relayed: true), false)], expected: "b"),
        BestRow(name: "equal metric: direct beats relayed even when slower",
                candidates: [("a", 100, up(5, relayed: true), false), ("b", 100, up(400), false)], expected: "b"),
        BestRow(name: "equal metric and path: lower latency",
                candidates: [("a", 100, up(30), false), ("b", 100, up(29), false), ("c", 100, up(31), false)], expected: "b"),
        BestRow(name: "exact tie: lower peer id, not random",
                candidates: [("c", 100, up(20), false), ("a", 100, up(20), false), ("b", 100, up(20), false)], expected: "a"),
        BestRow(name: "all relayed, unmeasured: lower peer id",
                candidates: [("z", 100, up(relayed: true), false), ("y", 100, up(relayed: true), false)], expected: "y"),
        BestRow(name: "unmeasured counts as 1 s: 900 ms beats it",
                candidates: [("a", 100, up(), false), ("b", 100, up(900), false)], expected: "b"),
        BestRow(name: "unmeasured counts as 1 s: it beats 1.5 s",
                candidates: [("a", 100, up(1500), false), ("b", 100, up(), false)], expected: "b"),
        BestRow(name: "unreachable lower metric is ignored",
                candidates: [("a", 1, .unreachable, false), ("b", 500, up(10), false)], expected: "b"),
        BestRow(name: "draining loses to anything up, even a worse metric",
                candidates: [("a", 1, up(1), true), ("b", 9999, up(900, relayed: true), false)], expected: "b"),
        BestRow(name: "draining chosen when nothing else is up",
                candidates: [("a", 100, up(10), true), ("b", 50, .unreachable, false)], expected: "a"),
        BestRow(name: "among draining peers the usual order",
                candidates: [("a", 200, up(10), true), ("b", 100, up(10, relayed: true), true)], expected: "b"),
    ]

    @Test("best candidate", arguments: bestRows)
    func best(row: BestRow) {
        let candidates = row.candidates.map { cand($0.0, metric: $0.1) }
        var health: [PeerID: PeerHealth] = [:]
        for (peer, _, h, _) in row.candidates { health[PeerID(peer)] = h }
        let draining = Set(row.candidates.filter(\.3).map { PeerID($0.0) })
        let chosen = SelectionRules.best(candidates, health: health, draining: draining)
        #expect(chosen?.peerID == row.expected.map(PeerID.init))
        // Input order never matters.
        #expect(SelectionRules.best(candidates.reversed(), health: health, draining: draining) == chosen)
    }

    /// One row: current and challenger as (metric, health, draining); the expected reason to switch.
    struct ImprovementRow: Sendable, CustomTestStringConvertible {
        var name: String
        var current: (Int, PeerHealth, Bool)
        var challenger: (Int, PeerHealth, Bool)
        var hysteresis: Duration = ms(10)
        var expected: SwitchReason?
        var testDescription: String { name }
    }

    static let improvementRows: [ImprovementRow] = [
        ImprovementRow(name: "lower metric", current: (200, up(5), false), challenger: (100, up(50, relayed: true), false),
                       expected: .lowerMetric(from: 200, to: 100)),
        ImprovementRow(name: "higher metric never", current: (100, up(500, relayed: true), false),
                       challenger: (101, up(1), false), expected: nil),
        ImprovementRow(name: "direct over relayed", current: (100, up(5, relayed: true), false),
                       challenger: (100, up(300), false), expected: .directPath),
        ImprovementRow(name: "relayed over direct never", current: (100, up(300), false),
                       challenger: (100, up(5, relayed: true), false), expected: nil),
        ImprovementRow(name: "5 ms faster: within the margin", current: (100, up(30), false),
                       challenger: (100, up(25), false), expected: nil),
        ImprovementRow(name: "exactly 10 ms faster: not more than the margin", current: (100, up(30), false),
                       challenger: (100, up(20), false), expected: nil),
        ImprovementRow(name: "11 ms faster", current: (100, up(30), false), challenger: (100, up(19), false),
                       expected: .lowerLatency(from: ms(30), to: ms(19))),
        ImprovementRow(name: "slower never", current: (100, up(19), false), challenger: (100, up(30), false), expected: nil),
        ImprovementRow(name: "equal never", current: (100, up(19), false), challenger: (100, up(19), false), expected: nil),
        ImprovementRow(name: "margin configurable: 50 ms", current: (100, up(100), false), challenger: (100, up(55), false),
                       hysteresis: ms(50), expected: nil),
        ImprovementRow(name: "margin configurable: zero", current: (100, up(30), false), challenger: (100, up(29), false),
                       hysteresis: .zero, expected: .lowerLatency(from: ms(30), to: ms(29))),
        ImprovementRow(name: "unmeasured current counts as 1 s", current: (100, up(), false), challenger: (100, up(20), false),
                       expected: .lowerLatency(from: .seconds(1), to: ms(20))),
        ImprovementRow(name: "unmeasured challenger never beats a measured one", current: (100, up(900), false),
                       challenger: (100, up(), false), expected: nil),
        ImprovementRow(name: "leave a draining current", current: (1, up(1), true), challenger: (9999, up(900, relayed: true), false),
                       expected: .currentDraining),
        ImprovementRow(name: "a draining challenger never wins", current: (9999, up(900, relayed: true), false),
                       challenger: (1, up(1), true), expected: nil),
        ImprovementRow(name: "both draining: usual rules", current: (200, up(1), true), challenger: (100, up(1), true),
                       expected: .lowerMetric(from: 200, to: 100)),
    ]

    @Test("when a challenger replaces the current choice", arguments: improvementRows)
    func improvement(row: ImprovementRow) {
        let config = Machine.Configuration(latencyHysteresis: row.hysteresis)
        let current = Contender(candidate: cand("cur", metric: row.current.0), health: row.current.1,
                                draining: row.current.2, configuration: config)
        let challenger = Contender(candidate: cand("new", metric: row.challenger.0), health: row.challenger.1,
                                   draining: row.challenger.2, configuration: config)
        #expect(SelectionRules.improvement(of: challenger, over: current, configuration: config) == row.expected)
        // An improvement is also a preference (the converse need not hold: hysteresis).
        if row.expected != nil { #expect(SelectionRules.prefers(challenger, over: current)) }
    }

    @Test("forced reasons are the ones that ignore dwell", arguments: [
        (SwitchReason.currentDown(.unreachable), true), (.currentDown(nil), true), (.currentRemoved, true),
        (.currentDraining, true), (.lowerMetric(from: 2, to: 1), false), (.directPath, false),
        (.lowerLatency(from: ms(30), to: ms(1)), false),
    ])
    func forced(reason: SwitchReason, forced: Bool) {
        #expect(reason.isForced == forced)
        #expect(!reason.description.isEmpty)
    }

    @Test("normalized: canonical order, one entry per peer, independent of input order")
    func normalized() {
        let a1 = cand("a", metric: 200, route: "r1")
        let a2 = cand("a", metric: 100, route: "r2")
        let b = cand("b", metric: 100, route: "r1")
        let c = cand("c", metric: 50, route: "r9")
        let expected = [c, a2, b]
        for input in [[a1, a2, b, c], [c, b, a2, a1], [b, a1, c, a2, a1]] {
            #expect(SelectionRules.normalized(input) == expected)
        }
    }

    @Test("latencies in log lines")
    func logText() {
        #expect(SwitchReason.lowerLatency(from: ms(30), to: .microseconds(12_500)).description == "lower latency 30ms -> 12.5ms")
        #expect(PeerHealth.connected(relayed: true, latency: ms(4)).description == "connected relayed 4ms")
        #expect(PeerHealth.unreachable.description == "unreachable")
    }
}
