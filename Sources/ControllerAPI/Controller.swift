import Foundation
import EventStore
import Logging
import Messaging
import Projections
import RouteModel
import ControlPlane

/// Settings of one `routeplane serve` process.
public struct ControllerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// What the write path needs (NATS URL, mesh range, projection wait, bus credentials, view signer).
    public var controlPlane: ControlPlaneSettings
    public var natsURL: String? {
        get { controlPlane.natsURL }
        set { controlPlane.natsURL = newValue }
    }
    /// Largest accepted request body.
    public var maxBodyBytes: Int
    /// The one place the 256 KiB body limit is written (the HTTP layer refuses larger bodies before reading them).
    public static let defaultMaxBodyBytes = 256 * 1024
    /// Agents' NATS credentials (operator mode): set when the controller has the deployment's NATS keys.
    public var bus: AgentBusIssuer? {
        get { controlPlane.bus }
        set { controlPlane.bus = newValue }
    }

    public init(host: String = "127.0.0.1", port: Int = 8080, natsURL: String? = nil,
                meshRange: Prefix = try! Prefix(parsing: "100.64.0.0/10"), maxBodyBytes: Int = Self.defaultMaxBodyBytes,
                projectionWait: Duration = .seconds(2), viewSigner: ViewSigner? = nil) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.controlPlane = ControlPlaneSettings(natsURL: natsURL, meshRange: meshRange, projectionWait: projectionWait, viewSigner: viewSigner)
    }
}

/// Everything a request handler needs; no state of its own that PostgreSQL cannot rebuild.
public struct Controller: Sendable {
    public let configuration: ControllerConfiguration
    /// The write path and its reads, without HTTP.
    public let controlPlane: ControlPlane
    public let metrics: ControllerMetrics
    public let logger: Logger
    /// Extra readiness checks for `/healthz` (e.g. NATS), by name.
    public let healthChecks: [String: @Sendable () async -> String?]

    public var store: EventStore { controlPlane.store }
    public var cache: TenantCache { controlPlane.cache }
    public var writer: CommandWriter { controlPlane.writer }

    public init(configuration: ControllerConfiguration, store: EventStore, metrics: ControllerMetrics = ControllerMetrics(),
                logger: Logger = Logger(label: "routeplane.api"), healthChecks: [String: @Sendable () async -> String?] = [:]) {
        self.configuration = configuration
        self.controlPlane = ControlPlane(store: store, settings: configuration.controlPlane, logger: logger)
        self.metrics = metrics
        self.logger = logger
        self.healthChecks = healthChecks
    }
}
