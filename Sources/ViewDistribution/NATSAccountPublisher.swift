import PostgresClient
import EventStore
import Foundation
import Logging
import NATSAuth
import NATSClient
import Synchronization

/// Keeps the NATS resolver's copy of the routeplane account JWT equal to what PostgreSQL says: the base account
/// claims plus the revocation list of agents' NATS users (table `nats_users`, rows revoked within the longest user JWT
/// lifetime; older revocations are dropped because every JWT they could match has expired).
///
/// A push runs in one transaction that holds the `nats_account` row lock: it takes an issued-at strictly above the
/// last push's, reads the revocations, signs the account JWT with the operator signing key and sends it to the full
/// resolver (`$SYS.REQ.CLAIMS.UPDATE`, as a system-account user) before committing. So two controllers never push out
/// of order, and a newer list can never be overwritten by an older one. nats-server applies the update at once: a
/// revoked user's live connection is closed and its reconnects are refused.
///
/// Pushed after every revocation (peer deleted), at start and every `interval` (so a push lost to an outage, or a
/// resolver that lost its store, converges).
public final class NATSAccountPublisher: Sendable {
    let store: EventStore
    let keys: NATSKeyDirectory
    let servers: [String]
    let maxUserLifetime: Duration
    let logger: Logger
    /// TLS towards NATS, as the controller's own connection.
    let tls: NATSTLSSettings?
    private let connecting = Mutex<Task<NATSConnection, any Error>?>(nil)
    private let pushes = Mutex(0)

    public init(store: EventStore, keys: NATSKeyDirectory, natsURL: String, maxUserLifetime: Duration,
                logger: Logger = Logger(label: "routeplane.nats-account"), tls: NATSTLSSettings? = nil) {
        self.tls = tls
        self.store = store
        self.keys = keys
        self.servers = NATSConfiguration(url: natsURL, name: "").servers
        self.maxUserLifetime = maxUserLifetime
        self.logger = logger
    }

    public struct Pushed: Sendable, Equatable {
        public var issuedAt: Int64
        public var revocations: Int
    }

    public var pushCount: Int { pushes.withLock { $0 } }

    /// The system-account connection, opened on first use (and again after it closed). Concurrent pushes (a revocation
    /// and the periodic one) share one connecting task, so neither closes the other's connection mid-request.
    func systemConnection() async throws -> NATSConnection {
        let task = connecting.withLock { slot -> Task<NATSConnection, any Error> in
            if let existing = slot { return existing }
            let created = Task { try await self.openSystemConnection() }
            slot = created
            return created
        }
        if let c = try? await task.value, c.status != .closed { return c }
        // Failed or closed: the first caller to notice replaces it; others reuse the replacement.
        let next = connecting.withLock { slot -> Task<NATSConnection, any Error> in
            if let current = slot, current != task { return current }
            let created = Task { try await self.openSystemConnection() }
            slot = created
            return created
        }
        return try await next.value
    }

    private func openSystemConnection() async throws -> NATSConnection {
        var configuration = NATSConfiguration(servers: servers, name: "routeplane-account-publisher")
        configuration.failIfUnreachable = true
        configuration.tls = tls
        let keys = self.keys
        // This user may only send account updates (and read the resolver's answers).
        let permissions = NATSPermissions(publishAllow: ["$SYS.REQ.CLAIMS.UPDATE"], subscribeAllow: ["_INBOX.>"])
        configuration.userCredentials = .minted { user, now in
            // A system-account user signed by the system account's own key (it has no signing keys).
            NATSJWT.userJWT(name: "routeplane-account-publisher", user: user, issuerAccount: nil, permissions: permissions,
                            issuedAt: now, expires: now + 3_600, signer: keys.systemAccount)
        }
        return try await NATSConnection.connect(configuration, logger: logger)
    }

    /// Builds the account JWT from PostgreSQL and pushes it; throws when the resolver did not take it.
    @discardableResult
    public func push(reason: String) async throws -> Pushed {
        let nats = try await systemConnection()
        let keys = self.keys
        // Revocations are kept for a week or the longest user JWT lifetime if longer (controllers with other settings
        // may have issued longer JWTs); each names a time far beyond any JWT issued for that key: keys are never
        // reused (nats_users.public_key is unique and a revoked row is never renewed), so no clock skew between the
        // controller that issued a JWT and the database that revoked it can let a JWT escape.
        let retention = max(maxUserLifetime.components.seconds, 7 * 86_400) + 3_600
        let pushed = try await store.pool.withSession { s -> Pushed in
            try s.query("BEGIN")
            do {
                let last = try s.query("SELECT issued_at FROM nats_account WHERE id = 1 FOR UPDATE").first?.int64("issued_at") ?? 0
                let now = Int64(Date().timeIntervalSince1970)
                let issuedAt = max(now, last + 1)
                let rows = try s.query("""
                    SELECT public_key, ceil(extract(epoch FROM revoked_at))::bigint + $1 AS expires FROM nats_users
                     WHERE revoked_at IS NOT NULL AND revoked_at > now() - make_interval(secs => $1)
                    """, [String(retention)])
                var revocations: [String: Int64] = [:]
                for row in rows {
                    if let key = row.string("public_key"), let at = row.int64("expires") { revocations[key] = at }
                }
                let jwt = keys.accountJWT(revocations: revocations, issuedAt: issuedAt)
                let reply = try nats.requestBlocking("$SYS.REQ.CLAIMS.UPDATE", payload: Array(jwt.utf8), timeout: .seconds(2))
                try Self.checkReply(reply.payload)
                try s.query("UPDATE nats_account SET issued_at = $1 WHERE id = 1", [String(issuedAt)])
                try s.query("COMMIT")
                return Pushed(issuedAt: issuedAt, revocations: revocations.count)
            } catch {
                _ = try? s.query("ROLLBACK")
                throw error
            }
        }
        pushes.withLock { $0 += 1 }
        logger.info("pushed the routeplane account to the NATS resolver",
                    metadata: ["reason": "\(reason)", "issued_at": "\(pushed.issuedAt)", "revocations": "\(pushed.revocations)"])
        return pushed
    }

    /// The resolver answers `{"data":{…"code":200…}}` on success and `{"error":{"description":…}}` otherwise.
    static func checkReply(_ payload: [UInt8]) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else {
            throw NATSError.invalidResponse("account update: unreadable reply \(String(decoding: payload.prefix(200), as: UTF8.self))")
        }
        if let error = object["error"] as? [String: Any] {
            throw NATSError.invalidResponse("account update refused: \(error["description"] ?? error)")
        }
        if let data = object["data"] as? [String: Any], let code = (data["code"] as? NSNumber)?.intValue, code != 200 {
            throw NATSError.invalidResponse("account update refused: code \(code) \(data["message"] ?? "")")
        }
    }

    /// Pushes now, then every `interval`, until cancelled. A failed push is logged and tried again sooner.
    public func run(interval: Duration = .seconds(60)) async {
        var wait = Duration.zero
        while !Task.isCancelled {
            if wait > .zero { try? await Task.sleep(for: wait) }
            if Task.isCancelled { break }
            do {
                try await push(reason: "periodic")
                wait = interval
            } catch {
                logger.warning("could not push the routeplane account to the NATS resolver; retrying", metadata: ["error": "\(error)"])
                wait = .seconds(5)
            }
        }
        let task = connecting.withLock { slot in defer { slot = nil }; return slot }
        if let c = try? await task?.value { await c.close() }
    }
}
