import ControlPlane
import HTTPTypes
import Hummingbird
import PostgresClient

/// `/api/events` and `/api/events/audit`: the tenant's audit log, from its events.
struct AuditController: Sendable {
    let access: ResourceAccess
    let limits: DatabaseLimits
    let searches: AuditSearchGate

    init(access: ResourceAccess, limits: DatabaseLimits) {
        self.access = access
        self.limits = limits
        self.searches = AuditSearchGate(perTenant: limits.searchesPerTenant, total: limits.searches)
    }

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
        let page = query.hasSearch ? try await search(tenant: principal.tenant, query) : try await access.controlPlane.audit(tenant: principal.tenant, query)
        var response = jsonResponse(page.entries)
        if let next = page.nextCursor {
            response.headers[.nextCursor] = next
            var parameters = request.uri.queryParameters.filter { $0.key != "cursor" }.map { "\($0.key)=\($0.value)" }
            parameters.append("cursor=\(next)")
            response.headers[HTTPField.Name("Link")!] = "</api/events/audit?\(parameters.joined(separator: "&"))>; rel=\"next\""
        }
        return response
    }

    /// A free-text search: served by the trigram index where the database has pg_trgm, and bounded either way: a few at
    /// once per tenant and per process (`AuditSearchGate`, else 429), and a statement timeout of its own (else 503 naming
    /// `search`, with how to narrow it).
    private func search(tenant: String, _ query: AuditQuery) async throws -> AuditPage {
        var budget = StatementBudget.current ?? limits.budget(label: "audit search")
        budget.read = min(budget.read, limits.searchTimeout)
        let page = budget
        return try await searches.run(tenant: tenant) {
            do {
                return try await page.run { try await access.controlPlane.audit(tenant: tenant, query) }
            } catch let error as PostgresError where error.isStatementTimeout {
                throw APIError(.unavailable, "the search ran longer than \(limits.searchTimeout) and was stopped; retry later, or narrow it "
                               + "with a longer search text or start_date/end_date", field: "search", retryAfter: 5)
            }
        }
    }
}
