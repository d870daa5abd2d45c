import ControlPlane
import HTTPTypes
import Hummingbird

/// `/api/events` and `/api/events/audit`: the tenant's audit log, from its events.
struct AuditController: Sendable {
    let access: ResourceAccess

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(use: listAll)
            .get("audit", use: list)
    }

    /// NetBird's `GET /api/events`: a bare array of the newest 10 000 entries, newest first, without parameters (NetBird's
    /// handler `events_handler.go` getAllEvents takes none; unknown ones are ignored here as there).
    @Sendable func listAll(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let principal = try context.caller()
        let query = AuditQuery.netBirdEvents
        let page = try await access.controlPlane.audit(tenant: principal.tenant, query)
        return jsonResponse(Array(page.entries.prefix(query.limit)))
    }

    /// Routeplane's filtered log: newest first (or `order=asc`), keyset pages (see `AuditQuery`); a full page links the
    /// next one (`Link`, `X-Next-Cursor`).
    @Sendable func list(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let principal = try context.caller()
        let query = try AuditQuery { request.query($0) }
        let page = try await access.controlPlane.audit(tenant: principal.tenant, query)
        var response = jsonResponse(page.entries)
        if let next = page.nextCursor {
            response.headers[.nextCursor] = next
            var parameters = request.uri.queryParameters.filter { $0.key != "cursor" }.map { "\($0.key)=\($0.value)" }
            parameters.append("cursor=\(next)")
            response.headers[HTTPField.Name("Link")!] = "</api/events/audit?\(parameters.joined(separator: "&"))>; rel=\"next\""
        }
        return response
    }
}
