import ControlPlane
import Hummingbird
import RouteModel

/// `/api/policies`: NetBird's access-control policies (`policies_handler.go`). Rules whose destinations hold a route's
/// access-control group decide what that route's routing peers forward to its range.
struct PoliciesController: Sendable {
    let access: ResourceAccess

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(use: list)
            .post(use: create)
            .get(":id", use: get)
            .put(":id", use: update)
            .delete(":id", use: delete)
    }

    /// NetBird's `api.PolicyUpdate`: `name`, `enabled` and `rules` required (its spec); `description` optional;
    /// `source_posture_checks` accepted and ignored when empty (Routeplane has no posture checks).
    struct Body: Decodable {
        var name: String
        var description: String?
        var enabled: Bool
        var rules: [RuleBody]
        var source_posture_checks: [String]?
    }

    /// NetBird's `api.PolicyRuleUpdate`: `name`, `enabled`, `bidirectional`, `protocol`, `action` required.
    struct RuleBody: Decodable {
        var id: String?
        var name: String
        var description: String?
        var enabled: Bool
        var action: String
        var bidirectional: Bool
        var `protocol`: String
        var sources: [String]?
        var destinations: [String]?
        var ports: [String]?
        var port_ranges: [PortRangeBody]?
        var source_resource: JSONValue?
        var destination_resource: JSONValue?
    }

    struct PortRangeBody: Decodable {
        var start: Int
        var end: Int
    }

    static func input(_ body: Body) throws -> PolicyInput {
        if let checks = body.source_posture_checks, !checks.isEmpty {
            throw ControlPlaneError.validation(field: "source_posture_checks", message: "posture checks are not supported")
        }
        return PolicyInput(name: body.name, description: body.description, enabled: body.enabled, rules: body.rules.map { r in
            PolicyRuleInput(id: r.id, name: r.name, description: r.description, enabled: r.enabled, action: r.action,
                            bidirectional: r.bidirectional, protocol: r.protocol, sources: r.sources?.map(GroupID.init),
                            destinations: r.destinations?.map(GroupID.init), ports: r.ports,
                            portRanges: r.port_ranges?.map { PortRange(start: $0.start, end: $0.end) },
                            hasSourceResource: r.source_resource.map { $0 != .null } ?? false,
                            hasDestinationResource: r.destination_resource.map { $0 != .null } ?? false)
        })
    }

    /// In creation order.
    @Sendable func list(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (s, _) = try await access.snapshot(context)
        let policies = s.inCreationOrder(Array(s.state.policies.values)) { ObjectRef(.policy, $0.id.rawValue) }
        return jsonResponse(policies.map { PolicyJSON($0, in: s.state) }, sequence: s.version)
    }

    @Sendable func get(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let (s, _) = try await access.snapshot(context)
        return try Self.response(PolicyID(id), s)
    }

    @Sendable func create(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let input = try Self.input(try await access.body(Body.self, of: request, context))
        let id = PolicyID(Secrets.id())
        let ruleIDs = input.rules.map { _ in Secrets.id() }
        let decision: Decision = { s in try decideOrThrow(PolicyCommand.createPolicy(id: id, input, newRuleIDs: ruleIDs), s.state) }
        if let preview = try await access.dryRun(request, context, decide: decision) { return preview }
        return try await access.write(request, context, decide: decision) { try Self.answer(id, $0.snapshot) }
    }

    @Sendable func update(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let input = try Self.input(try await access.body(Body.self, of: request, context))
        let ruleIDs = input.rules.map { _ in Secrets.id() }
        let decision: Decision = { s in try decideOrThrow(PolicyCommand.updatePolicy(id: PolicyID(id), input, newRuleIDs: ruleIDs), s.state) }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.policy, id), decide: decision) { return preview }
        return try await access.write(request, context, ifMatch: ObjectRef(.policy, id), decide: decision) { try Self.answer(PolicyID(id), $0.snapshot) }
    }

    @Sendable func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.pathID()
        let decision: Decision = { s in try decideOrThrow(PolicyCommand.deletePolicy(id: PolicyID(id)), s.state) }
        if let preview = try await access.dryRun(request, context, ifMatch: ObjectRef(.policy, id), decide: decision) { return preview }
        return try await access.write(request, context, ifMatch: ObjectRef(.policy, id), decide: decision) { JSONAnswer(EmptyObject(), sequence: $0.snapshot.version) }
    }

    static func response(_ id: PolicyID, _ s: TenantSnapshot) throws -> Response { try answer(id, s).response }

    static func answer(_ id: PolicyID, _ s: TenantSnapshot) throws -> JSONAnswer {
        guard let policy = s.state.policies[id] else {
            throw ControlPlaneError.notFound(field: "policy_id", message: "policy \(id.rawValue) not found")
        }
        return JSONAnswer(PolicyJSON(policy, in: s.state), etag: s.version(of: ObjectRef(.policy, id.rawValue)), sequence: s.version)
    }
}

/// NetBird's `api.Policy`: groups as `GroupMinimum`, ports as strings, `port_ranges` and `ports` only when set.
struct PolicyJSON: Encodable {
    var id: String
    var name: String
    var description: String
    var enabled: Bool
    var source_posture_checks: [String] = []
    var rules: [Rule]

    struct Rule: Encodable {
        var id: String
        var name: String
        var description: String
        var enabled: Bool
        var action: String
        var bidirectional: Bool
        var `protocol`: String
        var ports: [String]?
        var port_ranges: [Range]?
        var sources: [GroupMinimumJSON]
        var destinations: [GroupMinimumJSON]
    }

    struct Range: Encodable {
        var start: Int
        var end: Int
    }

    init(_ p: Policy, in state: TenantState) {
        id = p.id.rawValue
        name = p.name
        description = p.description
        enabled = p.enabled
        func groups(_ ids: [GroupID]) -> [GroupMinimumJSON] {
            ids.compactMap { state.group($0) }.map { GroupMinimumJSON(id: $0.id.rawValue, name: $0.name, peers_count: $0.peers.count) }
        }
        rules = p.rules.map { r in
            Rule(id: r.id, name: r.name, description: r.description, enabled: r.enabled, action: r.action.rawValue,
                 bidirectional: r.bidirectional, protocol: r.protocol.rawValue,
                 ports: r.ports.isEmpty ? nil : r.ports.map(String.init),
                 port_ranges: r.portRanges.isEmpty ? nil : r.portRanges.map { Range(start: $0.start, end: $0.end) },
                 sources: groups(r.sources), destinations: groups(r.destinations))
        }
    }
}
