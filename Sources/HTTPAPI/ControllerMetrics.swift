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

    /// Refreshes the gauges read from PostgreSQL (outbox depth, projection lag), then renders everything.
    public func render(store: EventStore) async -> String {
        do {
            let rows = try await store.pool.withSession { s in
                try s.query("""
                    SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS outbox_depth,
                           (SELECT coalesce(sum(h.seq - coalesce(c.seq, 0)), 0)
                              FROM tenant_heads h LEFT JOIN projection_checkpoints c USING (tenant_id)) AS projection_lag,
                           (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox WHERE sent_at IS NULL) AS oldest_pending
                    """)
            }
            if let row = rows.first {
                Gauge(label: "routeplane_outbox_depth", factory: factory).record(row.double("outbox_depth") ?? 0)
                Gauge(label: "routeplane_projection_lag_events", factory: factory).record(row.double("projection_lag") ?? 0)
                Gauge(label: "routeplane_outbox_oldest_pending_seconds", factory: factory).record(row.double("oldest_pending") ?? 0)
            }
            Gauge(label: "routeplane_database_up", factory: factory).record(1)
        } catch {
            Gauge(label: "routeplane_database_up", factory: factory).record(0)
        }
        for provider in providers.withLock({ $0 }) {
            for (name, value) in provider() { Gauge(label: name, factory: factory).record(value) }
        }
        return registry.emitToString()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, a) = components
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}
