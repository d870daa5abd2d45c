import CLibPQ
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A libpq result owned by exactly one party at a time: made on the I/O thread, handed to the awaiting
/// caller through its continuation, cleared when the box is released.
final class PGResultBox: @unchecked Sendable {
    // Why @unchecked Sendable is safe: the pointer is never shared. The I/O thread creates the box and gives
    // it away by resuming one continuation (a happens-before edge); only the resumed caller reads it after that.
    let raw: OpaquePointer
    init(_ raw: OpaquePointer) { self.raw = raw }
    deinit { PQclear(raw) }
}

/// A `PGconn` pointer passed between the connection's holder and the I/O thread.
struct PGConnHandle: @unchecked Sendable {
    // Why @unchecked Sendable is safe: a pooled connection has one holder at a time (the pool's state machine),
    // and within a lease exactly one thread touches the `PGconn` at a time: the holder's thread until it has
    // stored its waiter (under the connection's `PostgresIOLoop.Watch` lock), the I/O thread from taking that
    // waiter (same lock) until it resumes the waiter's continuation. The loop never touches a `PGconn` whose
    // watch has no waiter. Both hand-overs synchronise.
    let raw: OpaquePointer
}

/// Completes the statements that connections send with libpq's non-blocking API: one thread for the
/// process, sitting in `poll()` on the sockets of every connection that has used this path.
///
/// Why (measured with `routeplane-bench append --profile-writers 4`, `perf stat`, `strace -c -f`): running
/// every blocking libpq call on a per-connection `DispatchQueue` cost ~4 thread sleeps (context switches),
/// ~1.4 futex calls and ~45–55 µs of client CPU per append, half of it in the kernel's task switching;
/// pgbench spends 1 sleep and ~10 µs per transaction. Here the holder sends the statement from its own thread
/// (a non-blocking write into the socket: no hop, no wake-up) and stores a waiter; this thread already polls
/// that socket, so the server's answer is the only wake-up, and one wake-up serves every connection whose
/// answer has arrived. It reads results only when `PQisBusy` says they are complete, so it never blocks in
/// libpq, and resumes the holders, whose tasks continue on Swift's cooperative pool.
///
/// A socket is polled even while nothing is in flight on it, so that sending needs no wake-up. The loop
/// touches the `PGconn` only while a waiter is stored; readiness with no waiter (an answer faster than the
/// caller could store its waiter, an asynchronous message, the server closing an idle connection, or
/// `withSession`'s blocking calls reading the socket on the connection's queue) *parks* the socket: it leaves
/// the poll set (so the thread never spins); the next statement reads what arrived itself and, if it must
/// wait, brings the socket back through the wake-up pipe (one extra wake-up, only after such an event).
final class PostgresIOLoop: Sendable {
    static let shared = PostgresIOLoop()

    /// One connection's socket as the loop sees it.
    final class Watch: Sendable {
        struct Waiter {
            let connection: PGConnHandle
            let continuation: UnsafeContinuation<PGResultBox?, any Error>
            /// Results read so far (a statement's result arrives before the "ready" message that ends it).
            var results: [PGResultBox] = []
            /// libpq still has output to send (`PQflush` returned 1): also wait for the socket to be writable.
            var wantWrite: Bool
        }

        struct State {
            var waiter: Waiter?
            /// Out of the poll set after readiness with no waiter; the next waiter brings it back.
            var parked = false
        }

        let socket: Int32
        let state = Mutex(State())

        init(socket: Int32) { self.socket = socket }
    }

