import ControlPlane
import Hummingbird
import RouteModel

/// `/api/routes`: NetBird's network routes.
struct RoutesController: Sendable {
    let access: ResourceAccess

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(use: list)
            .post(use: create)
            .get(":id", use: get)
            .put(":id", use: update)
            .delete(":id", use: delete)
    }

    /// NetBird's route request body (`api.RouteRequest`, decoded by Go's `encoding/json`): a field that is absent or
    /// null takes its zero value (`false`, `0`, `""`, no groups), as in NetBird's `routes_handler.go`, so missing
    /// booleans are false and a missing metric or network id is refused by the rule it breaks. `network_type` is not
    /// read at all (NetBird derives it from `network`/`domains`), nor any other unknown field. Fields are checked in
    /// this order.
    struct Body: Decodable {
        var peer: String?
        var network_id: String?
        var description: String?
        var network: String?
        var domains: [String]?
        var peer_groups: [String]?
        var metric: Int64?
        var masquerade: Bool?
        var groups: [String]?
        var enabled: Bool?
        var keep_route: Bool?
        var access_control_groups: [String]?
        var skip_auto_apply: Bool?

        var input: RouteInput {
            // Some clients send `peer: ""` next to `peer_groups`, or `peer_groups: []` next to `peer`: the empty one
            // is taken as absent (NetBird refuses both pairs with "only one of 'peer' or 'peer_groups'").
            let peer = self.peer == "" ? nil : self.peer.map(PeerID.init)
            let peerGroups = peer != nil && peer_groups?.isEmpty == true ? nil : peer_groups?.map(GroupID.init)
            return RouteInput(
                networkID: network_id ?? "",
                description: description ?? "",
                network: network,
                domains: domains,
                peer: peer,
                peerGroups: peerGroups,
                metric: Int(clamping: metric ?? 0),
                masquerade: masquerade ?? false,
                groups: (groups ?? []).map(GroupID.init),
                enabled: enabled ?? false,
                keepRoute: keep_route ?? false,
                accessControlGroups: access_control_groups?.map(GroupID.init),
                skipAutoApply: skip_auto_apply)
        }
    }

    @Sendable func list(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (s, _) = try await access.snapshot(request, context)
        let routes = s.inCreationOrder(Array(s.state.routes.values)) { ObjectRef(.route, $0.id.rawValue) }
        return rawJSONResponse(RouteJSON.jsonBytes(routes.map { RouteJSON($0, in: s.state) }), sequence: s.version)
    }

    @Sendable func get(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, _) = try await access.snapshot(request, context)
        return try Self.response(RouteID(id), s)
    }

    @Sendable func create(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await access.body(Body.self, of: request, context)
        try Self.refuseWildcardDomains(body.domains)
        let input = body.input
        let id = RouteID(Secrets.id())
        let decision: Decision = { s in try decideOrThrow(.createRoute(id: id, input), s.state) }
        if let preview = try await access.dryRun(request, context, decide: decision) { return preview }
        return try await access.write(request, context, decide: decision) { try Self.answer(id, $0.snapshot) }
    }

    @Sendable func update(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let body = try await access.body(Body.self, of: request, context)
        try Self.refuseWildcardDomains(body.domains)
        let input = body.input
        let decision: Decision = { s in try decideOrThrow(.updateRoute(id: RouteID(id), input), s.state) }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.route, id), decide: decision) { return preview }
        return try await access.write(request, context, ifMatch: ObjectRef(.route, id), decide: decision) { try Self.answer(RouteID(id), $0.snapshot) }
    }

    @Sendable func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let decision: Decision = { s in try decideOrThrow(.deleteRoute(id: RouteID(id)), s.state) }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.route, id), decide: decision) { return preview }
        return try await access.write(request, context, ifMatch: ObjectRef(.route, id), decide: decision) { JSONAnswer(EmptyObject(), sequence: $0.snapshot.version) }
    }

    static func response(_ id: RouteID, _ s: TenantSnapshot) throws -> Response { try answer(id, s).response }

    static func answer(_ id: RouteID, _ s: TenantSnapshot) throws -> JSONAnswer {
        guard let route = s.state.route(id) else { throw ControlPlaneError.notFound(field: "route_id", message: "route \(id.rawValue) not found") }
        return JSONAnswer(json: RouteJSON(route, in: s.state).jsonBytes, etag: s.version(of: ObjectRef(.route, id.rawValue)), sequence: s.version)
    }
}
