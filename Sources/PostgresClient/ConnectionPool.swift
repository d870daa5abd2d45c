import Logging
import Synchronization

/// A bounded pool of libpq connections: the I/O shell around `PoolStateMachine`.
/// It only performs the machine's actions (open, hand out, close, fail, schedule a retry).
/// State sits behind a `Mutex` rather than in an actor: leasing an idle connection is then a plain
/// function call with no hop to another thread, which matters at thousands of statements per second.
public final class ConnectionPool: Sendable {
    private struct State: ~Copyable {
        var machine: PoolStateMachine
        var open: [ConnectionID: PostgresConnection] = [:]
        var waiting: [WaiterID: CheckedContinuation<(ConnectionID, PostgresConnection), any Error>] = [:]
        var nextWaiter = 0
        /// Each open connection's `statement_timeout` in milliseconds as last set (absent: 0, the server's default).
        var statementTimeouts: [ConnectionID: Int] = [:]
    }

    /// Side effects decided under the lock and carried out after it is released.
    private enum Effect {
        case resume(CheckedContinuation<(ConnectionID, PostgresConnection), any Error>, Result<(ConnectionID, PostgresConnection), any Error>)
        case connect(ConnectionID)
        case close(PostgresConnection)
        case retry(after: Duration, timer: Int)
        case log(PoolStateMachine.LogEvent)
        case leaseDeadline(WaiterID, after: Duration)
    }

    private let url: String
    private let state: Mutex<State>
    private let logger: Logger

    public init(url: String, configuration: PoolStateMachine.Configuration = .init(), logger: Logger = Logger(label: "routeplane.pg.pool")) {
        self.url = url
        self.state = Mutex(State(machine: PoolStateMachine(configuration: configuration)))
        self.logger = logger
    }

