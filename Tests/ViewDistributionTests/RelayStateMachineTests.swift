import ViewDistribution
import Testing

@Suite struct RelayStateMachineTests {
    typealias Machine = OutboxRelayStateMachine

    func machine(batch: Int = 10, jitter: Double = 0) -> Machine {
        Machine(configuration: .init(batchSize: batch, pollInterval: .seconds(1), initialBackoff: .milliseconds(100),
                                     maxBackoff: .seconds(2), jitter: jitter))
    }

    @Test func startEnsuresTheStreamThenClaims() {
        var m = machine()
        #expect(m.start() == [.ensureStream])
        #expect(m.streamEnsured() == [.claimBatch])
        #expect(m.health == .running)
    }

    @Test func fullBatchesContinueAndPartialOnesIdle() {
        var m = machine(batch: 10)
        _ = m.start(); _ = m.streamEnsured()
        #expect(m.batchFinished(.init(claimed: 10, published: 10)) == [.claimBatch])
        #expect(m.batchFinished(.init(claimed: 3, published: 3)) == [.idle(.seconds(1))])
        #expect(m.batchFinished(.init(claimed: 0, published: 0)) == [.idle(.seconds(1))])
        #expect(m.woken() == [.claimBatch])
    }

    @Test func natsDownBacksOffExponentiallyLogsOnceAndRecoversOnce() {
        var m = machine()
        _ = m.start(); _ = m.streamEnsured()
        let down = Machine.Failure.natsUnavailable("reconnecting")
        #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: down))
                == [.log(.degraded(.natsDown, reason: "reconnecting")), .backOff(.milliseconds(100))])
        #expect(m.woken() == [.claimBatch])
        #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: down)) == [.backOff(.milliseconds(200))])
        #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: down)) == [.backOff(.milliseconds(400))])
        #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: down)) == [.backOff(.milliseconds(800))])
        #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: down)) == [.backOff(.milliseconds(1600))])
        #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: down)) == [.backOff(.seconds(2))])
        for _ in 0..<50 { #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: down)) == [.backOff(.seconds(2))]) }
        #expect(m.health == .natsDown)
        #expect(m.batchFinished(.init(claimed: 4, published: 4))
                == [.log(.recovered(from: .natsDown, failedAttempts: 56)), .idle(.seconds(1))])
        #expect(m.health == .running)
        // The next failure starts the back-off from the beginning again.
        #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: down))
                == [.log(.degraded(.natsDown, reason: "reconnecting")), .backOff(.milliseconds(100))])
    }

    @Test func aDifferentFailureIsLoggedAsANewState() {
        var m = machine()
        _ = m.start(); _ = m.streamEnsured()
        _ = m.batchFinished(.init(claimed: 0, published: 0, failure: .natsUnavailable("x")))
        #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: .database("pg down")))
                == [.log(.degraded(.databaseDown, reason: "pg down")), .backOff(.milliseconds(200))])
        #expect(m.batchFinished(.init(claimed: 0, published: 0, failure: .database("pg down"))) == [.backOff(.milliseconds(400))])
    }

    @Test func missingStreamIsEnsuredAgainBeforeTheNextClaim() {
        var m = machine()
        _ = m.start(); _ = m.streamEnsured()
        #expect(m.batchFinished(.init(claimed: 2, published: 1, failure: .streamMissing("gone")))
                == [.log(.degraded(.publishFailing, reason: "gone")), .backOff(.milliseconds(100))])
        #expect(m.woken() == [.ensureStream])
        #expect(m.failed(.natsUnavailable("down")) == [.log(.degraded(.natsDown, reason: "down")), .backOff(.milliseconds(200))])
        #expect(m.woken() == [.ensureStream])
        #expect(m.streamEnsured() == [.log(.recovered(from: .natsDown, failedAttempts: 2)), .claimBatch])
    }

    @Test func progressDespiteRefusedMessagesDoesNotBackOff() {
        var m = machine(batch: 10)
        _ = m.start(); _ = m.streamEnsured()
        let refused = Machine.Failure.publishFailed("1 message(s) not acknowledged: rejected 10054")
        #expect(m.batchFinished(.init(claimed: 10, published: 9, failure: refused))
                == [.log(.degraded(.publishFailing, reason: refused.reasonForTest)), .claimBatch])
        #expect(m.batchFinished(.init(claimed: 5, published: 4, failure: refused)) == [.idle(.seconds(1))])
        // Only the refused row left: no progress, so back off instead of spinning.
        #expect(m.batchFinished(.init(claimed: 1, published: 0, failure: refused)) == [.backOff(.milliseconds(100))])
    }

    @Test func jitterStaysWithinItsFraction() {
        var m = machine(jitter: 0.5)
        _ = m.start(); _ = m.streamEnsured()
        var seen: Set<Duration> = []
        for n in 1...12 {
            let actions = m.batchFinished(.init(claimed: 0, published: 0, failure: .natsUnavailable("x")))
            guard case let .backOff(d)? = actions.last else { Issue.record("no back-off"); return }
            let full = min(Duration.milliseconds(100) * (1 << (n - 1)), .seconds(2))
            #expect(d <= full && d >= full * 0.5, "attempt \(n): \(d) vs \(full)")
            seen.insert(d)
        }
        #expect(seen.count > 6)
    }
}

