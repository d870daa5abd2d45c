import ControlPlane
import Foundation
import Hummingbird
import Logging
import RouteModel

/// `/api/users` and `/api/users/{userId}/tokens`: NetBird's personal-access-token endpoints (`pat_handler.go`).
/// Routeplane has no users: each tenant has one service user whose id is the tenant id, and every API token of the
/// tenant is that user's token. `GET /api/users` lists that user (so NetBird clients find the id); a `userId` that is
/// not the caller's tenant answers 404 "user not found", as any other tenant's object does.
/// The secret is answered once, at creation (`plain_token`); lists and reads never show it.
struct TokensController: Sendable {
    let access: ResourceAccess

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(use: users)
            .get(":userId/tokens", use: list)
            .post(":userId/tokens", use: create)
            .get(":userId/tokens/:tokenId", use: get)
            .delete(":userId/tokens/:tokenId", use: delete)
    }

    /// NetBird's `api.PersonalAccessTokenRequest` (`name`, `expires_in` in days, both required: a missing
    /// `expires_in` reads as 0 and is refused as in NetBird), plus Routeplane's `scope` (default admin).
    struct CreateBody: Decodable {
        var name: String?
        var expires_in: Int?
        var scope: String?
    }

    @Sendable func users(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (s, principal) = try await access.snapshot(context)
        // NetBird's `service_user` filter: this tenant's one user is a service user.
        if let filter = request.query("service_user") {
            guard let wanted = Bool(filter.lowercased()) else {
                throw ControlPlaneError.validation(field: "service_user", message: "service_user must be true or false, got \(filter)")
            }
            if !wanted { return jsonResponse([UserJSON](), sequence: s.version) }
        }
        return jsonResponse([UserJSON(tenant: principal.tenant, name: s.state.tenantName)], sequence: s.version)
    }

    @Sendable func list(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (s, principal) = try await access.snapshot(context)
        try Self.checkUser(context, principal)
        let tokens = try await access.controlPlane.tokens(tenant: principal.tenant, state: s.state)
        return jsonResponse(tokens.map(PersonalAccessTokenJSON.init), sequence: s.version)
    }

    @Sendable func get(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (s, principal) = try await access.snapshot(context)
        try Self.checkUser(context, principal)
        let id = try context.pathID("tokenId")
        return try await response(id, s, tenant: principal.tenant)
    }

    @Sendable func create(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        // Who asks decides what may be granted; authenticating first also refuses strangers before the body is read.
        let caller = try context.caller()
        try Self.checkUser(context, caller)
        guard case .token(_, let callerID, let callerScope) = caller else {
            throw APIError(.forbidden, "permission denied: an API token is required", field: "Authorization")
        }
        let body = try await access.body(CreateBody.self, of: request, context)
        let scope: TokenScope
        if let text = body.scope {
            guard let parsed = TokenScope(rawValue: text) else {
                throw ControlPlaneError.validation(field: "scope", message: "scope must be \(TokenScope.names), got \(text)")
            }
            scope = parsed
        } else {
            scope = .admin
        }
        let (name, days) = (body.name ?? "", body.expires_in ?? 0)
        let id = Secrets.id()
        let secret = Secrets.secret(prefix: "rpt_")
        let now = Int64(Date().timeIntervalSince1970)
        let expiresAt = TokenPolicy.expiresAt(now: now, days: days)
        let (result, principal) = try await access.write(request, context) { s in
            try decideOrThrow(AccessCommand.createToken(id: TokenID(id), name: name, scope: scope, expiresInDays: days, now: now,
                                                        createdBy: "token:\(callerID)", grantor: callerScope), s.state)
        } sideStatements: { tenant, _ in
            [CredentialStore.insert(secret: secret, tenant: tenant, kind: .apiToken, subject: id, expiresAt: expiresAt, scope: scope)]
        }
        access.controlPlane.logger.info("API token created", metadata: [
            "tenant_id": "\(principal.tenant)", "token_id": "\(id)", "scope": "\(scope.rawValue)", "created_by": "token:\(callerID)",
            "request_id": "\(context.requestID)"])
        guard let summary = try await access.controlPlane.tokens(tenant: principal.tenant, state: result.snapshot.state).first(where: { $0.id == id }) else {
            throw ControlPlaneError.notFound(field: "token_id", message: "PAT: \(id) not found")
        }
        return jsonResponse(PersonalAccessTokenGeneratedJSON(plain_token: secret, personal_access_token: PersonalAccessTokenJSON(summary)),
                            etag: result.snapshot.version(of: ObjectRef(.token, id)), sequence: result.snapshot.version)
    }

    /// NetBird lets a token delete itself (`DeletePAT` has no such check): the next request with it answers 401.
    @Sendable func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        // The path's user is checked before anything is decided (a wrong user writes nothing).
        try Self.checkUser(context, try context.caller())
        let id = try context.pathID("tokenId")
        let principal = try context.caller()
        return try await access.write(request, context, ifMatch: ObjectRef(.token, id), decide: { s in
            guard let token = s.state.tokens[TokenID(id)], !token.revoked else {
                throw ControlPlaneError.notFound(field: "token_id", message: "PAT: \(id) not found")
            }
            return try decideOrThrow(AccessCommand.revokeToken(id: TokenID(id)), s.state)
        }, sideStatements: { tenant, _ in
            [CredentialStore.revoke(tenant: tenant, kind: .apiToken, subject: id)]
        }, answer: { result in
            access.controlPlane.logger.info("API token deleted", metadata: [
                "tenant_id": "\(principal.tenant)", "token_id": "\(id)", "request_id": "\(context.requestID)"])
            return JSONAnswer(EmptyObject(), sequence: result.snapshot.version)
        })
    }

    /// The path's user must be the caller's tenant's service user (its id is the tenant id).
    static func checkUser(_ context: APIRequestContext, _ principal: Principal) throws {
        let user = try context.pathID("userId")
        if user != principal.tenant { throw ControlPlaneError.notFound(field: "user_id", message: "user: \(user) not found") }
    }

    func response(_ id: String, _ s: TenantSnapshot, tenant: String) async throws -> Response {
        guard let summary = try await access.controlPlane.tokens(tenant: tenant, state: s.state).first(where: { $0.id == id }) else {
            throw ControlPlaneError.notFound(field: "token_id", message: "PAT: \(id) not found")
        }
        return jsonResponse(PersonalAccessTokenJSON(summary), etag: s.version(of: ObjectRef(.token, id)), sequence: s.version)
    }
}

