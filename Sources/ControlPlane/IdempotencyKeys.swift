import EventStore
import Foundation
import Logging
import PostgresClient
import RouteModel
import Synchronization

/// Idempotency keys of API writes (table `idempotency_keys`, migration 0009), Stripe's semantics: a retried write with
/// the same key and the same request answers the first outcome and appends nothing.
///
/// The life of a key: `claim` takes it (`in_flight`, owned by this request for `lease`); the write's append carries
/// `finishStatement` in its own transaction, so the record becomes `done` with the answer exactly when the events
/// commit; a write that appends nothing but answers 2xx stores its answer with `finish`; every other end (an error, a
/// cancelled request) `release`s the claim, so the key is free again. A claim whose request died is taken over after
/// its lease (the old request's commit is then refused by the finish function, RP410).
public final class IdempotencyKeys: Sendable {
    /// How long a key is remembered (Stripe: 24 h).
    public static let defaultRetention: Duration = .seconds(24 * 3600)
    /// How long a claim holds before another request may take the key over: above the append's 15 s budget plus the
    /// pool wait, so a live request is not overtaken in practice (and if it is, its commit is refused, never doubled).
    public static let defaultLease: Duration = .seconds(30)
    /// Rows deleted per purge statement; a purge runs at most once per `purgeEvery` per controller.
    public static let purgeBatch = 1_000
    public static let purgeEvery: Duration = .seconds(60)

    /// A key's first answer, as stored.
    public struct Answer: Sendable, Equatable {
        public var status: Int
        public var body: String
        public var etag: Int64?
        public var sequence: Int64?
        public init(status: Int, body: String, etag: Int64?, sequence: Int64?) {
            self.status = status
            self.body = body
            self.etag = etag
            self.sequence = sequence
        }
    }

    /// Who may see a key's record: the same tenant and the same principal (token).
    public struct Scope: Sendable, Equatable {
        public var tenant: String
        public var principal: String
        public var key: String
        public init(tenant: String, principal: String, key: String) {
            self.tenant = tenant
            self.principal = principal
            self.key = key
        }
    }

    /// A claim this request holds.
    public struct Claim: Sendable, Equatable {
        public var scope: Scope
        public var owner: String
    }

    public enum ClaimOutcome: Sendable, Equatable {
        /// The key is this request's: go on and write.
        case claimed(Claim)
        /// The key's first request appended; answer this.
        case replay(Answer)
        /// The key was used for another request (method, path or body differ).
        case mismatch
        /// The key's first request is still running (on this or another controller).
        case inFlight
    }

    let pool: ConnectionPool
    let logger: Logger
    public let retention: Duration
    public let lease: Duration
    private let lastPurge = Mutex<ContinuousClock.Instant?>(nil)

    public init(pool: ConnectionPool, logger: Logger, retention: Duration = IdempotencyKeys.defaultRetention, lease: Duration = IdempotencyKeys.defaultLease) {
        self.pool = pool
        self.logger = logger
        self.retention = retention
        self.lease = lease
    }

    /// What identifies a request for its key: method, path with query, and the body (SHA-256, hex). A JSON body counts
    /// by its content, not its bytes (keys sorted, whitespace dropped: a client library may order an object's keys
    /// differently on a retry); anything else by its bytes.
    public static func fingerprint(method: String, uri: String, body: [UInt8]) -> String {
        SHA256Hex.of(Array("\(method) \(uri)\n".utf8) + canonical(body))
    }

    static func canonical(_ body: [UInt8]) -> [UInt8] {
        guard !body.isEmpty, let value = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else { return body }
        return Array(data)
    }

