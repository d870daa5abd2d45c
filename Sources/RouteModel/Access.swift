#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// Tenants, API tokens and setup keys: who may change a tenant and how peers join it.
// Secrets never appear here: the I/O shell keeps only their SHA-256 (table `credentials`);
// events carry ids, names and policy, so the audit log shows who created or revoked what.

public struct SetupKeyID: StringIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

public struct TokenID: StringIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// NetBird's setup key (`api.SetupKey`): lets an agent enroll a peer into the tenant.
public struct SetupKey: Hashable, Sendable, Codable {
    public enum KeyType: String, Hashable, Sendable, Codable, CaseIterable {
        case reusable
        case oneOff = "one-off"
    }

    public var id: SetupKeyID
    public var name: String
    public var type: KeyType
    /// Unix seconds; nil = never expires.
    public var expiresAt: Int64?
    /// Groups every peer enrolled with this key joins (sorted, no duplicates).
    public var autoGroups: [GroupID]
    /// 0 = unlimited (NetBird); a one-off key is limited to 1 whatever this says.
    public var usageLimit: Int
    public var revoked: Bool
    /// Unix seconds of creation.
    public var createdAt: Int64
    /// NetBird's `ephemeral`: peers enrolled with the key are meant to be removed after inactivity (stored and
    /// answered; the removal itself is not done, see the notes). Absent in events written before: false.
    public var ephemeral: Bool
    /// NetBird's `KeySecret`: the key's first 5 characters and `****`, the only part of the secret ever shown again.
    /// nil for keys created before it was recorded.
    public var keySecret: String?
    /// Unix seconds of the last change (revoke, auto groups); nil = never changed (the API answers `createdAt`).
    public var updatedAt: Int64?

    public init(id: SetupKeyID, name: String, type: KeyType, expiresAt: Int64?, autoGroups: [GroupID],
                usageLimit: Int, revoked: Bool = false, createdAt: Int64, ephemeral: Bool = false,
                keySecret: String? = nil, updatedAt: Int64? = nil) {
        self.id = id
        self.name = name
        self.type = type
        self.expiresAt = expiresAt
        self.autoGroups = autoGroups
        self.usageLimit = usageLimit
        self.revoked = revoked
        self.createdAt = createdAt
        self.ephemeral = ephemeral
        self.keySecret = keySecret
        self.updatedAt = updatedAt
    }

    /// NetBird's masked key (`types.HiddenKey(key, 4)`): the first 5 characters of the secret and 4 asterisks.
    public static func masked(secret: String) -> String { String(secret.prefix(5)) + "****" }

    /// How many enrollments the key allows (nil = unlimited).
    public var effectiveLimit: Int? {
        if type == .oneOff { return 1 }
        return usageLimit > 0 ? usageLimit : nil
    }

    enum CodingKeys: String, CodingKey {
        case id, name, type, revoked, ephemeral
        case expiresAt = "expires_at"
        case autoGroups = "auto_groups"
        case usageLimit = "usage_limit"
        case createdAt = "created_at"
        case keySecret = "key_secret"
        case updatedAt = "updated_at"
    }

    /// Every field added after the first event shape is optional, so every stored event still decodes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(SetupKeyID.self, forKey: .id), name: try c.decode(String.self, forKey: .name),
                  type: try c.decode(KeyType.self, forKey: .type), expiresAt: try c.decodeIfPresent(Int64.self, forKey: .expiresAt),
                  autoGroups: try c.decode([GroupID].self, forKey: .autoGroups), usageLimit: try c.decode(Int.self, forKey: .usageLimit),
                  revoked: try c.decode(Bool.self, forKey: .revoked), createdAt: try c.decode(Int64.self, forKey: .createdAt),
                  ephemeral: try c.decodeIfPresent(Bool.self, forKey: .ephemeral) ?? false,
                  keySecret: try c.decodeIfPresent(String.self, forKey: .keySecret),
                  updatedAt: try c.decodeIfPresent(Int64.self, forKey: .updatedAt))
    }

    /// The later fields are written only when set, so a key without them encodes as it always did.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(type, forKey: .type)
        try c.encodeIfPresent(expiresAt, forKey: .expiresAt)
        try c.encode(autoGroups, forKey: .autoGroups)
        try c.encode(usageLimit, forKey: .usageLimit)
        try c.encode(revoked, forKey: .revoked)
        try c.encode(createdAt, forKey: .createdAt)
        if ephemeral { try c.encode(true, forKey: .ephemeral) }
        try c.encodeIfPresent(keySecret, forKey: .keySecret)
        try c.encodeIfPresent(updatedAt, forKey: .updatedAt)
    }
}

