import ControlPlane
import Foundation
import Hummingbird
import RouteModel

/// `/api/peers`: enrolled peers (they enroll through `AgentController`), with what their agents last reported.
struct PeersController: Sendable {
    let access: ResourceAccess

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(use: list)
            .get(":id", use: get)
            .put(":id", use: update)
            .delete(":id", use: delete)
    }

    /// NetBird's peer update: `name` (its other settings, SSH and login expiration, are accepted and ignored), plus
    /// Routeplane's `draining` (operator drain mode of a routing peer; absent = unchanged).
    struct Body: Decodable {
        var name: String
        var ssh_enabled: Bool?
        var login_expiration_enabled: Bool?
        var draining: Bool?
    }

    /// In creation order. `?name=` and `?ip=` filter as NetBird's store does (`GetAccountPeers`: `name LIKE %x%`,
    /// `ip LIKE %x%`, both when both are given): a substring of the name (ASCII case-insensitive, as SQLite's
    /// LIKE, NetBird's default store) or of the mesh address; an empty value filters nothing; no match is an empty
    /// list. `%` and `_` match themselves (NetBird passes them to LIKE as wildcards).
    @Sendable func list(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (s, principal) = try await access.snapshot(request, context)
        let name = request.query("name") ?? ""
        let ip = request.query("ip") ?? ""
        let peers = s.state.peers.values.filter { PeerFilter.matches($0, name: name, ip: ip) }
        let statuses = try await access.controlPlane.peerStatuses(tenant: principal.tenant)
        let now = Date()
        return jsonResponse(s.inCreationOrder(Array(peers)) { ObjectRef(.peer, $0.id.rawValue) }
                                .map { PeerJSON($0, in: s, status: statuses[$0.id.rawValue], now: now) },
                            sequence: s.version)
    }

    @Sendable func get(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, principal) = try await access.snapshot(request, context)
        return try await response(id, s, tenant: principal.tenant)
    }

    /// Rename and drain change are decided together and appended in one write.
    @Sendable func update(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let body = try await access.body(Body.self, of: request, context)
        let (name, draining) = (body.name, body.draining)
        let decision: Decision = { s in
            var events = try decideOrThrow(.renamePeer(id: PeerID(id), name: name), s.state)
            if let draining {
                events += try decideOrThrow(.setPeerDraining(id: PeerID(id), draining: draining), evolve(s.state, events))
            }
            return events
        }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.peer, id), decide: decision) { return preview }
        // The agent's status is not part of the write: read first, so the answer (stored with an Idempotency-Key) is
        // built from the write's result alone.
        let status = try await access.controlPlane.peerStatuses(tenant: try context.caller().tenant, peer: id)[id]
        return try await access.write(request, context, ifMatch: ObjectRef(.peer, id), decide: decision) { result in
            let s = result.snapshot
            guard let peer = s.state.peer(PeerID(id)) else { throw ControlPlaneError.notFound(field: "peer_id", message: "peer \(id) not found") }
            return JSONAnswer(PeerJSON(peer, in: s, status: status, now: Date()), etag: s.version(of: ObjectRef(.peer, id)), sequence: s.version)
        }
    }

    /// The peer's credential and NATS user are revoked with its removal; then the NATS resolver learns it.
    @Sendable func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let decision: Decision = { s in try decideOrThrow(.removePeer(id: PeerID(id)), s.state) }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.peer, id), decide: decision) { return preview }
        let tenant = try context.caller().tenant
        let response = try await access.write(request, context, ifMatch: ObjectRef(.peer, id), decide: decision, sideStatements: { tenant, _ in
            ControlPlane.peerRemovalStatements(tenant: tenant, peer: id)
        }, answer: { JSONAnswer(EmptyObject(), sequence: $0.snapshot.version) })
        // A replayed delete never reaches here (answered by the idempotency gate); a no-op one pushes again, harmlessly.
        let sequence = response.headers[.routeplaneSequence].flatMap { Int64($0) } ?? 0
        await access.controlPlane.peerRemoved(tenant: tenant, peer: id, sequence: sequence)
        return response
    }

    func response(_ id: String, _ s: TenantSnapshot, tenant: String) async throws -> Response {
        guard let peer = s.state.peer(PeerID(id)) else { throw ControlPlaneError.notFound(field: "peer_id", message: "peer \(id) not found") }
        let status = try await access.controlPlane.peerStatuses(tenant: tenant, peer: id)[id]
        return jsonResponse(PeerJSON(peer, in: s, status: status, now: Date()), etag: s.version(of: ObjectRef(.peer, id)), sequence: s.version)
    }
}

/// NetBird's peer list filters (`management/server/store/sql_store.go`, `GetAccountPeers`).
enum PeerFilter {
    static func matches(_ peer: Peer, name: String, ip: String) -> Bool {
        (name.isEmpty || asciiLowercased(peer.name).contains(asciiLowercased(name)))
            && (ip.isEmpty || peer.meshIP.description.contains(ip))
    }

    /// SQLite's LIKE folds ASCII letters only.
    static func asciiLowercased(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}