/// NetBird's `api.PersonalAccessToken`, plus Routeplane's `scope`. No secret: only its id.
struct PersonalAccessTokenJSON: Encodable {
    var id: String
    var name: String
    var expiration_date: String
    var created_by: String
    var created_at: String
    var scope: String

    init(_ t: TokenSummary) {
        id = t.id
        name = t.name
        expiration_date = ISO8601.format(Date(timeIntervalSince1970: TimeInterval(t.expiresAt)))
        created_by = t.createdBy
        created_at = ISO8601.format(Date(timeIntervalSince1970: TimeInterval(t.createdAt)))
        scope = t.scope.rawValue
    }
}

/// NetBird's `api.PersonalAccessTokenGenerated`: the secret, this once.
struct PersonalAccessTokenGeneratedJSON: Encodable {
    var plain_token: String
    var personal_access_token: PersonalAccessTokenJSON
}

/// NetBird's `api.User` (its required fields) for the tenant's one service user.
struct UserJSON: Encodable {
    var id: String
    var email = ""
    var name: String
    var role = "admin"
    var status = "active"
    var auto_groups: [String] = []
    var is_current = true
    var is_service_user = true
    var is_blocked = false
    var pending_approval = false
    var issued = "api"

    init(tenant: String, name: String?) {
        id = tenant
        self.name = name ?? tenant
    }
}
