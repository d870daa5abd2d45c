import ChaosKit
import Testing

/// The chaos run's retries by Idempotency-Key: when a write is sent again, and the exactly-once check over what the
/// retries did (duplicated, lost, covered too little).
@Suite struct ExactlyOnceTests {
    let ok = ChaosOutcome.answered(status: 200, sequence: 5, retryAfter: nil, message: nil)
    let cut = ChaosOutcome.unknown(reason: "connection reset", timedOut: false)
    func answered(_ status: Int) -> ChaosOutcome { .answered(status: status, sequence: nil, retryAfter: status == 503 ? "2" : nil, message: "m") }
    func write(_ id: String, attempts: Int = 1, _ outcome: ChaosOutcome, replayed: Bool = false, brokeWhileUp: Int = 0) -> ChaosKeyedWrite {
        ChaosKeyedWrite(requestID: id, tenant: "t1", attempts: attempts, unknownAttempts: attempts - 1, replayed: replayed, outcome: outcome,
                        brokeWhileUp: brokeWhileUp)
    }
    func logged(transactions: Int = 1, tenant: String = "t1") -> ChaosLoggedWrite {
        ChaosLoggedWrite(tenants: [tenant], events: transactions, transactions: transactions, minSequence: 1, maxSequence: Int64(transactions))
    }

    @Test func unknownOutcomesAreRetriedUntilDefiniteOrTheDeadline() {
        #expect(ChaosRetryPolicy.retry(after: cut, idempotencyConflict: false, earlierUnknown: false, elapsed: 0))
        #expect(ChaosRetryPolicy.retry(after: .unknown(reason: "deadline", timedOut: true), idempotencyConflict: false, earlierUnknown: false, elapsed: 1))
        #expect(!ChaosRetryPolicy.retry(after: cut, idempotencyConflict: false, earlierUnknown: true, elapsed: ChaosRetryPolicy.deadline))
        // A definite answer ends the write.
        for status in [200, 404, 409, 412, 422] {
            #expect(!ChaosRetryPolicy.retry(after: answered(status), idempotencyConflict: false, earlierUnknown: true, elapsed: 1), "\(status)")
        }
        // The key still held by the cut attempt: retry.
        #expect(ChaosRetryPolicy.retry(after: answered(409), idempotencyConflict: true, earlierUnknown: true, elapsed: 1))
        // Not sent and 503 are final on a first attempt (the other checks hold them to "left no trace"), retried after an unknown one.
        #expect(!ChaosRetryPolicy.retry(after: .notSent, idempotencyConflict: false, earlierUnknown: false, elapsed: 1))
        #expect(ChaosRetryPolicy.retry(after: .notSent, idempotencyConflict: false, earlierUnknown: true, elapsed: 1))
        #expect(!ChaosRetryPolicy.retry(after: answered(503), idempotencyConflict: false, earlierUnknown: false, elapsed: 1))
        #expect(ChaosRetryPolicy.retry(after: answered(503), idempotencyConflict: false, earlierUnknown: true, elapsed: 1))
        #expect(ChaosRetryPolicy.backoff(attempt: 2) == 0.2 && ChaosRetryPolicy.backoff(attempt: 3) == 0.4 && ChaosRetryPolicy.backoff(attempt: 20) == 2)
    }

    @Test func countsWhatTheRetriesDid() {
        let writes = [write("a", ok), write("b", attempts: 3, ok, replayed: true), write("c", attempts: 2, answered(412)),
                      write("d", attempts: 4, cut), write("e", answered(422))]
        let r = ChaosChecks.exactlyOnce(writes, logged: ["a": logged(), "b": logged(), "d": logged()], minimumAcknowledged: 2, minimumRetried: 2)
        #expect(r.check.passed, "\(r.check)")
        #expect(r.writes == 5 && r.acknowledged == 2 && r.retriedByKey == 3 && r.retriedAcknowledged == 1 && r.replayed == 1)
        #expect(r.exactlyOnce == 2 && r.duplicated == 0 && r.lost == 0 && r.unresolved == 1)
        #expect(r.check.detail.contains("3 retried by key (minimum 2)") && r.check.detail.contains("duplicated 0, lost 0"))
    }

    @Test func aDuplicateALossOrACutWhileUpFails() {
        let dup = ChaosChecks.exactlyOnce([write("a", attempts: 2, ok)], logged: ["a": logged(transactions: 2)], minimumAcknowledged: 1, minimumRetried: 1)
        #expect(!dup.check.passed && dup.duplicated == 1)
        // An unknown outcome that committed twice is a duplicate too.
        let dupUnknown = ChaosChecks.exactlyOnce([write("a", ok), write("u", attempts: 3, cut)], logged: ["a": logged(), "u": logged(transactions: 2)],
                                                 minimumAcknowledged: 1, minimumRetried: 1)
        #expect(!dupUnknown.check.passed && dupUnknown.duplicated == 1)
        let lost = ChaosChecks.exactlyOnce([write("a", attempts: 2, ok)], logged: [:], minimumAcknowledged: 1, minimumRetried: 1)
        #expect(!lost.check.passed && lost.lost == 1 && lost.check.problems.contains { $0.contains("lost") })
        let elsewhere = ChaosChecks.exactlyOnce([write("a", attempts: 2, ok)], logged: ["a": logged(tenant: "t2")], minimumAcknowledged: 1, minimumRetried: 1)
        #expect(!elsewhere.check.passed)
        let whileUp = ChaosChecks.exactlyOnce([write("a", attempts: 2, ok, brokeWhileUp: 1)], logged: ["a": logged()], minimumAcknowledged: 1, minimumRetried: 1)
        #expect(!whileUp.check.passed)
    }

    @Test func tooLittleWorkFails() {
        let none = ChaosChecks.exactlyOnce([], logged: [:], minimumAcknowledged: 1, minimumRetried: 1)
        #expect(!none.check.passed)
        let noRetry = ChaosChecks.exactlyOnce([write("a", ok)], logged: ["a": logged()], minimumAcknowledged: 1, minimumRetried: 1)
        #expect(!noRetry.check.passed && noRetry.check.problems.first?.contains("retried by key") == true)
        #expect(ChaosChecks.minimumRetriedByKey(kills: 0) == 1 && ChaosChecks.minimumRetriedByKey(kills: 12) == 3)
    }

    @Test func theLostWriteSwitchIsOnlyInTheEnvironmentWhenAsked() {
        var s = ChaosSettings(duration: 30, controllers: 3, basePort: 18081, tenants: 3, agentsPerTenant: 40, workers: 6, pauseMs: 25,
                              maxWrites: 200_000, killEvery: 3.5, outage: 3, convergenceTimeout: 45, seed: 1, workDir: "/tmp/w",
                              servicesScript: "ops/services", binary: "routeplane", databaseURL: "", natsURL: "")
        #expect(s.lostWriteEnvironment.isEmpty)
        s.injectLostWrite = 40
        #expect(s.lostWriteEnvironment == ["ROUTEPLANE_TEST_LOSE_WRITE": "40", "ROUTEPLANE_TEST_I_KNOW_THIS_LOSES_DATA": "yes"])
    }
}
