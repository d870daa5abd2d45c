import PostgresClient
import EventStore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// What operators and tools read without a tenant: `/healthz`, `/metrics` (Prometheus), `/api/openapi.json`.
/// Anyone may call the first two, so neither touches the database more than its `RefreshedReading` allows, and neither
/// says more than ok/degraded (the reasons go to the log, with the request id).
struct OperationsController: Sendable {
    let metrics: ControllerMetrics
    let logger: Logger
    /// `SELECT 1`: nil when the database answers, else why not.
    let database: RefreshedReading<String?>
    /// Outbox depth and projection lag (nil: the database did not answer).
    let gauges: RefreshedReading<ControllerMetrics.DatabaseGauges?>
    /// Extra readiness checks for `/healthz` (e.g. NATS), by name: nil when fine, else the problem; each read as often
    /// as the database.
    let healthChecks: [String: RefreshedReading<String?>]
    /// Above this many events not yet projected (all tenants), `/healthz` says the projections are degraded.
    static let projectionLagDegraded = 10_000.0

    init(store: EventStore, metrics: ControllerMetrics, settings: HTTPServerSettings, logger: Logger,
         healthChecks: [String: @Sendable () async -> String?]) {
        self.metrics = metrics
        self.logger = logger
        database = RefreshedReading(interval: settings.healthRefresh) {
            do {
                _ = try await store.pool.withSession { s in try s.query("SELECT 1") }
                return nil
            } catch {
                return "\(error)"
            }
        }
        gauges = RefreshedReading(interval: settings.metricsRefresh) { await ControllerMetrics.readDatabaseGauges(store: store) }
        self.healthChecks = healthChecks.mapValues { RefreshedReading(interval: settings.healthRefresh, read: $0) }
    }

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get("healthz", use: health)
            .get("metrics", use: renderMetrics)
            .get("api/openapi.json", use: openAPI)
    }

    /// `{"status": "ok"|"degraded"|"unavailable", "checks": {"database": "ok"|"degraded", "nats": …, "projections": …}}`:
    /// 503 only when the database does not answer (nothing can be served); NATS or projections behind is 200
    /// "degraded" (the API still serves; agents read their views over HTTP).
    @Sendable func health(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        var checks: [String: String] = [:]
        var problems: [String: String] = [:]
        if let problem = await database.value().0 { problems["database"] = problem }
        for (name, check) in healthChecks {
            if let problem = await check.value().0 { problems[name] = problem }
        }
        if problems["database"] != nil {
            problems["projections"] = "not readable without the database"
        } else if let lag = await gauges.value().0?.projectionLag, lag > Self.projectionLagDegraded {
            problems["projections"] = "\(Int(lag)) events not yet projected"
        }
        for name in ["database", "projections"] + healthChecks.keys { checks[name] = problems[name] == nil ? "ok" : "degraded" }
        let databaseDown = problems["database"] != nil
        if !problems.isEmpty {
            logger.warning("health check: degraded", metadata: ["request_id": "\(context.requestID)",
                                                                 "problems": "\(problems.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" })"])
        }
        struct Health: Encodable { var status: String; var checks: [String: String] }
        let status = databaseDown ? "unavailable" : problems.isEmpty ? "ok" : "degraded"
        var response = jsonResponse(Health(status: status, checks: checks), status: databaseDown ? .serviceUnavailable : .ok)
        if databaseDown { response.headers[.retryAfter] = "2" }
        return response
    }

    /// Prometheus text; the database gauges are the last reading (at most `metricsRefresh` old, see its age gauge).
    @Sendable func renderMetrics(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (reading, age) = await gauges.value()
        let text = metrics.render(database: reading, readingAge: age)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: .init(string: text)))
    }

    @Sendable func openAPI(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        rawJSONResponse(OpenAPIDocument.bytes)
    }
}