    /// The sockets to poll, by descriptor; the loop copies this after every wake-up through the pipe.
    private let watches = Mutex<[Int32: Watch]>([:])
    /// A pipe whose read end is in every `poll`: written to make the thread re-read `watches` and the parked
    /// and wants-to-write flags.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    private init() {
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0, "cannot create the I/O loop's pipe: errno \(errno)")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        let thread = Thread { [self] in self.run() }
        thread.name = "routeplane.pg.io"
        thread.start()
    }

    /// Starts polling a connection's socket (before its first statement on this path).
    func watch(socket: Int32) -> Watch {
        let watch = Watch(socket: socket)
        watches.withLock { $0[socket] = watch }
        poke()
        return watch
    }

    /// Stops polling a socket; called before the connection closes it.
    func unwatch(_ watch: Watch) {
        watches.withLock { if $0[watch.socket] === watch { $0[watch.socket] = nil } }
        poke()
    }

    /// Sends a statement with `send` and waits until it has completed; returns its result (nil if the server
    /// sent none). `send` makes the `PQsend…` call and `PQflush` and returns whether output is left to send
    /// (`PQflush` returned 1).
    ///
    /// The send happens before the waiter is stored and outside any lock (a lock held across the `send`
    /// system call made the loop wait for it whenever the caller was preempted there: 3 % of the client's
    /// samples in `Mutex._lockSlow`). If the socket became ready in between (the answer came that fast, or
    /// stray data), the loop has parked it without touching the connection, and the answer is read here,
    /// on the caller's thread, without blocking: often the statement is then complete and nobody sleeps.
    func perform(on watch: Watch, connection: PGConnHandle, _ send: (OpaquePointer) throws -> Bool) async throws -> PGResultBox? {
        let flushPending = try send(connection.raw)
        return try await withUnsafeThrowingContinuation { continuation in
            var waiter = Watch.Waiter(connection: connection, continuation: continuation, wantWrite: flushPending)
            let parked = watch.state.withLock { state in
                if state.parked { return true }
                state.waiter = waiter
                return false
            }
            if !parked {
                if flushPending { poke() }  // the loop polls this socket for input only: add POLLOUT
                return
            }
            switch Self.step(connection.raw, readable: true, results: &waiter.results) {
            case let .done(result):
                // Left parked: the next statement's waiter brings the socket back (if it is still needed).
                continuation.resume(returning: result)
            case let .failed(error):
                continuation.resume(throwing: error)
            case let .wait(write):
                waiter.wantWrite = write
                let stored = waiter
                watch.state.withLock { state in
                    state.parked = false
                    state.waiter = stored
                }
                poke()
            }
        }
    }

    private func poke() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)  // EAGAIN (pipe full) is fine: a wake-up is pending anyway
    }

    private func run() {
        var polled: [Watch] = []  // polled[i] is fds[i + 1]
        var fds: [pollfd] = []
        var drain = [UInt8](repeating: 0, count: 256)
        var reload = true
        while true {
            if reload {
                // Re-read the sockets and their flags (after a wake-up through the pipe: rare).
                polled = watches.withLock { Array($0.values) }
                fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
                for watch in polled {
                    let (parked, wantWrite) = watch.state.withLock { ($0.parked, $0.waiter?.wantWrite ?? false) }
                    fds.append(pollfd(fd: parked ? -1 : watch.socket, events: Self.events(write: wantWrite), revents: 0))
                }
                reload = false
            }
            for i in fds.indices { fds[i].revents = 0 }
            if poll(&fds, nfds_t(fds.count), -1) < 0 { continue }  // EINTR
            if fds[0].revents != 0 {
                while read(wakeRead, &drain, drain.count) > 0 {}
                reload = true
            }
            // Continuations are resumed after the pass, together: their tasks' enqueues then wake Swift's
            // cooperative pool once rather than once each (the pool's wake-ups coalesce).
            var completed: [(Watch.Waiter, Result<PGResultBox?, PostgresError>)] = []
            for i in 1..<fds.count where fds[i].revents != 0 {
                let revents = fds[i].revents
                let watch = polled[i - 1]
                let taken: Watch.Waiter? = watch.state.withLock { state in
                    if let waiter = state.waiter {
                        state.waiter = nil
                        return waiter
                    }
                    state.parked = true
                    return nil
                }
                guard var waiter = taken else {
                    fds[i].fd = -1  // parked (or a closed descriptor, POLLNVAL, until the reload drops it)
                    continue
                }
                let readable = revents & Int16(POLLIN | POLLHUP | POLLERR) != 0
                switch Self.step(waiter.connection.raw, readable: readable, results: &waiter.results) {
                case let .done(result):
                    fds[i].events = Self.events(write: false)
                    completed.append((waiter, .success(result)))
                case let .failed(error):
                    fds[i].events = Self.events(write: false)
                    completed.append((waiter, .failure(error)))
                case let .wait(write):
                    waiter.wantWrite = write
                    fds[i].events = Self.events(write: write)
                    let stored = waiter
                    watch.state.withLock { $0.waiter = stored }
                }
            }
            for (waiter, result) in completed {
                waiter.continuation.resume(with: result.mapError { $0 as any Error })
            }
        }
    }

    private static func events(write: Bool) -> Int16 {
        write ? Int16(POLLIN | POLLOUT) : Int16(POLLIN)
    }

    enum Step {
        case done(PGResultBox?)
        case failed(PostgresError)
        case wait(write: Bool)
    }

    /// libpq's non-blocking protocol: read what arrived, send what is left, and collect results while a
    /// whole one is available (`PQisBusy` is 0, so `PQgetResult` does not block). NULL ends the statement.
    static func step(_ conn: OpaquePointer, readable: Bool, results: inout [PGResultBox]) -> Step {
        if readable {
            guard PQconsumeInput(conn) == 1 else { return .failed(.connectionLost(reason: errorMessage(conn))) }
        }
        let flushed = PQflush(conn)
        if flushed < 0 { return .failed(.connectionLost(reason: errorMessage(conn))) }
        while PQisBusy(conn) == 0 {
            guard let result = PQgetResult(conn) else {
                // A failed statement's error result wins; otherwise the last result (one per statement here).
                let failed = results.first { PQresultStatus($0.raw) == PGRES_FATAL_ERROR }
                return .done(failed ?? results.last)
            }
            results.append(PGResultBox(result))
        }
        if PQstatus(conn) != CONNECTION_OK { return .failed(.connectionLost(reason: errorMessage(conn))) }
        return .wait(write: flushed == 1)
    }

    static func errorMessage(_ conn: OpaquePointer) -> String {
        String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
