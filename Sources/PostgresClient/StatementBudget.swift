/// Time limits of the statements run on behalf of one piece of work (an API request), carried by the task (a task-local):
/// the pool sets PostgreSQL's `statement_timeout` on the leased connection to the budget's value before the work's
/// statements run, and back to none for work without a budget (the projection runner, the outbox relay, migrations).
///
/// Why a task-local and not the pool's connection settings: one pool serves the API and the background work, and a
/// timeout meant for an API read must not cut a projection catch-up or a rebuild. Why not `SET LOCAL` in each statement:
/// most reads are single prepared statements outside a transaction. The setting is changed only when the leased
/// connection's current value differs (one `set_config` round trip), so a connection that keeps serving requests pays
/// nothing more. Writes (the `append_events` function) run under `writing`, with the budget's longer write limit:
/// an append is one transaction, so a cancelled one rolls back whole and a retry with the same event ids is safe.
public struct StatementBudget: Sendable, Equatable {
    /// Limit of a read statement (and of any statement not marked as a write).
    public var read: Duration
    /// Limit of an append (`StatementBudget.writing`).
    public var write: Duration
    /// How long the work may wait for a free pool connection before `PostgresError.poolBusy`.
    public var leaseDeadline: Duration?
    /// What the work is, for the log line of a cancelled statement (e.g. `GET /api/events/audit request_id=…`).
    public var label: String

    public init(read: Duration, write: Duration, leaseDeadline: Duration? = nil, label: String = "") {
        self.read = read
        self.write = write
        self.leaseDeadline = leaseDeadline
        self.label = label
    }

    /// The budget of the current task, if any.
    @TaskLocal public static var current: StatementBudget?
    @TaskLocal static var isWriting = false

    /// Runs `body` with this budget.
    public func run<T>(_ body: () async throws -> T) async rethrows -> T {
        try await Self.$current.withValue(self, operation: body)
    }

    /// Runs `body`'s statements under the write limit of the current budget (an append).
    public static func writing<T>(_ body: () async throws -> T) async rethrows -> T {
        try await $isWriting.withValue(true, operation: body)
    }

    /// The `statement_timeout` (milliseconds, 0 = none) the current task's statements get.
    static var currentMilliseconds: Int {
        guard let budget = current else { return 0 }
        return max(1, milliseconds(isWriting ? budget.write : budget.read))
    }

    static func milliseconds(_ d: Duration) -> Int {
        Int(d.components.seconds) * 1_000 + Int(d.components.attoseconds / 1_000_000_000_000_000)
    }
}

extension PostgresError {
    /// PostgreSQL cancelled the statement (SQLSTATE 57014: `statement_timeout`, or a cancel request).
    public var isStatementTimeout: Bool {
        if case let .server(sqlState, _, _) = self { return sqlState == "57014" }
        return false
    }
}
