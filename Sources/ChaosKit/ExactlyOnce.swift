import Foundation

// Exactly-once retries of the fault-injection run: every workload write carries an Idempotency-Key (its request id);
// an unknown outcome is retried with the same key until a definite answer or a deadline. The retry rule and the
// check over what the retries did, pure (tested in ChaosTests).

/// When a keyed write is sent again with the same key.
public enum ChaosRetryPolicy {
    /// Seconds a write keeps being retried after its first attempt (above the controllers' idempotency lease, so a
    /// claim left by a killed controller frees before the write gives up).
    public static let deadline = 30.0

    /// Whether to send again after `outcome`: an unknown outcome (cut, timed out) always; after an unknown outcome,
    /// also what cannot be final for this write — not sent (its controller is down: another one takes it), 503, and
    /// 409 naming `Idempotency-Key` (the first attempt's claim is still held). Everything else is the write's answer.
    /// `idempotencyConflict`: the answer was 409 with `field` = `Idempotency-Key`.
    public static func retry(after outcome: ChaosOutcome, idempotencyConflict: Bool, earlierUnknown: Bool, elapsed: Double) -> Bool {
        guard elapsed < deadline else { return false }
        switch outcome {
        case .unknown: return true
        case .notSent: return earlierUnknown
        case .answered(let status, _, _, _):
            if status == 409 && idempotencyConflict { return true }
            return status == 503 && earlierUnknown
        }
    }

    /// Pause before attempt `attempt` (2, 3, …): 0.2 s doubling, at most 2 s.
    public static func backoff(attempt: Int) -> Double { min(2.0, 0.2 * pow(2.0, Double(max(0, attempt - 2)))) }
}

/// One keyed write of the run: how many times it was sent and how it ended.
public struct ChaosKeyedWrite: Sendable, Equatable {
    public init(requestID: String, tenant: String, attempts: Int, unknownAttempts: Int, replayed: Bool, outcome: ChaosOutcome,
                brokeWhileUp: Int = 0) {
        self.requestID = requestID
        self.tenant = tenant
        self.attempts = attempts
        self.unknownAttempts = unknownAttempts
        self.replayed = replayed
        self.outcome = outcome
        self.brokeWhileUp = brokeWhileUp
    }

    /// Also its Idempotency-Key.
    public var requestID: String
    public var tenant: String
    public var attempts: Int
    /// Attempts whose outcome the client could not know (cut or timed out).
    public var unknownAttempts: Int
    /// The final answer carried `Idempotent-Replayed: true`.
    public var replayed: Bool
    /// The final outcome (the one recorded for the other checks).
    public var outcome: ChaosOutcome
    /// Attempts cut or timed out while their controller was up all along (a bug, not a fault).
    public var brokeWhileUp: Int

    public var retriedByKey: Bool { attempts > 1 }
}

extension ChaosChecks {
    /// The figures of the exactly-once check (also printed in the summary).
    public struct ExactlyOnce: Sendable, Equatable {
        public var writes = 0
        public var acknowledged = 0
        public var retriedByKey = 0
        /// Retried by key and then answered 2xx.
        public var retriedAcknowledged = 0
        public var replayed = 0
        /// Acknowledged writes whose events are in the log exactly once (one transaction).
        public var exactlyOnce = 0
        public var duplicated = 0
        public var lost = 0
        /// Still unknown when the deadline passed.
        public var unresolved = 0
        public var check = ChaosCheck(name: "", passed: true, detail: "")
    }

    /// The least retried-by-key writes a run must show: one per four controller kills, at least one (a kill cuts
    /// requests in flight; a run where none was cut did not exercise the retries).
    public static func minimumRetriedByKey(kills: Int) -> Int { max(1, kills / 4) }

    /// Every acknowledged keyed write is in the log exactly once (one transaction: never duplicated by its retries,
    /// never lost); counts what the retries did, with the work covered and a minimum of retried writes.
    public static func exactlyOnce(_ writes: [ChaosKeyedWrite], logged: [String: ChaosLoggedWrite], minimumAcknowledged: Int,
                                   minimumRetried: Int) -> ExactlyOnce {
        var out = ExactlyOnce()
        var problems: [String] = []
        for w in writes {
            out.writes += 1
            if w.retriedByKey { out.retriedByKey += 1 }
            if w.replayed { out.replayed += 1 }
            if w.brokeWhileUp > 0 { problems.append("\(w.requestID): \(w.brokeWhileUp) attempt(s) cut while their controller was up") }
            let entry = logged[w.requestID]
            if let entry, entry.transactions > 1 {
                out.duplicated += 1
                problems.append("\(w.requestID): appended by \(entry.transactions) transactions over \(w.attempts) attempts (duplicated)")
            }
            switch w.outcome {
            case .answered(let status, _, _, _) where (200..<300).contains(status):
                out.acknowledged += 1
                if w.retriedByKey { out.retriedAcknowledged += 1 }
                if let entry, entry.transactions == 1, entry.tenants == [w.tenant] {
                    out.exactlyOnce += 1
                } else if entry == nil {
                    out.lost += 1
                    problems.append("\(w.requestID): acknowledged after \(w.attempts) attempt(s), not in the event log (lost)")
                } else if let entry, entry.tenants != [w.tenant] {
                    problems.append("\(w.requestID): events in tenants \(entry.tenants.sorted())")
                }
            case .unknown:
                out.unresolved += 1
            default:
                break
            }
        }
        if out.retriedByKey < minimumRetried {
            problems.insert("only \(out.retriedByKey) writes retried by key, below the minimum of \(minimumRetried): the retries were not exercised", at: 0)
        }
        if out.acknowledged < minimumAcknowledged {
            problems.insert("only \(out.acknowledged) acknowledged keyed writes, below the minimum of \(minimumAcknowledged)", at: 0)
        }
        out.check = ChaosCheck(
            name: "exactly once: every acknowledged write, retried by its Idempotency-Key or not, is in the log once",
            passed: problems.isEmpty,
            detail: "\(out.writes) keyed writes: \(out.acknowledged) acknowledged (minimum \(minimumAcknowledged)), "
                + "\(out.retriedByKey) retried by key (minimum \(minimumRetried)), \(out.retriedAcknowledged) of them acknowledged, "
                + "\(out.replayed) answered by a replay; exactly once \(out.exactlyOnce), duplicated \(out.duplicated), lost \(out.lost); "
                + "\(out.unresolved) still unknown at the \(Int(ChaosRetryPolicy.deadline)) s deadline",
            problems: Array(problems.prefix(maxProblems)))
        return out
    }
}
