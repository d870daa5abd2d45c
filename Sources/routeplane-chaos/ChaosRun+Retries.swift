// Exactly-once retries: every workload write is sent with an Idempotency-Key (its request id) and, when its outcome is
// unknown (the connection was cut, no answer by the deadline), sent again with the same key — to the next controller
// — until a definite answer or `ChaosRetryPolicy.deadline`. One ledger record per write (its final outcome), and the
// attempts in `ChaosRetryLedger` for the exactly-once check.
import ChaosKit
import Foundation
import Synchronization

/// The keyed writes of the run and what their retries did.
final class ChaosRetryLedger: Sendable {
    private let writes = Mutex<[ChaosKeyedWrite]>([])
    func add(_ write: ChaosKeyedWrite) { writes.withLock { $0.append(write) } }
    var all: [ChaosKeyedWrite] { writes.withLock { $0 } }
}

/// One attempt's record, handed back by `send`.
final class AttemptBox: Sendable {
    let record = Mutex<ChaosRequestRecord?>(nil)
}

extension ChaosRun {
    /// `send` for a workload write: attempts with the same key until a definite answer; records the final outcome once.
    func sendRetryingByKey(_ tenant: ChaosTenant, kind: ChaosRequestKind, controller first: Int, method: String, path: String,
                           body: [UInt8]?, ifMatch: String?, burst: Int?, requestID rid: String) async -> (ChaosOutcome, ChaosHTTP.Response?) {
        let started = now
        var attempts = 0, unknown = 0, brokeWhileUp = 0
        var killedDuring = false
        var controller = first
        var last: (ChaosOutcome, ChaosHTTP.Response?) = (.notSent, nil)
        var lastRecord: ChaosRequestRecord?
        while true {
            attempts += 1
            let box = AttemptBox()
            last = await send(tenant, kind: kind, controller: controller, method: method, path: path, body: body, ifMatch: ifMatch, burst: burst,
                              requestID: rid, attempt: { record in box.record.withLock { $0 = record } })
            lastRecord = box.record.withLock { $0 }
            if lastRecord?.controllerKilledDuring == true { killedDuring = true }
            if case .unknown = last.0 {
                unknown += 1
                if lastRecord?.controllerKilledDuring == false { brokeWhileUp += 1 }
            }
            let idempotencyConflict = last.0.status == 409 && last.1.flatMap { Self.field("field", of: $0.body) } == "Idempotency-Key"
            guard ChaosRetryPolicy.retry(after: last.0, idempotencyConflict: idempotencyConflict, earlierUnknown: unknown > 0,
                                         elapsed: now - started) else { break }
            await chaosSleep(.milliseconds(Int(ChaosRetryPolicy.backoff(attempt: attempts + 1) * 1000)))
            controller = (controller + 1) % controllers.count
        }
        let replayed = last.1?.header("Idempotent-Replayed") == "true"
        retries.add(ChaosKeyedWrite(requestID: rid, tenant: tenant.id, attempts: attempts, unknownAttempts: unknown, replayed: replayed,
                                    outcome: last.0, brokeWhileUp: brokeWhileUp))
        if var record = lastRecord {
            // One record per write: its final outcome, from the first attempt's start; "killed during" if any attempt was cut by a kill
            // (an attempt cut while its controller was up is reported by the exactly-once check).
            record.start = started
            record.controllerKilledDuring = killedDuring
            ledger.add(record)
        }
        return last
    }

    /// The exactly-once check over the keyed writes.
    func exactlyOnceCheck(logged: [String: ChaosLoggedWrite], plannedKills: Int) -> ChaosCheck {
        let m = ChaosMinimums.forRun(settings)
        let result = ChaosChecks.exactlyOnce(retries.all, logged: logged, minimumAcknowledged: m.acknowledgedWrites,
                                             minimumRetried: ChaosChecks.minimumRetriedByKey(kills: plannedKills))
        return result.check
    }
}
