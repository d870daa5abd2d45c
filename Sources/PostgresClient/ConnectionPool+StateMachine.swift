/// The connection pool's decisions, as a pure state machine: inputs are events (a lease was asked for,
/// a connection opened or failed, a lease came back, the retry timer fired), outputs are `Action`s that
/// the I/O shell (`ConnectionPool`) performs. No I/O, no clocks: tested on its own.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    public let raw: Int
    public var description: String { "pg-\(raw)" }
}

public struct WaiterID: Hashable, Sendable {
    public let raw: Int
}

public struct PoolStateMachine: Sendable {
    public struct Configuration: Sendable {
        public var maxConnections: Int
        public var minBackoff: Duration
        public var maxBackoff: Duration
        public init(maxConnections: Int = 8, minBackoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(5)) {
            precondition(maxConnections >= 1, "a pool needs at least one connection")
            self.maxConnections = maxConnections
            self.minBackoff = minBackoff
            self.maxBackoff = maxBackoff
        }
    }

    public enum Action: Equatable, Sendable {
        /// Open a new connection with this id and report `connected` or `connectFailed`.
        case connect(ConnectionID)
        /// Hand this connection to this waiter.
        case lease(ConnectionID, to: WaiterID)
        /// Close this connection (broken, or the pool is shutting down).
        case close(ConnectionID)
        /// Fail these waiters: the database is unreachable (or the pool is shutting down).
        case fail([WaiterID], reason: String)
        /// Call `retryTimerFired(timer)` after this delay.
        case scheduleRetry(after: Duration, timer: Int)
        /// Say that the database became unreachable or reachable again (once per change).
        case log(LogEvent)
        /// Call `leaseDeadlinePassed(waiter)` after this delay (the waiter was queued with a deadline).
        case scheduleLeaseDeadline(WaiterID, after: Duration)
        /// Fail this waiter: no connection came free within its deadline (`PostgresError.poolBusy`).
        case timeOut(WaiterID, waited: Duration)
    }

    public enum LogEvent: Equatable, Sendable {
        /// The first failed connection attempt after the database was reachable.
        case databaseDown(reason: String)
        /// The first connection opened after failed attempts.
        case databaseUp
    }

    /// The pool's one state: running (and how reachable the database is) or shutting down.
    enum PoolState: Equatable, Sendable {
        case running(Reachability)
        case shuttingDown
    }

    enum Reachability: Equatable, Sendable {
        /// The last connection attempt succeeded (or none was made yet).
        case reachable
        /// `failures` consecutive attempts failed; no new attempt until retry timer `timer` fires.
        case backingOff(failures: Int, lastFailure: String, timer: Int)
        /// The retry timer fired: new attempts may be made; a failure backs off for longer.
        case retrying(failures: Int, lastFailure: String)
    }

    enum ConnectionState: Equatable, Sendable {
        case connecting
        /// Idle since the pool's `since`-th hand-back: the most recent is leased first (it is warmest).
        case idle(since: Int)
        case leased
    }

    public let configuration: Configuration
    private(set) var state: PoolState = .running(.reachable)
    private(set) var connections: [ConnectionID: ConnectionState] = [:]
    private var waiters: [WaiterID] = []           // FIFO
    /// The deadline each waiter queued with, when it has one.
    private var deadlines: [WaiterID: Duration] = [:]
    private var nextConnection = 0
    private var nextTimer = 0
    private var handBacks = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    public var waiterCount: Int { waiters.count }
    public var openConnectionCount: Int { connections.values.filter { $0 != .connecting }.count }
    public var idleConnectionCount: Int { idleConnections.count }

    /// Consecutive failed connection attempts; 0 when the database is reachable (or the pool shuts down).
    var consecutiveFailures: Int {
        switch state {
        case .running(.reachable), .shuttingDown: 0
        case let .running(.backingOff(failures, _, _)), let .running(.retrying(failures, _)): failures
        }
    }