    static func seconds(_ d: Duration) -> String {
        String(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }

    /// Takes the key for this request, or says why not. An expired row counts as absent; an `in_flight` row whose
    /// lease passed is taken over when the request is the same.
    public func claim(_ scope: Scope, fingerprint: String) async throws -> ClaimOutcome {
        purgeIfDue()
        let owner = Secrets.id()
        for _ in 0..<3 {
            let taken = try await pool.query(prepared: Self.claimSQL, [scope.tenant, scope.principal, scope.key, fingerprint, owner,
                                                                       Self.seconds(lease), Self.seconds(retention)])
            if !taken.isEmpty { return .claimed(Claim(scope: scope, owner: owner)) }
            let rows = try await pool.query(prepared: Self.lookupSQL, [scope.tenant, scope.principal, scope.key])
            guard let row = rows.first else { continue }  // purged or released in between: claim again
            if row.string("fingerprint") != fingerprint { return .mismatch }
            guard row.string("state") == "done", let status = row.int64("status") else { return .inFlight }
            return .replay(Answer(status: Int(status), body: row.string("body") ?? "", etag: row.int64("etag"), sequence: row.int64("seq")))
        }
        return .inFlight
    }

    /// The statement that marks the claim done with `answer`, for the transaction of the write's append.
    public func finishStatement(_ claim: Claim, _ answer: Answer) -> EventStore.SideStatement {
        EventStore.SideStatement(Self.finishSQL, [claim.scope.tenant, claim.scope.principal, claim.scope.key, claim.owner,
                                                  String(answer.status), answer.body, answer.etag.map(String.init), answer.sequence.map(String.init)])
    }

    /// Stores the answer of a write that appended nothing (its own statement: there is no append to join).
    public func finish(_ claim: Claim, _ answer: Answer) async throws {
        let s = finishStatement(claim, answer)
        _ = try await pool.query(prepared: s.sql, s.parameters)
    }

    /// Frees the claim unless it became `done` (a write that committed keeps its record). Best effort: when the
    /// database cannot be reached the claim frees itself when its lease passes.
    public func release(_ claim: Claim) async {
        do {
            _ = try await pool.query(prepared: Self.releaseSQL, [claim.scope.tenant, claim.scope.principal, claim.scope.key, claim.owner])
        } catch {
            logger.warning("could not release an idempotency key; it frees itself when its lease passes",
                           metadata: ["tenant": "\(claim.scope.tenant)", "lease_s": "\(Self.seconds(lease))", "error": "\(error)"])
        }
    }

    /// Deletes up to `purgeBatch` expired rows, at most once per `purgeEvery` in this process, in the background.
    func purgeIfDue() {
        let now = ContinuousClock.now
        let due = lastPurge.withLock { last -> Bool in
            if let l = last, now - l < Self.purgeEvery { return false }
            last = now
            return true
        }
        guard due else { return }
        Task { [self] in _ = try? await purgeExpired() }
    }

    /// Deletes up to `purgeBatch` expired rows; returns how many.
    @discardableResult
    public func purgeExpired() async throws -> Int {
        let rows = try await pool.query(prepared: Self.purgeSQL, [String(Self.purgeBatch)])
        if rows.affectedRows > 0 { logger.debug("purged expired idempotency keys", metadata: ["rows": "\(rows.affectedRows)"]) }
        return rows.affectedRows
    }

    static let claimSQL = """
        INSERT INTO idempotency_keys AS k (tenant_id, principal, idem_key, fingerprint, state, owner, lease_until, expires_at)
        VALUES ($1, $2, $3, $4, 'in_flight', $5, now() + make_interval(secs => $6::float8), now() + make_interval(secs => $7::float8))
        ON CONFLICT (tenant_id, principal, idem_key) DO UPDATE
           SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until,
               expires_at = EXCLUDED.expires_at, created_at = now(), status = NULL, body = NULL, etag = NULL, seq = NULL
         WHERE k.expires_at < now()
            OR (k.state = 'in_flight' AND k.lease_until < now() AND k.fingerprint = EXCLUDED.fingerprint)
        RETURNING k.owner
        """
    static let lookupSQL = """
        SELECT fingerprint, state, status, body, etag, seq FROM idempotency_keys
         WHERE tenant_id = $1 AND principal = $2 AND idem_key = $3 AND expires_at >= now()
        """
    static let finishSQL = "SELECT idempotency_finish($1, $2, $3, $4, $5::integer, $6, $7::bigint, $8::bigint)"
    static let releaseSQL = """
        DELETE FROM idempotency_keys WHERE tenant_id = $1 AND principal = $2 AND idem_key = $3 AND owner = $4 AND state = 'in_flight'
        """
    static let purgeSQL = """
        DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1::integer))
        """
}
