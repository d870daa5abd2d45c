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

/// Who is calling: an operator's API token, or an enrolled agent.
public enum Principal: Sendable, Equatable {
    case token(tenant: String, tokenID: String)
    case agent(tenant: String, peerID: String)

    public var tenant: String {
        switch self {
        case .token(let t, _), .agent(let t, _): t
        }
    }
}

/// Looks up presented secrets in `credentials` and writes the rows that go with credential events.
public struct CredentialStore: Sendable {
    let store: EventStore

    public init(store: EventStore) { self.store = store }

    public enum Kind: String, Sendable { case apiToken = "api_token", setupKey = "setup_key", peer }

    /// The tenant and subject of a live credential of `kind`, or nil.
    public func lookup(_ secret: String, kind: Kind) async throws -> (tenant: String, subject: String)? {
        let hash = Secrets.hash(secret)
        let rows = try await store.pool.withSession { session in
            try session.query(prepared: "SELECT tenant_id, subject_id FROM credentials WHERE secret_hash = $1 AND kind = $2 AND revoked_at IS NULL",
                              [hash, kind.rawValue])
        }
        guard let row = rows.first, let tenant = row.string("tenant_id"), let subject = row.string("subject_id") else { return nil }
        return (tenant, subject)
    }

    public static func insert(secret: String, tenant: String, kind: Kind, subject: String) -> EventStore.SideStatement {
        EventStore.SideStatement(
            "INSERT INTO credentials (secret_hash, tenant_id, kind, subject_id) VALUES ($1, $2, $3, $4)",
            [Secrets.hash(secret), tenant, kind.rawValue, subject])
    }

    public static func revoke(tenant: String, kind: Kind, subject: String) -> EventStore.SideStatement {
        EventStore.SideStatement(
            "UPDATE credentials SET revoked_at = now() WHERE tenant_id = $1 AND kind = $2 AND subject_id = $3 AND revoked_at IS NULL",
            [tenant, kind.rawValue, subject])
    }
}
