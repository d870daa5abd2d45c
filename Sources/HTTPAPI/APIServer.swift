import ControlPlane
import EventStore
import HTTPTypes
import Hummingbird
import Logging
import ViewDistribution
import NIOCore
import RouteModel
import ServiceLifecycle

/// Settings of one `routeplane serve` process: the HTTP layer's body limit and the control plane's settings (where it listens is
/// given to `APIServer.service(host:port:…)`).
public struct ControllerConfiguration: Sendable {
    /// Largest accepted request body.
    public var maxBodyBytes: Int
    /// The one place the 256 KiB body limit is written (the HTTP layer refuses larger bodies before reading them).
    public static let defaultMaxBodyBytes = 256 * 1024
    /// What the write path needs (NATS URL, mesh range, projection wait, bus credentials, view signer).
    public var controlPlane: ControlPlaneSettings
    /// Connection timeouts, the negative token cache, how often `/metrics` and `/healthz` read the database.
    public var http = HTTPServerSettings()
    /// Statement timeouts, the pool lease deadline and the audit search's limits of API requests.
    public var database = DatabaseLimits()
    /// How `?as_of=` reads and history diffs are served (snapshot interval).
    public var history = HistorySettings()
    /// Idempotency keys, the start gate, the test-only lost-write switch.
    public var reliability = ReliabilitySettings()

    /// Where agents find NATS (told to them at enrollment).
    public var natsURL: String? {
        get { controlPlane.natsURL }
        set { controlPlane.natsURL = newValue }
    }
    /// Agents' NATS credentials (operator mode): set when the controller has the deployment's NATS keys.
    public var bus: AgentBusIssuer? {
        get { controlPlane.bus }
        set { controlPlane.bus = newValue }
    }

    public init(natsURL: String? = nil,
                meshRange: Prefix = try! Prefix(parsing: "100.64.0.0/10"), maxBodyBytes: Int = Self.defaultMaxBodyBytes,
                projectionWait: Duration = .seconds(2), viewSigner: ViewSigner? = nil) {
        self.maxBodyBytes = maxBodyBytes
        self.controlPlane = ControlPlaneSettings(natsURL: natsURL, meshRange: meshRange, projectionWait: projectionWait, viewSigner: viewSigner)
    }
}

/// One endpoint the router serves, in OpenAPI's path form (`/api/routes/{id}`).
public struct Endpoint: Hashable, Sendable, Comparable {
    public var method: String
    public var path: String
    public static func < (a: Endpoint, b: Endpoint) -> Bool { (a.path, a.method) < (b.path, b.method) }
}

/// The controller's HTTP API: one controller per resource on a Hummingbird router, the middleware that maps errors and
/// records metrics, and the server that serves them. The executables start it through `service(…)`/`run(…)`, so only
/// this target knows Hummingbird.
public struct APIServer: Sendable {
    public let configuration: ControllerConfiguration
    /// The write path and its reads, without HTTP.
    public let controlPlane: ControlPlane
    public let metrics: ControllerMetrics
    public let logger: Logger
    let healthChecks: [String: @Sendable () async -> String?]

    /// `healthChecks`: extra readiness checks for `/healthz` (e.g. NATS), by name.
    public init(configuration: ControllerConfiguration, store: EventStore, metrics: ControllerMetrics = ControllerMetrics(),
                logger: Logger = Logger(label: "routeplane.api"), healthChecks: [String: @Sendable () async -> String?] = [:]) {
        self.configuration = configuration
        self.controlPlane = ControlPlane(store: store, settings: configuration.controlPlane, logger: logger)
        self.metrics = metrics
        self.logger = logger
        self.healthChecks = healthChecks
    }

