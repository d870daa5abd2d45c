import Synchronization

/// Wakes one waiting task early: a reason signalled while nobody waits for it stays pending until a wait that
/// accepts it. Used by the relay's loop (NOTIFY arrived, NATS came back).
final class WakeSignal: Sendable {
    enum Reason: Hashable, Sendable {
        case outbox
        case natsUp
    }

    private struct Waiter {
        var id: Int
        var accepting: Set<Reason>
        var continuation: CheckedContinuation<Reason?, Never>
    }

    private struct State: ~Copyable {
        var pending: Set<Reason> = []
        var waiter: Waiter?
        var nextID = 0
        /// Waits that timed out or were cancelled before their waiter was installed.
        var expired: Set<Int> = []
    }

    private let state = Mutex(State())

    func signal(_ reason: Reason) {
        let continuation: CheckedContinuation<Reason?, Never>? = state.withLock { s in
            if let w = s.waiter, w.accepting.contains(reason) {
                s.waiter = nil
                return w.continuation
            }
            s.pending.insert(reason)
            return nil
        }
        continuation?.resume(returning: reason)
    }

    /// Returns the reason that ended the wait, or nil on timeout or cancellation.
    func wait(timeout: Duration, accepting: Set<Reason>) async -> Reason? {
        let id: Int? = state.withLock { s in
            if let r = s.pending.first(where: { accepting.contains($0) }) {
                s.pending.remove(r)
                return nil
            }
            // One waiter at a time: marks left by earlier waits are stale.
            s.expired.removeAll()
            s.nextID += 1
            return s.nextID
        }
        guard let id else { return accepting.first }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self.expire(id) }
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Reason?, Never>) in
                let immediate: Reason?? = state.withLock { s in
                    if s.expired.remove(id) != nil { return .some(nil) }
                    if let r = s.pending.first(where: { accepting.contains($0) }) {
                        s.pending.remove(r)
                        return .some(r)
                    }
                    s.waiter = Waiter(id: id, accepting: accepting, continuation: continuation)
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            self.expire(id)
        }
    }

    private func expire(_ id: Int) {
        let continuation: CheckedContinuation<Reason?, Never>? = state.withLock { s in
            if let w = s.waiter, w.id == id {
                s.waiter = nil
                return w.continuation
            }
            // Not installed yet (or already resumed): remember, so an installation for this id returns at once.
            if id == s.nextID { s.expired.insert(id) }
            return nil
        }
        continuation?.resume(returning: nil)
    }
}
