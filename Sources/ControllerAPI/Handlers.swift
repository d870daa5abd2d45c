import Foundation
import PostgresClient
import EventStore
import HTTPTypes
import Hummingbird
import Logging
import ViewDistribution
import Projections
import RouteModel

// NetBird-compatible resource handlers. Reads answer from the tenant's caught-up snapshot; writes go
// through `CommandWriter` (decide against the latest state, append with optimistic concurrency).

extension Controller {
    // MARK: Routes

    /// NetBird's route request body → `RouteInput`. `network_type` may be sent; it must then agree
    /// with what the server derives. Unknown fields are ignored.
    static func routeInput(_ body: JSONBody) throws(APIError) -> (RouteInput, networkType: String?) {
        var peer = try body.string("peer")
        if peer == "" { peer = nil } // some clients send "" next to peer_groups
        let input = RouteInput(
            networkID: try body.requiredString("network_id"),
            description: try body.string("description") ?? "",
            network: try body.string("network"),
            domains: try body.strings("domains"),
            peer: peer.map(PeerID.init),
            peerGroups: try body.strings("peer_groups")?.map(GroupID.init),
            metric: Int(clamping: try body.requiredInt("metric")),
            masquerade: try body.requiredBool("masquerade"),
            groups: try body.requiredStrings("groups").map(GroupID.init),
            enabled: try body.requiredBool("enabled"),
            keepRoute: try body.bool("keep_route") ?? false,
            accessControlGroups: try body.strings("access_control_groups")?.map(GroupID.init),
            skipAutoApply: try body.bool("skip_auto_apply"))
        return (input, try body.string("network_type"))
    }

    static func checkNetworkType(_ sent: String?, _ route: Route?) throws(APIError) {
        guard let sent, !sent.isEmpty, let route else { return }
        if sent != route.destination.networkType {
            throw APIError(.unprocessable, "network_type \(sent) does not match the network (\(route.destination.networkType)); it can be left out", field: "network_type")
        }
    }

    func listRoutes(_ request: Request) async throws -> Response {
        let (s, _) = try await snapshot(request)
        let routes = s.state.routes.values.sorted { $0.id < $1.id }.map(RouteJSON.init)
        return jsonResponse(routes, sequence: s.version)
    }

