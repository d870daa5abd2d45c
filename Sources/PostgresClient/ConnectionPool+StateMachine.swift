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
        /// Call `retryTimerFired` after this delay.
        case scheduleRetry(after: Duration)
    }

    enum ConnectionState: Equatable, Sendable { case connecting, idle, leased }

    public let configuration: Configuration
    private(set) var connections: [ConnectionID: ConnectionState] = [:]
    private var idle: [ConnectionID] = []          // LIFO: the most recently used connection is warmest
    private var waiters: [WaiterID] = []           // FIFO
    private var nextConnection = 0
    /// Consecutive failed connection attempts; 0 when the database is reachable.
    private(set) var consecutiveFailures = 0
    private var backingOff = false
    private var lastFailure = ""
    private var shuttingDown = false

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    public var waiterCount: Int { waiters.count }
    public var openConnectionCount: Int { connections.values.filter { $0 != .connecting }.count }
    public var idleConnectionCount: Int { idle.count }

    private var connectingCount: Int { connections.values.filter { $0 == .connecting }.count }

    public mutating func leaseRequested(_ waiter: WaiterID) -> [Action] {
        if shuttingDown { return [.fail([waiter], reason: "pool is shutting down")] }
        if let connection = idle.popLast() {
            connections[connection] = .leased
            return [.lease(connection, to: waiter)]
        }
        // The database is known to be down and nothing is open or opening: fail fast rather than queue
        // callers behind a retry timer (an API answers 503 at once).
        if backingOff && connections.isEmpty {
            return [.fail([waiter], reason: lastFailure)]
        }
        waiters.append(waiter)
        return openIfNeeded()
    }

    /// A lease served at once from the idle connections, without queueing a waiter: the connection now
    /// leased, or nil (nothing idle, or shutting down), in which case the caller asks with `leaseRequested`.
    /// Never overtakes a waiter: connections are idle only while nobody waits.
    public mutating func leaseIdle() -> ConnectionID? {
        guard !shuttingDown, let connection = idle.popLast() else { return nil }
        connections[connection] = .leased
        return connection
    }

    public mutating func waiterCancelled(_ waiter: WaiterID) -> [Action] {
        guard let index = waiters.firstIndex(of: waiter) else { return [] }
        waiters.remove(at: index)
        return [.fail([waiter], reason: "cancelled while waiting for a connection")]
    }

    public mutating func connected(_ connection: ConnectionID) -> [Action] {
        guard connections[connection] == .connecting else { return [] }
        consecutiveFailures = 0
        backingOff = false
        if shuttingDown {
            connections[connection] = nil
            return [.close(connection)]
        }
        return handOut(connection)
    }

    public mutating func connectFailed(_ connection: ConnectionID, reason: String) -> [Action] {
        guard connections[connection] == .connecting else { return [] }
        connections[connection] = nil
        consecutiveFailures += 1
        lastFailure = reason
        var actions: [Action] = []
        if !backingOff && !shuttingDown {
            backingOff = true
            actions.append(.scheduleRetry(after: backoff(afterFailures: consecutiveFailures)))
        }
        // Nothing open and nothing opening: nobody could serve the waiters soon, fail them.
        if connections.isEmpty && !waiters.isEmpty {
            actions.append(.fail(waiters, reason: reason))
            waiters.removeAll()
        }
        return actions
    }

    public mutating func retryTimerFired() -> [Action] {
        backingOff = false
        return shuttingDown ? [] : openIfNeeded()
    }

    /// A lease came back. `broken` when the connection failed during use.
    public mutating func released(_ connection: ConnectionID, broken: Bool) -> [Action] {
        guard connections[connection] == .leased else { return [] }
        if broken || shuttingDown {
            connections[connection] = nil
            var actions: [Action] = [.close(connection)]
            if broken {
                // A connection that broke usually means the server restarted: the idle ones are dead too.
                for stale in idle {
                    connections[stale] = nil
                    actions.append(.close(stale))
                }
                idle.removeAll()
            }
            return actions + openIfNeeded()
        }
        return handOut(connection)
    }

    public mutating func shutdown() -> [Action] {
        shuttingDown = true
        var actions: [Action] = idle.map { .close($0) }
        for connection in idle { connections[connection] = nil }
        idle.removeAll()
        if !waiters.isEmpty {
            actions.append(.fail(waiters, reason: "pool is shutting down"))
            waiters.removeAll()
        }
        return actions
    }

    private mutating func handOut(_ connection: ConnectionID) -> [Action] {
        if !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            connections[connection] = .leased
            return [.lease(connection, to: waiter)]
        }
        connections[connection] = .idle
        idle.append(connection)
        return []
    }

    private mutating func openIfNeeded() -> [Action] {
        guard !backingOff, !shuttingDown, !waiters.isEmpty,
              connectingCount < waiters.count, connections.count < configuration.maxConnections
        else { return [] }
        let id = ConnectionID(raw: nextConnection)
        nextConnection += 1
        connections[id] = .connecting
        return [.connect(id)]
    }

    func backoff(afterFailures failures: Int) -> Duration {
        let exponent = min(max(failures - 1, 0), 20)
        let delay = configuration.minBackoff * (1 << exponent)
        return min(delay, configuration.maxBackoff)
    }
}
