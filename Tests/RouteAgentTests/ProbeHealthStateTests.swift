@testable import RouteAgent
import RouteModel
import Testing

/// One candidate's reachability as one state: the run of outcomes that decides the next change, and the RTT once known.
@Suite("Probe health state")
struct ProbeHealthStateTests {
    let target = ProbeTarget(id: "r1", address: IPAddress(v4: 0x6440_0001))

    func miss(_ h: inout ProbeHealth, _ threshold: Int) -> Bool { h.missedProbe(missThreshold: threshold) }
    func reply(_ h: inout ProbeHealth, _ sample: Int64, at now: UInt64, _ threshold: Int) -> Bool {
        h.replied(sample: sample, at: now, recoveryThreshold: threshold)
    }

    @Test("unknown until the first echo or enough misses; RTT kept while unreachable; recovery after enough echoes")
    func transitions() {
        var h = ProbeHealth(target: target)
        #expect(h.state == .unknown(misses: 0) && h.smoothedRTT == nil)
        #expect(!miss(&h, 3))
        #expect(h.state == .unknown(misses: 1) && h.consecutiveMisses == 1)
        #expect(reply(&h, 10_000_000, at: 100, 2))
        #expect(h.reachability == .reachable && h.consecutiveMisses == 0 && h.consecutiveReplies == 1)
        #expect(h.smoothedRTT == .milliseconds(10) && h.rttVariation == .milliseconds(5) && h.lastReplyAt == 100)
        #expect(!miss(&h, 3))
        #expect(!miss(&h, 3))
        #expect(miss(&h, 3))
        #expect(h.reachability == .unreachable && h.consecutiveMisses == 3 && h.lastRTT == .milliseconds(10))
        #expect(!miss(&h, 3))
        #expect(h.consecutiveMisses == 4)
        #expect(!reply(&h, 20_000_000, at: 200, 2))
        #expect(h.reachability == .unreachable && h.consecutiveReplies == 1 && h.lastRTT == .milliseconds(20))
        #expect(reply(&h, 20_000_000, at: 300, 2))
        #expect(h.reachability == .reachable && h.consecutiveReplies == 2 && h.lastReplyAt == 300)
        #expect(h.sent == 0 && h.received == 3 && h.missed == 5)
    }

    @Test("never answering: unknown, then unreachable without an RTT")
    func neverAnswers() {
        var h = ProbeHealth(target: target)
        #expect(!miss(&h, 2))
        #expect(miss(&h, 2))
        #expect(h.state == .unreachable(.misses(2), last: nil))
    }
}
