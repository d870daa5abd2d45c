/// A tenant state as a history snapshot stores it: its entities (the indexes are rebuilt on load), in the same
/// `Codable` forms events carry them, sorted by id so equal states encode to equal bytes.
public struct StoredTenantState: Codable, Sendable, Equatable {
    struct StoredToken: Codable, Sendable, Equatable {
        var id: TokenID
        var name: String
        var revoked: Bool
        var scope: TokenScope
        var expiresAt: Int64?
        var createdAt: Int64?
        var createdBy: String?
    }
    struct StoredUsage: Codable, Sendable, Equatable {
        var id: SetupKeyID
        var usedTimes: Int
        var lastUsed: Int64?
    }

    var routes: [Route]
    var groups: [Group]
    var peers: [Peer]
    var tenantName: String?
    var tokens: [StoredToken]
    var setupKeys: [SetupKey]
    var setupKeyUsage: [StoredUsage]

    public init(_ s: TenantState) {
        routes = s.routes.values.sorted { $0.id < $1.id }
        groups = s.groups.values.sorted { $0.id < $1.id }
        peers = s.peers.values.sorted { $0.id < $1.id }
        tenantName = s.tenantName
        tokens = s.tokens.sorted { $0.key < $1.key }.map {
            StoredToken(id: $0.key, name: $0.value.name, revoked: $0.value.revoked, scope: $0.value.scope,
                        expiresAt: $0.value.expiresAt, createdAt: $0.value.createdAt, createdBy: $0.value.createdBy)
        }
        setupKeys = s.setupKeys.values.sorted { $0.id < $1.id }
        setupKeyUsage = s.setupKeyUsage.sorted { $0.key < $1.key }.map {
            StoredUsage(id: $0.key, usedTimes: $0.value.usedTimes, lastUsed: $0.value.lastUsed)
        }
    }

    /// The state again, with its indexes.
    public var state: TenantState {
        TenantState(
            routes: routes, groups: groups, peers: peers, tenantName: tenantName,
            tokens: Dictionary(tokens.map {
                ($0.id, TokenInfo(name: $0.name, revoked: $0.revoked, scope: $0.scope, expiresAt: $0.expiresAt,
                                  createdAt: $0.createdAt, createdBy: $0.createdBy))
            }, uniquingKeysWith: { _, b in b }),
            setupKeys: Dictionary(setupKeys.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b }),
            setupKeyUsage: Dictionary(setupKeyUsage.map { ($0.id, SetupKeyUsage(usedTimes: $0.usedTimes, lastUsed: $0.lastUsed)) },
                                      uniquingKeysWith: { _, b in b }))
    }
}
