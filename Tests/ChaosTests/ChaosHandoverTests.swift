import ChaosKit
import Testing

/// The partition handover check: a kill's partitions owned again within the bound; kills near another kill or a
/// PostgreSQL fault, or not measured, are not judged; a run that judged none fails.
@Suite struct ChaosHandoverTests {
    func sample(_ at: Double, _ seconds: Double?, notMeasured: String? = nil) -> ChaosHandoverSample {
        ChaosHandoverSample(killedAt: at, controller: 1, projectionPartitions: 5, relayPartitions: 6, seconds: seconds, notMeasured: notMeasured)
    }

    @Test func handoversWithinTheBoundPass() {
        let check = ChaosChecks.handovers([sample(10, 0.3), sample(20, 1.9)], disturbed: [])
        #expect(check.passed, "\(check.problems)")
        #expect(check.detail.contains("2 handover(s) measured"))
        #expect(check.detail.contains("worst 1.90 s"))
    }

    @Test func aSlowOrMissingHandoverFails() {
        let slow = ChaosChecks.handovers([sample(10, 0.3), sample(20, 2.4)], disturbed: [])
        #expect(!slow.passed)
        #expect(slow.problems.contains { $0.contains("2.40 s, over the bound of 2 s") })
        let never = ChaosChecks.handovers([sample(10, 0.3), sample(20, nil)], disturbed: [])
        #expect(!never.passed)
        #expect(never.problems.contains { $0.contains("not all owned again") })
    }

    @Test func nothingJudgedFails() {
        let check = ChaosChecks.handovers([sample(10, nil, notMeasured: "the killed controller held no partition")], disturbed: [])
        #expect(!check.passed)
        #expect(check.problems.contains { $0.contains("0 handover(s) measured, below the minimum of 1") })
        #expect(check.detail.contains("1 the killed controller held no partition"))
    }

    @Test func killsNearOtherFaultsAreNotJudged() {
        // A slow handover overlapping a failover window, and one cut short by the next kill: neither fails the run.
        var tally = ChaosClusterTally()
        var failover = ChaosClusterEvent(fault: .failover, at: 31, healed: 60)
        failover.killStarted = 30
        tally.events.append(failover)
        tally.events.append(ChaosClusterEvent(fault: .partition, at: 100, healed: 106))
        let disturbed = ChaosChecks.handoverDisturbances(tally, postgresDown: [200...210])
        let samples = [sample(10, 0.4), sample(35, 5), sample(50, nil), sample(51, 0.2), sample(110, 3), sample(215, 4)]
        let check = ChaosChecks.handovers(samples, disturbed: disturbed)
        #expect(check.passed, "\(check.problems)")
        #expect(check.detail.contains("2 handover(s) measured"))
        #expect(check.detail.contains("1 another kill before the handover ended"))
        #expect(check.detail.contains("3 a PostgreSQL fault or a partition nearby"))
        // Outside every window the same slow handover fails.
        #expect(!ChaosChecks.handovers([sample(300, 5)], disturbed: disturbed).passed)
    }
}
