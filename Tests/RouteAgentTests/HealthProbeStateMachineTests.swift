import RouteAgent
import RouteModel
import Testing

private func ms(_ v: Int) -> UInt64 { UInt64(v) * 1_000_000 }

/// Drives a state machine against a simulated peer: it answers every probe after `rtt` while alive.
/// Time jumps from deadline to delivery to deadline, as the shell's `poll` loop would.
private struct Simulation {
    var machine: HealthProbeStateMachine
    let target: ProbeTarget
    var now: UInt64 = ms(1000)
    /// Echoes in flight: (arrival time, packet).
    var inFlight: [(UInt64, ProbePacket)] = []
    var changes: [(UInt64, ProbeReachability)] = []
    var sent = 0

    init(configuration: HealthProbeConfiguration = HealthProbeConfiguration(), seed: UInt64 = 1) {
        machine = HealthProbeStateMachine(configuration: configuration, seed: seed)
        target = ProbeTarget(id: "r1", address: addr("100.64.0.2"))
        machine.setTargets([target], now: now)
    }

    /// Runs until `until`; `rtt(sendTime)` nil means the probe (or its echo) is lost.
    mutating func run(until: UInt64, rtt: (UInt64) -> UInt64?) {
        while true {
            let nextDelivery = inFlight.map(\.0).min()
            let deadline = machine.nextDeadline ?? .max
            let t = min(nextDelivery ?? .max, deadline)
            guard t <= until else { now = until; return }
            now = max(now, t)
            if let d = nextDelivery, d <= now, let i = inFlight.firstIndex(where: { $0.0 == d }) {
                let (_, packet) = inFlight.remove(at: i)
                record(machine.receive(packet.echo, from: target.address, port: target.port, now: now))
                continue
            }
            for action in machine.tick(now: now) {
                if case .send(let packet, _) = action {
                    sent += 1
                    if let r = rtt(now) { inFlight.append((now + r, packet)) }
                } else {
                    record([action])
                }
            }
        }
    }

    mutating func record(_ actions: [HealthProbeStateMachine.Action]) {
        for case .reachabilityChanged(let h) in actions { changes.append((now, h.reachability)) }
    }

    var health: ProbeHealth { machine.health(of: "r1")! }
}

@Suite struct HealthProbeStateMachineTests {
    @Test func firstEchoMakesReachableWithRTT() {
        var sim = Simulation()
        sim.run(until: ms(1100)) { _ in ms(10) }
        #expect(sim.changes.map(\.1) == [.reachable])
        #expect(sim.changes[0].0 == ms(1010))
        #expect(sim.health.smoothedRTT == .milliseconds(10))
        #expect(sim.health.lastRTT == .milliseconds(10))
    }

    @Test func defaultsDetectADeadPeerWithinThreeSeconds() {
        // The peer dies at various moments relative to the probe cadence.
        for phase in stride(from: 0, to: 500, by: 25) {
            var sim = Simulation()
            let death = ms(5000 + phase)
            sim.run(until: ms(12_000)) { t in t + ms(20) < death ? ms(20) : nil }
            #expect(sim.changes.map(\.1) == [.reachable, .unreachable])
            let detected = sim.changes[1].0 - death
            #expect(detected <= ms(2500), "phase \(phase): detected after \(detected / 1_000_000) ms")
            #expect(detected >= ms(2000) - ms(20), "a dead peer is not declared before its misses expire")
        }
    }

    @Test func detectionIsWithinNIntervalsPlusTimeout() {
        let config = HealthProbeConfiguration(interval: .milliseconds(100), timeout: .milliseconds(150), missThreshold: 4)
        var sim = Simulation(configuration: config)
        let death = ms(3033)
        sim.run(until: ms(6000)) { t in t < death ? ms(5) : nil }
        let detected = sim.changes.last!.0 - death
        #expect(sim.changes.last!.1 == .unreachable)
        #expect(detected <= ms(4 * 100 + 150))
        #expect(sim.health.consecutiveMisses >= 4)
    }

    @Test func recoveryNeedsConsecutiveEchoes() {
        var sim = Simulation()
        let down = (ms(3000), ms(8000))
        sim.run(until: ms(12_000)) { t in (t >= down.0 && t < down.1) ? nil : ms(10) }
        #expect(sim.changes.map(\.1) == [.reachable, .unreachable, .reachable])
        // The first probe after the outage leaves within one interval; the second echo decides.
        let back = sim.changes[2].0
        #expect(back >= down.1 + ms(500) && back <= down.1 + ms(1000) + ms(10))
    }

    @Test func isolatedLossesDoNotFlap() {
        var sim = Simulation()
        var n = 0
        // Every other probe lost: never three misses in a row.
        sim.run(until: ms(30_000)) { _ in
            n += 1
            return n % 2 == 0 ? nil : ms(15)
        }
        #expect(sim.changes.map(\.1) == [.reachable])
        #expect(sim.health.missed > 20)
    }

    @Test func rttIsSmoothed() {
        var sim = Simulation()
        var n = 0
        sim.run(until: ms(2600)) { _ in
            n += 1
            return n == 1 ? ms(10) : ms(20)
        }
        // 10, then 20, 20, 20: srtt = 10 → 11.25 → 12.34375 → 13.30078125 ms.
        #expect(sim.health.received == 4)
        #expect(sim.health.lastRTT == .milliseconds(20))
        let srtt = sim.health.smoothedRTT!
        #expect(srtt > .microseconds(13_290) && srtt < .microseconds(13_310))
    }

