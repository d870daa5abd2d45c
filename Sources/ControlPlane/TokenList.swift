import Foundation
import RouteModel

/// One API token as lists show it (never its secret): the tenant's events give its name, scope and creator; the
/// `credentials` row gives the expiry authentication enforces (the implied one for tokens made before expiry existed)
/// and the creation time.
public struct TokenSummary: Sendable, Equatable {
    public var id: String
    public var name: String
    public var scope: TokenScope
    /// Unix seconds.
    public var expiresAt: Int64
    /// Unix seconds.
    public var createdAt: Int64
    /// "token:<id>", "cli", or "" for tokens made before it was recorded.
    public var createdBy: String
    public var revoked: Bool

    public func expired(now: Int64) -> Bool { TokenPolicy.isExpired(expiresAt: expiresAt, now: now) }
}

extension ControlPlane {
    /// The tenant's API tokens in creation order (then by id), revoked ones included only when asked.
    public func tokens(tenant: String, state: TenantState, includeRevoked: Bool = false) async throws -> [TokenSummary] {
        let rows = try await credentials.tokenRows(tenant: tenant)
        var out: [TokenSummary] = []
        for (id, info) in state.tokens where includeRevoked || !info.revoked {
            let row = rows[id.rawValue]
            let createdAt = info.createdAt ?? row?.createdAt ?? 0
            let stored = info.expiresAt ?? row?.expiresAt
            out.append(TokenSummary(id: id.rawValue, name: info.name, scope: info.scope,
                                    expiresAt: TokenPolicy.effectiveExpiry(stored: stored, createdAt: row?.createdAt ?? createdAt),
                                    createdAt: createdAt, createdBy: info.createdBy ?? "", revoked: info.revoked))
        }
        return out.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }
}
