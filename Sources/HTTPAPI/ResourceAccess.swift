import ControlPlane
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import RouteModel

/// What every resource controller shares: the caller's authentication, its tenant's snapshot, writes with `If-Match`
/// and the append metric, and request bodies decoded with the configured size limit.
struct ResourceAccess: Sendable {
    let controlPlane: ControlPlane
    let metrics: ControllerMetrics
    let maxBodyBytes: Int

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
        guard let principal = try await controlPlane.principal(secret: secret, kind: kind) else {
            throw APIError(.unauthorized, "token invalid or revoked", field: "Authorization")
        }
        try Self.requireScope(principal, for: request.method)
        return principal
    }

    /// The one place token scopes are enforced, for every endpoint: a read-only token may only read (GET, HEAD);
    /// anything else is 403 with NetBird's "permission denied", before any handler decides or writes.
    static func requireScope(_ principal: Principal, for method: HTTPRequest.Method) throws(APIError) {
        if principal.permits(method: method.rawValue) { return }
        throw APIError(.forbidden, "permission denied: this token is read-only; \(method.rawValue) needs an admin token", field: "Authorization")
    }

    /// The calling agent's tenant and peer id (agent credential only).
    func authenticateAgent(_ request: Request) async throws -> (tenant: String, peer: String) {
        guard case .agent(let tenant, let peer) = try await authenticate(request, as: .peer) else {
            throw APIError(.forbidden, "an agent credential is required", field: "Authorization")
        }
        return (tenant, peer)
    }

    /// The caller's tenant, caught up (with its built-in "All" group, see `ControlPlane.currentWithAllGroup`).
    func snapshot(_ request: Request) async throws -> (TenantSnapshot, Principal) {
        let principal = try await authenticate(request)
        return (try await controlPlane.currentWithAllGroup(principal.tenant), principal)
    }

    /// Authenticates, then writes; `If-Match` applies to `object` when given; `sideStatements` gets the caller's tenant
    /// (for credential rows).
    func write(
        _ request: Request, _ context: APIRequestContext, ifMatch object: ObjectRef? = nil,
        decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent],
        sideStatements: @escaping @Sendable (_ tenant: String, [RouteEvent]) -> [EventStore.SideStatement] = { _, _ in [] }
    ) async throws -> (WriteResult, Principal) {
        let principal = try await authenticate(request)
        let tenant = principal.tenant
        let before = try await controlPlane.cache.current(tenant)
        var precondition: (ObjectRef, Int64)?
        if let object, let v = try request.ifMatchVersion() { precondition = (object, v) }
        let start = ContinuousClock.now
        let result = try await controlPlane.writer.write(tenant: tenant, actor: controlPlane.actor(principal, before), requestID: context.requestID,
                                                         ifMatch: precondition, decide: decide, sideStatements: { sideStatements(tenant, $0) })
        if result.sequences != nil { metrics.append(duration: ContinuousClock.now - start) }
        return (result, principal)
    }

    /// The request body as `T` (see `RequestBodyDecoder`).
    func body<T: Decodable>(_ type: T.Type, of request: Request) async throws -> T {
        var request = request
        return try await request.decodeBody(T.self, limit: maxBodyBytes)
    }
}
