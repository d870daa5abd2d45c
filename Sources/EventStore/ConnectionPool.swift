import Logging

/// A bounded pool of libpq connections: the I/O shell around `PoolStateMachine`.
/// It only performs the machine's actions (open, hand out, close, fail, schedule a retry).
public actor ConnectionPool {
    private let url: String
    private var machine: PoolStateMachine
    private var open: [ConnectionID: PostgresConnection] = [:]
    private var waiting: [WaiterID: CheckedContinuation<(ConnectionID, PostgresConnection), any Error>] = [:]
    private var nextWaiter = 0
    private let logger: Logger
    private var reportedDown = false

    public init(url: String, configuration: PoolStateMachine.Configuration = .init(), logger: Logger = Logger(label: "routeplane.pg.pool")) {
        self.url = url
        self.machine = PoolStateMachine(configuration: configuration)
        self.logger = logger
    }

    /// Leases a connection for the duration of `body`, which runs on the connection's own thread.
    /// A connection that breaks during `body` is discarded and replaced.
    public nonisolated func withSession<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        let (id, connection) = try await lease()
        do {
            let result = try await connection.withSession(body)
            await release(id, broken: false)
            return result
        } catch let error as EventStoreError {
            if case .connectionLost = error { await release(id, broken: true) } else { await release(id, broken: false) }
            throw error
        } catch {
            await release(id, broken: false)
            throw error
        }
    }

    /// Opens a connection outside the pool (for LISTEN, which holds a connection for a long time).
    public func dedicatedConnection(label: String) async throws -> PostgresConnection {
        try await PostgresConnection.connect(url: url, label: label)
    }

    public func shutdown() {
        perform(machine.shutdown())
    }

    public var stats: (open: Int, idle: Int, waiting: Int) {
        (machine.openConnectionCount, machine.idleConnectionCount, machine.waiterCount)
    }

    private func lease() async throws -> (ConnectionID, PostgresConnection) {
        let waiter = WaiterID(raw: nextWaiter)
        nextWaiter += 1
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiting[waiter] = continuation
                perform(machine.leaseRequested(waiter))
            }
        } onCancel: {
            Task { await self.cancel(waiter) }
        }
    }

    private func cancel(_ waiter: WaiterID) {
        perform(machine.waiterCancelled(waiter))
    }

    private func release(_ id: ConnectionID, broken: Bool) {
        if broken { logger.warning("discarding broken connection", metadata: ["connection": "\(id)"]) }
        perform(machine.released(id, broken: broken))
    }

    private func perform(_ actions: [PoolStateMachine.Action]) {
        for action in actions {
            switch action {
            case let .connect(id):
                Task { await self.openConnection(id) }
            case let .lease(id, waiter):
                guard let connection = open[id] else {
                    preconditionFailure("state machine leased \(id), which the pool does not hold")
                }
                waiting.removeValue(forKey: waiter)?.resume(returning: (id, connection))
            case let .close(id):
                open.removeValue(forKey: id)?.close()
            case let .fail(waiters, reason):
                for waiter in waiters {
                    waiting.removeValue(forKey: waiter)?.resume(throwing: EventStoreError.connectionUnavailable(reason: reason))
                }
            case let .scheduleRetry(delay):
                Task {
                    try? await Task.sleep(for: delay)
                    await self.retryTimerFired()
                }
            }
        }
    }

    private func retryTimerFired() {
        perform(machine.retryTimerFired())
    }

    private func openConnection(_ id: ConnectionID) async {
        do {
            let connection = try await PostgresConnection.connect(url: url, label: id.description)
            open[id] = connection
            if reportedDown {
                logger.notice("database reachable again")
                reportedDown = false
            }
            perform(machine.connected(id))
        } catch {
            if !reportedDown {
                logger.error("cannot connect to the database; retrying with back-off", metadata: ["error": "\(error)"])
                reportedDown = true
            }
            perform(machine.connectFailed(id, reason: "\(error)"))
        }
    }
}