/// An API token as the state knows it (its secret is only in the credentials table, hashed).
public struct TokenInfo: Hashable, Sendable {
    public var name: String
    public var revoked: Bool
    /// `admin` for tokens created before scopes existed.
    public var scope: TokenScope = .admin
    /// Unix seconds; nil for tokens created before expiry existed (see `TokenPolicy.effectiveExpiry`).
    public var expiresAt: Int64?
    /// Unix seconds; nil for tokens created before it was recorded.
    public var createdAt: Int64?
    /// Who created it, as the audit log names initiators ("token:<id>", "cli"); nil before it was recorded.
    public var createdBy: String?
}

/// What the state knows about a setup key besides its policy.
public struct SetupKeyUsage: Hashable, Sendable {
    public var usedTimes: Int = 0
    /// Unix seconds of the last enrollment with it.
    public var lastUsed: Int64?
}

/// NetBird's setup-key states (`api.SetupKey.state`).
public enum SetupKeyState: String, Sendable {
    case valid, revoked, expired, overused
}

extension TenantState {
    public func setupKeyState(_ id: SetupKeyID, now: Int64) -> SetupKeyState? {
        guard let key = setupKeys[id] else { return nil }
        if key.revoked { return .revoked }
        if let e = key.expiresAt, now >= e { return .expired }
        if let limit = key.effectiveLimit, (setupKeyUsage[id]?.usedTimes ?? 0) >= limit { return .overused }
        return .valid
    }
}

// MARK: - Events

/// The first event of every tenant.
public struct TenantCreated: EventPayload {
    public static let type = "TenantCreated"
    public static let eventVersion = 1
    public var name: String
    public init(name: String) { self.name = name }
}

