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

    /// NetBird's route request body. `network_type` may be sent; it must then agree with what the server derives.
    /// Unknown fields are ignored. Fields are checked in this order.
    struct Body: Decodable {
        var peer: String?
        var network_id: String
        var description: String?
        var network: String?
        var domains: [String]?
        var peer_groups: [String]?
        var metric: Int64
        var masquerade: Bool
        var groups: [String]
        var enabled: Bool
        var keep_route: Bool?
        var access_control_groups: [String]?
        var skip_auto_apply: Bool?
        var network_type: String?

        var input: RouteInput {
            RouteInput(
                networkID: network_id,
                description: description ?? "",
                network: network,
                domains: domains,
                peer: peer == "" ? nil : peer.map(PeerID.init), // some clients send "" next to peer_groups
                peerGroups: peer_groups?.map(GroupID.init),
                metric: Int(clamping: metric),
                masquerade: masquerade,
                groups: groups.map(GroupID.init),
                enabled: enabled,
                keepRoute: keep_route ?? false,
                accessControlGroups: access_control_groups?.map(GroupID.init),
                skipAutoApply: skip_auto_apply)
        }
    }

    static func checkNetworkType(_ sent: String?, _ route: Route?) throws(ControlPlaneError) {
        guard let sent, !sent.isEmpty, let route else { return }
        if sent != route.destination.networkType {
            throw .validation(field: "network_type",
                              message: "network_type \(sent) does not match the network (\(route.destination.networkType)); it can be left out")
        }
    }

    @Sendable func list(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (s, _) = try await access.snapshot(request)
        let routes = s.state.routes.values.sorted { $0.id < $1.id }.map(RouteJSON.init)
        return jsonResponse(routes, sequence: s.version)
    }

    @Sendable func get(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, _) = try await access.snapshot(request)
        return try Self.response(RouteID(id), s)
    }

    @Sendable func create(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await access.body(Body.self, of: request)
        let (input, networkType) = (body.input, body.network_type)
        let id = RouteID(Secrets.id())
        let (result, _) = try await access.write(request, context) { s in
            let events = try decideOrThrow(.createRoute(id: id, input), s.state)
            if case .routeCreated(let e)? = events.first { try Self.checkNetworkType(networkType, e.route) }
            return events
        }
        return try Self.response(id, result.snapshot)
    }

    @Sendable func update(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let body = try await access.body(Body.self, of: request)
        let (input, networkType) = (body.input, body.network_type)
        let (result, _) = try await access.write(request, context, ifMatch: ObjectRef(.route, id)) { s in
            let events = try decideOrThrow(.updateRoute(id: RouteID(id), input), s.state)
            if case .routeUpdated(let e)? = events.first { try Self.checkNetworkType(networkType, e.new) }
            if events.isEmpty { try Self.checkNetworkType(networkType, s.state.route(RouteID(id))) }
            return events
        }
        return try Self.response(RouteID(id), result.snapshot)
    }

    @Sendable func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (result, _) = try await access.write(request, context, ifMatch: ObjectRef(.route, id)) { s in
            try decideOrThrow(.deleteRoute(id: RouteID(id)), s.state)
        }
        return jsonResponse(EmptyObject(), sequence: result.snapshot.version)
    }

    static func response(_ id: RouteID, _ s: TenantSnapshot) throws -> Response {
        guard let route = s.state.route(id) else { throw ControlPlaneError.notFound(field: "route_id", message: "route \(id.rawValue) not found") }
        return jsonResponse(RouteJSON(route), etag: s.version(of: ObjectRef(.route, id.rawValue)), sequence: s.version)
    }
}
