import Foundation

/// What one fault-injection run does (from `routeplane-chaos`'s options).
public struct ChaosSettings: Sendable {
    public var duration: Double
    public var controllers: Int
    public var basePort: Int
    public var tenants: Int
    public var agentsPerTenant: Int
    public var workers: Int
    public var pauseMs: Int
    public var maxWrites: Int
    public var killEvery: Double
    public var outage: Double
    public var agentRestartEvery: Double?
    public var convergenceTimeout: Double
    public var seed: UInt64
    public var workDir: String
    public var servicesScript: String
    public var binary: String
    public var databaseURL: String
    public var natsURL: String
    public var agentStateDir: String?
    /// TEST ONLY (`--inject-lost-write`): the first controller acknowledges this write of its own without committing
    /// it, so the run must fail (its checks are shown to catch a lost write).
    public var injectLostWrite: Int?

    public init(duration: Double, controllers: Int, basePort: Int, tenants: Int, agentsPerTenant: Int, workers: Int,
                pauseMs: Int, maxWrites: Int, killEvery: Double, outage: Double, agentRestartEvery: Double? = nil,
                convergenceTimeout: Double, seed: UInt64, workDir: String, servicesScript: String, binary: String,
                databaseURL: String, natsURL: String, agentStateDir: String? = nil) {
        self.duration = duration
        self.controllers = controllers
        self.basePort = basePort
        self.tenants = tenants
        self.agentsPerTenant = agentsPerTenant
        self.workers = workers
        self.pauseMs = pauseMs
        self.maxWrites = maxWrites
        self.killEvery = killEvery
        self.outage = outage
        self.agentRestartEvery = agentRestartEvery
        self.convergenceTimeout = convergenceTimeout
        self.seed = seed
        self.workDir = workDir
        self.servicesScript = servicesScript
        self.binary = binary
        self.databaseURL = databaseURL
        self.natsURL = natsURL
        self.agentStateDir = agentStateDir
    }

    /// The environment that turns a controller's test-only lost-write switch on (empty when off).
    public var lostWriteEnvironment: [String: String] {
        guard let n = injectLostWrite else { return [:] }
        return ["ROUTEPLANE_TEST_LOSE_WRITE": String(n), "ROUTEPLANE_TEST_I_KNOW_THIS_LOSES_DATA": "yes"]
    }

    /// The run kills and restarts what it uses: only services on this machine's loopback (every host of a
    /// multi-host URL or URL list).
    public static func isLoopback(_ url: String) -> Bool {
        guard let hosts = ChaosServiceURL.hosts(url) else { return false }
        return hosts.allSatisfy { ["127.0.0.1", "localhost", "::1"].contains($0) }
    }

    /// The replicated-service faults (standby failover, NATS server kill, partition); none unless asked.
    public var cluster = ChaosClusterSettings()
}

/// A duration in seconds.
public func chaosSeconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
