import ControlPlane
import HTTPTypes
import Hummingbird

/// `/api/events/audit`: the tenant's audit log, from its events.
struct AuditController: Sendable {
    let access: ResourceAccess

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(use: list)
    }

    /// Newest first (or `order=asc`), keyset pages (see `AuditQuery`); a full page links the next one (`Link`,
    /// `X-Next-Cursor`).
    @Sendable func list(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let principal = try await access.authenticate(request)
        let query = try AuditQuery { request.query($0) }
        let entries = try await access.controlPlane.audit(tenant: principal.tenant, query)
        var response = jsonResponse(entries)
        if entries.count == query.limit, let last = entries.last {
            response.headers[.nextCursor] = last.id
            var parameters = request.uri.queryParameters.filter { $0.key != "cursor" }.map { "\($0.key)=\($0.value)" }
            parameters.append("cursor=\(last.id)")
            response.headers[HTTPField.Name("Link")!] = "</api/events/audit?\(parameters.joined(separator: "&"))>; rel=\"next\""
        }
        return response
    }
}