/// The policy fields came later: absent in events written before, they decode as nil (an admin token without expiry,
/// see `TokenPolicy.effectiveExpiry`), and they are written only when set.
public struct TokenCreated: EventPayload {
    public static let type = "TokenCreated"
    public static let eventVersion = 1
    public var tokenID: TokenID
    public var name: String
    public var scope: TokenScope?
    /// Unix seconds.
    public var expiresAt: Int64?
    /// Unix seconds.
    public var createdAt: Int64?
    public var createdBy: String?
    public init(tokenID: TokenID, name: String, scope: TokenScope? = nil, expiresAt: Int64? = nil, createdAt: Int64? = nil,
                createdBy: String? = nil) {
        self.tokenID = tokenID
        self.name = name
        self.scope = scope
        self.expiresAt = expiresAt
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
    enum CodingKeys: String, CodingKey {
        case name, scope
        case tokenID = "token_id"
        case expiresAt = "expires_at"
        case createdAt = "created_at"
        case createdBy = "created_by"
    }
}

public struct TokenRevoked: EventPayload {
    public static let type = "TokenRevoked"
    public static let eventVersion = 1
    public var tokenID: TokenID
    public var name: String
    public init(tokenID: TokenID, name: String) {
        self.tokenID = tokenID
        self.name = name
    }
    enum CodingKeys: String, CodingKey {
        case name
        case tokenID = "token_id"
    }
}

public struct SetupKeyCreated: EventPayload {
    public static let type = "SetupKeyCreated"
    public static let eventVersion = 1
    public var setupKey: SetupKey
    public init(setupKey: SetupKey) { self.setupKey = setupKey }
    enum CodingKeys: String, CodingKey { case setupKey = "setup_key" }
}

/// A setup key changed (revoked, auto groups): old and new carried whole.
public struct SetupKeyUpdated: EventPayload {
    public static let type = "SetupKeyUpdated"
    public static let eventVersion = 1
    public var old: SetupKey
    public var new: SetupKey
    public init(old: SetupKey, new: SetupKey) {
        self.old = old
        self.new = new
    }
}

public struct SetupKeyDeleted: EventPayload {
    public static let type = "SetupKeyDeleted"
    public static let eventVersion = 1
    public var setupKey: SetupKey
    public init(setupKey: SetupKey) { self.setupKey = setupKey }
    enum CodingKeys: String, CodingKey { case setupKey = "setup_key" }
}

// MARK: - Rules

enum AccessRules {
    static func decide(_ command: AccessCommand, _ state: TenantState) throws(ValidationError) -> [RouteEvent] {
        switch command {
        case .createTenant(let name):
            try checkName(name, field: "name")
            if state.tenantName != nil { throw .conflict("tenant", "tenant already exists") }
            return [.tenantCreated(TenantCreated(name: name))]

        case .createToken(let id, let name, let scope, let expiresInDays, let now, let createdBy, let grantor):
            // NetBird's order and wording (`CreatePAT`): the name, then the lifetime.
            if name.isEmpty { throw .invalid("name", "token name can't be empty") }
            try checkName(name, field: "name")
            try TokenPolicy.checkExpiresIn(expiresInDays)
            if let grantor, !grantor.canGrant(scope) {
                throw ValidationError(.permissionDenied, field: "scope",
                                      "permission denied: a \(grantor.rawValue) token cannot create a \(scope.rawValue) token")
            }
            if state.tokens[id] != nil { throw .conflict("id", "token \(id) already exists") }
            return [.tokenCreated(TokenCreated(tokenID: id, name: name, scope: scope,
                                               expiresAt: TokenPolicy.expiresAt(now: now, days: expiresInDays),
                                               createdAt: now, createdBy: createdBy))]

        case .revokeToken(let id):
            guard let token = state.tokens[id] else { throw .notFound("token_id", "token \(id) not found") }
            if token.revoked { return [] }
            return [.tokenRevoked(TokenRevoked(tokenID: id, name: token.name))]

        case .createSetupKey(let id, let name, let type, let expiresIn, let autoGroups, let usageLimit, let now, let ephemeral, let keySecret):
            // Messages follow NetBird's (`setupkeys_handler.go` createSetupKey, `setupkey.go` CreateSetupKey).
            if id.rawValue.isEmpty { throw .invalid("id", "setup key id must not be empty") }
            if state.setupKeys[id] != nil { throw .conflict("id", "setup key \(id) already exists") }
            if name.isEmpty { throw .invalid("name", "setup key name shouldn't be empty") }
            try checkName(name, field: "name")
            guard let type else { throw .invalid("type", "unknown setup key type; type must be \"reusable\" or \"one-off\"") }
            if expiresIn < 0 { throw .invalid("expires_in", "expires_in can not be in the past, got \(expiresIn)") }
            if expiresIn > Limits.setupKeyMaxExpiresIn {
                throw .invalid("expires_in", "expires_in must be 0 (never) to \(Limits.setupKeyMaxExpiresIn) seconds, got \(expiresIn)")
            }
            if usageLimit < 0 { throw .invalid("usage_limit", "usage_limit must be 0 (unlimited) or more, got \(usageLimit)") }
            // NetBird silently stores 1 for a one-off key whatever usage_limit says (`types.GenerateSetupKey`); a limit
            // above 1 contradicts the type, so it is refused here; 0 or 1 (or absent) gives 1, as in NetBird.
            if type == .oneOff && usageLimit > 1 {
                throw .invalid("usage_limit", "a one-off setup key can be used only once: usage_limit must be 0 or 1, got \(usageLimit)")
            }
            let groups = try checkGroups(autoGroups, field: "auto_groups", in: state)
            let key = SetupKey(id: id, name: name, type: type, expiresAt: expiresIn == 0 ? nil : now + expiresIn,
                               autoGroups: groups, usageLimit: type == .oneOff ? 1 : usageLimit, createdAt: now,
                               ephemeral: ephemeral, keySecret: keySecret)
            return [.setupKeyCreated(SetupKeyCreated(setupKey: key))]

        case .updateSetupKey(let id, let revoked, let autoGroups, let now):
            guard let old = state.setupKeys[id] else { throw .notFound("setup_key_id", "setup key \(id) not found") }
            if old.revoked && !revoked { throw .invalid("revoked", "can't un-revoke a revoked setup key") }
            var new = old
            new.revoked = revoked
            new.autoGroups = try checkGroups(autoGroups, field: "auto_groups", in: state, kept: old.autoGroups)
            if new == old { return [] }
            // NetBird sets UpdatedAt on every save (`SaveSetupKey`); here only when something changed.
            if let now { new.updatedAt = now }
            return [.setupKeyUpdated(SetupKeyUpdated(old: old, new: new))]

        case .deleteSetupKey(let id):
            guard let old = state.setupKeys[id] else { throw .notFound("setup_key_id", "setup key \(id) not found") }
            return [.setupKeyDeleted(SetupKeyDeleted(setupKey: old))]

        case .enrollWithSetupKey(let key, let peerID, let name, let os, let reportedIP, let now, let meshRange, let wireguard):
            switch state.setupKeyState(key, now: now) {
            case nil: throw ValidationError(.permissionDenied, field: "setup_key", "setup key is not valid")
            case .revoked?: throw ValidationError(.permissionDenied, field: "setup_key", "setup key is revoked")
            case .expired?: throw ValidationError(.permissionDenied, field: "setup_key", "setup key is expired")
            case .overused?: throw ValidationError(.permissionDenied, field: "setup_key", "setup key reached its usage limit")
            case .valid?: break
            }
            // The address is chosen here, against the state the append lands on (see `MeshAddresses`).
            let meshIP = try MeshAddresses.choose(reported: reportedIP, in: meshRange, state: state)
            var events = try decideOrThrow(.enrollPeer(id: peerID, name: name, os: os, meshIP: meshIP.description, wireguard: wireguard), state)
            guard case .peerEnrolled(var enrolled)? = events.first else { return events }
            enrolled.setupKeyID = key
            enrolled.enrolledAt = now
            events[0] = .peerEnrolled(enrolled)
            for g in state.setupKeys[key]?.autoGroups ?? [] where state.group(g) != nil {
                events.append(.groupMembersChanged(GroupMembersChanged(groupID: g, added: [peerID], removed: [])))
            }
            return events
        }
    }

