// API tokens' rules, pure: what a token may do (its scope) and when it stops working (its expiry). The I/O shell
// looks the presented secret up (table `credentials`, hashed) and asks these rules; the events carry the policy so the
// audit log shows who made which token with which rights and lifetime.

/// What an API token may do. NetBird's personal access tokens carry their user's role; Routeplane has no users, so the
/// token carries it: `admin` reads and changes everything of its tenant (NetBird's admin role), `read_only` reads
/// everything and changes nothing (NetBird's `auditor` role).
public enum TokenScope: String, Hashable, Sendable, Codable, CaseIterable {
    case admin
    case readOnly = "read_only"

    /// Whether the token may change anything (every POST, PUT and DELETE).
    public var canWrite: Bool { self == .admin }

    /// A token may create tokens with at most its own rights (a read-only token cannot make an admin one).
    public func canGrant(_ other: TokenScope) -> Bool { other.rank <= rank }

    private var rank: Int {
        switch self {
        case .readOnly: 0
        case .admin: 1
        }
    }

    /// The values a request may name, for messages.
    public static var names: String { allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ") }
}

/// When tokens expire. NetBird's rule: a lifetime of 1 to 365 days, given at creation (`expires_in`, in days).
public enum TokenPolicy {
    public static let minExpiresInDays = 1
    public static let maxExpiresInDays = 365
    /// `routeplane tokens create` without `--expires-in-days`: NetBird's dashboard default, short enough that a
    /// forgotten token does not stay a door for long.
    public static let defaultExpiresInDays = 30
    /// Tokens created before tokens had an expiry (no `expires_at` stored): they keep working for this long after
    /// the upgrade that brought expiry (migration 0007 sets it), or after their creation when an older controller
    /// made one during a rolling upgrade.
    public static let legacyGraceDays = 30
    static let day: Int64 = 24 * 3600

    /// Unix seconds at which a token created at `now` for `days` days expires (days of 24 hours, UTC).
    public static func expiresAt(now: Int64, days: Int) -> Int64 { now + Int64(days) * day }

    /// The expiry that applies: the stored one, or, for a token stored without one, its creation plus the grace.
    public static func effectiveExpiry(stored: Int64?, createdAt: Int64) -> Int64 {
        stored ?? createdAt + Int64(legacyGraceDays) * day
    }

    /// A token is refused from the second it expires on.
    public static func isExpired(expiresAt: Int64, now: Int64) -> Bool { now >= expiresAt }

    /// `expires_in` as NetBird checks it (`CreatePAT`): 1 to 365 days.
    static func checkExpiresIn(_ days: Int) throws(ValidationError) {
        if days < minExpiresInDays || days > maxExpiresInDays {
            throw .invalid("expires_in", "expiration has to be between \(minExpiresInDays) and \(maxExpiresInDays) (days), got \(days)")
        }
    }
}
