import RouteModel
import RouteSelection
import Testing
import TestSupport

/// Inputs of the machine, as a script a seeded generator writes and the tests replay.
enum Input: Sendable {
    case view([HASet])
    case health(PeerID, PeerHealth?)
    /// A latency-only change of a connected peer (the generator guarantees it).
    case latency(PeerID, PeerHealth)
    case snapshot([PeerID: PeerHealth])
    case draining(Set<PeerID>)
    case tick
}

struct Step: Sendable {
    var now: Instant
    var input: Input
}

/// Random scripts over a small universe, so that shared peers, all-down sets and draining peers happen often.
struct ScenarioGenerator {
    var rng: SplitMix64
    let peers: [PeerID] = (0..<6).map { PeerID("p\($0)") }
    let keys = [key("lan", "10.20.0.0/24"), key("dc", "10.30.0.0/16"), key("office", "fd00::/64")]
    var health: [PeerID: PeerHealth] = [:]
    var time = 0.0

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }

    mutating func view() -> [HASet] {
        keys.compactMap { k in
            guard chance(0.85) else { return nil }
            let chosen = peers.shuffled(using: &rng).prefix(Int.random(in: 1...4, using: &rng))
            return HASet(key: k, candidates: chosen.map { p in
                cand(p.rawValue, metric: pick([100, 100, 200, 300]), keepRoute: chance(0.2),
                     mesh: chance(0.05) ? IPAddress(v4: 0x6440_FF00) : nil)
            })
        }
    }

    mutating func observation() -> PeerHealth? {
        switch Int.random(in: 0..<20, using: &rng) {
        case 0..<10: return .connected(relayed: chance(0.3), latency: chance(0.1) ? nil : .microseconds(Int64.random(in: 1_000...200_000, using: &rng)))
        case 10..<15: return .unreachable
        case 15..<18: return .connecting
        default: return nil
        }
    }

    mutating func next() -> Step {
        time += pick([0, 0.1, 0.5, 1, 2, 7])
        let input: Input
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<10: input = .view(view())
        case 10..<50:
            let p = pick(peers), h = observation()
            health[p] = h
            input = .health(p, h)
        case 50..<65:
            let connected = peers.filter { health[$0]?.isUp == true }
            if connected.isEmpty { input = .tick; break }
            let p = pick(connected)
            var h = health[p]!
            h.latency = .microseconds(Int64.random(in: 1_000...200_000, using: &rng))
            health[p] = h
            input = .latency(p, h)
        case 65..<70:
            for p in peers { health[p] = observation() }
            input = .snapshot(health.compactMapValues { $0 })
        case 70..<76: input = .draining(Set(peers.filter { _ in chance(0.2) }))
        default: input = .tick
        }
        return Step(now: at(time), input: input)
    }

    mutating func script(_ count: Int) -> [Step] { (0..<count).map { _ in next() } }
}

func run(_ m: inout Machine, _ step: Step) -> [Action] {
    switch step.input {
    case .view(let sets): return m.haSetsChanged(sets, now: step.now)
    case .health(let p, let h): return m.healthObserved(p, h, now: step.now)
    case .latency(let p, let h): return m.healthObserved(p, h, now: step.now)
    case .snapshot(let s): return m.healthObserved(s, now: step.now)
    case .draining(let d): return m.drainingChanged(d, now: step.now)
    case .tick: return m.tick(now: step.now)
    }
}

/// The same input with every collection in another order (and candidates listed twice).
func permuted(_ step: Step, using rng: inout SplitMix64) -> Step {
    var step = step
    switch step.input {
    case .view(let sets):
        step.input = .view(sets.shuffled(using: &rng).map { s in
            HASet(key: s.key, candidates: (s.candidates + s.candidates.filter { _ in Bool.random(using: &rng) }).shuffled(using: &rng))
        })
    case .snapshot(let s):
        var rebuilt: [PeerID: PeerHealth] = [:]
        for (p, h) in s.sorted(by: { $0.key < $1.key }).shuffled(using: &rng) { rebuilt[p] = h }
        step.input = .snapshot(rebuilt)
    case .draining(let d):
        var rebuilt = Set<PeerID>()
        for p in d.sorted().shuffled(using: &rng) { rebuilt.insert(p) }
        step.input = .draining(rebuilt)
    case .health, .latency, .tick: break
    }
    return step
}

@Suite("Selection properties (seeded)")
struct SelectionPropertyTests {
    static let seeds: [UInt64] = Array(1...40)

