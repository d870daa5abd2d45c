import ChaosKit
import Testing

/// The run's printed and written text: the request table and the summary.
@Suite struct ChaosReportTests {
    func record(_ id: String, _ outcome: ChaosOutcome, start: Double, burst: Int? = nil) -> ChaosRequestRecord {
        ChaosRequestRecord(requestID: id, tenant: "t1", kind: .updateRoute, controller: 1, conditional: burst != nil, burst: burst,
                           outcome: outcome, controllerKilledDuring: false, start: start, end: start + 0.25)
    }

    @Test func requestTableIsSortedByStartOneLinePerRequest() {
        let records = [
            record("ch-2", .unknown(reason: "HTTPClientError.remoteConnectionClosed", timedOut: false), start: 2),
            record("ch-1", .answered(status: 412, sequence: nil, retryAfter: nil, message: "stale"), start: 1, burst: 3),
            record("ch-3", .notSent, start: 3),
            record("ch-4", .answered(status: 200, sequence: 42, retryAfter: "1", message: nil), start: 4),
        ]
        let lines = ChaosReport.requestsTSV(records).split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines[0] == "start\tend\trequest_id\ttenant\tkind\tcontroller\tif_match\tburst\tkilled\toutcome")
        #expect(lines[1] == "1.000\t1.250\tch-1\tt1\troute.update\t2\ttrue\t3\tfalse\t412 stale")
        #expect(lines[2].hasSuffix("\tunknown: HTTPClientError.remoteConnectionClosed"))
        #expect(lines[3].hasSuffix("\tnot sent"))
        #expect(lines[4].hasSuffix("\t200 seq=42 retry-after=1 "))
    }

    @Test func summaryCountsAndChecks() {
        let settings = ChaosSettings(duration: 30, controllers: 3, basePort: 18081, tenants: 1, agentsPerTenant: 2, workers: 1, pauseMs: 0,
                                     maxWrites: 10, killEvery: 3, outage: 3, agentRestartEvery: nil, convergenceTimeout: 45, seed: 7,
                                     workDir: "/tmp/w", servicesScript: "ops/services", binary: "routeplane", databaseURL: "", natsURL: "")
        let records = [
            record("ch-1", .answered(status: 200, sequence: 1, retryAfter: nil, message: nil), start: 1),
            record("ch-2", .answered(status: 409, sequence: nil, retryAfter: nil, message: "x"), start: 2, burst: 1),
            record("ch-3", .notSent, start: 3),
        ]
        var faults = ChaosFaultTally()
        faults.kills = 4
        faults.controllerRestarts = 4
        let convergence = ChaosConvergence(reached: true, seconds: 1.5, detail: "", projected: [:], histories: [])
        let lines = ChaosReport.summary(settings: settings, runID: "ch1", records: records, faults: faults, unknown: (0, 0),
                                        convergence: convergence, reference: 31, agentRestarts: 0,
                                        checks: [ChaosCheck(name: "a", passed: true, detail: "fine"),
                                                 ChaosCheck(name: "b", passed: false, detail: "bad", problems: ["one"])])
        #expect(lines.contains("summary (seed 7, run ch1, 30 s of faults):"))
        #expect(lines.contains("  writes sent           3 (1 in 1 concurrent If-Match bursts)"))
        #expect(lines.contains("  acknowledged (2xx)    1"))
        #expect(lines.contains("  refused (ctrl down)   1"))
        #expect(lines.contains("  kills                 4 controller kill -9, 4 restarts (0 start attempts exited early)"))
        #expect(lines.contains("  convergence           every agent on its projected view 1.50 s after the last fault (writes stopped and services healed at 31.0 s)"))
        #expect(lines.contains("  ok   a: fine"))
        #expect(lines.contains("  FAIL b: bad"))
        #expect(lines.contains("         - one"))
        #expect(lines.last == "routeplane-chaos: FAILED (1 check(s)); logs in /tmp/w")
        #expect(ChaosReport.at(12.34) == "   12.3 s")
    }
}
