import PostgresClient
import Foundation
import EventStore
import Logging
import ViewDistribution
import Projections
import RouteModel
import Synchronization

/// What the write path needs to know of its deployment (the HTTP server's own settings live in `HTTPAPI`).
public struct ControlPlaneSettings: Sendable {
    /// Where agents find NATS (told to them at enrollment); nil when unknown.
    public var natsURL: String?
    /// Mesh range peers get their address from when they report none (NetBird: 100.64.0.0/10).
    public var meshRange: Prefix
    /// How long an agent's view read waits for its projection before answering anyway (stale).
    public var projectionWait: Duration
    /// Agents' NATS credentials (operator mode): set when the controller has the deployment's NATS keys.
    public var bus: AgentBusIssuer?
    /// Signs the views agents read; its public key is told to agents at enrollment. The outbox relay must sign with
    /// the same key. nil: an ephemeral one is made (and warned about).
    public var viewSigner: ViewSigner?
    /// Enrollment rate limits and tenants' quotas; nil (library users, tests): neither applies. `routeplane serve`
    /// always sets them (its defaults: `AdmissionSettings()`).
    public var admission: AdmissionSettings?

    public init(natsURL: String? = nil, meshRange: Prefix = try! Prefix(parsing: "100.64.0.0/10"),
                projectionWait: Duration = .seconds(2), bus: AgentBusIssuer? = nil, viewSigner: ViewSigner? = nil,
                admission: AdmissionSettings? = nil) {
        self.admission = admission
        self.natsURL = natsURL
        self.meshRange = meshRange
        self.projectionWait = projectionWait
        self.bus = bus
        self.viewSigner = viewSigner
    }
}

/// The write path and the reads it answers from, without HTTP: tenant snapshots, the command writer, credentials,
/// enrollment, agents' bus credentials, the audit log. Used by the HTTP API and, directly, by the command-line tools.
/// Holds no state PostgreSQL cannot rebuild. Throws domain errors (`ControlPlaneError`, `ValidationError`,
/// `EventStoreError`).
public struct ControlPlane: Sendable {
    public let settings: ControlPlaneSettings
    public let store: EventStore
    public let cache: TenantCache
    public let writer: CommandWriter
    public let credentials: CredentialStore
    public let checkpoints: ProjectionCheckpoints
    public let logger: Logger
    /// The settings' view signer, or an ephemeral one made at init (warned about once, at its first use, so admin
    /// commands that never enroll or serve a view stay quiet).
    public var viewSigner: ViewSigner {
        if let warning = ephemeralSignerWarning, warning.first() {
            logger.warning("no view signing key configured: signing views with an ephemeral key; agents enrolled now refuse views after this controller restarts, and other controllers sign with other keys",
                           metadata: ["view_signing_key": "\(signer.publicKey)"])
        }
        return signer
    }
    private let signer: ViewSigner
    private let ephemeralSignerWarning: OnceFlag?
    /// This process's enrollment limiters (nil without `settings.admission`).
    public let throttle: EnrollmentThrottle?

    public init(store: EventStore, settings: ControlPlaneSettings = ControlPlaneSettings(),
                logger: Logger = Logger(label: "routeplane.api")) {
        self.settings = settings
        self.store = store
        self.cache = TenantCache(store: store)
        self.writer = CommandWriter(store: store, cache: cache, logger: logger, quotas: settings.admission?.quotas)
        self.throttle = settings.admission.map(EnrollmentThrottle.init)
        self.credentials = CredentialStore(store: store)
        self.checkpoints = ProjectionCheckpoints(store: store)
        self.logger = logger
        self.signer = settings.viewSigner ?? .ephemeral()
        self.ephemeralSignerWarning = settings.viewSigner == nil ? OnceFlag() : nil
    }

    // MARK: - Callers

