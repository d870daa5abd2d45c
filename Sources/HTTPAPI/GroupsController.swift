import ControlPlane
import Hummingbird
import RouteModel

/// `/api/groups`: distribution groups (peers that receive routes, or that route).
struct GroupsController: Sendable {
    let access: ResourceAccess

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(use: list)
            .post(use: create)
            .get(":id", use: get)
            .put(":id", use: update)
            .delete(":id", use: delete)
    }

    /// NetBird's group body: `name` and `peers` (ids; NetBird also accepts objects with an `id`).
    struct Body: Decodable {
        var name: String
        var peers: PeerList?
    }

    /// Peer ids, each a string or an object with an `id` string.
    struct PeerList: Decodable {
        var ids: [PeerID] = []

        init(from decoder: any Decoder) throws {
            switch try decoder.singleValueContainer().decode(JSONValue.self) {
            case .null: break
            case .array(let items):
                for item in items {
                    switch item {
                    case .string(let s): ids.append(PeerID(s))
                    case .object(let o): if case .string(let s)? = o["id"] { ids.append(PeerID(s)) } else { fallthrough }
                    default: throw APIError(.badRequest, "couldn't parse JSON request: field peers must be an array of peer ids", field: "peers")
                    }
                }
            case let other:
                throw APIError(.badRequest, "couldn't parse JSON request: field peers must be an array of peer ids, got \(other.typeName)", field: "peers")
            }
        }
    }

    /// In creation order, the built-in "All" group first (NetBird creates it with the account). `?name=` is
    /// NetBird's lookup (`groups_handler.go` `getAllGroups` → store `GetGroupByName`: `name = ?`, exact and
    /// case-sensitive): a list of the one group with that name, or 404 "group: <name> not found"; an empty value
    /// lists all.
    @Sendable func list(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (s, _) = try await access.snapshot(request, context)
        if let name = request.query("name"), !name.isEmpty {
            guard let id = s.state.group(named: name), let group = s.state.group(id) else {
                throw ControlPlaneError.notFound(field: "name", message: "group: \(name) not found")
            }
            return jsonResponse([GroupJSON(group, in: s.state)], sequence: s.version)
        }
        let all = s.state.allGroupID
        let groups = s.inCreationOrder(Array(s.state.groups.values)) { ObjectRef(.group, $0.id.rawValue) }
        let ordered = groups.filter { $0.id == all } + groups.filter { $0.id != all }
        return jsonResponse(ordered.map { GroupJSON($0, in: s.state) }, sequence: s.version)
    }

    @Sendable func get(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, _) = try await access.snapshot(request, context)
        return try Self.response(GroupID(id), s)
    }

    @Sendable func create(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await access.body(Body.self, of: request, context)
        let (name, peers) = (body.name, body.peers?.ids ?? [])
        let id = GroupID(Secrets.id())
        let decision: Decision = { s in try decideOrThrow(.createGroup(id: id, name: name, peers: peers), s.state) }
        if let preview = try await access.dryRun(request, context, decide: decision) { return preview }
        return try await access.write(request, context, decide: decision) { try Self.answer(id, $0.snapshot) }
    }

    @Sendable func update(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let body = try await access.body(Body.self, of: request, context)
        let (name, peers) = (body.name, body.peers?.ids ?? [])
        let decision: Decision = { s in try decideOrThrow(.updateGroup(id: GroupID(id), name: name, peers: peers), s.state) }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.group, id), decide: decision) { return preview }
        return try await access.write(request, context, ifMatch: ObjectRef(.group, id), decide: decision) { try Self.answer(GroupID(id), $0.snapshot) }
    }

    @Sendable func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let decision: Decision = { s in try decideOrThrow(.deleteGroup(id: GroupID(id)), s.state) }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.group, id), decide: decision) { return preview }
        return try await access.write(request, context, ifMatch: ObjectRef(.group, id), decide: decision) { JSONAnswer(EmptyObject(), sequence: $0.snapshot.version) }
    }

    static func response(_ id: GroupID, _ s: TenantSnapshot) throws -> Response { try answer(id, s).response }

    static func answer(_ id: GroupID, _ s: TenantSnapshot) throws -> JSONAnswer {
        guard let group = s.state.group(id) else { throw ControlPlaneError.notFound(field: "group_id", message: "group \(id.rawValue) not found") }
        return JSONAnswer(GroupJSON(group, in: s.state), etag: s.version(of: ObjectRef(.group, id.rawValue)), sequence: s.version)
    }
}
