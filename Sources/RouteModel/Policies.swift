// Access-control policies, shaped like NetBird's (`types.Policy`, `types.PolicyRule`, `api.PolicyUpdate`): rules from
// source groups to destination groups, accept or drop, a protocol and ports. In Routeplane they decide what a routing
// peer forwards to a route's range when the route has access-control groups (see `ForwardRules.swift`).
//
// Events (`PolicyCreated`, `PolicyUpdated`, `PolicyDeleted`) are new types: no stored event changes shape. They are
// rare, so they decode through Foundation's decoder like the access events.

public struct PolicyID: StringIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// NetBird's `PolicyTrafficActionType`.
public enum PolicyAction: String, Hashable, Sendable, Codable, CaseIterable {
    case accept, drop
}

/// NetBird's `PolicyRuleProtocolType`.
public enum PolicyProtocol: String, Hashable, Sendable, Codable, CaseIterable {
    case all, tcp, udp, icmp

    /// Ports make sense only for TCP and UDP (NetBird: "for ALL or ICMP protocol ports is not allowed").
    public var hasPorts: Bool { self == .tcp || self == .udp }
}

/// An inclusive port range (NetBird `RulePortRange`).
public struct PortRange: Hashable, Comparable, Sendable, Codable {
    public var start: Int
    public var end: Int
    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }
    public static func < (a: PortRange, b: PortRange) -> Bool { (a.start, a.end) < (b.start, b.end) }
}

/// One rule of a policy. Group lists are sorted without duplicates; `ports` sorted without duplicates.
public struct PolicyRule: Hashable, Sendable, Codable {
    public var id: String
    public var name: String
    public var description: String
    public var enabled: Bool
    public var action: PolicyAction
    public var bidirectional: Bool
    public var `protocol`: PolicyProtocol
    public var sources: [GroupID]
    public var destinations: [GroupID]
    public var ports: [Int]
    public var portRanges: [PortRange]

    public init(id: String, name: String = "", description: String = "", enabled: Bool = true, action: PolicyAction = .accept,
                bidirectional: Bool = false, protocol proto: PolicyProtocol = .all, sources: [GroupID], destinations: [GroupID],
                ports: [Int] = [], portRanges: [PortRange] = []) {
        self.id = id
        self.name = name
        self.description = description
        self.enabled = enabled
        self.action = action
        self.bidirectional = bidirectional
        self.protocol = proto
        self.sources = sources
        self.destinations = destinations
        self.ports = ports
        self.portRanges = portRanges
    }

    enum CodingKeys: String, CodingKey {
        case id, name, description, enabled, action, bidirectional, `protocol`, sources, destinations, ports
        case portRanges = "port_ranges"
    }
}

/// A policy (NetBird `types.Policy`, without posture checks and network resources).
public struct Policy: Hashable, Sendable, Codable {
    public var id: PolicyID
    public var name: String
    public var description: String
    public var enabled: Bool
    /// Never empty.
    public var rules: [PolicyRule]

    public init(id: PolicyID, name: String, description: String = "", enabled: Bool = true, rules: [PolicyRule]) {
        self.id = id
        self.name = name
        self.description = description
        self.enabled = enabled
        self.rules = rules
    }

    /// Every group the policy names, as a source or a destination of any rule.
    public var referencedGroups: Set<GroupID> {
        var s = Set<GroupID>()
        for r in rules {
            s.formUnion(r.sources)
            s.formUnion(r.destinations)
        }
        return s
    }

    /// The groups any rule names as a destination (NetBird `GetAllRoutePoliciesFromGroups` takes the whole policy when
    /// one rule's destinations contain a route's access-control group).
    public var destinationGroups: Set<GroupID> {
        var s = Set<GroupID>()
        for r in rules { s.formUnion(r.destinations) }
        return s
    }
}

// MARK: - Events

public struct PolicyCreated: EventPayload {
    public static let type = "PolicyCreated"
    public static let eventVersion = 1
    public var policy: Policy
    public init(policy: Policy) { self.policy = policy }
}

/// A policy replaced by a new version of itself (same id); both carried whole.
public struct PolicyUpdated: EventPayload {
    public static let type = "PolicyUpdated"
    public static let eventVersion = 1
    public var old: Policy
    public var new: Policy
    public init(old: Policy, new: Policy) {
        self.old = old
        self.new = new
    }
}

public struct PolicyDeleted: EventPayload {
    public static let type = "PolicyDeleted"
    public static let eventVersion = 1
    /// The policy as it was.
    public var policy: Policy
    public init(policy: Policy) { self.policy = policy }
}

// MARK: - Commands and rules

