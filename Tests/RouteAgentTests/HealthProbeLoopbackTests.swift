import Dispatch
import Foundation
import RouteAgent
import RouteModel
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Polls `condition` every 5 ms until it holds or `timeout` passes; returns the time it took, or nil.
func waitFor(_ timeout: Duration, since start: ContinuousClock.Instant = .now,
             _ condition: @escaping @Sendable () -> Bool) async -> Duration? {
    // Polled and timed on a thread of its own, not on Swift's cooperative pool: other suites may keep the pool's two
    // threads busy for seconds on a loaded machine, and a wait timed there measured the pool (1.41 s for a 1.35 s
    // bound). The time counts from `start`, the caller's instant (e.g. just after stopping the responder).
    await withCheckedContinuation { continuation in
        Thread {
            let clock = ContinuousClock()
            while clock.now - start < timeout {
                if condition() { return continuation.resume(returning: clock.now - start) }
                usleep(5_000)
            }
            continuation.resume(returning: condition() ? clock.now - start : nil)
        }.start()
    }
}

/// Sends one raw UDP datagram to 127.0.0.1:port from a throwaway socket.
func sendRawUDP(_ bytes: [UInt8], port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_port = port.bigEndian
    sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    _ = bytes.withUnsafeBytes { raw in
        withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}

/// Real UDP on 127.0.0.1 only: a responder and a prober, bounded in time.
@Suite(.serialized) struct HealthProbeLoopbackTests {
    let loopback = addr("127.0.0.1")

    @Test(.timeLimit(.minutes(1)))
    func proberSeesResponderComeAndGo() async throws {
        let responder = try HealthResponder(address: loopback, port: 0)
        responder.start()
        defer { responder.stop() }
        #expect(responder.port != 0)
        let config = HealthProbeConfiguration(interval: .milliseconds(50), timeout: .milliseconds(200), missThreshold: 3)
        let prober = try HealthProber(configuration: config, bindIPv4: loopback, bindIPv6: nil)
        prober.start()
        defer { prober.stop() }
        prober.setTargets([ProbeTarget(id: "self", address: loopback, port: responder.port)])

        let up = await waitFor(.seconds(5)) { prober.health(of: "self")?.reachability == .reachable }
        #expect(up != nil, "never reachable: \(prober.health())")
        #expect(await waitFor(.seconds(5)) { (prober.health(of: "self")?.received ?? 0) >= 5 } != nil)
        let h = try #require(prober.health(of: "self"))
        let rtt = try #require(h.smoothedRTT)
        #expect(rtt > .zero && rtt < .seconds(5), "a plausible loopback RTT (generous: CI machines stall)")

        // Garbage at the responder is ignored, and it keeps answering.
        sendRawUDP(Array("hello".utf8), port: responder.port)
        sendRawUDP(ProbePacket(kind: .echo, nonce: 1, timestamp: 1).encoded(), port: responder.port)
        sendRawUDP([UInt8](repeating: 0xff, count: 24), port: responder.port)
        #expect(await waitFor(.seconds(5)) { responder.statistics.ignored >= 3 } != nil)
        let answered = responder.statistics.answered
        #expect(await waitFor(.seconds(5)) { responder.statistics.answered > answered + 2 } != nil)
        #expect(prober.health(of: "self")?.reachability == .reachable)

        // Responder gone: unreachable within missThreshold × interval + timeout (+ scheduling slack).
        responder.stop()
        let down = await waitFor(.seconds(5)) { prober.health(of: "self")?.reachability == .unreachable }
        let detected = try #require(down, "never declared unreachable")
        #expect(detected <= config.worstCaseDetection + .seconds(1), "detected after \(detected)")
    }

    /// With the default settings (500 ms interval, 1 s timeout, 3 misses) a peer that goes silent is declared
    /// unreachable within their worst case, 2.5 s, which leaves room in the 3 s failover target: the bound is checked as
    /// arithmetic; the measured time (printed) may exceed it only by scheduling delay — on a loaded 2-core machine (20
    /// runnable threads) 3.35 s was seen, so the wall-clock check allows 2 s of it. The failover target itself is
    /// measured, with real traffic, by ops/netns-e2e.
    @Test(.timeLimit(.minutes(1)))
    func defaultSettingsDetectWithinTheirWorstCase() async throws {
        let defaults = HealthProbeConfiguration()
        #expect(defaults.worstCaseDetection <= .milliseconds(2500), "default worst case \(defaults.worstCaseDetection)")
        let responder = try HealthResponder(address: loopback, port: 0)
        responder.start()
        defer { responder.stop() }
        let prober = try HealthProber(bindIPv4: loopback, bindIPv6: nil)
        prober.start()
        defer { prober.stop() }
        prober.setTargets([ProbeTarget(id: "peer", address: loopback, port: responder.port)])
        #expect(await waitFor(.seconds(5)) { prober.health(of: "peer")?.reachability == .reachable } != nil)
        // Die at an arbitrary point of the cadence.
        try await Task.sleep(for: .milliseconds(1234))
        responder.stop()
        let detected = try #require(await waitFor(.seconds(6)) { prober.health(of: "peer")?.reachability == .unreachable })
        print("health probe: dead peer detected after \(detected) (default settings; bound \(defaults.worstCaseDetection))")
        #expect(detected <= defaults.worstCaseDetection + .seconds(2), "detected after \(detected)")
    }

    @Test(.timeLimit(.minutes(1)))
    func eventsReportTransitions() async throws {
        let responder = try HealthResponder(address: loopback, port: 0)
        responder.start()
        let config = HealthProbeConfiguration(interval: .milliseconds(30), timeout: .milliseconds(60), missThreshold: 2)
        let prober = try HealthProber(configuration: config, bindIPv4: loopback, bindIPv6: nil)
        prober.start()
        prober.setTargets([ProbeTarget(id: "p", address: loopback, port: responder.port)])
        var iterator = prober.events.makeAsyncIterator()
        let first = await iterator.next()
        #expect(first?.reachability == .reachable && first?.target.id == "p")
        responder.stop()
        let second = await iterator.next()
        #expect(second?.reachability == .unreachable)
        prober.stop()
        #expect(await iterator.next() == nil) // stop() ends the stream
    }

    @Test func bindConflictIsReported() throws {
        let a = try HealthResponder(address: loopback, port: 0)
        defer { a.stop() }
        #expect(throws: SocketError.self) { _ = try HealthResponder(address: loopback, port: a.port) }
    }
}