    func getRoute(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, _) = try await snapshot(request)
        guard let route = s.state.route(RouteID(id)) else { throw APIError.notFound("route", id, field: "route_id") }
        return jsonResponse(RouteJSON(route), etag: s.version(of: ObjectRef(.route, id)), sequence: s.version)
    }

    func createRoute(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        var request = request
        let (input, networkType) = try Self.routeInput(try await request.jsonBody(limit: configuration.maxBodyBytes))
        let id = RouteID(Secrets.id())
        let (result, _) = try await authorizedWrite(request, context) { s in
            let events = try decideOrThrow(.createRoute(id: id, input), s.state)
            if case .routeCreated(let e)? = events.first { try Self.checkNetworkType(networkType, e.route) }
            return events
        }
        return try routeResponse(id, result)
    }

    func updateRoute(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        var request = request
        let (input, networkType) = try Self.routeInput(try await request.jsonBody(limit: configuration.maxBodyBytes))
        let (result, _) = try await authorizedWrite(request, context, ifMatch: ObjectRef(.route, id)) { s in
            let events = try decideOrThrow(.updateRoute(id: RouteID(id), input), s.state)
            if case .routeUpdated(let e)? = events.first { try Self.checkNetworkType(networkType, e.new) }
            if events.isEmpty { try Self.checkNetworkType(networkType, s.state.route(RouteID(id))) }
            return events
        }
        return try routeResponse(RouteID(id), result)
    }

    func deleteRoute(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (result, _) = try await authorizedWrite(request, context, ifMatch: ObjectRef(.route, id)) { s in
            try decideOrThrow(.deleteRoute(id: RouteID(id)), s.state)
        }
        return jsonResponse(EmptyObject(), sequence: result.snapshot.version)
    }

    private func routeResponse(_ id: RouteID, _ result: WriteResult) throws -> Response {
        guard let route = result.snapshot.state.route(id) else { throw APIError.notFound("route", id.rawValue, field: "route_id") }
        return jsonResponse(RouteJSON(route), etag: result.snapshot.version(of: ObjectRef(.route, id.rawValue)), sequence: result.snapshot.version)
    }

    // MARK: Groups

    func listGroups(_ request: Request) async throws -> Response {
        let (s, _) = try await snapshot(request)
        return jsonResponse(s.state.groups.values.sorted { $0.id < $1.id }.map { GroupJSON($0, in: s.state) }, sequence: s.version)
    }

    func getGroup(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, _) = try await snapshot(request)
        guard let group = s.state.group(GroupID(id)) else { throw APIError.notFound("group", id, field: "group_id") }
        return jsonResponse(GroupJSON(group, in: s.state), etag: s.version(of: ObjectRef(.group, id)), sequence: s.version)
    }

    /// NetBird's group body: `name` and `peers` (ids; NetBird also accepts objects with an `id`).
    static func groupFields(_ body: JSONBody) throws(APIError) -> (String, [PeerID]) {
        let name = try body.requiredString("name")
        var peers: [PeerID] = []
        switch body.fields["peers"] {
        case nil, .null?: break
        case .array(let items)?:
            for item in items {
                switch item {
                case .string(let s): peers.append(PeerID(s))
                case .object(let o): if case .string(let s)? = o["id"] { peers.append(PeerID(s)) } else { fallthrough }
                default: throw APIError(.badRequest, "couldn't parse JSON request: field peers must be an array of peer ids", field: "peers")
                }
            }
        case let other?:
            throw APIError(.badRequest, "couldn't parse JSON request: field peers must be an array of peer ids, got \(other.typeName)", field: "peers")
        }
        return (name, peers)
    }

    func createGroup(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        var request = request
        let (name, peers) = try Self.groupFields(try await request.jsonBody(limit: configuration.maxBodyBytes))
        let id = GroupID(Secrets.id())
        let (result, _) = try await authorizedWrite(request, context) { s in
            try decideOrThrow(.createGroup(id: id, name: name, peers: peers), s.state)
        }
        return try groupResponse(id, result)
    }

    func updateGroup(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        var request = request
        let (name, peers) = try Self.groupFields(try await request.jsonBody(limit: configuration.maxBodyBytes))
        let (result, _) = try await authorizedWrite(request, context, ifMatch: ObjectRef(.group, id)) { s in
            try decideOrThrow(.updateGroup(id: GroupID(id), name: name, peers: peers), s.state)
        }
        return try groupResponse(GroupID(id), result)
    }

    func deleteGroup(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (result, _) = try await authorizedWrite(request, context, ifMatch: ObjectRef(.group, id)) { s in
            try decideOrThrow(.deleteGroup(id: GroupID(id)), s.state)
        }
        return jsonResponse(EmptyObject(), sequence: result.snapshot.version)
    }

    private func groupResponse(_ id: GroupID, _ result: WriteResult) throws -> Response {
        guard let group = result.snapshot.state.group(id) else { throw APIError.notFound("group", id.rawValue, field: "group_id") }
        return jsonResponse(GroupJSON(group, in: result.snapshot.state), etag: result.snapshot.version(of: ObjectRef(.group, id.rawValue)),
                            sequence: result.snapshot.version)
    }

    // MARK: Peers

    func peerStatuses(tenant: String, peer: String? = nil) async throws -> [String: PeerStatus] {
        let rows = try await store.pool.withSession { s in
            if let peer {
                return try s.query("SELECT peer_id, extract(epoch FROM last_seen), applied_version FROM peer_status WHERE tenant_id = $1 AND peer_id = $2", [tenant, peer])
            }
            return try s.query("SELECT peer_id, extract(epoch FROM last_seen), applied_version FROM peer_status WHERE tenant_id = $1", [tenant])
        }
        var out: [String: PeerStatus] = [:]
        for row in rows.rows {
            guard let id = row[0], let epoch = row[1].flatMap(Double.init) else { continue }
            out[id] = PeerStatus(lastSeen: Date(timeIntervalSince1970: epoch), appliedVersion: row[2].flatMap { Int64($0) } ?? 0)
        }
        return out
    }

    func listPeers(_ request: Request) async throws -> Response {
        let (s, principal) = try await snapshot(request)
        let statuses = try await peerStatuses(tenant: principal.tenant)
        let now = Date()
        return jsonResponse(s.state.peers.values.sorted { $0.id < $1.id }.map { PeerJSON($0, in: s.state, status: statuses[$0.id.rawValue], now: now) },
                            sequence: s.version)
    }

    func getPeer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, principal) = try await snapshot(request)
        guard let peer = s.state.peer(PeerID(id)) else { throw APIError.notFound("peer", id, field: "peer_id") }
        let status = try await peerStatuses(tenant: principal.tenant, peer: id)[id]
        return jsonResponse(PeerJSON(peer, in: s.state, status: status, now: Date()), etag: s.version(of: ObjectRef(.peer, id)), sequence: s.version)
    }

    /// NetBird's peer update: `name` (its other settings, SSH and login expiration, are accepted and ignored),
    /// plus Routeplane's `draining` (operator drain mode of a routing peer; absent = unchanged). Rename and
    /// drain change are decided together and appended in one write.
    func updatePeer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        var request = request
        let body = try await request.jsonBody(limit: configuration.maxBodyBytes)
        let name = try body.requiredString("name")
        _ = try body.bool("ssh_enabled")
        _ = try body.bool("login_expiration_enabled")
        let draining = try body.bool("draining")
        let (result, principal) = try await authorizedWrite(request, context, ifMatch: ObjectRef(.peer, id)) { s in
            var events = try decideOrThrow(.renamePeer(id: PeerID(id), name: name), s.state)
            if let draining {
                events += try decideOrThrow(.setPeerDraining(id: PeerID(id), draining: draining), evolve(s.state, events))
            }
            return events
        }
        guard let peer = result.snapshot.state.peer(PeerID(id)) else { throw APIError.notFound("peer", id, field: "peer_id") }
        let status = try await peerStatuses(tenant: principal.tenant, peer: id)[id]
        return jsonResponse(PeerJSON(peer, in: result.snapshot.state, status: status, now: Date()),
                            etag: result.snapshot.version(of: ObjectRef(.peer, id)), sequence: result.snapshot.version)
    }

    func deletePeer(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (result, principal) = try await authorizedWrite(request, context, ifMatch: ObjectRef(.peer, id)) { s in
            try decideOrThrow(.removePeer(id: PeerID(id)), s.state)
        } sideStatements: { tenant, _ in
            [CredentialStore.revoke(tenant: tenant, kind: .peer, subject: id), AgentBusIssuer.revoke(tenant: tenant, peer: id)]
        }
        // The agent's NATS user is revoked in the same transaction; the resolver learns it now, which cuts its live
        // connection. First, briefly (≤ 1.5 s), let the peer's tombstone view reach the bus, so the agent hears that it
        // was removed and clears its routes before it is cut off. A failed push is retried by the periodic push.
        if let bus = configuration.bus {
            await awaitTombstonePublished(tenant: principal.tenant, peer: id, sequence: result.snapshot.version)
            await bus.revoked("peer \(id) deleted")
        }
        return jsonResponse(EmptyObject(), sequence: result.snapshot.version)
    }

    /// Waits (bounded) until the projection wrote the removed peer's tombstone and a relay published it.
    func awaitTombstonePublished(tenant: String, peer: String, sequence: Int64) async {
        let deadline = ContinuousClock.now + .milliseconds(1_500)
        do {
            try await checkpoints.waitUntilProjected(tenant: tenant, sequence: sequence, timeout: .seconds(1))
            while ContinuousClock.now < deadline {
                let unsent = try await store.pool.withSession { s in
                    try s.query("SELECT count(*) FROM outbox WHERE tenant_id = $1 AND peer_id = $2 AND removed AND sent_at IS NULL", [tenant, peer])
                }
                if unsent.rows.first?[0] == "0" { return }
                try await Task.sleep(for: .milliseconds(20))
            }
        } catch {
            logger.debug("tombstone not confirmed before revoking the peer's NATS user", metadata: ["peer_id": "\(peer)", "error": "\(error)"])
        }
    }

    // MARK: Setup keys

    func listSetupKeys(_ request: Request) async throws -> Response {
        let (s, _) = try await snapshot(request)
        let now = Int64(Date().timeIntervalSince1970)
        return jsonResponse(s.state.setupKeys.values.sorted { $0.id < $1.id }.map { SetupKeyJSON($0, in: s.state, now: now, plainKey: nil) },
                            sequence: s.version)
    }

    func getSetupKey(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, _) = try await snapshot(request)
        guard let key = s.state.setupKeys[SetupKeyID(id)] else { throw APIError.notFound("setup key", id, field: "setup_key_id") }
        return jsonResponse(SetupKeyJSON(key, in: s.state, now: Int64(Date().timeIntervalSince1970), plainKey: nil),
                            etag: s.version(of: ObjectRef(.setupKey, id)), sequence: s.version)
    }

    func createSetupKey(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        var request = request
        let body = try await request.jsonBody(limit: configuration.maxBodyBytes)
        let name = try body.requiredString("name")
        let typeText = try body.requiredString("type")
        let expiresIn = try body.int("expires_in") ?? 0
        let autoGroups = (try body.strings("auto_groups") ?? []).map(GroupID.init)
        let usageLimit = Int(clamping: try body.int("usage_limit") ?? 0)
        if try body.bool("ephemeral") == true {
            throw APIError(.unprocessable, "ephemeral setup keys are not supported", field: "ephemeral")
        }
        let id = SetupKeyID(Secrets.id())
        let secret = Secrets.secret(prefix: "rps_")
        let now = Int64(Date().timeIntervalSince1970)
        let (result, _) = try await authorizedWrite(request, context) { s in
            try decideOrThrow(AccessCommand.createSetupKey(id: id, name: name, type: SetupKey.KeyType(rawValue: typeText), expiresIn: expiresIn,
                                                           autoGroups: autoGroups, usageLimit: usageLimit, now: now), s.state)
        } sideStatements: { tenant, _ in
            [CredentialStore.insert(secret: secret, tenant: tenant, kind: .setupKey, subject: id.rawValue)]
        }
        guard let key = result.snapshot.state.setupKeys[id] else { throw APIError.notFound("setup key", id.rawValue, field: "setup_key_id") }
        return jsonResponse(SetupKeyJSON(key, in: result.snapshot.state, now: now, plainKey: secret),
                            etag: result.snapshot.version(of: ObjectRef(.setupKey, id.rawValue)), sequence: result.snapshot.version)
    }

    /// NetBird's setup-key update: `revoked` and `auto_groups`.
    func updateSetupKey(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        var request = request
        let body = try await request.jsonBody(limit: configuration.maxBodyBytes)
        let revoked = try body.requiredBool("revoked")
        let autoGroups = try body.requiredStrings("auto_groups").map(GroupID.init)
        let (result, _) = try await authorizedWrite(request, context, ifMatch: ObjectRef(.setupKey, id)) { s in
            try decideOrThrow(AccessCommand.updateSetupKey(id: SetupKeyID(id), revoked: revoked, autoGroups: autoGroups), s.state)
        } sideStatements: { tenant, events in
            let revokes = events.contains { if case .setupKeyUpdated(let e) = $0 { return e.new.revoked && !e.old.revoked }; return false }
            return revokes ? [CredentialStore.revoke(tenant: tenant, kind: .setupKey, subject: id)] : []
        }
        guard let key = result.snapshot.state.setupKeys[SetupKeyID(id)] else { throw APIError.notFound("setup key", id, field: "setup_key_id") }
        return jsonResponse(SetupKeyJSON(key, in: result.snapshot.state, now: Int64(Date().timeIntervalSince1970), plainKey: nil),
                            etag: result.snapshot.version(of: ObjectRef(.setupKey, id)), sequence: result.snapshot.version)
    }

    func deleteSetupKey(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (result, _) = try await authorizedWrite(request, context, ifMatch: ObjectRef(.setupKey, id)) { s in
            try decideOrThrow(AccessCommand.deleteSetupKey(id: SetupKeyID(id)), s.state)
        } sideStatements: { tenant, _ in
            [CredentialStore.revoke(tenant: tenant, kind: .setupKey, subject: id)]
        }
        return jsonResponse(EmptyObject(), sequence: result.snapshot.version)
    }

    // MARK: Agents

    /// `POST /api/agent/enroll` `{"setup_key", "name", "os", "ip"?, "nats_public_key"?}` → the peer's id, mesh IP and
    /// credential, and (when the agent sent its NATS public key and this controller holds the NATS keys) its NATS user JWT.
    func enroll(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        var request = request
        let body = try await request.jsonBody(limit: configuration.maxBodyBytes)
        let setupKey = try body.requiredString("setup_key")
        let name = try body.requiredString("name")
        let os = try body.requiredString("os")
        let reportedIP = try body.string("ip")
        let natsKey = try body.string("nats_public_key").map(AgentBusIssuer.validatedPublicKey)
        guard setupKey.utf8.count <= 256, let found = try await credentials.lookup(setupKey, kind: .setupKey) else {
            throw APIError(.forbidden, "setup key is not valid", field: "setup_key")
        }
        // Only a caller holding a valid setup key learns whether a NATS key is taken. (A race between two enrollments
        // with one key is settled by the unique index: the loser's whole enrollment rolls back.)
        if let natsKey {
            let taken = try await store.pool.withSession { s in try s.query("SELECT 1 FROM nats_users WHERE public_key = $1", [natsKey]).rows.count }
            if taken > 0 { throw APIError(.conflict, "nats_public_key is already registered to another peer; generate a new key", field: "nats_public_key") }
        }
        let tenant = found.tenant
        let keyID = SetupKeyID(found.subject)
        let peerID = PeerID(Secrets.id())
        let credential = Secrets.secret(prefix: "rpc_")
        let now = Int64(Date().timeIntervalSince1970)
        let range = configuration.meshRange
        let keyName = try await cache.current(tenant).state.setupKeys[keyID]?.name
        let result = try await writer.write(tenant: tenant, actor: Actor(id: "setup_key:\(keyID)", name: keyName.map { "setup key \($0)" }),
                                            requestID: context.requestID) { s in
            let ip: String
            if let reportedIP, !reportedIP.isEmpty {
                ip = reportedIP
            } else {
                guard let free = MeshAddresses.firstFree(in: range, used: s.state) else {
                    throw APIError(.conflict, "the tenant's mesh range \(range) has no free address", field: "ip")
                }
                ip = free.description
            }
            return try decideOrThrow(AccessCommand.enrollWithSetupKey(key: keyID, peerID: peerID, name: name, os: os, meshIP: ip, now: now), s.state)
        } sideStatements: { _ in
            [CredentialStore.insert(secret: credential, tenant: tenant, kind: .peer, subject: peerID.rawValue)]
                + (natsKey.map { [AgentBusIssuer.insert(tenant: tenant, peer: peerID.rawValue, publicKey: $0)] } ?? [])
        }
        guard let peer = result.snapshot.state.peer(peerID) else { throw APIError(.internalError, "enrolled peer missing from state") }
        struct Enrolled: Encodable {
            var peer_id: String
            var tenant_id: String
            var ip: String
            var credential: String
            var routes_subject: String
            var status_subject: String
            var nats_url: String?
            var nats_jwt: String?
            var nats_jwt_expires_at: Int64?
            var nats_inbox_prefix: String?
            /// The controller's view signing public key: the agent pins it and accepts only views it signed.
            var view_signing_key: String
        }
        let issued = try natsKey.flatMap { key in try configuration.bus?.issue(tenant: tenant, peer: peerID.rawValue, publicKey: key) }
        return jsonResponse(Enrolled(peer_id: peerID.rawValue, tenant_id: tenant, ip: peer.meshIP.description, credential: credential,
                                     routes_subject: "routeplane.\(tenant).peer.\(peerID).routes",
                                     status_subject: "routeplane.\(tenant).peer.\(peerID).status", nats_url: configuration.natsURL,
                                     nats_jwt: issued?.nats_jwt, nats_jwt_expires_at: issued?.nats_jwt_expires_at,
                                     nats_inbox_prefix: issued?.nats_inbox_prefix, view_signing_key: viewSigner.publicKey),
                            status: .created, sequence: result.snapshot.version)
    }

    /// `GET /api/agent/view` (agent credential): the agent's current route view, waiting briefly for
    /// the projection to reach the tenant's latest event, signed as the relay signs its NATS messages (`key`,
    /// `signature`, `endorsement` during a key rotation; `removed` is always false: a removed peer has no view row).
    func agentView(_ request: Request) async throws -> Response {
        guard case .agent(let tenant, let peer) = try await authenticate(request, as: .peer) else {
            throw APIError(.forbidden, "an agent credential is required", field: "Authorization")
        }
        let head = try await store.version(tenant: tenant)
        var stale = false
        do {
            try await checkpoints.waitUntilProjected(tenant: tenant, sequence: head, timeout: configuration.projectionWait)
        } catch {
            stale = true
        }
        let rows = try await store.pool.withSession { s in
            try s.query("SELECT version, digest, body FROM peer_views WHERE tenant_id = $1 AND peer_id = $2", [tenant, peer])
        }
        guard let row = rows.rows.first, let version = row[0], let versionNumber = Int64(version), let digest = row[1], let body = row[2] else {
            throw APIError(.notFound, "no route view for peer \(peer) yet; retry shortly", field: "peer_id", retryAfter: 1)
        }
        let signature = viewSigner.sign(tenant: tenant, peer: peer, version: versionNumber, removed: false, digest: digest)
        var out = Array(#"{"tenant_id":"#.utf8)
        out += Array((try? jsonEncoder.encode(tenant)) ?? Data())
        out += Array(#","peer_id":"#.utf8) + Array((try? jsonEncoder.encode(peer)) ?? Data())
        out += Array(#","version":\#(version),"digest":"\#(digest)","stale":\#(stale),"removed":false"#.utf8)
        // Keys and signatures are base64url: nothing to escape.
        out += Array(#","key":"\#(signature.key)","signature":"\#(signature.signature)""#.utf8)
        if let endorsement = signature.endorsement {
            out += Array(#","endorsement":{"key":"\#(endorsement.key)","signature":"\#(endorsement.signature)"}"#.utf8)
        }
        out += Array(#","view":"#.utf8)
        out += Array(body.utf8)
        out += Array("}".utf8)
        return rawJSONResponse(out, etag: Int64(version))
    }
}

/// Mesh address allocation: the lowest free host address of the range.
enum MeshAddresses {
    static func firstFree(in range: Prefix, used state: TenantState) -> IPAddress? {
        guard range.isV4, range.length <= 30 else { return nil }
        let base = UInt32(truncatingIfNeeded: range.address.low)
        let size = UInt64(1) << UInt64(32 - range.length)
        var offset: UInt64 = 1
        while offset < size - 1 {
            let candidate = IPAddress(v4: base &+ UInt32(offset))
            if state.peer(meshIP: candidate) == nil { return candidate }
            offset += 1
        }
        return nil
    }
}
