import CommandSupport
import ArgumentParser
import ControlPlane
import HTTPAPI
import EventStore
import Foundation
import Logging
import ViewDistribution
import NATSAuth
import NATSClient
import Projections
import RouteModel
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the controller: the REST API and the projection runner (SIGTERM/SIGINT stop it gracefully).")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var admission: AdmissionOptions
    @OptionGroup var tls: ServeTLSOptions
    @OptionGroup var httpOptions: HTTPServerOptions
    @OptionGroup var databaseLimits: DatabaseLimitOptions
    @OptionGroup var policyOptions: PolicyOptions
    @OptionGroup var historyOptions: HistoryServeOptions
    @OptionGroup var memoryOptions: MemoryOptions
    @OptionGroup var clusterOptions: ServeClusterOptions
    @OptionGroup var reliabilityOptions: ReliabilityServeOptions

    @Option(help: "Address to listen on (loopback by default).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 8080

    @Option(name: .customLong("nats-url"), help: "NATS URL told to agents at enrollment (default: $ROUTEPLANE_NATS_URL).")
    var natsURL: String?

    @Option(name: .customLong("nats-keys"), help: "The deployment's NATS key folder from `routeplane nats init` (default: $ROUTEPLANE_NATS_KEYS); required with NATS.")
    var natsKeys: String?

    @Option(name: .customLong("agent-jwt-hours"), help: "Lifetime of agents' NATS user JWTs in hours (agents renew at half of it).")
    var agentJWTHours = 12

    @Flag(inversion: .prefixedNo, help: "Apply migrations at start (safe with several controllers starting together).")
    var migrate = true

    @Option(help: "Folder of migrations (default: $ROUTEPLANE_MIGRATIONS or ./migrations).")
    var migrations: String?

    @Option(help: "PostgreSQL connections of this process.")
    var maxConnections = 16

    func run() async throws {
        memoryOptions.apply()
        let apiTLS = try tls.apiTLS()
        let store = try database.makeStore(maxConnections: maxConnections)
        let logger = Logger(label: "routeplane.serve")
        // PostgreSQL may not answer yet: the API starts at once behind a closed gate (503 + Retry-After, /healthz says
        // why); `DatabaseStartService` migrates once it answers, then opens the gate and the background work starts.
        var pending: [Migrator.Migration]?
        if migrate { pending = try Migrator.load(directory: migrations ?? Migrator.defaultDirectory()) }
        let gate = StartGate(waitingFor: "waiting for PostgreSQL")
        let start = DatabaseStartService(store: store, migrations: pending, gate: gate, giveUpAfter: try reliabilityOptions.databaseWait(), logger: logger)
        let nats = natsURL ?? ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_URL"]
        let keysFolder = (natsKeys ?? ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_KEYS"]).flatMap { $0.isEmpty ? nil : $0 }
        let keys = try keysFolder.map { try NATSKeyDirectory.load(at: $0) }
        // The view signing key comes from the deployment's key folder, so every controller signs with the same key and
        // agents pinned to it keep accepting views across restarts; during a rotation the previous key endorses it.
        let viewSigner = try keys.map { try Self.viewSigner(keys: $0, logger: logger) } ?? Self.viewSigner(logger: logger)
        var configuration = ControllerConfiguration(natsURL: nats, viewSigner: viewSigner)
        try admission.apply(to: &configuration)
        policyOptions.apply(to: &configuration)
        configuration.http = try httpOptions.settings()
        configuration.database = try databaseLimits.limits(maxConnections: maxConnections)
        configuration.history = try historyOptions.settings()
        configuration.reliability = try reliabilityOptions.settings(logger: logger)
        configuration.reliability.startGate = gate
        var accountPublisher: NATSAccountPublisher?
        if let nats {
            guard let keys else {
                throw ValidationError("NATS runs in operator mode: pass --nats-keys DIR or set ROUTEPLANE_NATS_KEYS (create it once with `routeplane nats init --dir DIR`)")
            }
            guard agentJWTHours >= 1 else { throw ValidationError("--agent-jwt-hours must be at least 1") }
            let lifetime = Duration.seconds(agentJWTHours * 3_600)
            let publisher = NATSAccountPublisher(store: store, keys: keys, natsURL: nats, maxUserLifetime: lifetime,
                                                 logger: Logger(label: "routeplane.nats-account"), tls: tls.natsTLS(url: nats))
            accountPublisher = publisher
            configuration.bus = AgentBusIssuer(keys: keys, userLifetime: lifetime) { reason in
                do { try await publisher.push(reason: reason) } catch {
                    Logger(label: "routeplane.nats-account").warning("could not push a revocation to the NATS resolver now; the periodic push retries",
                                                                    metadata: ["reason": "\(reason)", "error": "\(error)"])
                }
            }
        }
        let metrics = ControllerMetrics()
        // Tenants are hashed to partitions; this controller projects only the partitions it owns (session advisory
        // locks on a dedicated connection, rebalanced over the live controllers), and relays only the relay partitions
        // it owns, balanced over the controllers that have NATS (a controller without NATS holds none).
        let ownership = PartitionOwnership(pool: store.pool, work: .projection, label: "partition-ownership-projection",
                                           logger: Logger(label: "routeplane.partitions"))
        let runner = ProjectionRunner(store: store, ownership: ownership)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var natsConnection: NATSConnection?
        if let nats {
            // Started even when NATS is down: the relay waits (rows stay in the outbox) and libnats keeps reconnecting.
            var natsConfiguration = NATSConfiguration(url: nats, name: "routeplane-controller-\(port)")
            natsConfiguration.failIfUnreachable = false
            natsConfiguration.tls = tls.natsTLS(url: nats)
            if let keys { natsConfiguration.userCredentials = ControllerBusUser(keys: keys).credentials }
            let connection = try await NATSConnection.connect(natsConfiguration, logger: Logger(label: "routeplane.nats"))
            natsConnection = connection
            let relayOwnership = PartitionOwnership(pool: store.pool, work: .relay, label: "partition-ownership-relay",
                                                    logger: Logger(label: "routeplane.partitions"))
            let relay = OutboxRelay(store: store, connection: connection, signer: viewSigner, configuration: try clusterOptions.relayConfiguration(name: "relay-\(port)"),
                                    ownership: relayOwnership, logger: Logger(label: "routeplane.relay"))
            // Before the relay: started first, stopped after it (a ServiceGroup stops in reverse order).
            services.append(.init(service: GatedService(gate: gate, base: PartitionOwnershipService(ownership: relayOwnership))))
            metrics.addGauges {
                let m = relay.metrics
                let latency = m.lastPublishLatency.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 } ?? 0
                return [("routeplane_relay_published_total", Double(m.published)), ("routeplane_relay_duplicates_total", Double(m.duplicates)),
                        ("routeplane_relay_failed_attempts_total", Double(m.failedAttempts)),
                        ("routeplane_relay_last_publish_latency_seconds", latency),
                        ("routeplane_nats_connected", connection.isConnected ? 1 : 0)]
            }
            services.append(.init(service: GatedService(gate: gate, base: RelayService(relay: relay))))
            services.append(.init(service: GatedService(gate: gate, base: StatusService(recorder: PeerStatusRecorder(store: store, connection: connection)))))
            if let accountPublisher { services.append(.init(service: GatedService(gate: gate, base: AccountPublisherService(publisher: accountPublisher)))) }
        } else {
            logger.warning("no NATS URL (--nats-url or ROUTEPLANE_NATS_URL): views stay in the outbox, agents read them over HTTP")
        }
        let natsHealth: [String: @Sendable () async -> String?] = natsConnection.map { c in ["nats": { c.isConnected ? nil : "not connected" }] } ?? [:]
        let server = APIServer(configuration: configuration, store: store, metrics: metrics, logger: Logger(label: "routeplane.api"), healthChecks: natsHealth)
        let (host, port) = (self.host, self.port)
        let http = server.service(host: host, port: port, serverName: "routeplane", tls: apiTLS, logger: Logger(label: "routeplane.http")) { _ in
            ServeTLSOptions.announce(host: host, port: port, tls: apiTLS, logger: logger)
        }
        // A ServiceGroup stops its services in reverse order: the HTTP server (last) stops taking requests and
        // finishes those in flight first; then the projection runner, then the agent-status recorder and the
        // relay (which keeps publishing what those writes put in the outbox until it is stopped; what it leaves
        // is published by another controller's relay, deduplicated by Nats-Msg-Id); then the pool closes, which
        // releases this controller's advisory locks (projection ownership).
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: start, successTerminationBehavior: .ignore),
                       .init(service: GatedService(gate: gate, base: PartitionOwnershipService(ownership: ownership)))] + services
                + [.init(service: GatedService(gate: gate, base: ProjectionService(runner: runner))), .init(service: http)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        await natsConnection?.close()
        await store.shutdown()
        logger.notice("controller stopped")
    }
}

