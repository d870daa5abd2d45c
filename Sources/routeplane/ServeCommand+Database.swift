import ArgumentParser
import Foundation
import HTTPAPI

/// `routeplane serve`'s limits on what one API request may ask of PostgreSQL (see `DatabaseLimits` for what each
/// bounds and why the defaults). Each option falls back to an environment variable, then to the default.
struct DatabaseLimitOptions: ParsableArguments {
    @Option(name: .customLong("statement-timeout-ms"),
            help: "statement_timeout of an API request's reads, in ms (default: $ROUTEPLANE_STATEMENT_TIMEOUT_MS or 5000).")
    var statementTimeout: Int?

    @Option(name: .customLong("write-statement-timeout-ms"),
            help: "statement_timeout of an API request's appends, in ms (default: $ROUTEPLANE_WRITE_STATEMENT_TIMEOUT_MS or 15000).")
    var writeStatementTimeout: Int?

    @Option(name: .customLong("pool-wait-ms"),
            help: "How long a request waits for a free database connection before 503 + Retry-After, in ms (default: $ROUTEPLANE_POOL_WAIT_MS or 2000).")
    var poolWait: Int?

    @Option(name: .customLong("search-timeout-ms"),
            help: "statement_timeout of an audit search, in ms (default: $ROUTEPLANE_SEARCH_TIMEOUT_MS or 3000).")
    var searchTimeout: Int?

    @Option(name: .customLong("searches-per-tenant"),
            help: "Audit searches one tenant may run at once; more get 429 (default: $ROUTEPLANE_SEARCHES_PER_TENANT or 1).")
    var searchesPerTenant: Int?

    @Option(name: .customLong("searches"),
            help: "Audit searches this controller runs at once, all tenants together (default: $ROUTEPLANE_SEARCHES or half the cores, at least 1, at most a quarter of --max-connections).")
    var searches: Int?

    /// The limits, for a pool of `maxConnections`.
    func limits(maxConnections: Int) throws -> DatabaseLimits {
        var limits = DatabaseLimits()
        if let ms = try value(statementTimeout, "ROUTEPLANE_STATEMENT_TIMEOUT_MS", "--statement-timeout-ms") { limits.statementTimeout = .milliseconds(ms) }
        if let ms = try value(writeStatementTimeout, "ROUTEPLANE_WRITE_STATEMENT_TIMEOUT_MS", "--write-statement-timeout-ms") {
            limits.writeStatementTimeout = .milliseconds(ms)
        }
        if let ms = try value(poolWait, "ROUTEPLANE_POOL_WAIT_MS", "--pool-wait-ms") { limits.leaseDeadline = .milliseconds(ms) }
        if let ms = try value(searchTimeout, "ROUTEPLANE_SEARCH_TIMEOUT_MS", "--search-timeout-ms") { limits.searchTimeout = .milliseconds(ms) }
        if let n = try value(searchesPerTenant, "ROUTEPLANE_SEARCHES_PER_TENANT", "--searches-per-tenant") { limits.searchesPerTenant = n }
        limits.searches = try value(searches, "ROUTEPLANE_SEARCHES", "--searches") ?? max(1, min(limits.searches, maxConnections / 4))
        return limits
    }

    /// The flag's value, else the environment's, else nil; at least 1 either way.
    private func value(_ flag: Int?, _ variable: String, _ name: String) throws -> Int? {
        var result = flag
        if result == nil, let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty {
            guard let n = Int(text) else { throw ValidationError("\(variable) must be an integer, got \(text)") }
            result = n
        }
        if let result, result < 1 { throw ValidationError("\(name) must be at least 1, got \(result)") }
        return result
    }
}
