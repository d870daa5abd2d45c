import ChaosKit
import Synchronization

/// The requests of the run, in the order they ended.
final class ChaosLedger: Sendable {
    private let records = Mutex<[ChaosRequestRecord]>([])
    private let counters = Mutex<(request: Int, burst: Int, writes: Int)>((0, 0, 0))
    let runID: String

    init(runID: String) { self.runID = runID }

    func newRequestID() -> String { "\(runID)-\(counters.withLock { $0.request += 1; return $0.request })" }
    func newBurst() -> Int { counters.withLock { $0.burst += 1; return $0.burst } }
    func add(_ record: ChaosRequestRecord) {
        records.withLock { $0.append(record) }
        if record.kind.isWrite { counters.withLock { $0.writes += 1 } }
    }
    var all: [ChaosRequestRecord] { records.withLock { $0 } }
    var writes: Int { counters.withLock { $0.writes } }
}
