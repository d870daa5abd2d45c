import PostgresClient
import EventStore
import HTTPTypes
import Hummingbird
import NIOCore

/// What operators and tools read without a tenant: `/healthz`, `/metrics` (Prometheus), `/api/openapi.json`.
struct OperationsController: Sendable {
    let store: EventStore
    let metrics: ControllerMetrics
    /// Extra readiness checks for `/healthz` (e.g. NATS), by name: nil when fine, else the problem.
    let healthChecks: [String: @Sendable () async -> String?]

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get("healthz", use: health)
            .get("metrics", use: renderMetrics)
            .get("api/openapi.json", use: openAPI)
    }

    @Sendable func health(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        var checks: [String: String] = [:]
        var healthy = true
        do {
            _ = try await store.pool.withSession { s in try s.query("SELECT 1") }
            checks["postgresql"] = "ok"
        } catch {
            checks["postgresql"] = "\(error)"
            healthy = false
        }
        for (name, check) in healthChecks {
            if let problem = await check() {
                checks[name] = problem
                healthy = false
            } else {
                checks[name] = "ok"
            }
        }
        struct Health: Encodable { var status: String; var checks: [String: String] }
        var response = jsonResponse(Health(status: healthy ? "ok" : "unavailable", checks: checks), status: healthy ? .ok : .serviceUnavailable)
        if !healthy { response.headers[.retryAfter] = "2" }
        return response
    }

    @Sendable func renderMetrics(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let text = await metrics.render(store: store)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: .init(string: text)))
    }

    @Sendable func openAPI(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        rawJSONResponse(OpenAPIDocument.bytes)
    }
}