    @Test func neverReachableBecomesUnreachable() {
        var sim = Simulation()
        sim.run(until: ms(5000)) { _ in nil }
        #expect(sim.changes.map(\.1) == [.unreachable])
        #expect(sim.changes[0].0 - ms(1000) <= ms(2000)) // probes at 0, 0.5, 1.0 s; the third expires at 2.0 s
    }

    @Test func ignoresEverythingButItsOwnEchoes() {
        var m = HealthProbeStateMachine(seed: 42)
        let target = ProbeTarget(id: "r1", address: addr("100.64.0.2"))
        m.setTargets([target], now: ms(0))
        guard case .send(let probe, _)? = m.tick(now: ms(0)).first else {
            Issue.record("no probe sent")
            return
        }
        let other = addr("100.64.0.3")
        #expect(m.receive(probe, from: target.address, port: target.port, now: ms(1)).isEmpty) // a probe, not an echo
        #expect(m.receive(probe.echo, from: other, port: target.port, now: ms(1)).isEmpty)   // wrong sender
        #expect(m.receive(probe.echo, from: target.address, port: 9, now: ms(1)).isEmpty)     // wrong port
        var forged = probe.echo
        forged.nonce &+= 1
        #expect(m.receive(forged, from: target.address, port: target.port, now: ms(1)).isEmpty) // unknown nonce
        forged = probe.echo
        forged.timestamp &+= 1
        #expect(m.receive(forged, from: target.address, port: target.port, now: ms(1)).isEmpty) // altered timestamp
        #expect(m.health(of: "r1")?.received == 0)
        // The real echo counts once; a duplicate does not.
        #expect(m.receive(probe.echo, from: target.address, port: target.port, now: ms(2)).count == 1)
        #expect(m.receive(probe.echo, from: target.address, port: target.port, now: ms(3)).isEmpty)
        #expect(m.health(of: "r1")?.received == 1)
    }

    @Test func lateEchoAfterTimeoutIsIgnored() {
        var m = HealthProbeStateMachine(seed: 3)
        let target = ProbeTarget(id: "r1", address: addr("100.64.0.2"))
        m.setTargets([target], now: ms(0))
        guard case .send(let probe, _)? = m.tick(now: ms(0)).first else { return }
        _ = m.tick(now: ms(1000)) // expires the first probe (timeout 1 s), sends more
        #expect(m.health(of: "r1")?.missed == 1)
        #expect(m.receive(probe.echo, from: target.address, port: target.port, now: ms(1001)).isEmpty)
        #expect(m.health(of: "r1")?.received == 0)
    }

    @Test func targetsComeAndGo() {
        var m = HealthProbeStateMachine(seed: 5)
        let a = ProbeTarget(id: "a", address: addr("100.64.0.2"))
        let b = ProbeTarget(id: "b", address: addr("fd00:64::3"))
        m.setTargets([a, b], now: ms(0))
        let sends = m.tick(now: ms(0)).compactMap { action -> String? in
            if case .send(_, let t) = action { return t.id }
            return nil
        }
        #expect(sends == ["a", "b"])
        #expect(m.nextDeadline == ms(500))
        guard case .send(let probeA, _)? = m.tick(now: ms(500)).first else { return }
        _ = m.receive(probeA.echo, from: a.address, port: a.port, now: ms(510))
        #expect(m.health(of: "a")?.reachability == .reachable)
        // Same target again: state kept. New address: starts over.
        m.setTargets([a], now: ms(600))
        #expect(m.health(of: "a")?.reachability == .reachable && m.health(of: "b") == nil)
        m.setTargets([ProbeTarget(id: "a", address: addr("100.64.0.9"))], now: ms(700))
        #expect(m.health(of: "a")?.reachability == .unknown)
        #expect(m.nextDeadline == ms(700))
        m.setTargets([], now: ms(800))
        #expect(m.nextDeadline == nil && m.allHealth.isEmpty)
    }

    @Test func packetRoundTripAndGarbage() {
        let p = ProbePacket(kind: .probe, nonce: 0x0102_0304_0506_0708, timestamp: 99)
        let bytes = p.encoded()
        #expect(bytes.count == 24)
        #expect(Array(bytes[0..<4]) == Array("RPHP".utf8))
        #expect(ProbePacket(decoding: bytes) == p)
        #expect(ProbePacket(decoding: p.echo.encoded())?.kind == .echo)
        #expect(ProbePacket(decoding: bytes.dropLast()) == nil)
        #expect(ProbePacket(decoding: bytes + [0]) == nil)
        var bad = bytes
        bad[0] = 0
        #expect(ProbePacket(decoding: bad) == nil)
        bad = bytes
        bad[4] = 2 // version
        #expect(ProbePacket(decoding: bad) == nil)
        bad = bytes
        bad[5] = 9 // kind
        #expect(ProbePacket(decoding: bad) == nil)
        #expect(HealthProbeConfiguration().worstCaseDetection == .milliseconds(2500))
    }
}