    @Test("invariants over random scripts", arguments: seeds)
    func invariants(seed: UInt64) {
        var gen = ScenarioGenerator(seed: seed)
        let config = Machine.Configuration(minimumDwell: gen.pick([.zero, .seconds(1), .seconds(5)]),
                                           minimumUptime: gen.pick([.zero, .seconds(2)]))
        var m = Machine(configuration: config)
        var table = RouteTableModel()
        var health: [PeerID: PeerHealth] = [:]
        var draining = Set<PeerID>()
        for _ in 0..<400 {
            let step = gen.next()
            let before = m.selections
            let keysBefore = Set(m.keys)
            switch step.input {
            case .health(let p, let h): health[p] = h
            case .latency(let p, let h): health[p] = h
            case .snapshot(let s): health = s
            case .draining(let d): draining = d
            case .view, .tick: break
            }
            let actions = run(&m, step)
            table.apply(actions)

            // The actions describe the state exactly.
            #expect(table.routes == m.selections.mapValues(\.candidate), "seed \(seed)")
            // Latency alone never moves a route outside a tick.
            if case .latency = step.input { #expect(actions.isEmpty, "seed \(seed)") }
            // A set that left the view is removed iff something was installed for it.
            for k in keysBefore.subtracting(m.keys) {
                let removes = actions.filter { if case .remove(k, _, _) = $0 { true } else { false } }
                #expect(removes.count == (before[k] == nil ? 0 : 1), "seed \(seed) \(k)")
            }
            for k in m.keys {
                let candidates = m.candidates(of: k)
                let upCandidates = candidates.filter { health[$0.peerID]?.isUp == true }
                let selection = m.selection(for: k)
                if upCandidates.isEmpty {
                    // All down: keep the last choice (or nothing if there never was one).
                    #expect(selection?.candidate.peerID == before[k]?.candidate.peerID, "seed \(seed) \(k)")
                    if let selection { #expect(selection.status == .allDown, "seed \(seed)") }
                } else {
                    // Never a down peer while one is up; never a draining one while another is up.
                    guard let selection else { Issue.record("seed \(seed) \(k): nothing chosen while a candidate is up"); continue }
                    #expect(selection.status == .active)
                    #expect(upCandidates.contains(selection.candidate), "seed \(seed) \(k): chose \(selection.candidate.peerID)")
                    if upCandidates.contains(where: { !draining.contains($0.peerID) }) {
                        #expect(!draining.contains(selection.candidate.peerID), "seed \(seed) \(k)")
                    }
                    // A down current peer is left in this very evaluation, for a connected one.
                    if let previous = before[k], !upCandidates.contains(where: { $0.peerID == previous.candidate.peerID }) {
                        #expect(actions.contains { a in
                            if case .switch(k, let from, _, let reason) = a { return from.peerID == previous.candidate.peerID && reason.isForced }
                            return false
                        }, "seed \(seed) \(k)")
                    }
                }
            }
            // Voluntary switches wait for the dwell.
            for case .switch(let k, _, _, let reason) in actions where !reason.isForced {
                if let previous = before[k] { #expect(previous.since + config.minimumDwell <= step.now, "seed \(seed)") }
            }
        }
    }

    @Test("deterministic: the same inputs, in any order, give the same actions", arguments: seeds)
    func determinism(seed: UInt64) {
        var gen = ScenarioGenerator(seed: seed)
        let script = gen.script(300)
        var shuffler = SplitMix64(seed: seed &* 7919)
        var a = Machine(), b = Machine(), c = Machine()
        for step in script {
            let fromA = run(&a, step)
            #expect(run(&b, step) == fromA, "seed \(seed): same inputs")
            #expect(run(&c, permuted(step, using: &shuffler)) == fromA, "seed \(seed): permuted inputs")
        }
        #expect(a.selections == c.selections)
        #expect(a.shutdown() == c.shutdown())
    }

    @Test("no flapping under latency noise within the margin", arguments: seeds)
    func noFlapping(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let margin = Duration.milliseconds(Int64([5, 10, 10, 25].randomElement(using: &rng)!))
        let halfMarginMicros = margin.components.attoseconds / 2_000_000_000_000 + margin.components.seconds * 500_000
        let base = Int64.random(in: 2_000...200_000, using: &rng)
        let n = Int.random(in: 2...5, using: &rng)
        let peers = (0..<n).map { PeerID("p\($0)") }
        // Fixed classes (metric, path kind) per peer; latency noise only.
        let classes = peers.map { _ in (metric: [100, 200].randomElement(using: &rng)!, relayed: Bool.random(using: &rng)) }
        var m = Machine(configuration: .init(latencyHysteresis: margin, minimumDwell: .zero))
        let k = key()
        _ = m.haSetsChanged([haSet(k, peers.enumerated().map { cand($1.rawValue, metric: classes[$0].metric) })], now: at(0))
        func noisy() -> [PeerID: PeerHealth] {
            var s: [PeerID: PeerHealth] = [:]
            for (i, p) in peers.enumerated() {
                s[p] = .connected(relayed: classes[i].relayed,
                                  latency: .microseconds(base + Int64.random(in: -halfMarginMicros...halfMarginMicros, using: &rng)))
            }
            return s
        }
        var actions = m.healthObserved(noisy(), now: at(0))
        #expect(actions.count == 1)
        for step in 1...500 {
            let now = at(Double(step) * 0.5)
            if Bool.random(using: &rng) {
                actions += m.healthObserved(noisy(), now: now)
            } else {
                let p = peers.randomElement(using: &rng)!
                let i = peers.firstIndex(of: p)!
                actions += m.healthObserved(p, .connected(relayed: classes[i].relayed,
                    latency: .microseconds(base + Int64.random(in: -halfMarginMicros...halfMarginMicros, using: &rng))), now: now)
            }
            actions += m.tick(now: now)
        }
        #expect(actions.count == 1, "seed \(seed): \(actions)")
    }

    @Test("a clearly faster peer wins once, then noise does not move it", arguments: seeds.prefix(10))
    func clearWinnerThenStable(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let a = cand("a"), b = cand("b")
        var m = Machine(configuration: .init(minimumDwell: .zero))
        _ = m.haSetsChanged([haSet(key(), [a, b])], now: at(0))
        var actions = m.healthObserved(["a": up(50), "b": up(50)], now: at(0))
        for step in 1...300 {
            let now = at(Double(step))
            // From step 100 on, b is 30 ms faster; noise ±4 ms on both.
            let bBase = step >= 100 ? 20 : 50
            actions += m.healthObserved(["a": up(50 + Int.random(in: -4...4, using: &rng)),
                                         "b": up(bBase + Int.random(in: -4...4, using: &rng))], now: now)
            actions += m.tick(now: now)
        }
        #expect(actions.count == 2)
        #expect(actions.last?.switchReason.map { if case .lowerLatency = $0 { true } else { false } } == true)
        #expect(m.selection(for: key())?.candidate == b)
    }

    @Test("all down keeps the last choice until one comes back", arguments: seeds)
    func allDownKeepsLastChoice(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let n = Int.random(in: 2...5, using: &rng)
        let candidates = (0..<n).map { cand("p\($0)", metric: [100, 200, 300].randomElement(using: &rng)!) }
        let k = key()
        var m = Machine(configuration: .init(minimumDwell: [.zero, .seconds(5)].randomElement(using: &rng)!))
        var table = RouteTableModel()
        table.apply(m.haSetsChanged([haSet(k, candidates)], now: at(0)))
        var health: [PeerID: PeerHealth] = [:]
        for c in candidates { health[c.peerID] = up(Int.random(in: 1...100, using: &rng)) }
        table.apply(m.healthObserved(health, now: at(0)))
        var time = 1.0
        // Take them down one by one, in random order.
        for c in candidates.shuffled(using: &rng) {
            time += 1
            let before = m.selection(for: k)!
            let actions = m.healthObserved(c.peerID, [PeerHealth.unreachable, .connecting].randomElement(using: &rng)!, now: at(time))
            table.apply(actions)
            health[c.peerID] = .unreachable
            if health.values.allSatisfy({ !$0.isUp }) {
                #expect(actions == [.allDown(k, keeping: before.candidate)], "seed \(seed)")
            }
        }
        let kept = m.selection(for: k)!
        #expect(kept.status == .allDown)
        // Noise while down: no action, the route stays where it was.
        for _ in 0..<50 {
            time += 0.5
            let c = candidates.randomElement(using: &rng)!
            let quiet = m.healthObserved(c.peerID, [PeerHealth.unreachable, .connecting].randomElement(using: &rng)!, now: at(time))
                + m.tick(now: at(time))
            #expect(quiet.isEmpty, "seed \(seed)")
        }
        #expect(m.selection(for: k)?.candidate == kept.candidate)
        #expect(table.routes[k] == kept.candidate)
        // One comes back.
        let back = candidates.randomElement(using: &rng)!
        let actions = m.healthObserved(back.peerID, up(10), now: at(time + 1))
        table.apply(actions)
        if back.peerID == kept.candidate.peerID {
            #expect(actions == [.recovered(k, kept.candidate)])
        } else {
            #expect(actions == [.switch(k, from: kept.candidate, to: back, reason: .currentDown(.unreachable))]
                || actions == [.switch(k, from: kept.candidate, to: back, reason: .currentDown(.connecting))])
        }
        #expect(m.selection(for: k)?.status == .active)
    }
}
