import PostgresClient
import EventStore
import Metrics
import Prometheus
import Synchronization

/// Prometheus metrics of one controller process (swift-metrics API, swift-prometheus registry).
/// Its own registry, not the global `MetricsSystem`, so several controllers can live in one test process.
public final class ControllerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Gauges other parts of the process report at scrape time (e.g. the outbox relay's publish latency).
    private let providers = Mutex<[@Sendable () -> [(name: String, value: Double)]]>([])

    /// Adds gauges read at every scrape.
    public func addGauges(_ provider: @escaping @Sendable () -> [(name: String, value: Double)]) {
        providers.withLock { $0.append(provider) }
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        ]
        self.factory = factory
    }

    /// One finished HTTP request, by route pattern (never the raw path: ids would explode the label set).
    func request(method: String, route: String, status: Int, duration: Duration) {
        let dimensions = [("method", method), ("route", route), ("status", String(status))]
        Counter(label: "routeplane_http_requests_total", dimensions: dimensions, factory: factory).increment()
        Timer(label: "routeplane_http_request_duration_seconds", dimensions: [("method", method), ("route", route)], factory: factory)
            .recordNanoseconds(duration.nanoseconds)
    }

    /// One event-store append made by a request.
    func append(duration: Duration) {
        Timer(label: "routeplane_append_duration_seconds", factory: factory).recordNanoseconds(duration.nanoseconds)
    }

    /// How a presented credential was checked: found or unknown by a database lookup, or unknown from the negative cache.
    enum CredentialLookup: String { case found, unknown, cachedUnknown = "cached_unknown" }

    private let lookups = Mutex<[CredentialLookup: Int]>([:])

    func credentialLookup(_ result: CredentialLookup) {
        lookups.withLock { $0[result, default: 0] += 1 }
        Counter(label: "routeplane_credential_lookups_total", dimensions: [("result", result.rawValue)], factory: factory).increment()
    }

    /// Database lookups of presented credentials so far (found or not), and the unknown ones answered from the cache.
    public var credentialLookups: (database: Int, cached: Int) {
        lookups.withLock { (($0[.found] ?? 0) + ($0[.unknown] ?? 0), $0[.cachedUnknown] ?? 0) }
    }

    /// A connection closed because its client did not send a request's head or body in time.
    func requestTimedOut(phase: String) {
        Counter(label: "routeplane_http_request_timeouts_total", dimensions: [("phase", phase)], factory: factory).increment()
    }

    /// The gauges read from PostgreSQL (outbox depth, projection lag), nil when the database did not answer.
    struct DatabaseGauges: Sendable, Equatable {
        var outboxDepth: Double
        var projectionLag: Double
        var oldestPending: Double
    }

    /// One reading of the database gauges (an aggregate query: `/metrics` reads it through a `RefreshedReading`).
    static func readDatabaseGauges(store: EventStore) async -> DatabaseGauges? {
        do {
            let rows = try await store.pool.withSession { s in
                try s.query("""
                    SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS outbox_depth,
                           (SELECT coalesce(sum(h.seq - coalesce(c.seq, 0)), 0)
                              FROM tenant_heads h LEFT JOIN projection_checkpoints c USING (tenant_id)) AS projection_lag,
                           (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox WHERE sent_at IS NULL) AS oldest_pending
                    """)
            }
            guard let row = rows.first else { return nil }
            return DatabaseGauges(outboxDepth: row.double("outbox_depth") ?? 0, projectionLag: row.double("projection_lag") ?? 0,
                                  oldestPending: row.double("oldest_pending") ?? 0)
        } catch {
            return nil
        }
    }

    /// Renders everything, with the database gauges of the last reading (nil: the database did not answer).
    func render(database: DatabaseGauges?, readingAge: Duration) -> String {
        if let database {
            Gauge(label: "routeplane_outbox_depth", factory: factory).record(database.outboxDepth)
            Gauge(label: "routeplane_projection_lag_events", factory: factory).record(database.projectionLag)
            Gauge(label: "routeplane_outbox_oldest_pending_seconds", factory: factory).record(database.oldestPending)
        }
        Gauge(label: "routeplane_database_up", factory: factory).record(database == nil ? 0 : 1)
        Gauge(label: "routeplane_database_gauges_age_seconds", factory: factory).record(Double(readingAge.nanoseconds) / 1e9)
        for provider in providers.withLock({ $0 }) {
            for (name, value) in provider() { Gauge(label: name, factory: factory).record(value) }
        }
        return registry.emitToString()
    }
}

/// A dependency's state read at most once per `interval` whoever asks: within the interval callers get the last reading;
/// after it, one caller reads again and those arriving meanwhile share its result. So `/metrics` and `/healthz` cost the
/// database a bounded number of queries whatever their request rate.
actor RefreshedReading<Value: Sendable> {
    let interval: Duration
    private let read: @Sendable () async -> Value
    private var last: (value: Value, at: ContinuousClock.Instant)?
    private var inFlight: Task<Value, Never>?
    /// Readings taken so far.
    private(set) var readings = 0

    init(interval: Duration, read: @escaping @Sendable () async -> Value) {
        self.interval = interval
        self.read = read
    }

    /// The current reading and its age.
    func value() async -> (Value, age: Duration) {
        let now = ContinuousClock.now
        if let last, now - last.at < interval { return (last.value, now - last.at) }
        if let inFlight { return (await inFlight.value, .zero) }
        // Not cancelled with the asking request: the others waiting on it get the reading.
        let task = Task { await read() }
        inFlight = task
        let value = await task.value
        last = (value, .now)
        inFlight = nil
        readings += 1
        return (value, .zero)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, a) = components
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}