extension OutboxRelayStateMachine.Failure {
    var reasonForTest: String {
        switch self {
        case let .natsUnavailable(r), let .publishFailed(r), let .streamMissing(r), let .database(r): r
        }
    }
}

@Suite struct RelayStateOneEnumTests {
    typealias Machine = OutboxRelayStateMachine

    func machine(batch: Int = 10) -> Machine {
        Machine(configuration: .init(batchSize: batch, pollInterval: .seconds(1), initialBackoff: .milliseconds(100),
                                     maxBackoff: .seconds(2), jitter: 0))
    }

    /// Running always means the stream is ready and nothing failed since; every failing combination is `degraded`.
    @Test func eachStepLeavesOneState() {
        var m = machine()
        #expect(m.state == .starting)
        #expect(m.failed(.natsUnavailable("down")) == [.log(.degraded(.natsDown, reason: "down")), .backOff(.milliseconds(100))])
        #expect(m.state == .degraded(.natsDown, failedAttempts: 1, consecutiveFailures: 1, streamReady: false))
        #expect(m.woken() == [.ensureStream])
        #expect(m.streamEnsured() == [.log(.recovered(from: .natsDown, failedAttempts: 1)), .claimBatch])
        #expect(m.state == .running)
        let refused = Machine.Failure.publishFailed("1 message(s) not acknowledged")
        _ = m.batchFinished(.init(claimed: 10, published: 9, failure: refused))
        #expect(m.state == .degraded(.publishFailing, failedAttempts: 1, consecutiveFailures: 0, streamReady: true))
        #expect(m.health == .publishFailing)
        _ = m.batchFinished(.init(claimed: 3, published: 2, failure: .streamMissing("gone")))
        #expect(m.state == .degraded(.publishFailing, failedAttempts: 2, consecutiveFailures: 1, streamReady: false))
        #expect(m.woken() == [.ensureStream])
        _ = m.failed(.database("pg down"))
        #expect(m.state == .degraded(.databaseDown, failedAttempts: 3, consecutiveFailures: 2, streamReady: false))
        #expect(m.consecutiveFailures == 2)
    }

    /// `start()` begins afresh: health back to starting (it used to keep the old health), the stream to be ensured.
    @Test func startResetsHealthWithTheStream() {
        var m = machine()
        _ = m.start(); _ = m.streamEnsured()
        _ = m.batchFinished(.init(claimed: 0, published: 0, failure: .database("pg down")))
        #expect(m.health == .databaseDown)
        #expect(m.start() == [.ensureStream])
        #expect(m.health == .starting)
        #expect(m.consecutiveFailures == 0)
        #expect(m.woken() == [.ensureStream])
        #expect(m.streamEnsured() == [.claimBatch])                   // no recovery line for a fresh start
    }
}