    /// The caller presenting `secret` as a credential of `kind`, or nil when it is unknown or revoked. Throws
    /// `TokenExpired` for an API token past its expiry (`now`: Unix seconds).
    public func principal(secret: String, kind: CredentialStore.Kind = .apiToken,
                          now: Int64 = Int64(Date().timeIntervalSince1970)) async throws -> Principal? {
        guard secret.utf8.count <= 256, let found = try await credentials.lookup(secret, kind: kind) else { return nil }
        switch kind {
        case .peer: return .agent(tenant: found.tenant, peerID: found.subject)
        default:
            let expiry = TokenPolicy.effectiveExpiry(stored: found.expiresAt, createdAt: found.createdAt)
            if TokenPolicy.isExpired(expiresAt: expiry, now: now) {
                logger.info("refused an expired API token; its owner must create a new one", metadata: [
                    "tenant_id": "\(found.tenant)", "token_id": "\(found.subject)",
                    "expired_at": "\(ISO8601.format(Date(timeIntervalSince1970: TimeInterval(expiry))))"])
                throw TokenExpired(tokenID: found.subject, expiredAt: expiry)
            }
            return .token(tenant: found.tenant, tokenID: found.subject, scope: found.scope ?? .admin)
        }
    }

    /// Who `principal` is in events' metadata, with its name from `snapshot` when given.
    public func actor(_ principal: Principal, _ snapshot: TenantSnapshot? = nil) -> Actor {
        switch principal {
        case .token(_, let id, _): Actor(id: "token:\(id)", name: snapshot?.state.tokens[TokenID(id)]?.name)
        case .agent(_, let peer): Actor(id: "peer:\(peer)", name: snapshot?.state.peer(PeerID(peer))?.name)
        }
    }

    /// `actor(principal, snapshot)` with the tenant's snapshot: a token's name never changes once created, so a cached
    /// snapshot that has the token names it without catching up (one query less per API write); anything else (a peer,
    /// whose name can change, or a token this controller has not seen yet) catches the tenant up first.
    public func namedActor(_ principal: Principal) async throws -> Actor {
        if case let .token(tenant, id, _) = principal, let name = cache.cached(tenant)?.state.tokens[TokenID(id)]?.name {
            return Actor(id: "token:\(id)", name: name)
        }
        return actor(principal, try await cache.current(principal.tenant))
    }

    // MARK: - Admin operations (the CLI's `tenants`, `tokens` and `peers`, also used by tests)

    /// Creates a tenant (its first event) and returns its id.
    public func createTenant(name: String, actor: Actor = Actor(id: "cli")) async throws -> String {
        let tenant = "t-" + Secrets.id()
        _ = try await writer.write(tenant: tenant, actor: actor, requestID: "cli-" + Secrets.id()) { snapshot in
            try decideOrThrow(AccessCommand.createTenant(name: name), snapshot.state)
        }
        return tenant
    }

    /// The tenant's snapshot, caught up, with its built-in "All" group: a tenant created before that group existed
    /// gets it now, by an ordinary write (actor `system`), so reads show it from the first request on. Idempotent:
    /// concurrent callers (on any controller) are serialized by the writer and all but the first append nothing.
    public func currentWithAllGroup(_ tenant: String) async throws -> TenantSnapshot {
        let snapshot = try await cache.current(tenant)
        if snapshot.state.allGroupRepair(newID: GroupID("-")).isEmpty { return snapshot }
        return try await writer.write(tenant: tenant, actor: Actor(id: "system", name: "routeplane"),
                                      requestID: "all-group-" + Secrets.id()) { _ in [] }.snapshot
    }

