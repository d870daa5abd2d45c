import Foundation
import PostgresClient
import EventStore
import HTTPTypes
import Hummingbird
import Logging
import RouteModel

/// One endpoint the router serves, in OpenAPI's path form (`/api/routes/{id}`).
public struct Endpoint: Hashable, Sendable, Comparable {
    public var method: String
    public var path: String
    public static func < (a: Endpoint, b: Endpoint) -> Bool { (a.path, a.method) < (b.path, b.method) }
}

/// Registers handlers with Hummingbird and remembers each (method, path), so a test can hold the
/// OpenAPI document against what is really served.
final class EndpointRecorder {
    let router: Router<APIRequestContext>
    private(set) var endpoints: [Endpoint] = []

    init(router: Router<APIRequestContext>) { self.router = router }

    func on(_ method: HTTPRequest.Method, _ path: String,
            _ handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Response) {
        endpoints.append(Endpoint(method: method.rawValue, path: path))
        // `{id}` (OpenAPI) → `:id` (Hummingbird).
        let hbPath = path.split(separator: "/", omittingEmptySubsequences: false).map { part -> String in
            part.hasPrefix("{") && part.hasSuffix("}") ? ":" + part.dropFirst().dropLast() : String(part)
        }.joined(separator: "/")
        router.on(RouterPath(hbPath), method: method) { request, context in try await handler(request, context) }
    }
}

extension Controller {
    /// The router of `routeplane serve`, and the endpoints it serves.
    public func makeRouter() -> (router: Router<APIRequestContext>, endpoints: [Endpoint]) {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: APIMiddleware(controller: self))
        let r = EndpointRecorder(router: router)
        let c = self

        r.on(.get, "/healthz") { _, _ in try await c.health() }
        r.on(.get, "/metrics") { _, _ in
            let text = await c.metrics.render(store: c.store)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: .init(string: text)))
        }
        r.on(.get, "/api/openapi.json") { _, _ in rawJSONResponse(OpenAPIDocument.bytes) }

        r.on(.get, "/api/routes") { req, _ in try await c.listRoutes(req) }
        r.on(.post, "/api/routes") { req, ctx in try await c.createRoute(req, ctx) }
        r.on(.get, "/api/routes/{id}") { req, ctx in try await c.getRoute(req, ctx) }
        r.on(.put, "/api/routes/{id}") { req, ctx in try await c.updateRoute(req, ctx) }
        r.on(.delete, "/api/routes/{id}") { req, ctx in try await c.deleteRoute(req, ctx) }

        r.on(.get, "/api/groups") { req, _ in try await c.listGroups(req) }
        r.on(.post, "/api/groups") { req, ctx in try await c.createGroup(req, ctx) }
        r.on(.get, "/api/groups/{id}") { req, ctx in try await c.getGroup(req, ctx) }
        r.on(.put, "/api/groups/{id}") { req, ctx in try await c.updateGroup(req, ctx) }
        r.on(.delete, "/api/groups/{id}") { req, ctx in try await c.deleteGroup(req, ctx) }

        r.on(.get, "/api/peers") { req, _ in try await c.listPeers(req) }
        r.on(.get, "/api/peers/{id}") { req, ctx in try await c.getPeer(req, ctx) }
        r.on(.put, "/api/peers/{id}") { req, ctx in try await c.updatePeer(req, ctx) }
        r.on(.delete, "/api/peers/{id}") { req, ctx in try await c.deletePeer(req, ctx) }

        r.on(.get, "/api/setup-keys") { req, _ in try await c.listSetupKeys(req) }
        r.on(.post, "/api/setup-keys") { req, ctx in try await c.createSetupKey(req, ctx) }
        r.on(.get, "/api/setup-keys/{id}") { req, ctx in try await c.getSetupKey(req, ctx) }
        r.on(.put, "/api/setup-keys/{id}") { req, ctx in try await c.updateSetupKey(req, ctx) }
        r.on(.delete, "/api/setup-keys/{id}") { req, ctx in try await c.deleteSetupKey(req, ctx) }

        r.on(.post, "/api/agent/enroll") { req, ctx in try await c.enroll(req, ctx) }
        r.on(.get, "/api/agent/view") { req, _ in try await c.agentView(req) }
        r.on(.post, "/api/agent/nats-credentials") { req, _ in try await c.renewAgentBusCredentials(req) }

        r.on(.get, "/api/events/audit") { req, _ in try await c.audit(req) }
        return (router, r.endpoints.sorted())
    }

    // MARK: - Auth

    /// The caller behind `Authorization: Token <secret>` (NetBird's scheme; `Bearer` is accepted too).
    func authenticate(_ request: Request, as kind: CredentialStore.Kind = .apiToken) async throws -> Principal {
        guard let header = request.headers[.authorization], !header.isEmpty else {
            throw APIError(.unauthorized, "no authorization header; send \"Authorization: Token <token>\"", field: "Authorization")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, ["token", "bearer"].contains(parts[0].lowercased()) else {
            throw APIError(.unauthorized, "authorization header must be \"Token <token>\"", field: "Authorization")
        }
        let secret = String(parts[1]).trimmingCharacters(in: .whitespaces)
        guard secret.utf8.count <= 256, let found = try await credentials.lookup(secret, kind: kind) else {
            throw APIError(.unauthorized, "token invalid or revoked", field: "Authorization")
        }
        switch kind {
        case .peer: return .agent(tenant: found.tenant, peerID: found.subject)
        default: return .token(tenant: found.tenant, tokenID: found.subject)
        }
    }

    func actor(_ principal: Principal, _ snapshot: TenantSnapshot? = nil) -> Actor {
        switch principal {
        case .token(_, let id): Actor(id: "token:\(id)", name: snapshot?.state.tokens[TokenID(id)]?.name)
        case .agent(_, let peer): Actor(id: "peer:\(peer)", name: snapshot?.state.peer(PeerID(peer))?.name)
        }
    }

    /// Authenticates, then writes; `sideStatements` gets the caller's tenant (for credential rows).
    func authorizedWrite(
        _ request: Request, _ context: APIRequestContext, ifMatch object: ObjectRef? = nil,
        decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent],
        sideStatements: @escaping @Sendable (_ tenant: String, [RouteEvent]) -> [EventStore.SideStatement] = { _, _ in [] }
    ) async throws -> (WriteResult, Principal) {
        let principal = try await authenticate(request)
        let tenant = principal.tenant
        let before = try await cache.current(tenant)
        var precondition: (ObjectRef, Int64)?
        if let object, let v = try request.ifMatchVersion() { precondition = (object, v) }
        let start = ContinuousClock.now
        let result = try await writer.write(tenant: tenant, actor: actor(principal, before), requestID: context.requestID,
                                            ifMatch: precondition, decide: decide, sideStatements: { sideStatements(tenant, $0) })
        if result.sequences != nil { metrics.append(duration: ContinuousClock.now - start) }
        return (result, principal)
    }

    func snapshot(_ request: Request) async throws -> (TenantSnapshot, Principal) {
        let principal = try await authenticate(request)
        return (try await cache.current(principal.tenant), principal)
    }

    // MARK: - Health

    func health() async throws -> Response {
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
}
