import ChaosKit
import Testing

/// A check that covered no work (or too little) fails; requests never sent are bounded; every planned kill must happen.
@Suite struct ChaosMinimumsTests {
    func record(_ id: String, _ outcome: ChaosOutcome, burst: Int? = nil, killed: Bool = false) -> ChaosRequestRecord {
        ChaosRequestRecord(requestID: id, tenant: "t1", kind: .updateRoute, controller: 0, conditional: burst != nil, burst: burst,
                           outcome: outcome, controllerKilledDuring: killed, start: 0, end: 1)
    }
    func ok(_ seq: Int64) -> ChaosOutcome { .answered(status: 200, sequence: seq, retryAfter: nil, message: nil) }
    func logged(_ seq: Int64) -> ChaosLoggedWrite { ChaosLoggedWrite(tenants: ["t1"], events: 1, transactions: 1, minSequence: seq, maxSequence: seq) }
    func settings(duration: Double = 30, killEvery: Double = 3.5) -> ChaosSettings {
        ChaosSettings(duration: duration, controllers: 3, basePort: 18081, tenants: 3, agentsPerTenant: 40, workers: 6, pauseMs: 25,
                      maxWrites: 200_000, killEvery: killEvery, outage: 3, convergenceTimeout: 45, seed: 1, workDir: "/tmp/w",
                      servicesScript: "ops/services", binary: "routeplane", databaseURL: "", natsURL: "")
    }
    var minimums: ChaosMinimums {
        ChaosMinimums(acknowledgedWrites: 3, failedWrites: 1, bursts: 2, requests: 4, kills: 3, agents: 2, appliedViews: 2,
                      maxUnsentWhileUp: 1, maxUnsentShare: 0.4)
    }

    @Test func emptyReportFailsEveryCheck() {
        #expect(!ChaosChecks.acknowledgedWrites([], logged: [:]).passed)
        #expect(!ChaosChecks.failedWrites([], logged: [:]).passed)
        #expect(!ChaosChecks.conditionalBursts([], logged: [:]).passed)
        #expect(!ChaosChecks.answers([]).passed)
        #expect(!ChaosChecks.agentsMatchProjection([], projected: [:]).passed)
        #expect(!ChaosChecks.agentsNeverWentBack([]).passed)
        #expect(!ChaosChecks.faultsInjected(ChaosFaultTally(), plannedKills: 0, minimums: minimums).passed)
        let check = ChaosChecks.acknowledgedWrites([], logged: [:], minimum: 5)
        #expect(check.detail == "0 acknowledged writes checked by request id (minimum 5)")
        #expect(check.problems.first?.hasPrefix("only 0 acknowledged writes, below the minimum of 5") == true)
    }

    @Test func acknowledgedWritesAtTheMinimumPassBelowFail() {
        let records = (1...3).map { record("a\($0)", ok(Int64($0))) }
        let logs = Dictionary(uniqueKeysWithValues: (1...3).map { ("a\($0)", logged(Int64($0))) })
        let enough = ChaosChecks.acknowledgedWrites(records, logged: logs, minimum: 3)
        #expect(enough.passed)
        #expect(enough.detail == "3 acknowledged writes checked by request id (minimum 3)")
        #expect(!ChaosChecks.acknowledgedWrites(records, logged: logs, minimum: 4).passed)
    }

    @Test func burstsBelowTheMinimumFail() {
        let records = [record("b1", ok(1), burst: 1), record("b2", .answered(status: 412, sequence: nil, retryAfter: nil, message: "stale"), burst: 1)]
        #expect(ChaosChecks.conditionalBursts(records, logged: ["b1": logged(1)], minimum: 1).passed)
        #expect(!ChaosChecks.conditionalBursts(records, logged: ["b1": logged(1)], minimum: 2).passed)
    }