    /// The router of `routeplane serve`, and the endpoints it serves.
    public func makeRouter() -> (router: Router<APIRequestContext>, endpoints: [Endpoint]) {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: APIMiddleware(metrics: metrics, logger: logger))
        router.add(middleware: StartGateMiddleware(gate: configuration.reliability.startGate))
        router.add(middleware: DatabaseBudgetMiddleware(limits: configuration.database))
        let recorder = EndpointRecorder(router: router)
        let http = configuration.http
        var access = ResourceAccess(controlPlane: controlPlane, metrics: metrics, maxBodyBytes: configuration.maxBodyBytes,
                                    unknownSecrets: .init(ttl: http.negativeTokenTTL, capacity: http.negativeTokenEntries),
                                    history: TenantHistory(store: controlPlane.store, settings: configuration.history, logger: logger))
        access.lostWrite = configuration.reliability.lostWrite
        // Authentication before the handler, so before any body is read (see `AuthenticationMiddleware`).
        let tokens = AuthenticationMiddleware(access: access, kind: .apiToken, idempotency: idempotencyGate)
        OperationsController(store: controlPlane.store, metrics: metrics, settings: http, logger: logger, healthChecks: healthChecks)
            .addRoutes(to: recorder.group())
        let asOf = AsOfHeaderMiddleware()
        RoutesController(access: access).addRoutes(to: recorder.group("/api/routes").add(middleware: tokens).add(middleware: asOf))
        GroupsController(access: access).addRoutes(to: recorder.group("/api/groups").add(middleware: tokens).add(middleware: asOf))
        PeersController(access: access).addRoutes(to: recorder.group("/api/peers").add(middleware: tokens).add(middleware: asOf))
        HistoryController(access: access).addPeerRoutes(to: recorder.group("/api/peers").add(middleware: tokens).add(middleware: asOf))
        HistoryController(access: access).addHistoryRoutes(to: recorder.group("/api/history").add(middleware: tokens))
        SetupKeysController(access: access).addRoutes(to: recorder.group("/api/setup-keys").add(middleware: tokens))
        PoliciesController(access: access).addRoutes(to: recorder.group("/api/policies").add(middleware: tokens))
        AgentController(access: access, natsURL: configuration.natsURL)
            .addRoutes(to: recorder.group("/api/agent"), agents: AuthenticationMiddleware(access: access, kind: .peer))
        let audit = AuditController(access: access, limits: configuration.database)
        audit.addRoutes(to: recorder.group("/api/events").add(middleware: tokens))
        AuditExportController(access: access, limits: configuration.database, searches: audit.searches)
            .addRoutes(to: recorder.group("/api/events/audit/export").add(middleware: tokens))
        TokensController(access: access).addRoutes(to: recorder.group("/api/users").add(middleware: tokens))
        ConsoleController().addRoutes(to: router)  // the web console (no credentials; not part of the API document)
        return (router, recorder.endpoints.sorted())
    }

    /// `Idempotency-Key` on the API tokens' writes (`IdempotencyGate`).
    var idempotencyGate: IdempotencyGate {
        IdempotencyGate(keys: IdempotencyKeys(pool: controlPlane.store.pool, logger: logger, retention: configuration.reliability.idempotencyRetention,
                                              lease: configuration.reliability.idempotencyLease),
                        maxBodyBytes: configuration.maxBodyBytes, logger: logger)
    }

    /// The HTTP server as a service (for a `ServiceGroup`) on `host`:`port`: HTTP/1.1 with the timeouts of
    /// `configuration.http`; on graceful shutdown, requests in flight get `shutdownGrace`, then 503 (`RequestDrain`).
    /// `onRunning` gets the bound port; `router` defaults to `makeRouter()`'s (tests may add routes to it first).
    /// With `tls`, HTTPS only (the same timeouts, inside TLS). `eventLoopGroup` defaults to NIO's shared one (tests that
    /// time the server's own deadlines give it a group no other server shares).
    public func service(host: String, port: Int, serverName: String? = nil, tls: APIServerTLS? = nil,
                        router: Router<APIRequestContext>? = nil, eventLoopGroup: (any EventLoopGroup)? = nil, logger: Logger,
                        onRunning: @escaping @Sendable (_ port: Int?) async -> Void = { _ in }) -> some Service {
        let drain = RequestDrain()
        let app = Application(responder: DrainingResponder(base: (router ?? makeRouter().router).buildResponder(), drain: drain),
                              server: APIServerTLS.serverBuilder(tls, base: .http1(settings: configuration.http, metrics: metrics, logger: self.logger)),
                              configuration: .init(address: .hostname(host, port: port), serverName: serverName),
                              onServerRunning: { channel in await onRunning(channel.localAddress?.port) },
                              eventLoopGroupProvider: eventLoopGroup.map { .shared($0) } ?? .singleton,
                              logger: logger)
        return DrainingService(app: app, drain: drain, grace: configuration.http.shutdownGrace, logger: self.logger)
    }

    /// Serves on `host`:`port` until `stop` returns, then shuts down gracefully (as on SIGTERM), or until the task is
    /// cancelled (abruptly: responses in flight are lost).
    public func run(host: String, port: Int, router: Router<APIRequestContext>? = nil, eventLoopGroup: (any EventLoopGroup)? = nil, logger: Logger,
                    onRunning: @escaping @Sendable (_ port: Int?) async -> Void = { _ in },
                    until stop: (@Sendable () async -> Void)? = nil) async throws {
        let stop = stop ?? { await Task.never() }
        let group = ServiceGroup(services: [service(host: host, port: port, router: router, eventLoopGroup: eventLoopGroup, logger: logger,
                                                               onRunning: onRunning)], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                await stop()
                await group.triggerGracefulShutdown()
            }
            try await tasks.next()
            try await tasks.next()
        }
    }
}

extension Task where Success == Never, Failure == Never {
    /// Suspends until cancelled.
    static func never() async {
        let (stream, _) = AsyncStream<Void>.makeStream()
        for await _ in stream {}
    }
}

/// A router front that remembers each (method, path) registered through it or its groups, so a test can hold the
/// OpenAPI document against what is really served.
final class EndpointRecorder: RouterMethods {
    typealias Context = APIRequestContext
    let router: Router<APIRequestContext>
    private(set) var endpoints: [Endpoint] = []

    init(router: Router<APIRequestContext>) { self.router = router }

    @discardableResult func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method, responder: Responder) -> Self
    where Responder.Context == APIRequestContext {
        endpoints.append(Endpoint(method: method.rawValue, path: path.description)) // `{id}` form, as in OpenAPI
        router.on(path, method: method, responder: responder)
        return self
    }

    @discardableResult func add(middleware: any MiddlewareProtocol<Request, Response, APIRequestContext>) -> Self {
        router.add(middleware: middleware)
        return self
    }
}
