import Foundation
import Hummingbird
import PostgresClient
import Synchronization

/// How much of the database one API request may use: its statements' time limits, how long it may wait for a pool
/// connection, and the audit search's own limits. Defaults suit an internet-facing controller; `routeplane serve`'s
/// `--statement-timeout-ms` and friends (ServeCommand+Database.swift) change them.
public struct DatabaseLimits: Sendable, Equatable {
    /// `statement_timeout` of a request's reads (token lookups, tenant state, audit pages).
    public var statementTimeout: Duration = .seconds(5)
    /// `statement_timeout` of a request's appends: longer, as an append waits its turn behind the tenant's other writers;
    /// a cancelled append rolls back whole.
    public var writeStatementTimeout: Duration = .seconds(15)
    /// How long a request may wait for a free pool connection before `503` + `Retry-After`.
    public var leaseDeadline: Duration = .seconds(2)
    /// `statement_timeout` of an audit search's query (below `statementTimeout`: a search is the one costly read).
    public var searchTimeout: Duration = .seconds(3)
    /// Audit searches that may run at once for one tenant; more answer `429` + `Retry-After`. One: a search's cost is
    /// mostly CPU (PostgreSQL's scan, then decoding and encoding the page here), and one tenant should never hold more
    /// than one core with it.
    public var searchesPerTenant = 1
    /// Audit searches that may run at once in this process, all tenants together: half the cores (at least one), so the
    /// other half always serves everything else; far below the pool's size, so searches never hold all its connections.
    public var searches = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)

    public init() {}

    func budget(label: String) -> StatementBudget {
        StatementBudget(read: statementTimeout, write: writeStatementTimeout, leaseDeadline: leaseDeadline, label: label)
    }
}

/// Gives every request its `StatementBudget` (a task-local the connection pool reads): statements run for an API
/// request are cut at the request's limits; the projection runner and the relay, which run outside requests, are not.
struct DatabaseBudgetMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let limits: DatabaseLimits

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await limits.budget(label: "\(request.method) \(request.uri.path) request_id=\(context.requestID)").run {
            try await next(request, context)
        }
    }
}

/// Which audit searches may start: at most `perTenant` at once for one tenant and `total` in the process. A pure value
/// (no clock, no I/O); `AuditSearchGate` holds it under a lock.
struct SearchAdmission: Sendable, Equatable {
    let perTenant: Int
    let total: Int
    private(set) var running: [String: Int] = [:]
    private(set) var runningTotal = 0

    init(perTenant: Int, total: Int) {
        self.perTenant = max(1, perTenant)
        self.total = max(1, total)
    }

    enum Refusal: Equatable { case tenantBusy, processBusy }

    /// Starts a search for `tenant`, or says why not.
    mutating func admit(_ tenant: String) -> Refusal? {
        if running[tenant, default: 0] >= perTenant { return .tenantBusy }
        if runningTotal >= total { return .processBusy }
        running[tenant, default: 0] += 1
        runningTotal += 1
        return nil
    }

    /// A search of `tenant` ended.
    mutating func finished(_ tenant: String) {
        guard let n = running[tenant], n > 0 else { return }
        running[tenant] = n == 1 ? nil : n - 1
        runningTotal -= 1
    }
}

/// `SearchAdmission` shared by the requests of one server.
final class AuditSearchGate: Sendable {
    private let admission: Mutex<SearchAdmission>

    init(perTenant: Int, total: Int) {
        admission = Mutex(SearchAdmission(perTenant: perTenant, total: total))
    }

    /// Runs `body` as one of the tenant's searches, or refuses with `429` + `Retry-After` naming `search`.
    func run<T>(tenant: String, _ body: () async throws -> T) async throws -> T {
        let refusal = admission.withLock { $0.admit(tenant) }
        if let refusal {
            let limit = admission.withLock { refusal == .tenantBusy ? $0.perTenant : $0.total }
            let scope = refusal == .tenantBusy ? "for this account" : "on this controller"
            throw APIError(.tooManyRequests, "at most \(limit) audit searches run at once \(scope); retry shortly", field: "search", retryAfter: 1)
        }
        defer { admission.withLock { $0.finished(tenant) } }
        return try await body()
    }
}