    @Test func unsentRequestsAreCountedAndBounded() {
        let answered = (1...8).map { record("a\($0)", ok(Int64($0))) }
        // Refused by a controller that was killed: expected, within the share.
        let refused = [record("r1", .notSent, killed: true), record("r2", .notSent, killed: true)]
        let fine = ChaosChecks.unsent(answered + refused, minimums: minimums)
        #expect(fine.passed)
        #expect(fine.detail == "2 of 10 requests never sent (20.0 %, at most 40 %), 0 of them to a controller that was up (at most 1)")
        // One never sent to a controller that was up: counted, within its bound of 1; two are not.
        let oneWhileUp = ChaosChecks.unsent(answered + refused + [record("u1", .notSent)], minimums: minimums)
        #expect(oneWhileUp.passed)
        #expect(oneWhileUp.problems == ["u1 (route.update): not sent to controller 1, which was up"])
        #expect(!ChaosChecks.unsent(answered + refused + [record("u1", .notSent), record("u2", .notSent)], minimums: minimums).passed)
        // Too many refused overall.
        let many = (1...6).map { record("r\($0)", .notSent, killed: true) }
        #expect(!ChaosChecks.unsent(answered + many, minimums: minimums).passed)
    }

    @Test func everyPlannedKillMustHappen() {
        var f = ChaosFaultTally()
        f.kills = 4
        f.controllerRestarts = 4
        f.postgresRestarts = 1
        f.natsRestarts = 1
        #expect(ChaosChecks.faultsInjected(f, plannedKills: 4, minimums: minimums).passed)
        // A planned kill skipped (fewer than two controllers up).
        var skipped = f
        skipped.kills = 3
        skipped.controllerRestarts = 3
        skipped.skippedKills = ["kill planned at 12.0 s not done: 1 controller(s) up for 15 s"]
        let check = ChaosChecks.faultsInjected(skipped, plannedKills: 4, minimums: minimums)
        #expect(!check.passed)
        #expect(check.problems.contains("1 of 4 planned controller kills were not done"))
        // Below the minimum even though all planned were done.
        var few = f
        few.kills = 2
        few.controllerRestarts = 2
        #expect(!ChaosChecks.faultsInjected(few, plannedKills: 2, minimums: minimums).passed)
        // A killed controller not restarted; a service restart missing.
        var notBack = f
        notBack.controllerRestarts = 3
        #expect(!ChaosChecks.faultsInjected(notBack, plannedKills: 4, minimums: minimums).passed)
        var noNATS = f
        noNATS.natsRestarts = 0
        #expect(!ChaosChecks.faultsInjected(noNATS, plannedKills: 4, minimums: minimums).passed)
    }

    @Test func runMinimumsScaleWithTheRunAndThePlanMeetsThem() {
        let short = ChaosMinimums.forRun(settings())
        #expect(short.acknowledgedWrites == 150 && short.bursts == 15 && short.kills == 3 && short.agents == 120)
        let long = ChaosMinimums.forRun(settings(duration: 120, killEvery: 5))
        #expect(long.acknowledgedWrites == 600 && long.kills == 11)
        // Every seed's plan holds at least the minimum of kills (otherwise the check fails without a fault).
        for (duration, killEvery) in [(30.0, 3.5), (120.0, 5.0), (600.0, 5.0)] {
            let m = ChaosMinimums.forRun(settings(duration: duration, killEvery: killEvery))
            for seed in UInt64(1)...200 {
                let plan = ChaosPlan.make(duration: duration, controllers: 3, agents: 120, killEvery: (killEvery * 0.6)...(killEvery * 1.4),
                                          downFor: 0.5...2.5, outageHold: 3, agentRestartEvery: 5, seed: seed)
                #expect(plan.kills >= m.kills, "seed \(seed), \(duration) s: \(plan.kills) kills planned")
            }
        }
    }

    @Test func summaryTellsHowToReproduce() {
        let lines = ChaosReport.summary(settings: settings(), runID: "ch1", records: [], faults: ChaosFaultTally(), unknown: (0, 0),
                                        convergence: ChaosConvergence(reached: true, seconds: 0, detail: "", projected: [:], histories: []),
                                        reference: 0, agentRestarts: 0, checks: [])
        #expect(lines.contains("  reproduce             ops/chaos --duration 30 --seed 1 (the same fault plan and workload choices; timing differs)"))
    }
}
