import Foundation
import PostgresClient
import EventStore
import Logging
import ViewDistribution
import Projections
import RouteModel
import Synchronization

/// Settings of one `routeplane serve` process.
public struct ControllerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Where agents find NATS (told to them at enrollment); nil when unknown.
    public var natsURL: String?
    /// Mesh range peers get their address from when they report none (NetBird: 100.64.0.0/10).
    public var meshRange: Prefix
    /// Largest accepted request body.
    public var maxBodyBytes: Int
    /// The one place the 256 KiB body limit is written (the HTTP layer refuses larger bodies before reading them).
    public static let defaultMaxBodyBytes = 256 * 1024
    /// How long a write waits for its projection before answering anyway (agents' view endpoint).
    public var projectionWait: Duration
    /// Agents' NATS credentials (operator mode): set when the controller has the deployment's NATS keys.
    public var bus: AgentBusIssuer? = nil
    /// Signs the views `GET /api/agent/view` answers; its public key is told to agents at enrollment. The outbox relay
    /// must sign with the same key. nil: the controller makes an ephemeral one (and warns).
    public var viewSigner: ViewSigner?

    public init(host: String = "127.0.0.1", port: Int = 8080, natsURL: String? = nil,
                meshRange: Prefix = try! Prefix(parsing: "100.64.0.0/10"), maxBodyBytes: Int = Self.defaultMaxBodyBytes,
                projectionWait: Duration = .seconds(2), viewSigner: ViewSigner? = nil) {
        self.host = host
        self.port = port
        self.natsURL = natsURL
        self.meshRange = meshRange
        self.maxBodyBytes = maxBodyBytes
        self.projectionWait = projectionWait
        self.viewSigner = viewSigner
    }
}

/// Everything a request handler needs; no state of its own that PostgreSQL cannot rebuild.
public struct Controller: Sendable {
    public let configuration: ControllerConfiguration
    public let store: EventStore
    public let cache: TenantCache
    public let writer: CommandWriter
    public let credentials: CredentialStore
    public let checkpoints: ProjectionCheckpoints
    public let metrics: ControllerMetrics
    public let logger: Logger
    /// Extra readiness checks for `/healthz` (e.g. NATS), by name.
    public let healthChecks: [String: @Sendable () async -> String?]
    /// The configuration's view signer, or an ephemeral one made at init (warned about once, at its first use, so admin
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

    public init(configuration: ControllerConfiguration, store: EventStore, metrics: ControllerMetrics = ControllerMetrics(),
                logger: Logger = Logger(label: "routeplane.api"), healthChecks: [String: @Sendable () async -> String?] = [:]) {
        self.configuration = configuration
        self.store = store
        self.cache = TenantCache(store: store)
        self.writer = CommandWriter(store: store, cache: cache, logger: logger)
        self.credentials = CredentialStore(store: store)
        self.checkpoints = ProjectionCheckpoints(store: store)
        self.metrics = metrics
        self.logger = logger
        self.healthChecks = healthChecks
        self.signer = configuration.viewSigner ?? .ephemeral()
        self.ephemeralSignerWarning = configuration.viewSigner == nil ? OnceFlag() : nil
    }

    // MARK: - Admin operations (the CLI's `tenants` and `tokens`, also used by tests)

    /// Creates a tenant (its first event) and returns its id.
    public func createTenant(name: String, actor: Actor = Actor(id: "cli")) async throws -> String {
        let tenant = "t-" + Secrets.id()
        _ = try await writer.write(tenant: tenant, actor: actor, requestID: "cli-" + Secrets.id()) { snapshot in
            try decideOrThrow(AccessCommand.createTenant(name: name), snapshot.state)
        }
        return tenant
    }

    /// Creates an API token for `tenant`; returns its id and the secret (shown once).
    public func createToken(tenant: String, name: String, actor: Actor = Actor(id: "cli")) async throws -> (id: String, token: String) {
        let id = Secrets.id()
        let secret = Secrets.secret(prefix: "rpt_")
        _ = try await writer.write(tenant: tenant, actor: actor, requestID: "cli-" + Secrets.id()) { snapshot in
            guard snapshot.state.tenantName != nil else { throw APIError(.notFound, "tenant \(tenant) not found", field: "tenant") }
            return try decideOrThrow(AccessCommand.createToken(id: TokenID(id), name: name), snapshot.state)
        } sideStatements: { _ in
            [CredentialStore.insert(secret: secret, tenant: tenant, kind: .apiToken, subject: id)]
        }
        return (id, secret)
    }

    /// Revokes a token given by its id or by its secret.
    public func revokeToken(tenant: String?, token: String, actor: Actor = Actor(id: "cli")) async throws {
        var tenantID = tenant
        var tokenID = token
        if let found = try await credentials.lookup(token, kind: .apiToken) {
            tenantID = found.tenant
            tokenID = found.subject
        }
        guard let tenantID else { throw APIError(.notFound, "token not found (give --tenant with a token id)", field: "token") }
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
            try s.query("SELECT tenant_id, data->>'name', to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM events WHERE type = 'TenantCreated' ORDER BY position")
        }
        return rows.rows.map { ($0[0] ?? "", $0[1] ?? "", $0[2] ?? "") }
    }
}

/// True for the first caller of `first()` only.
final class OnceFlag: Sendable {
    private let done = Mutex(false)
    func first() -> Bool { done.withLock { d in defer { d = true }; return !d } }
}
