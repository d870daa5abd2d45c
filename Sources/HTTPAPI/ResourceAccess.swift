import ControlPlane
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import RouteModel

/// What every resource controller shares: the caller's authentication, its tenant's snapshot, writes with `If-Match`
/// and the append metric, and request bodies decoded with the configured size limit.
///
/// Authentication runs before the handler (`AuthenticationMiddleware` on each resource's routes puts the caller in
/// `context.principal`), so before any body is read: `snapshot`, `write` and `body` take the caller from the context and
/// answer 401 without one.
struct ResourceAccess: Sendable {
    let controlPlane: ControlPlane
    let metrics: ControllerMetrics
    let maxBodyBytes: Int
    /// Unknown secrets seen recently: answered 401 without a database lookup.
    let unknownSecrets: NegativeTokenCache.Shared
    /// The tenant's state at past points (`?as_of=`, `/api/history`).
    let history: TenantHistory
    /// TEST ONLY: loses one acknowledged write (`ReliabilitySettings.lostWrite`).
    var lostWrite: LostWriteSwitch? = nil

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
        guard let principal = try await lookUp(secret, kind: kind) else {
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

    /// The credential's principal; an unknown secret is remembered (by its hash) for a while and answered from memory.
    private func lookUp(_ secret: String, kind: CredentialStore.Kind) async throws -> Principal? {
        let key = NegativeTokenCache.key(secret: secret, kind: kind.rawValue)
        if unknownSecrets.contains(key) {
            metrics.credentialLookup(.cachedUnknown)
            return nil
        }
        let principal = try await controlPlane.principal(secret: secret, kind: kind)
        metrics.credentialLookup(principal == nil ? .unknown : .found)
        if principal == nil { unknownSecrets.insert(key) }
        return principal
    }

    /// The calling agent's tenant and peer id (agent credential only, authenticated by `AuthenticationMiddleware`).
    func agent(_ context: APIRequestContext) throws(APIError) -> (tenant: String, peer: String) {
        guard case .agent(let tenant, let peer) = try context.caller() else {
            throw APIError(.forbidden, "an agent credential is required", field: "Authorization")
        }
        return (tenant, peer)
    }

    /// The caller's tenant, caught up (with its built-in "All" group, see `ControlPlane.currentWithAllGroup`).
    func snapshot(_ context: APIRequestContext) async throws -> (TenantSnapshot, Principal) {
        let principal = try context.caller()
        return (try await controlPlane.currentWithAllGroup(principal.tenant), principal)
    }

    /// Authenticates, then writes; `If-Match` applies to `object` when given; `sideStatements` gets the caller's tenant
    /// (for credential rows).
    func write(
        _ request: Request, _ context: APIRequestContext, ifMatch object: ObjectRef? = nil,
        decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent],
        sideStatements: @escaping @Sendable (_ tenant: String, [RouteEvent]) -> [EventStore.SideStatement] = { _, _ in [] },
        finish: CommandWriter.Finish? = nil
    ) async throws -> (WriteResult, Principal) {
        let principal = try context.caller()
        // A dry run reaches `write` only where no dry run is offered (tokens): refused, so it never writes.
        if try request.isDryRun() { throw APIError(.badRequest, "dry_run is not offered on \(request.uri.path)", field: "dry_run") }
        let tenant = principal.tenant
        let actor = try await controlPlane.namedActor(principal)
        var precondition: (ObjectRef, Int64)?
        if let object, let v = try request.ifMatchVersion() { precondition = (object, v) }
        let start = ContinuousClock.now
        let result = try await controlPlane.writer.write(tenant: tenant, actor: actor, requestID: context.requestID,
                                                         ifMatch: precondition, decide: decide, sideStatements: { sideStatements(tenant, $0) },
                                                         finish: finish)
        if result.sequences != nil { metrics.append(duration: ContinuousClock.now - start) }
        return (result, principal)
    }

    /// The request body as `T` (see `RequestBodyDecoder`), of an authenticated caller only: a request without one is
    /// answered 401 before its body is read.
    func body<T: Decodable>(_ type: T.Type, of request: Request, _ context: APIRequestContext) async throws -> T {
        _ = try context.caller()
        var request = request
        return try await request.decodeBody(T.self, limit: maxBodyBytes)
    }

    /// The body of a request whose credential is in the body itself (enrollment's setup key); bounded in size like the
    /// others, and in time by the server's body timeout.
    func credentialBody<T: Decodable>(_ type: T.Type, of request: Request) async throws -> T {
        var request = request
        return try await request.decodeBody(T.self, limit: maxBodyBytes)
    }
}