    /// Leases a connection for the duration of `body`, which runs on the connection's own thread.
    /// A connection that breaks during `body` is discarded and replaced.
    public func withSession<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        let (id, connection) = try await lease()
        let timeout = statementTimeoutChange(for: id)
        do {
            let result = try await connection.withSession { session in
                if let timeout { _ = try session.value(prepared: Self.setStatementTimeoutSQL, [String(timeout)]) }
                return try body(session)
            }
            if let timeout { recordStatementTimeout(timeout, for: id) }
            release(id, broken: false)
            return result
        } catch let error as PostgresError {
            if case .connectionLost = error { release(id, broken: true) } else { release(id, broken: false) }
            if error.isStatementTimeout { logCancelled(error) }
            throw error
        } catch {
            release(id, broken: false)
            throw error
        }
    }

    /// Runs one statement, prepared once per connection, on a pooled connection through libpq's non-blocking
    /// API: sent from the caller's thread, completed by the I/O loop's thread (see `PostgresIOLoop`), with
    /// no thread blocked in libpq. For single hot statements; transactions of several statements use `withSession`.
    public func query(prepared sql: String, _ parameters: [String?] = []) async throws -> PostgresRows {
        try await withConnection { try await $0.query(prepared: sql, parameters) }
    }

    /// The first column of the first row of a prepared statement (nil for no row or SQL NULL), as `query(prepared:)`.
    public func value(prepared sql: String, _ parameters: [String?]) async throws -> String? {
        try await withConnection { try await $0.value(prepared: sql, parameters) }
    }

    /// Leases a connection for `body`, which drives it with its async (non-blocking) statements.
    /// A connection that breaks during `body` is discarded and replaced.
    private func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let (id, connection) = try await lease()
        let timeout = statementTimeoutChange(for: id)
        do {
            if let timeout {
                _ = try await connection.value(prepared: Self.setStatementTimeoutSQL, [String(timeout)])
                recordStatementTimeout(timeout, for: id)
            }
            let result = try await body(connection)
            release(id, broken: false)
            return result
        } catch let error as PostgresError {
            if case .connectionLost = error { release(id, broken: true) } else { release(id, broken: false) }
            if error.isStatementTimeout { logCancelled(error) }
            throw error
        } catch {
            release(id, broken: false)
            throw error
        }
    }

    /// Opens a connection outside the pool (for LISTEN, which holds a connection for a long time).
    public func dedicatedConnection(label: String) async throws -> PostgresConnection {
        try await PostgresConnection.connect(url: url, label: label)
    }

    public func shutdown() {
        let effects = state.withLock { state in Self.effects(state.machine.shutdown(), &state) }
        perform(effects)
    }

    public var stats: (open: Int, idle: Int, waiting: Int) {
        state.withLock { ($0.machine.openConnectionCount, $0.machine.idleConnectionCount, $0.machine.waiterCount) }
    }

    static let setStatementTimeoutSQL = "SELECT set_config('statement_timeout', $1, false)"

    /// The `statement_timeout` to set on `id` before the current task's statements (its budget's, or none without a
    /// budget), or nil when the connection already has it.
    private func statementTimeoutChange(for id: ConnectionID) -> Int? {
        let wanted = StatementBudget.currentMilliseconds
        let current = state.withLock { $0.statementTimeouts[id] ?? 0 }
        return wanted == current ? nil : wanted
    }

    /// Written only after the setting took effect: a failed `set_config` leaves the old value recorded, so the next
    /// lease sets it again.
    private func recordStatementTimeout(_ milliseconds: Int, for id: ConnectionID) {
        state.withLock { $0.statementTimeouts[id] = milliseconds }
    }

    private func logCancelled(_ error: PostgresError) {
        let budget = StatementBudget.current
        logger.warning("statement cancelled by statement_timeout; the caller gets an error (an API answers 503 with Retry-After)", metadata: [
            "work": "\(budget?.label ?? "background")",
            "statement_timeout_ms": "\(StatementBudget.currentMilliseconds)",
            "error": "\(error)",
        ])
    }

    private func lease() async throws -> (ConnectionID, PostgresConnection) {
        // An idle connection: take it without a continuation (the common case under load).
        // Preferably one whose statement_timeout is already this task's: work alternating between reads and appends
        // (each with its own limit) would otherwise pay a `set_config` round trip on most leases.
        let wanted = StatementBudget.currentMilliseconds
        let idle: (ConnectionID, PostgresConnection)? = state.withLock { state in
            let timeouts = state.statementTimeouts
            guard let id = state.machine.leaseIdle(preferring: { (timeouts[$0] ?? 0) == wanted }) else { return nil }
            guard let connection = state.open[id] else {
                preconditionFailure("state machine leased \(id), which the pool does not hold")
            }
            return (id, connection)
        }
        if let idle { return idle }
        let waiter = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return WaiterID(raw: state.nextWaiter)
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let effects = state.withLock { state in
                    state.waiting[waiter] = continuation
                    return Self.effects(state.machine.leaseRequested(waiter, deadline: StatementBudget.current?.leaseDeadline), &state)
                }
                perform(effects)
            }
        } onCancel: {
            let effects = state.withLock { state in Self.effects(state.machine.waiterCancelled(waiter), &state) }
            perform(effects)
        }
    }

    private func release(_ id: ConnectionID, broken: Bool) {
        if broken { logger.warning("discarding broken connection", metadata: ["connection": "\(id)"]) }
        let effects = state.withLock { state in Self.effects(state.machine.released(id, broken: broken), &state) }
        perform(effects)
    }

    /// Turns the machine's actions into effects, updating the bookkeeping under the lock.
    private static func effects(_ actions: [PoolStateMachine.Action], _ state: inout State) -> [Effect] {
        var effects: [Effect] = []
        for action in actions {
            switch action {
            case let .connect(id):
                effects.append(.connect(id))
            case let .lease(id, waiter):
                guard let connection = state.open[id] else {
                    preconditionFailure("state machine leased \(id), which the pool does not hold")
                }
                if let continuation = state.waiting.removeValue(forKey: waiter) {
                    effects.append(.resume(continuation, .success((id, connection))))
                }
            case let .close(id):
                state.statementTimeouts[id] = nil
                if let connection = state.open.removeValue(forKey: id) { effects.append(.close(connection)) }
            case let .fail(waiters, reason):
                for waiter in waiters {
                    if let continuation = state.waiting.removeValue(forKey: waiter) {
                        effects.append(.resume(continuation, .failure(PostgresError.connectionUnavailable(reason: reason))))
                    }
                }
            case let .scheduleRetry(delay, timer):
                effects.append(.retry(after: delay, timer: timer))
            case let .log(event):
                effects.append(.log(event))
            case let .scheduleLeaseDeadline(waiter, delay):
                effects.append(.leaseDeadline(waiter, after: delay))
            case let .timeOut(waiter, waited):
                if let continuation = state.waiting.removeValue(forKey: waiter) {
                    effects.append(.resume(continuation, .failure(PostgresError.poolBusy(waited: waited))))
                }
            }
        }
        return effects
    }

    private func perform(_ effects: [Effect]) {
        for effect in effects {
            switch effect {
            case let .resume(continuation, result):
                continuation.resume(with: result)
            case let .connect(id):
                Task { await self.openConnection(id) }
            case let .close(connection):
                connection.close()
            case let .retry(delay, timer):
                Task {
                    try? await Task.sleep(for: delay)
                    let effects = self.state.withLock { state in Self.effects(state.machine.retryTimerFired(timer), &state) }
                    self.perform(effects)
                }
            case .log(.databaseDown(let reason)):
                logger.error("cannot connect to the database; retrying with back-off", metadata: ["error": "\(reason)"])
            case .log(.databaseUp):
                logger.notice("database reachable again")
            case let .leaseDeadline(waiter, delay):
                Task {
                    try? await Task.sleep(for: delay)
                    let effects = self.state.withLock { state in Self.effects(state.machine.leaseDeadlinePassed(waiter), &state) }
                    if !effects.isEmpty {
                        let open = self.stats.open
                        self.logger.warning("no database connection came free within the lease deadline; the request fails (an API answers 503 with Retry-After)",
                                            metadata: ["waited": "\(delay)", "open_connections": "\(open)",
                                                       "work": "\(StatementBudget.current?.label ?? "background")"])
                    }
                    self.perform(effects)
                }
            }
        }
    }

    private func openConnection(_ id: ConnectionID) async {
        do {
            let connection = try await PostgresConnection.connect(url: url, label: id.description)
            let effects = state.withLock { state in
                state.open[id] = connection
                return Self.effects(state.machine.connected(id), &state)
            }
            perform(effects)
        } catch {
            let effects = state.withLock { state in
                Self.effects(state.machine.connectFailed(id, reason: "\(error)"), &state)
            }
            perform(effects)
        }
    }
}