/// A rule of a policy request, raw (NetBird's `api.PolicyRuleUpdate`): `decide` validates it.
public struct PolicyRuleInput: Hashable, Sendable {
    /// Kept on update when the policy already has a rule with this id (NetBird's handler does the same).
    public var id: String?
    public var name: String
    public var description: String?
    public var enabled: Bool
    public var action: String
    public var bidirectional: Bool
    public var `protocol`: String
    /// nil = the key was missing (NetBird's "specify either sources or source resources …").
    public var sources: [GroupID]?
    public var destinations: [GroupID]?
    /// Port numbers as NetBird's API takes them (strings).
    public var ports: [String]?
    public var portRanges: [PortRange]?
    /// `source_resource` / `destination_resource` were given (network resources: not supported by Routeplane).
    public var hasSourceResource: Bool
    public var hasDestinationResource: Bool

    public init(id: String? = nil, name: String = "", description: String? = nil, enabled: Bool = true, action: String = "accept",
                bidirectional: Bool = false, protocol proto: String = "all", sources: [GroupID]?, destinations: [GroupID]?,
                ports: [String]? = nil, portRanges: [PortRange]? = nil, hasSourceResource: Bool = false,
                hasDestinationResource: Bool = false) {
        self.id = id
        self.name = name
        self.description = description
        self.enabled = enabled
        self.action = action
        self.bidirectional = bidirectional
        self.protocol = proto
        self.sources = sources
        self.destinations = destinations
        self.ports = ports
        self.portRanges = portRanges
        self.hasSourceResource = hasSourceResource
        self.hasDestinationResource = hasDestinationResource
    }
}

/// The body of a policy create/update (NetBird's `api.PolicyUpdate`).
public struct PolicyInput: Hashable, Sendable {
    public var name: String
    public var description: String?
    public var enabled: Bool
    public var rules: [PolicyRuleInput]

    public init(name: String, description: String? = nil, enabled: Bool = true, rules: [PolicyRuleInput]) {
        self.name = name
        self.description = description
        self.enabled = enabled
        self.rules = rules
    }
}

/// Commands about policies. `newRuleIDs`: fresh ids from the I/O shell, one per rule at least, used for rules that
/// keep no id of their own (so `decide` stays deterministic).
public enum PolicyCommand: Hashable, Sendable {
    case createPolicy(id: PolicyID, PolicyInput, newRuleIDs: [String])
    /// Replaces the whole policy (NetBird `PUT /api/policies/{id}`).
    case updatePolicy(id: PolicyID, PolicyInput, newRuleIDs: [String])
    case deletePolicy(id: PolicyID)
}

public func decide(_ command: PolicyCommand, _ state: TenantState) -> Result<[RouteEvent], ValidationError> {
    do {
        return .success(try PolicyRules.decide(command, state))
    } catch {
        return .failure(error)
    }
}

public func decideOrThrow(_ command: PolicyCommand, _ state: TenantState) throws(ValidationError) -> [RouteEvent] {
    try PolicyRules.decide(command, state)
}

extension Limits {
    /// Rules in one policy (NetBird has no bound; this keeps one request's work and one view's size bounded).
    public static let policyMaxRules = 50
    /// Ports, or port ranges, in one rule.
    public static let policyRuleMaxPorts = 64
    /// Groups in one rule's sources, or destinations.
    public static let policyRuleMaxGroups = 100
}

enum PolicyRules {
    static func decide(_ command: PolicyCommand, _ state: TenantState) throws(ValidationError) -> [RouteEvent] {
        switch command {
        case .createPolicy(let id, let input, let newRuleIDs):
            if id.rawValue.isEmpty { throw .invalid("id", "policy id must not be empty") }
            if state.policies[id] != nil { throw .conflict("id", "policy \(id) already exists") }
            let policy = try validate(input, id: id, old: nil, newRuleIDs: newRuleIDs, in: state)
            return [.policyCreated(PolicyCreated(policy: policy))]

        case .updatePolicy(let id, let input, let newRuleIDs):
            guard let old = state.policies[id] else { throw .notFound("policy_id", "policy \(id) not found") }
            let new = try validate(input, id: id, old: old, newRuleIDs: newRuleIDs, in: state)
            if new == old { return [] }
            return [.policyUpdated(PolicyUpdated(old: old, new: new))]

        case .deletePolicy(let id):
            guard let old = state.policies[id] else { throw .notFound("policy_id", "policy \(id) not found") }
            return [.policyDeleted(PolicyDeleted(policy: old))]
        }
    }

