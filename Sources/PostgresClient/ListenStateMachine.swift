/// LISTEN on a dedicated connection, kept alive: the pure logic behind `PostgresNotifications` (no I/O).
///
/// The shell asks `next()` what to do and reports each outcome; the machine answers with one action: open the
/// connection and LISTEN, wait on it for notifications, sleep before retrying, or hand an event to the caller.
/// A broken connection is replaced at once; a failed connect or LISTEN is retried after a back-off (doubling up
/// to a cap). While it cannot listen, the caller still gets an `.idle` event every poll interval, so it can poll.
/// Modelled on postgres-nio's `ListenStateMachine`: the state is one enum, the I/O is elsewhere.
public struct ListenStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// The longest wait for a notification (or, while down, between two `.idle` events).
        public var pollInterval: Duration
        /// The first delay before retrying a failed connect or LISTEN; doubled after each further failure.
        public var minBackoff: Duration
        public var maxBackoff: Duration

        public init(pollInterval: Duration = .milliseconds(250), minBackoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(4)) {
            self.pollInterval = pollInterval
            self.minBackoff = minBackoff
            self.maxBackoff = maxBackoff
        }
    }

    public enum Action: Sendable, Equatable {
        /// Open the connection and LISTEN; report `connected()` or `connectFailed(reason:)`.
        case connect
        /// Wait on the connection up to `timeout`; report `received(_:)` or `connectionLost(reason:)`.
        case waitForNotifications(timeout: Duration)
        /// Sleep (no connection); report `slept(_:)` with the same duration.
        case sleep(Duration)
        /// Hand this event to the caller.
        case deliver(PostgresListenEvent)
    }

    enum State: Sendable, Equatable {
        /// No connection; open one at the next `next()`. `down`: the connection broke (or never worked).
        case disconnected(down: Bool)
        /// A connect (and LISTEN) is in flight, after `failures` failed attempts in a row.
        case connecting(down: Bool, failures: Int)
        /// Listening; `pending` holds notifications received but not yet delivered.
        case listening(pending: [PostgresNotification])
        /// The shell is waiting on the connection.
        case waiting
        /// `failures` attempts failed in a row; retry once `remaining` has been slept.
        case backingOff(failures: Int, remaining: Duration)
        /// The shell sleeps part of the back-off (`remaining` before the sleep).
        case sleeping(failures: Int, remaining: Duration)
    }

    public let configuration: Configuration
    private(set) var state: State = .disconnected(down: false)

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// What to do when the caller asks for the next event.
    public mutating func next() -> Action {
        switch state {
        case let .disconnected(down):
            state = .connecting(down: down, failures: 0)
            return .connect
        case var .listening(pending):
            if pending.isEmpty {
                state = .waiting
                return .waitForNotifications(timeout: configuration.pollInterval)
            }
            let first = pending.removeFirst()
            state = .listening(pending: pending)
            return .deliver(.notification(first))
        case let .backingOff(failures, remaining):
            if remaining <= .zero {
                state = .connecting(down: true, failures: failures)
                return .connect
            }
            state = .sleeping(failures: failures, remaining: remaining)
            return .sleep(min(remaining, configuration.pollInterval))
        case .connecting, .waiting, .sleeping:
            preconditionFailure("ListenStateMachine.next() while \(state)")
        }
    }

    /// The connection is open and LISTENs: notifications sent while nobody listened are lost, so the caller re-reads.
    public mutating func connected() -> Action {
        guard case let .connecting(down, _) = state else { preconditionFailure("connected() while \(state)") }
        state = .listening(pending: [])
        return .deliver(.listening(recovered: down))
    }

    /// Opening the connection or LISTEN failed: back off. Only the first failure of an outage is reported (a
    /// broken connection was reported as `.lost`); after a later one the machine goes straight to the back-off.
    public mutating func connectFailed(reason: String) -> Action {
        guard case let .connecting(down, failures) = state else { preconditionFailure("connectFailed() while \(state)") }
        state = .backingOff(failures: failures + 1, remaining: backoff(afterFailures: failures + 1))
        return down ? next() : .deliver(.unavailable(reason: reason))
    }

    /// The wait ended: deliver what arrived, or `.idle` after a quiet poll interval.
    public mutating func received(_ notifications: [PostgresNotification]) -> Action {
        guard case .waiting = state else { preconditionFailure("received() while \(state)") }
        state = .listening(pending: notifications)
        if notifications.isEmpty { return .deliver(.idle) }
        return next()
    }

    /// The connection broke while waiting: it is replaced at the next `next()`.
    public mutating func connectionLost(reason: String) -> Action {
        guard case .waiting = state else { preconditionFailure("connectionLost() while \(state)") }
        state = .disconnected(down: true)
        return .deliver(.lost(reason: reason))
    }

    /// A sleep of the back-off ended: connect if it is over, otherwise let the caller poll.
    public mutating func slept(_ duration: Duration) -> Action {
        guard case let .sleeping(failures, remaining) = state else { preconditionFailure("slept() while \(state)") }
        let left = remaining - duration
        state = .backingOff(failures: failures, remaining: left)
        if left <= .zero { return next() }
        return .deliver(.idle)
    }

    /// `minBackoff`, doubled after each further failure, at most `maxBackoff`.
    func backoff(afterFailures failures: Int) -> Duration {
        Backoff.doubling(afterFailures: failures, first: configuration.minBackoff, limit: configuration.maxBackoff)
    }
}

/// One NOTIFY.
public struct PostgresNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String

    public init(channel: String, payload: String) {
        self.channel = channel
        self.payload = payload
    }
}

/// What `PostgresNotifications` hands its reader. Every event is a wake-up: a reader that polls re-reads on any of them.
public enum PostgresListenEvent: Sendable, Equatable {
    case notification(PostgresNotification)
    /// LISTEN is (re)established. Notifications sent while nobody listened are lost: re-read what you follow.
    /// `recovered`: an earlier attempt failed or the connection broke (log "listening again").
    case listening(recovered: Bool)
    /// The first failure to connect or LISTEN of an outage (later failures are not reported); retried with back-off.
    case unavailable(reason: String)
    /// The listening connection broke; it is replaced at once.
    case lost(reason: String)
    /// A poll interval passed with nothing to deliver (also while it cannot listen).
    case idle
}
