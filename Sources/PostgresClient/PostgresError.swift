/// What can go wrong talking to PostgreSQL through this client. Every case says enough to act on at 3 a.m.
///
/// `conflict` belongs to the event store built on this client (its optimistic concurrency check); it is a case
/// here so that every caller maps database errors from one type (the event store calls it `PostgresError`).
public enum PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The tenant moved on since it was read: optimistic concurrency check failed.
    case conflict(tenant: String, expected: Int64, actual: Int64)
    /// No connection could be opened (database down, refused, authentication, …).
    case connectionUnavailable(reason: String)
    /// The connection broke during an operation; whether a write committed is unknown (appends are idempotent by event id, so retry).
    case connectionLost(reason: String)
    /// PostgreSQL answered with an error.
    case server(sqlState: String, message: String, detail: String?)
    /// PostgreSQL answered something this code does not understand.
    case invalidResponse(String)
    /// The caller asked for something impossible (empty append, bad argument).
    case invalidArgument(String)
    /// The pool is shutting down.
    case shutdown
    /// Every pool connection stayed busy for the lease deadline (`StatementBudget.leaseDeadline`); retry shortly.
    case poolBusy(waited: Duration)

    public var description: String {
        switch self {
        case let .conflict(tenant, expected, actual):
            "conflict: tenant \(tenant) is at version \(actual), expected \(expected)"
        case let .connectionUnavailable(reason): "database unavailable: \(reason)"
        case let .connectionLost(reason): "database connection lost: \(reason)"
        case let .server(sqlState, message, detail):
            "database error \(sqlState): \(message)" + (detail.map { " (\($0))" } ?? "")
        case let .invalidResponse(what): "unexpected database response: \(what)"
        case let .invalidArgument(what): "invalid argument: \(what)"
        case .shutdown: "event store is shutting down"
        case let .poolBusy(waited): "no database connection became free within \(waited)"
        }
    }

    /// True when the error means the database could not be reached; an API answers 503 with Retry-After.
    public var isUnavailable: Bool {
        switch self {
        case .connectionUnavailable, .connectionLost, .shutdown, .poolBusy: true
        default: false
        }
    }
}