    /// NetBird's checks in its order and words (`policies_handler.go` savePolicy), then the groups (NetBird drops unknown
    /// group ids silently in `validatePolicy`; Routeplane refuses them, naming the rule and the field).
    static func validate(_ input: PolicyInput, id: PolicyID, old: Policy?, newRuleIDs: [String],
                         in state: TenantState) throws(ValidationError) -> Policy {
        if input.name.isEmpty { throw .invalid("name", "policy name shouldn't be empty") }
        let nameLength = input.name.unicodeScalars.count
        if nameLength > Limits.nameMaxScalars {
            throw .invalid("name", "name must be 1 to \(Limits.nameMaxScalars) characters, got \(nameLength)")
        }
        let description = input.description ?? ""
        if description.unicodeScalars.count > Limits.descriptionMaxScalars {
            throw .invalid("description", "description must be at most \(Limits.descriptionMaxScalars) characters, got \(description.unicodeScalars.count)")
        }
        if input.rules.isEmpty { throw .invalid("rules", "policy rules shouldn't be empty") }
        if input.rules.count > Limits.policyMaxRules {
            throw .invalid("rules", "a policy has at most \(Limits.policyMaxRules) rules, got \(input.rules.count)")
        }
        let oldRuleIDs = Set(old?.rules.map(\.id) ?? [])
        var freshIDs = newRuleIDs.makeIterator()
        var usedIDs = Set<String>()
        var rules: [PolicyRule] = []
        for (index, r) in input.rules.enumerated() {
            let field = "rules[\(index)]"
            let ruleID: String
            if let given = r.id, oldRuleIDs.contains(given), !usedIDs.contains(given) {
                ruleID = given
            } else {
                guard let fresh = freshIDs.next() else { throw .invalid("\(field).id", "no fresh rule id left for rule \(index)") }
                ruleID = fresh
            }
            usedIDs.insert(ruleID)
            rules.append(try validateRule(r, id: ruleID, field: field, in: state))
        }
        return Policy(id: id, name: input.name, description: description, enabled: input.enabled, rules: rules)
    }

    static func validateRule(_ r: PolicyRuleInput, id: String, field: String, in state: TenantState) throws(ValidationError) -> PolicyRule {
        if r.hasSourceResource || r.hasDestinationResource {
            throw .invalid(r.hasSourceResource ? "\(field).source_resource" : "\(field).destination_resource",
                           "network resources are not supported: use sources and destinations (groups)")
        }
        guard let sourcesIn = r.sources, let destinationsIn = r.destinations else {
            throw .invalid(r.sources == nil ? "\(field).sources" : "\(field).destinations",
                           "specify either sources or source resources and destinations or destination resources")
        }
        guard let action = PolicyAction(rawValue: r.action) else { throw .invalid("\(field).action", "unknown action type") }
        guard let proto = PolicyProtocol(rawValue: r.protocol) else {
            throw .invalid("\(field).protocol", "unknown protocol type: \(r.protocol)")
        }
        let portTexts = r.ports ?? []
        let ranges = r.portRanges ?? []
        if !portTexts.isEmpty && !ranges.isEmpty {
            throw .invalid("\(field).ports", "specify either individual ports or port ranges, not both")
        }
        if portTexts.count > Limits.policyRuleMaxPorts || ranges.count > Limits.policyRuleMaxPorts {
            throw .invalid(portTexts.isEmpty ? "\(field).port_ranges" : "\(field).ports",
                           "a rule has at most \(Limits.policyRuleMaxPorts) ports or port ranges")
        }
        var ports: [Int] = []
        for text in portTexts {
            // NetBird: strconv.Atoi, then 1...65535. Atoi takes an optional sign and decimal digits only.
            guard let port = Int(text), (1...65535).contains(port) else {
                throw .invalid("\(field).ports", "valid port value is in 1..65535 range")
            }
            ports.append(port)
        }
        for range in ranges {
            if range.start < 1 || range.end > 65535 {
                throw .invalid("\(field).port_ranges", "valid port value is in 1..65535 range")
            }
            // NetBird does not check the order; a reversed range matches nothing in nftables, so it is refused.
            if range.start > range.end {
                throw .invalid("\(field).port_ranges", "port range start \(range.start) is after its end \(range.end)")
            }
        }
        if !proto.hasPorts && (!ports.isEmpty || !ranges.isEmpty) {
            throw .invalid("\(field).ports", "for ALL or ICMP protocol ports is not allowed")
        }
        let sources = try existingGroups(sourcesIn, field: "\(field).sources", in: state)
        let destinations = try existingGroups(destinationsIn, field: "\(field).destinations", in: state)
        let name = r.name
        if name.unicodeScalars.count > Limits.nameMaxScalars {
            throw .invalid("\(field).name", "name must be at most \(Limits.nameMaxScalars) characters, got \(name.unicodeScalars.count)")
        }
        let description = r.description ?? ""
        if description.unicodeScalars.count > Limits.descriptionMaxScalars {
            throw .invalid("\(field).description", "description must be at most \(Limits.descriptionMaxScalars) characters, got \(description.unicodeScalars.count)")
        }
        return PolicyRule(id: id, name: name, description: description, enabled: r.enabled, action: action,
                          bidirectional: r.bidirectional, protocol: proto, sources: sources, destinations: destinations,
                          ports: Array(Set(ports)).sorted(), portRanges: Array(Set(ranges)).sorted())
    }

    static func existingGroups(_ groups: [GroupID], field: String, in state: TenantState) throws(ValidationError) -> [GroupID] {
        let unique = Set(groups).sorted()
        if unique.count > Limits.policyRuleMaxGroups {
            throw .invalid(field, "a rule names at most \(Limits.policyRuleMaxGroups) groups in \(field), got \(unique.count)")
        }
        for g in unique where state.group(g) == nil {
            throw .invalid(field, "group \(g) not found")
        }
        return unique
    }
}
