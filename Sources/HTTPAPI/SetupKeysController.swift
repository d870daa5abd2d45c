import ControlPlane
import Foundation
import Hummingbird
import RouteModel

/// `/api/setup-keys`: the keys agents enroll with (the secret is shown once, at creation).
struct SetupKeysController: Sendable {
    let access: ResourceAccess

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(use: list)
            .post(use: create)
            .get(":id", use: get)
            .put(":id", use: update)
            .delete(":id", use: delete)
    }

    /// NetBird's setup-key creation body (`api.CreateSetupKeyRequest`). A missing `name` or `type` is 422 naming it (NetBird
    /// also answers 422, with "setup key name shouldn't be empty" / "unknown setup key type "); `auto_groups` defaults to none
    /// and `ephemeral` to false as in NetBird's handler. A missing `expires_in` is 30 days (`Limits.setupKeyDefaultExpiresIn`,
    /// NetBird's former default), not NetBird's "never": a key nobody asked to live forever does not. An explicit
    /// `expires_in: 0` still never expires and `usage_limit` 0 or missing is unlimited, as in NetBird.
    struct CreateBody: Decodable {
        var name: String
        var type: String
        var expires_in: Int64?
        var auto_groups: [String]?
        var usage_limit: Int?
        var ephemeral: Bool?
    }

    /// NetBird's setup-key update (`api.SetupKeyRequest`): `revoked` (missing = false) and `auto_groups` (required).
    struct UpdateBody: Decodable {
        var revoked: Bool?
        var auto_groups: [String]?
    }

    @Sendable func list(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (s, _) = try await access.snapshot(context)
        let now = Int64(Date().timeIntervalSince1970)
        return jsonResponse(s.state.setupKeys.values.sorted { $0.id < $1.id }.map { SetupKeyJSON($0, in: s.state, now: now, plainKey: nil) },
                            sequence: s.version)
    }

    @Sendable func get(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, _) = try await access.snapshot(context)
        return try Self.response(SetupKeyID(id), s, now: Int64(Date().timeIntervalSince1970), plainKey: nil)
    }

    @Sendable func create(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await access.body(CreateBody.self, of: request, context)
        let (name, typeText, expiresIn, usageLimit) = (body.name, body.type, body.expires_in ?? Limits.setupKeyDefaultExpiresIn, body.usage_limit ?? 0)
        let ephemeral = body.ephemeral ?? false
        // NetBird's order and wording (`setupkeys_handler.go` createSetupKey): the name, then the type.
        if name.isEmpty { throw ControlPlaneError.validation(field: "name", message: "setup key name shouldn't be empty") }
        guard let type = SetupKey.KeyType(rawValue: typeText) else {
            throw ControlPlaneError.validation(field: "type", message: "unknown setup key type \(typeText); type must be \"reusable\" or \"one-off\"")
        }
        let autoGroups = (body.auto_groups ?? []).map(GroupID.init)
        let id = SetupKeyID(Secrets.id())
        let secret = Secrets.secret(prefix: "rps_")
        let now = Int64(Date().timeIntervalSince1970)
        let decision: Decision = { s in
            try decideOrThrow(AccessCommand.createSetupKey(id: id, name: name, type: type, expiresIn: expiresIn, autoGroups: autoGroups,
                                                           usageLimit: usageLimit, now: now, ephemeral: ephemeral,
                                                           keySecret: SetupKey.masked(secret: secret)), s.state)
        }
        if let preview = try await access.dryRun(request, context, decide: decision) { return preview }
        let (result, _) = try await access.write(request, context, decide: decision) { tenant, _ in
            [CredentialStore.insert(secret: secret, tenant: tenant, kind: .setupKey, subject: id.rawValue)]
        }
        return try Self.response(id, result.snapshot, now: now, plainKey: secret)
    }

    @Sendable func update(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let body = try await access.body(UpdateBody.self, of: request, context)
        guard let groups = body.auto_groups else {
            // NetBird's wording (`setupkeys_handler.go` updateSetupKey).
            throw ControlPlaneError.validation(field: "auto_groups", message: "setup key auto_groups field is invalid: it is required (an empty list for none)")
        }
        let (revoked, autoGroups) = (body.revoked ?? false, groups.map(GroupID.init))
        let now = Int64(Date().timeIntervalSince1970)
        let decision: Decision = { s in
            try decideOrThrow(AccessCommand.updateSetupKey(id: SetupKeyID(id), revoked: revoked, autoGroups: autoGroups, now: now), s.state)
        }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.setupKey, id), decide: decision) { return preview }
        return try await access.write(request, context, ifMatch: ObjectRef(.setupKey, id), decide: decision, sideStatements: { tenant, events in
            let revokes = events.contains { if case .setupKeyUpdated(let e) = $0 { return e.new.revoked && !e.old.revoked }; return false }
            return revokes ? [CredentialStore.revoke(tenant: tenant, kind: .setupKey, subject: id)] : []
        }, answer: { try Self.answer(SetupKeyID(id), $0.snapshot, now: Int64(Date().timeIntervalSince1970), plainKey: nil) })
    }

    @Sendable func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let decision: Decision = { s in try decideOrThrow(AccessCommand.deleteSetupKey(id: SetupKeyID(id)), s.state) }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.setupKey, id), decide: decision) { return preview }
        return try await access.write(request, context, ifMatch: ObjectRef(.setupKey, id), decide: decision, sideStatements: { tenant, _ in
            [CredentialStore.revoke(tenant: tenant, kind: .setupKey, subject: id)]
        }, answer: { JSONAnswer(EmptyObject(), sequence: $0.snapshot.version) })
    }

    static func response(_ id: SetupKeyID, _ s: TenantSnapshot, now: Int64, plainKey: String?) throws -> Response {
        try answer(id, s, now: now, plainKey: plainKey).response
    }

    static func answer(_ id: SetupKeyID, _ s: TenantSnapshot, now: Int64, plainKey: String?) throws -> JSONAnswer {
        guard let key = s.state.setupKeys[id] else {
            throw ControlPlaneError.notFound(field: "setup_key_id", message: "setup key \(id.rawValue) not found")
        }
        return JSONAnswer(SetupKeyJSON(key, in: s.state, now: now, plainKey: plainKey),
                            etag: s.version(of: ObjectRef(.setupKey, id.rawValue)), sequence: s.version)
    }
}
