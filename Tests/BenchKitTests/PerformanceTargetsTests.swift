import BenchKit
import Testing

/// The targets `bench all --check` holds: one entry per target, memory in MB (10^6 bytes), and a verdict that fails
/// on a missed target, a failed part or a figure that went missing, but not on a target the run's size does not cover.
@Suite struct PerformanceTargetsTests {
    @Test func oneEntryPerTarget() {
        for id in PerformanceTarget.ID.allCases {
            #expect(PerformanceTargets.all.filter { $0.id == id }.count == 1, "\(id)")
        }
        #expect(PerformanceTargets.all.count == PerformanceTarget.ID.allCases.count)
    }

    @Test func issueTargets() {
        #expect(PerformanceTargets.bytes(.controllerMemory) == 200_000_000)
        #expect(PerformanceTargets.bytes(.agentMemory) == 20_000_000)
        #expect(PerformanceTargets[.controllerMemory].unit == "MB")
        #expect(PerformanceTargets[.apiPut].met(1_000) && !PerformanceTargets[.apiPut].met(999))
        #expect(PerformanceTargets[.propagationLarge].met(499) && !PerformanceTargets[.propagationLarge].met(500))
        #expect(PerformanceTargets[.propagationVsRaw].met(8) && !PerformanceTargets[.propagationVsRaw].met(8.01))
        #expect(PerformanceTargets[.controllerMemory].met(199.9) && !PerformanceTargets[.controllerMemory].met(200))
        #expect(Figure.megabytes(190_000_000) == "190.0 MB")
    }

    private func check(_ id: PerformanceTarget.ID, _ value: Double) -> (PerformanceTarget.ID, TargetCheck) {
        (id, PerformanceTargets[id].check(value))
    }

    @Test func verdictPassesWhenEveryCoveredTargetIsMet() {
        let v = PerformanceTargets.verdict(partsRun: ["api", "memory"], failedParts: [],
                                           checks: [check(.apiPut, 1_200), check(.controllerMemory, 150), check(.agentMemory, 15)], skipped: [])
        #expect(v.passed)
        #expect(v.failures.isEmpty)
        // Parts not run are listed, not failed.
        #expect(v.unchecked.contains { $0.contains("part propagation not run") })
    }

    @Test func verdictFailsOnAMissedTarget() {
        let v = PerformanceTargets.verdict(partsRun: ["api"], failedParts: [], checks: [check(.apiPut, 430)], skipped: [])
        #expect(!v.passed)
        #expect(v.failures.count == 1)
        #expect(v.failures[0].contains("430"))
    }

    @Test func verdictFailsWhenAFigureIsMissingOrAPartFailed() {
        // memory ran but gave only the agent's figure.
        let missing = PerformanceTargets.verdict(partsRun: ["memory"], failedParts: [], checks: [check(.agentMemory, 15)], skipped: [])
        #expect(!missing.passed)
        #expect(missing.failures.contains { $0.contains("no figure") && $0.contains("controller") })
        let failed = PerformanceTargets.verdict(partsRun: ["memory"], failedParts: ["memory"], checks: [], skipped: [])
        #expect(failed.failures == ["part memory failed"])
        // A missing latency is infinite, never met.
        let lost = PerformanceTargets.verdict(partsRun: ["propagation"], failedParts: [],
                                              checks: [check(.propagation, .infinity)], skipped: [.propagationLarge, .propagationVsRaw])
        #expect(!lost.passed)
    }

    @Test func targetsOutsideTheRunsSizeAreListedNotFailed() {
        let v = PerformanceTargets.verdict(partsRun: ["projection"], failedParts: [],
                                           checks: [check(.projectionGrowth, 0.7), check(.projectionFewerViews, 900)], skipped: [.rebuild])
        #expect(v.passed)
        #expect(v.unchecked.contains { $0.contains("rebuild") && $0.contains("1,000,000 events") })
    }
}