    private static func checkName(_ name: String, field: String) throws(ValidationError) {
        let n = name.unicodeScalars.count
        if n < 1 || n > Limits.nameMaxScalars {
            throw .invalid(field, "\(field) must be 1 to \(Limits.nameMaxScalars) characters, got \(n)")
        }
    }

    /// `kept`: groups the key already had (a key given "All" before that was refused keeps it on update).
    private static func checkGroups(_ groups: [GroupID], field: String, in state: TenantState,
                                    kept: [GroupID] = []) throws(ValidationError) -> [GroupID] {
        let unique = Set(groups).sorted()
        for g in unique where state.group(g) == nil {
            throw .invalid(field, "invalid auto groups: group not found: \(g)")
        }
        // NetBird `validateSetupKeyAutoGroups` (management/server/setupkey.go): every peer joins "All" anyway, and
        // naming it again would record the membership twice.
        for g in unique where state.isAllGroup(g) && !kept.contains(g) {
            throw .invalid(field, "can't add All group to the setup key")
        }
        return unique
    }
}

/// Commands about access (tenants, tokens, setup keys, enrollment). Ids, clock and addresses
/// come from the I/O shell so the rules stay pure.
public enum AccessCommand: Hashable, Sendable {
    case createTenant(name: String)
    /// `expiresInDays`: 1...365 from `now` (Unix seconds). `grantor`: the scope of the token asking, nil for the
    /// operator's command line (which may create any).
    case createToken(id: TokenID, name: String, scope: TokenScope, expiresInDays: Int, now: Int64, createdBy: String?,
                     grantor: TokenScope?)
    case revokeToken(id: TokenID)
    /// `type` nil when the request's type string is not one NetBird knows.
    /// `keySecret`: NetBird's masked key (`SetupKey.masked(secret:)`), kept to answer later reads.
    case createSetupKey(id: SetupKeyID, name: String, type: SetupKey.KeyType?, expiresIn: Int64, autoGroups: [GroupID],
                        usageLimit: Int, now: Int64, ephemeral: Bool = false, keySecret: String? = nil)
    /// `now`: the time of the change (the key's `updated_at`).
    case updateSetupKey(id: SetupKeyID, revoked: Bool, autoGroups: [GroupID], now: Int64? = nil)
    case deleteSetupKey(id: SetupKeyID)
    /// An agent joining with a setup key: the peer, then its auto groups. `meshIP` nil or empty: the lowest free address
    /// of `meshRange`; given: accepted only when it is a free host address of `meshRange`.
    case enrollWithSetupKey(key: SetupKeyID, peerID: PeerID, name: String, os: String, meshIP: String?, now: Int64,
                            meshRange: Prefix = MeshAddresses.defaultRange, wireguard: WireGuardIdentity? = nil)
}

public func decide(_ command: AccessCommand, _ state: TenantState) -> Result<[RouteEvent], ValidationError> {
    do {
        return .success(try AccessRules.decide(command, state))
    } catch {
        return .failure(error)
    }
}

public func decideOrThrow(_ command: AccessCommand, _ state: TenantState) throws(ValidationError) -> [RouteEvent] {
    try AccessRules.decide(command, state)
}

extension Limits {
    /// NetBird allows setup keys to expire within a year at most.
    public static let setupKeyMaxExpiresIn: Int64 = 365 * 24 * 3600
    /// A setup key created without `expires_in` expires after 30 days (NetBird's `DefaultSetupKeyDuration` before it
    /// moved to "never"); `expires_in: 0` asks for a key that never expires.
    public static let setupKeyDefaultExpiresIn: Int64 = 30 * 24 * 3600
}
