/// The outbox relay's decisions, without I/O: when to (re)ensure the stream, claim a batch, idle, or back off,
/// and which state changes to log (once per change, never per row). `OutboxRelay` performs the actions and
/// feeds the outcomes back. Each call returns zero or more `.log` actions followed by exactly one driving action
/// (`.ensureStream`, `.claimBatch`, `.idle`, `.backOff`).
public struct OutboxRelayStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Rows (peers) claimed per transaction.
        public var batchSize: Int
        /// Idle wait when the outbox is drained; NOTIFY `routeplane_outbox` ends it early.
        public var pollInterval: Duration
        public var initialBackoff: Duration
        public var maxBackoff: Duration
        /// Fraction of each back-off removed at random (0 = exact), so relays that failed together retry apart.
        public var jitter: Double
        /// Seed of the jitter's generator (deterministic in tests).
        public var seed: UInt64

        public init(batchSize: Int = 256, pollInterval: Duration = .seconds(1), initialBackoff: Duration = .milliseconds(100),
                    maxBackoff: Duration = .seconds(5), jitter: Double = 0.2, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
            self.batchSize = batchSize
            self.pollInterval = pollInterval
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
            self.jitter = jitter
            self.seed = seed
        }
    }

    /// Why an attempt did not publish everything it claimed.
    public enum Failure: Sendable, Equatable {
        /// NATS not connected: nothing was claimed.
        case natsUnavailable(String)
        /// Publishes not acknowledged (timeout, connection lost mid-batch, refused by JetStream).
        case publishFailed(String)
        /// No stream answered: it must be created again before publishing.
        case streamMissing(String)
        /// PostgreSQL failed (claim, mark-sent or commit): the batch rolled back.
        case database(String)

        var degradation: Degradation {
            switch self {
            case .natsUnavailable: .natsDown
            case .publishFailed, .streamMissing: .publishFailing
            case .database: .databaseDown
            }
        }

        var isStreamMissing: Bool {
            if case .streamMissing = self { true } else { false }
        }

        var reason: String {
            switch self {
            case let .natsUnavailable(r), let .publishFailed(r), let .streamMissing(r), let .database(r): r
            }
        }
    }

    public enum Health: String, Sendable, Equatable {
        case starting, running, natsDown, publishFailing, databaseDown
    }

    /// What is failing while degraded.
    public enum Degradation: String, Sendable, Equatable {
        case natsDown, publishFailing, databaseDown

        var health: Health {
            switch self {
            case .natsDown: .natsDown
            case .publishFailing: .publishFailing
            case .databaseDown: .databaseDown
            }
        }
    }

    /// The relay's one state.
    public enum State: Sendable, Equatable {
        /// Nothing attempted yet: the stream is ensured first.
        case starting
        /// The last attempt published (or the stream was just ensured): the stream is ready, nothing failed since.
        case running
        /// Attempts fail. `failedAttempts`: since the last healthy one (for the recovery log line);
        /// `consecutiveFailures`: attempts in a row that made no progress (drives the back-off; 0 when a batch
        /// published despite refused messages); `streamReady`: false when the stream must be ensured again
        /// before the next claim.
        case degraded(Degradation, failedAttempts: Int, consecutiveFailures: Int, streamReady: Bool)
    }

    public enum LogEvent: Sendable, Equatable {
        /// Entered a failing state (or moved to another one).
        case degraded(Health, reason: String)
        /// Back to normal after `failedAttempts` consecutive failed attempts.
        case recovered(from: Health, failedAttempts: Int)
    }

    public enum Action: Sendable, Equatable {
        case ensureStream
        case claimBatch
        /// Wait for a NOTIFY, NATS coming back, or the duration, then call `woken()`.
        case idle(Duration)
        /// Wait the duration (or until NATS comes back), then call `woken()`.
        case backOff(Duration)
        case log(LogEvent)
    }

    public struct BatchOutcome: Sendable, Equatable {
        /// Peers claimed (one message each).
        public var claimed: Int
        /// Messages acknowledged and marked sent (committed).
        public var published: Int
        public var failure: Failure?

        public init(claimed: Int, published: Int, failure: Failure? = nil) {
            self.claimed = claimed
            self.published = published
            self.failure = failure
        }
    }

    public let configuration: Configuration
    public private(set) var state: State = .starting
    private var rng: UInt64

    public var health: Health {
        switch state {
        case .starting: .starting
        case .running: .running
        case let .degraded(degradation, _, _, _): degradation.health
        }
    }

    /// Consecutive attempts that made no progress (drives the back-off).
    public var consecutiveFailures: Int {
        if case let .degraded(_, _, failures, _) = state { failures } else { 0 }
    }

    private var streamReady: Bool {
        switch state {
        case .starting: false
        case .running: true
        case let .degraded(_, _, _, ready): ready
        }
    }

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        self.rng = configuration.seed == 0 ? 1 : configuration.seed
    }

    public mutating func start() -> [Action] {
        state = .starting
        return [.ensureStream]
    }

    public mutating func streamEnsured() -> [Action] {
        succeeded() + [.claimBatch]
    }

    /// Ensuring the stream failed, or a check before claiming did.
    public mutating func failed(_ failure: Failure) -> [Action] {
        let failures = consecutiveFailures + 1
        return degraded(failure, consecutiveFailures: failures) + [.backOff(backoffDelay(afterFailures: failures))]
    }

    public mutating func batchFinished(_ outcome: BatchOutcome) -> [Action] {
        guard let failure = outcome.failure else {
            return succeeded() + [outcome.claimed >= configuration.batchSize ? .claimBatch : .idle(configuration.pollInterval)]
        }
        if outcome.published > 0 && streamReady && !failure.isStreamMissing {
            // Progress despite some refused messages: keep going, but say (once) that some fail.
            return degraded(failure, consecutiveFailures: 0)
                + [outcome.claimed >= configuration.batchSize ? .claimBatch : .idle(configuration.pollInterval)]
        }
        let failures = consecutiveFailures + 1
        return degraded(failure, consecutiveFailures: failures) + [.backOff(backoffDelay(afterFailures: failures))]
    }

    /// An idle wait or a back-off ended.
    public mutating func woken() -> [Action] {
        streamReady ? [.claimBatch] : [.ensureStream]
    }

    private mutating func succeeded() -> [Action] {
        defer { state = .running }
        guard case let .degraded(degradation, failedAttempts, _, _) = state else { return [] }
        return [.log(.recovered(from: degradation.health, failedAttempts: failedAttempts))]
    }

    /// Enters (or stays in) the failure's degradation; logs only a change.
    private mutating func degraded(_ failure: Failure, consecutiveFailures: Int) -> [Action] {
        let next = failure.degradation
        let streamReady = self.streamReady && !failure.isStreamMissing
        var failedAttempts = 0, previous: Degradation?
        if case let .degraded(degradation, attempts, _, _) = state { (previous, failedAttempts) = (degradation, attempts) }
        state = .degraded(next, failedAttempts: failedAttempts + 1, consecutiveFailures: consecutiveFailures, streamReady: streamReady)
        return next == previous ? [] : [.log(.degraded(next.health, reason: failure.reason))]
    }

    /// initial × 2^(n-1), capped, minus up to `jitter` of it.
    private mutating func backoffDelay(afterFailures failures: Int) -> Duration {
        let exponent = min(max(failures - 1, 0), 30)
        var delay = configuration.initialBackoff * (1 << exponent)
        if delay > configuration.maxBackoff || delay < .zero { delay = configuration.maxBackoff }
        guard configuration.jitter > 0 else { return delay }
        // xorshift64*
        rng ^= rng >> 12
        rng ^= rng << 25
        rng ^= rng >> 27
        let unit = Double((rng &* 0x2545_F491_4F6C_DD1D) >> 11) / Double(1 << 53)
        return delay * (1 - min(configuration.jitter, 1) * unit)
    }
}