    private var connectingCount: Int { connections.values.filter { $0 == .connecting }.count }

    /// The idle connections, least recently handed back first.
    private var idleConnections: [ConnectionID] {
        connections.compactMap { id, state -> (Int, ConnectionID)? in
            if case let .idle(since) = state { (since, id) } else { nil }
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Leases the most recently handed back idle connection that `preferred` accepts, else the most recently handed
    /// back idle connection, if any.
    private mutating func takeIdle(preferring preferred: (ConnectionID) -> Bool = { _ in true }) -> ConnectionID? {
        var best: (since: Int, id: ConnectionID)?
        var bestPreferred: (since: Int, id: ConnectionID)?
        for (id, state) in connections {
            guard case let .idle(since) = state else { continue }
            if since > best?.since ?? Int.min { best = (since, id) }
            if since > bestPreferred?.since ?? Int.min, preferred(id) { bestPreferred = (since, id) }
        }
        guard let chosen = bestPreferred ?? best else { return nil }
        connections[chosen.id] = .leased
        return chosen.id
    }

    /// A lease asked for. `deadline`: how long the caller may wait in the queue (none: until served or failed).
    public mutating func leaseRequested(_ waiter: WaiterID, deadline: Duration? = nil) -> [Action] {
        guard case let .running(reachability) = state else { return [.fail([waiter], reason: "pool is shutting down")] }
        if let connection = takeIdle() {
            return [.lease(connection, to: waiter)]
        }
        // The database is known to be down and nothing is open or opening: fail fast rather than queue
        // callers behind a retry timer (an API answers 503 at once).
        if case let .backingOff(_, lastFailure, _) = reachability, connections.isEmpty {
            return [.fail([waiter], reason: lastFailure)]
        }
        waiters.append(waiter)
        guard let deadline else { return openIfNeeded() }
        deadlines[waiter] = deadline
        return openIfNeeded() + [.scheduleLeaseDeadline(waiter, after: deadline)]
    }

    /// The deadline of `waiter` passed: if it still waits, it leaves the queue and fails; if it was served (or
    /// failed) meanwhile, nothing happens.
    public mutating func leaseDeadlinePassed(_ waiter: WaiterID) -> [Action] {
        guard let index = waiters.firstIndex(of: waiter) else { return [] }
        waiters.remove(at: index)
        let waited = deadlines.removeValue(forKey: waiter) ?? .zero
        return [.timeOut(waiter, waited: waited)]
    }

    /// A lease served at once from the idle connections, without queueing a waiter: the connection now
    /// leased, or nil (nothing idle, or shutting down), in which case the caller asks with `leaseRequested`.
    /// Never overtakes a waiter: connections are idle only while nobody waits.
    /// `preferring`: connections to lease first when one of them is idle (the shell prefers those whose session
    /// settings already match the lease's, which saves a round trip to change them).
    public mutating func leaseIdle(preferring preferred: (ConnectionID) -> Bool = { _ in true }) -> ConnectionID? {
        guard case .running = state else { return nil }
        return takeIdle(preferring: preferred)
    }

    public mutating func waiterCancelled(_ waiter: WaiterID) -> [Action] {
        guard let index = waiters.firstIndex(of: waiter) else { return [] }
        waiters.remove(at: index)
        deadlines[waiter] = nil
        return [.fail([waiter], reason: "cancelled while waiting for a connection")]
    }

    public mutating func connected(_ connection: ConnectionID) -> [Action] {
        guard connections[connection] == .connecting else { return [] }
        guard case let .running(reachability) = state else {
            connections[connection] = nil
            return [.close(connection)]
        }
        // The database answers: any back-off (and its pending timer) is over, and the waiters that the
        // back-off kept from opening connections get them now.
        state = .running(.reachable)
        let log: [Action] = reachability == .reachable ? [] : [.log(.databaseUp)]
        return log + handOut(connection) + openIfNeeded()
    }

    public mutating func connectFailed(_ connection: ConnectionID, reason: String) -> [Action] {
        guard connections[connection] == .connecting else { return [] }
        connections[connection] = nil
        var actions: [Action] = []
        switch state {
        case .running(.reachable):
            actions = [.log(.databaseDown(reason: reason))] + backOff(failures: 1, reason: reason)
        case let .running(.retrying(failures, _)):
            actions = backOff(failures: failures + 1, reason: reason)
        case let .running(.backingOff(failures, _, timer)):
            // Another attempt that was already under way: count it, the pending timer stays.
            state = .running(.backingOff(failures: failures + 1, lastFailure: reason, timer: timer))
        case .shuttingDown:
            break
        }
        // Nothing open and nothing opening: nobody could serve the waiters soon, fail them.
        if connections.isEmpty && !waiters.isEmpty {
            actions.append(.fail(waiters, reason: reason))
            waiters.removeAll()
            deadlines.removeAll()
        }
        return actions
    }

    /// Retry timer `timer` fired. A timer that a newer back-off (or a connection) made out of date does nothing.
    public mutating func retryTimerFired(_ timer: Int) -> [Action] {
        guard case let .running(.backingOff(failures, lastFailure, current)) = state, current == timer else { return [] }
        state = .running(.retrying(failures: failures, lastFailure: lastFailure))
        return openIfNeeded()
    }

    /// A lease came back. `broken` when the connection failed during use.
    public mutating func released(_ connection: ConnectionID, broken: Bool) -> [Action] {
        guard connections[connection] == .leased else { return [] }
        if broken || state == .shuttingDown {
            connections[connection] = nil
            var actions: [Action] = [.close(connection)]
            if broken {
                // A connection that broke usually means the server restarted: the idle ones are dead too.
                for stale in idleConnections {
                    connections[stale] = nil
                    actions.append(.close(stale))
                }
            }
            return actions + openIfNeeded()
        }
        return handOut(connection)
    }

    public mutating func shutdown() -> [Action] {
        state = .shuttingDown
        var actions: [Action] = []
        for connection in idleConnections {
            connections[connection] = nil
            actions.append(.close(connection))
        }
        if !waiters.isEmpty {
            actions.append(.fail(waiters, reason: "pool is shutting down"))
            waiters.removeAll()
            deadlines.removeAll()
        }
        return actions
    }

    private mutating func backOff(failures: Int, reason: String) -> [Action] {
        let timer = nextTimer
        nextTimer += 1
        state = .running(.backingOff(failures: failures, lastFailure: reason, timer: timer))
        return [.scheduleRetry(after: backoff(afterFailures: failures), timer: timer)]
    }

    private mutating func handOut(_ connection: ConnectionID) -> [Action] {
        if !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            deadlines[waiter] = nil
            connections[connection] = .leased
            return [.lease(connection, to: waiter)]
        }
        connections[connection] = .idle(since: handBacks)
        handBacks += 1
        return []
    }

    /// Opens connections for waiters that no connection under way will serve, up to the maximum: for all
    /// of them while the database is reachable, one per call while retrying after a back-off (a probe),
    /// none while backing off or shutting down.
    private mutating func openIfNeeded() -> [Action] {
        guard case let .running(reachability) = state else { return [] }
        let limit: Int
        switch reachability {
        case .reachable: limit = Int.max
        case .retrying: limit = 1
        case .backingOff: return []
        }
        var actions: [Action] = []
        while actions.count < limit, connectingCount < waiters.count, connections.count < configuration.maxConnections {
            let id = ConnectionID(raw: nextConnection)
            nextConnection += 1
            connections[id] = .connecting
            actions.append(.connect(id))
        }
        return actions
    }

    func backoff(afterFailures failures: Int) -> Duration {
        let exponent = min(max(failures - 1, 0), 20)
        let delay = configuration.minBackoff * (1 << exponent)
        return min(delay, configuration.maxBackoff)
    }
}