extension Serve {
    /// The key folder's view signing key; with `view-signing.previous.seed` present (a rotation in progress, see
    /// `routeplane nats rotate-view-key`), endorsed by the previous key so agents pinned to it move to the new one.
    static func viewSigner(keys: NATSKeyDirectory, logger: Logger) throws -> ViewSigner {
        let current = try ViewSigner(seed: keys.viewSigningSeed)
        let previousPath = keys.path + "/" + ViewKeyRotation.previousFile
        guard FileManager.default.fileExists(atPath: previousPath) else { return current }
        let previous = try ViewSigner(seedBase64URL: try String(contentsOfFile: previousPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        logger.notice("view signing key rotation in progress: signing with the new key, endorsed by the previous one",
                      metadata: ["view_signing_key": "\(current.publicKey)", "previous_key": "\(previous.publicKey)"])
        return previous.rotated(to: current)
    }

    /// Without a key folder (a controller without NATS): ROUTEPLANE_VIEW_SIGNING_SEED, else an ephemeral key (agents
    /// enrolled with it refuse the views of the next process and of other controllers: they must re-enroll).
    static func viewSigner(logger: Logger) throws -> ViewSigner {
        if let seed = ProcessInfo.processInfo.environment["ROUTEPLANE_VIEW_SIGNING_SEED"], !seed.isEmpty {
            do {
                return try ViewSigner(seedBase64URL: seed)
            } catch {
                throw ValidationError("ROUTEPLANE_VIEW_SIGNING_SEED: \(error)")
            }
        }
        let signer = ViewSigner.ephemeral()
        logger.warning("view signing key is ephemeral (set ROUTEPLANE_VIEW_SIGNING_SEED to share one across controllers and restarts)",
                       metadata: ["view_signing_key": "\(signer.publicKey)"])
        return signer
    }
}

/// The projection runner as a service: follows NOTIFY and sweeps until graceful shutdown.
struct ProjectionService: Service {
    let runner: ProjectionRunner
    func run() async throws {
        await cancelWhenGracefulShutdown {
            await runner.run()
        }
    }
}

/// Holds and balances this controller's tenant partitions; stopped after the work loops, it closes its connection,
/// which frees the partitions for the other controllers.
struct PartitionOwnershipService: Service {
    let ownership: PartitionOwnership
    func run() async throws {
        await cancelWhenGracefulShutdown { await ownership.run() }
    }
}

/// The outbox relay as a service (runs on every controller; rows are claimed with SKIP LOCKED).
struct RelayService: Service {
    let relay: OutboxRelay
    func run() async throws {
        await cancelWhenGracefulShutdown { await relay.run() }
    }
}

/// Pushes the routeplane account (its revocation list) to the NATS resolver at start and every minute.
struct AccountPublisherService: Service {
    let publisher: NATSAccountPublisher
    func run() async throws {
        await cancelWhenGracefulShutdown { await publisher.run() }
    }
}

/// Agents' status messages into `peer_status`.
struct StatusService: Service {
    let recorder: PeerStatusRecorder
    func run() async throws {
        await cancelWhenGracefulShutdown { await recorder.run() }
    }
}

struct Tenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create and list tenants (works on the database directly).",
        subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant; prints its id.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The tenant's name.") var name: String

        func run() async throws {
            let store = try database.makeStore(maxConnections: 2)
            do {
                print(try await ControlPlane(store: store).createTenant(name: name))
            } catch let e as ControlPlaneError {
                await store.shutdown()
                throw ValidationError(e.message)
            }
            await store.shutdown()
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants: id, creation time, name.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let store = try database.makeStore(maxConnections: 2)
            for t in try await ControlPlane(store: store).listTenants() {
                print("\(t.id)\t\(t.created)\t\(t.name)")
            }
            await store.shutdown()
        }
    }
}

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke API tokens (works on the database directly).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token for a tenant; prints the token (shown once).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Tenant id (from `routeplane tenants create`).") var tenant: String
        @Option(help: "A name for the token (shown in the audit log).") var name = "api"
        @Option(help: "Days until the token expires, \(TokenPolicy.minExpiresInDays) to \(TokenPolicy.maxExpiresInDays) (NetBird's range).")
        var expiresInDays = TokenPolicy.defaultExpiresInDays
        @Option(help: "admin (read and change everything of the tenant) or read_only (read only: every write answers 403).")
        var scope = TokenScope.admin.rawValue

        func run() async throws {
            guard let scope = TokenScope(rawValue: scope) else { throw ArgumentParser.ValidationError("--scope must be \(TokenScope.names), got \(scope)") }
            let store = try database.makeStore(maxConnections: 2)
            do {
                let created = try await ControlPlane(store: store).createToken(tenant: tenant, name: name, scope: scope, expiresInDays: expiresInDays)
                print(created.token)
                let expires = ISO8601.format(Date(timeIntervalSince1970: TimeInterval(created.expiresAt)))
                FileHandle.standardError.write(Data("token id \(created.id) for tenant \(tenant), scope \(scope.rawValue), expires \(expires); the token is shown only this once\n".utf8))
            } catch let e as RouteModel.ValidationError {
                await store.shutdown()
                throw ArgumentParser.ValidationError("\(e.field == "expires_in" ? "--expires-in-days" : "--\(e.field)"): \(e.message)")
            } catch let e as ControlPlaneError {
                await store.shutdown()
                throw ValidationError(e.message)
            }
            await store.shutdown()
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's API tokens: id, scope, expiry, state, name (never the secret).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Tenant id.") var tenant: String
        @Flag(help: "Include revoked tokens.") var all = false

        func run() async throws {
            let store = try database.makeStore(maxConnections: 2)
            let cp = ControlPlane(store: store)
            let now = Int64(Date().timeIntervalSince1970)
            do {
                let snapshot = try await cp.cache.current(tenant)
                for t in try await cp.tokens(tenant: tenant, state: snapshot.state, includeRevoked: all) {
                    let state = t.revoked ? "revoked" : t.expired(now: now) ? "expired" : "active"
                    let expires = ISO8601.format(Date(timeIntervalSince1970: TimeInterval(t.expiresAt)))
                    print("\(t.id)\t\(t.scope.rawValue)\t\(expires)\t\(state)\t\(t.name)")
                }
            } catch {
                await store.shutdown()
                throw error
            }
            await store.shutdown()
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API token, given the token itself or --tenant and its id.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Tenant id (needed when revoking by token id).") var tenant: String?
        @Argument(help: "The token, or its id.") var token: String

        func run() async throws {
            let store = try database.makeStore(maxConnections: 2)
            do {
                try await ControlPlane(store: store).revokeToken(tenant: tenant, token: token)
                print("revoked")
            } catch let e as ControlPlaneError {
                await store.shutdown()
                throw ValidationError(e.message)
            }
            await store.shutdown()
        }
    }
}