    /// Creates an API token for `tenant` (the operator's command line: any scope); returns its id, the secret (shown
    /// once) and its expiry (Unix seconds). `now` is the creation time (Unix seconds).
    public func createToken(tenant: String, name: String, scope: TokenScope = .admin,
                            expiresInDays: Int = TokenPolicy.defaultExpiresInDays, now: Int64 = Int64(Date().timeIntervalSince1970),
                            actor: Actor = Actor(id: "cli")) async throws -> (id: String, token: String, expiresAt: Int64) {
        let id = Secrets.id()
        let secret = Secrets.secret(prefix: "rpt_")
        let expiresAt = TokenPolicy.expiresAt(now: now, days: expiresInDays)
        _ = try await writer.write(tenant: tenant, actor: actor, requestID: "cli-" + Secrets.id()) { snapshot in
            guard snapshot.state.tenantName != nil else { throw ControlPlaneError.notFound(field: "tenant", message: "tenant \(tenant) not found") }
            return try decideOrThrow(AccessCommand.createToken(id: TokenID(id), name: name, scope: scope, expiresInDays: expiresInDays,
                                                               now: now, createdBy: actor.id, grantor: nil), snapshot.state)
        } sideStatements: { _ in
            [CredentialStore.insert(secret: secret, tenant: tenant, kind: .apiToken, subject: id, expiresAt: expiresAt, scope: scope)]
        }
        return (id, secret, expiresAt)
    }

    /// Revokes a token given by its id or by its secret.
    public func revokeToken(tenant: String?, token: String, actor: Actor = Actor(id: "cli")) async throws {
        var tenantID = tenant
        var tokenID = token
        if let found = try await credentials.lookup(token, kind: .apiToken) {
            tenantID = found.tenant
            tokenID = found.subject
        }
        guard let tenantID else { throw ControlPlaneError.notFound(field: "token", message: "token not found (give --tenant with a token id)") }
        let id = tokenID
        _ = try await writer.write(tenant: tenantID, actor: actor, requestID: "cli-" + Secrets.id()) { snapshot in
            try decideOrThrow(AccessCommand.revokeToken(id: TokenID(id)), snapshot.state)
        } sideStatements: { _ in
            [CredentialStore.revoke(tenant: tenantID, kind: .apiToken, subject: id)]
        }
    }

    /// Every tenant: id, name, creation time (from their `TenantCreated` events).
    public func listTenants() async throws -> [(id: String, name: String, created: String)] {
        let rows = try await store.pool.withSession { s in
            try s.query("""
                SELECT tenant_id, data->>'name' AS name, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created
                FROM events WHERE type = 'TenantCreated' ORDER BY position
                """)
        }
        return rows.map { ($0.string("tenant_id") ?? "", $0.string("name") ?? "", $0.string("created") ?? "") }
    }

    /// Operator drain mode of a peer; the write's result (no sequences when it was already so).
    public func setPeerDraining(tenant: String, peer: PeerID, draining: Bool, actor: Actor = Actor(id: "cli")) async throws -> WriteResult {
        try await writer.write(tenant: tenant, actor: actor, requestID: "cli-" + Secrets.id()) { s in
            guard s.exists else { throw ControlPlaneError.notFound(field: "tenant", message: "tenant \(tenant) not found") }
            return try decideOrThrow(.setPeerDraining(id: peer, draining: draining), s.state)
        }
    }

    // MARK: - Peers

    /// What agents last reported (table `peer_status`), by peer id; one peer's only when `peer` is given.
    public func peerStatuses(tenant: String, peer: String? = nil) async throws -> [String: PeerStatus] {
        let rows = try await store.pool.withSession { s in
            if let peer {
                return try s.query("SELECT peer_id, extract(epoch FROM last_seen) AS last_seen, applied_version, status->'shadowed' AS shadowed, status->'selections' AS selections FROM peer_status WHERE tenant_id = $1 AND peer_id = $2", [tenant, peer])
            }
            return try s.query("SELECT peer_id, extract(epoch FROM last_seen) AS last_seen, applied_version, status->'shadowed' AS shadowed, status->'selections' AS selections FROM peer_status WHERE tenant_id = $1", [tenant])
        }
        var out: [String: PeerStatus] = [:]
        for row in rows {
            guard let id = row.string("peer_id"), let epoch = row.double("last_seen") else { continue }
            out[id] = PeerStatus(lastSeen: Date(timeIntervalSince1970: epoch), appliedVersion: row.int64("applied_version") ?? 0,
                                 shadowed: ShadowedRouteStatus.list(fromJSON: row.string("shadowed")),
                                 selections: RouteSelectionReport.list(fromJSON: row.string("selections")))
        }
        return out
    }

