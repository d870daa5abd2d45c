import Dispatch
import Foundation
import Synchronization

/// Sleeps for the fault-injection run's own timing (fault schedule, polls, client pauses), woken by a thread of its own.
///
/// Why not `Task.sleep`: on Linux its wake-ups go through Dispatch's shared global queue, and the hundreds of in-process
/// agents park threads of that queue in blocking libnats requests (their periodic re-reads, all at once, time out after
/// 5 s while NATS is down); that held every `Task.sleep` of the process back, so a 3-second NATS outage lasted 50 s
/// (seen in 10-minute runs). Wake-ups from this thread go straight to the cooperative pool.
final class ChaosTimer: Sendable {
    static let shared = ChaosTimer()

    private struct Entry {
        var deadline: UInt64
        var continuation: CheckedContinuation<Void, Never>
    }
    private let entries = Mutex<[Entry]>([])
    private let wake = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in loop() }
        thread.name = "routeplane.chaos.timer"
        thread.start()
    }

    func sleep(_ duration: Duration) async {
        let nanos = max(0, duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        let deadline = DispatchTime.now().uptimeNanoseconds &+ UInt64(nanos)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            entries.withLock { $0.append(Entry(deadline: deadline, continuation: continuation)) }
            wake.signal()
        }
    }

    private func loop() {
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            let (due, next) = entries.withLock { all -> ([Entry], UInt64?) in
                let due = all.filter { $0.deadline <= now }
                all.removeAll { $0.deadline <= now }
                return (due, all.map(\.deadline).min())
            }
            for entry in due { entry.continuation.resume() }
            if let next {
                _ = wake.wait(timeout: DispatchTime(uptimeNanoseconds: next))
            } else {
                wake.wait()
            }
        }
    }
}

/// `ChaosTimer.shared.sleep`.
func chaosSleep(_ duration: Duration) async { await ChaosTimer.shared.sleep(duration) }
