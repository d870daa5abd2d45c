import ControlPlane
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import RouteModel

extension HTTPField.Name {
    /// The tenant sequence an `as_of` read resolved to (the state answered is the fold of events 1...that).
    static let asOfSequence = HTTPField.Name("Routeplane-As-Of-Sequence")!
}

extension ResourceAccess {
    /// The caller's tenant as `?as_of=` names it (a sequence number or an RFC 3339 time), or caught up without it.
    /// A read as of a past point answers the state then, exactly a fold of the events up to it (no "All" group repair:
    /// that is a write). Bad values are 422 naming `as_of`.
    func snapshot(_ request: Request, _ context: APIRequestContext) async throws -> (TenantSnapshot, Principal) {
        guard let text = request.query("as_of") else { return try await snapshot(context) }
        let principal = try context.caller()
        return (try await history.snapshot(tenant: principal.tenant, at: try await resolve(text, field: "as_of", principal)), principal)
    }

    /// `text` as a sequence of the caller's tenant (see `TenantHistory.resolve`); 422 naming `field` when it is not one.
    func resolve(_ text: String, field: String, _ principal: Principal) async throws -> Int64 {
        guard let point = HistoryPoint.parse(text) else {
            throw APIError(.unprocessable, "\(field) must be a tenant sequence number (1, 2, …) or an RFC 3339 time like 2026-12-05T14:02:00Z", field: field)
        }
        return try await history.resolve(point, tenant: principal.tenant, field: field)
    }
}

/// Sets `Routeplane-As-Of-Sequence` on answers to reads that asked `?as_of=`: the sequence the read resolved to, which
/// the handler wrote as the answer's `X-Routeplane-Sequence` (the version of the state it answered from).
struct AsOfHeaderMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if request.method == .get, request.query("as_of") != nil, let s = response.headers[.routeplaneSequence] {
            response.headers[.asOfSequence] = s
        }
        return response
    }
}

/// History reads: a peer's route view (now or `as_of`), and what changed between two points.
struct HistoryController: Sendable {
    let access: ResourceAccess

    /// `GET /api/peers/{id}/view` (under `/api/peers`).
    func addPeerRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(":id/view", use: view)
    }

    /// `GET /api/history/diff` (under `/api/history`).
    func addHistoryRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get("diff", use: diff)
    }

    struct ViewJSON: Encodable {
        var peer_id: String
        var sequence: Int64
        var digest: String
        var view: PeerRouteView
    }

    /// The route view the peer's agent gets (or got, `as_of`), computed from the tenant's state at that point: the
    /// routes it installs (HA sets with their candidates) and the routes it forwards, with the view's digest.
    @Sendable func view(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, _) = try await access.snapshot(request, context)
        guard s.state.peer(PeerID(id)) != nil else {
            throw ControlPlaneError.notFound(field: "peer_id", message: "peer \(id) not found")
        }
        let v = RouteModel.view(for: PeerID(id), in: s.state)
        let (_, digest) = v.encoded()
        return jsonResponse(ViewJSON(peer_id: id, sequence: s.version, digest: digest, view: v), sequence: s.version)
    }

    /// `?from=&to=` (sequences or RFC 3339 times; `from` defaults to the tenant's first event, `to` to its last): the routes, groups and peers
    /// added, removed and changed (field by field, old → new), and each peer whose route view differs, with its view
    /// diff. `from` after `to` is refused (422 naming `from`).
    @Sendable func diff(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let principal = try context.caller()
        let from = try await access.resolve(request.query("from") ?? "1", field: "from", principal)
        let to: Int64
        if let toText = request.query("to") {
            to = try await access.resolve(toText, field: "to", principal)
        } else {
            to = try await access.controlPlane.store.version(tenant: principal.tenant)
        }
        guard from <= to else {
            throw APIError(.unprocessable, "from (sequence \(from)) must not be after to (sequence \(to))", field: "from")
        }
        let out = try await access.history.diff(tenant: principal.tenant, from: from, to: to)
        var response = jsonResponse(out, sequence: to)
        response.headers[.asOfSequence] = String(to)
        return response
    }
}