    /// The statements that go with removing a peer: its credential and its NATS user are revoked in the same transaction.
    public static func peerRemovalStatements(tenant: String, peer: String) -> [EventStore.SideStatement] {
        [CredentialStore.revoke(tenant: tenant, kind: .peer, subject: peer), AgentBusIssuer.revoke(tenant: tenant, peer: peer)]
    }

    /// After a peer's removal committed at `sequence`: the NATS resolver learns its user is revoked, which cuts its live
    /// connection. First, briefly (≤ 1.5 s), the peer's tombstone view may reach the bus, so the agent hears that it
    /// was removed and clears its routes before it is cut off. A failed push is retried by the periodic push.
    public func peerRemoved(tenant: String, peer: String, sequence: Int64) async {
        guard let bus = settings.bus else { return }
        await awaitTombstonePublished(tenant: tenant, peer: peer, sequence: sequence)
        await bus.revoked("peer \(peer) deleted")
    }

    /// Waits (bounded) until the projection wrote the removed peer's tombstone and a relay published it.
    func awaitTombstonePublished(tenant: String, peer: String, sequence: Int64) async {
        let deadline = ContinuousClock.now + .milliseconds(1_500)
        do {
            try await checkpoints.waitUntilProjected(tenant: tenant, sequence: sequence, timeout: .seconds(1))
            while ContinuousClock.now < deadline {
                let unsent = try await store.pool.withSession { s in
                    try s.query("SELECT count(*) AS unsent FROM outbox WHERE tenant_id = $1 AND peer_id = $2 AND removed AND sent_at IS NULL", [tenant, peer])
                }
                if unsent.first?.int64("unsent") == 0 { return }
                try await Task.sleep(for: .milliseconds(20))
            }
        } catch {
            logger.debug("tombstone not confirmed before revoking the peer's NATS user", metadata: ["peer_id": "\(peer)", "error": "\(error)"])
        }
    }
}

/// What agents last reported (table `peer_status`).
public struct PeerStatus: Sendable, Equatable {
    public var lastSeen: Date
    public var appliedVersion: Int64
    /// HA sets the agent reports as not installed because another network id's HA set with the same destination is.
    public var shadowed: [ShadowedRouteStatus]
    /// The routing peer the agent uses now for each HA set of its view.
    public var selections: [RouteSelectionReport]
    public init(lastSeen: Date, appliedVersion: Int64, shadowed: [ShadowedRouteStatus] = [], selections: [RouteSelectionReport] = []) {
        self.lastSeen = lastSeen
        self.appliedVersion = appliedVersion
        self.shadowed = shadowed
        self.selections = selections
    }
}

/// Times as the API writes and reads them.
public enum ISO8601 {
    public static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    /// RFC 3339 (`format: date-time`): Foundation's parser, and by hand the offsets it refuses (RFC 3339 allows any
    /// `±hh:mm` up to 23:59; Foundation stops near ±18:00).
    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        let offset = Array(text.suffix(6))
        guard offset.count == 6, offset[0] == "+" || offset[0] == "-", offset[3] == ":",
              [offset[1], offset[2], offset[4], offset[5]].allSatisfy({ $0.isASCII && $0.isNumber }),
              let hours = Int(String(offset[1...2])), let minutes = Int(String(offset[4...5])), hours <= 23, minutes <= 59,
              let utc = try? Date(String(text.dropLast(6)) + "Z", strategy: .iso8601) else { return nil }
        let seconds = TimeInterval(hours * 3600 + minutes * 60)
        return offset[0] == "+" ? utc - seconds : utc + seconds
    }
}

/// True for the first caller of `first()` only.
final class OnceFlag: Sendable {
    private let done = Mutex(false)
    func first() -> Bool { done.withLock { d in defer { d = true }; return !d } }
}
