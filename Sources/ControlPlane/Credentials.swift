import PostgresClient
import EventStore
import RouteModel

/// Random secrets and ids. Secrets carry ≥ 190 bits from the system's CSPRNG (getrandom on Linux);
/// only their SHA-256 is stored (table `credentials`).
public enum Secrets {
    static let base62 = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    static let base32 = Array("0123456789abcdefghijklmnopqrstuv".utf8)

    /// `prefix` + 32 base-62 characters (≈ 190 bits).
    public static func secret(prefix: String) -> String {
        var rng = SystemRandomNumberGenerator()
        var out = Array(prefix.utf8)
        for _ in 0..<32 { out.append(base62[Int(rng.next(upperBound: UInt64(62)))]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// A 20-character lower-case id (100 random bits), the length of NetBird's xid ids.
    public static func id() -> String {
        var rng = SystemRandomNumberGenerator()
        var out: [UInt8] = []
        out.reserveCapacity(20)
        for _ in 0..<20 { out.append(base32[Int(rng.next(upperBound: UInt64(32)))]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex SHA-256 of a presented secret: what `credentials.secret_hash` holds.
    public static func hash(_ secret: String) -> String {
        SHA256Hex.of(secret.utf8)
    }
}

/// Who is calling: an operator's API token (with what it may do), or an enrolled agent.
public enum Principal: Sendable, Equatable {
    case token(tenant: String, tokenID: String, scope: TokenScope)
    case agent(tenant: String, peerID: String)

    public var tenant: String {
        switch self {
        case .token(let t, _, _), .agent(let t, _): t
        }
    }

    /// Whether the caller may change its tenant: an admin token, or an agent (whose endpoints check their own rights).
    public var canWrite: Bool {
        switch self {
        case .token(_, _, let scope): scope.canWrite
        case .agent: true
        }
    }

    /// Whether the caller may make a request with this HTTP method: reads (GET, HEAD) always, anything else only when
    /// it may write.
    public func permits(method: String) -> Bool {
        method == "GET" || method == "HEAD" || canWrite
    }
}

/// A token that was valid and has expired (answered 401 with when, so the operator knows to make a new one).
public struct TokenExpired: Error, Sendable, Equatable {
    public var tokenID: String
    /// Unix seconds.
    public var expiredAt: Int64
}

/// A live (not revoked) row of `credentials`.
public struct CredentialRow: Sendable, Equatable {
    public var tenant: String
    public var subject: String
    /// API tokens only; nil = admin (rows written before scopes).
    public var scope: TokenScope?
    /// Unix seconds; nil = none stored (see `TokenPolicy.effectiveExpiry`).
    public var expiresAt: Int64?
    /// Unix seconds.
    public var createdAt: Int64
}

/// Looks up presented secrets in `credentials` and writes the rows that go with credential events.
public struct CredentialStore: Sendable {
    let store: EventStore

    public init(store: EventStore) { self.store = store }

    public enum Kind: String, Sendable { case apiToken = "api_token", setupKey = "setup_key", peer }

    /// The live credential of `kind` presented as `secret` (tenant, subject, and for API tokens scope and expiry), or nil.
    public func lookup(_ secret: String, kind: Kind) async throws -> CredentialRow? {
        let hash = Secrets.hash(secret)
        let rows = try await store.pool.withSession { session in
            try session.query(prepared: """
                SELECT tenant_id, subject_id, scope, floor(extract(epoch FROM expires_at))::bigint AS expires_at,
                       floor(extract(epoch FROM created_at))::bigint AS created_at
                FROM credentials WHERE secret_hash = $1 AND kind = $2 AND revoked_at IS NULL
                """, [hash, kind.rawValue])
        }
        guard let row = rows.first, let tenant = row.string("tenant_id"), let subject = row.string("subject_id") else { return nil }
        return CredentialRow(tenant: tenant, subject: subject, scope: row.string("scope").flatMap(TokenScope.init(rawValue:)),
                             expiresAt: row.int64("expires_at"), createdAt: row.int64("created_at") ?? 0)
    }

    /// The live and revoked API token rows of `tenant`, by token id (for expiry and creation time in token lists).
    public func tokenRows(tenant: String) async throws -> [String: CredentialRow] {
        let rows = try await store.pool.withSession { session in
            try session.query(prepared: """
                SELECT subject_id, scope, floor(extract(epoch FROM expires_at))::bigint AS expires_at,
                       floor(extract(epoch FROM created_at))::bigint AS created_at
                FROM credentials WHERE tenant_id = $1 AND kind = 'api_token'
                """, [tenant])
        }
        var out: [String: CredentialRow] = [:]
        for row in rows {
            guard let subject = row.string("subject_id") else { continue }
            out[subject] = CredentialRow(tenant: tenant, subject: subject, scope: row.string("scope").flatMap(TokenScope.init(rawValue:)),
                                         expiresAt: row.int64("expires_at"), createdAt: row.int64("created_at") ?? 0)
        }
        return out
    }

    /// `expiresAt` (Unix seconds) and `scope`: API tokens' policy, kept next to the hash so authentication needs one lookup.
    public static func insert(secret: String, tenant: String, kind: Kind, subject: String,
                              expiresAt: Int64? = nil, scope: TokenScope? = nil) -> EventStore.SideStatement {
        EventStore.SideStatement(
            "INSERT INTO credentials (secret_hash, tenant_id, kind, subject_id, expires_at, scope) VALUES ($1, $2, $3, $4, to_timestamp($5::bigint), $6)",
            [Secrets.hash(secret), tenant, kind.rawValue, subject, expiresAt.map { String($0) }, scope?.rawValue])
    }

    public static func revoke(tenant: String, kind: Kind, subject: String) -> EventStore.SideStatement {
        EventStore.SideStatement(
            "UPDATE credentials SET revoked_at = now() WHERE tenant_id = $1 AND kind = $2 AND subject_id = $3 AND revoked_at IS NULL",
            [tenant, kind.rawValue, subject])
    }
}
