import CommandSupport
import ArgumentParser
import AsyncHTTPClient
import ChaosKit
import Foundation

/// `routeplane-chaos`: the fault-injection run (normally started by `ops/chaos`, which brings up its own
/// PostgreSQL and NATS). Starts N controllers, a few hundred simulated agents and a random workload over several
/// tenants; kills controllers with SIGKILL, restarts PostgreSQL and NATS once each; then checks that nothing
/// acknowledged was lost or duplicated, nothing refused left a trace, the projections equal a rebuild, and every agent
/// converged on its projected view without ever going back. Bounded in time and requests; loopback only.
@main
struct Chaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routeplane-chaos",
        abstract: "Fault-injection run: controllers killed, PostgreSQL and NATS restarted under load; checks nothing is lost (see ops/chaos).")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var clusterOptions: ChaosClusterOptions
    @Flag(help: "The short variant for the test command (40 s of faults, 3 tenants × 40 agents).") var short = false
    @Option(help: "Seconds of workload and faults (default 120; --short 40).") var duration: Int?
    @Option(help: "Controllers (routeplane serve processes) sharing the database and NATS.") var controllers = 3
    @Option(help: "Port of the first controller; the others follow.") var basePort = 18081
    @Option(help: "Tenants (default 4; --short 3).") var tenants: Int?
    @Option(help: "Simulated agents per tenant (default 75; --short 40).") var agents: Int?
    @Option(help: "Concurrent workload clients.") var workers = 6
    @Option(help: "Pause of each client between operations, in milliseconds (at most).") var pauseMs = 25
    @Option(help: "Upper bound on write requests.") var maxWrites = 200_000
    @Option(help: "Mean seconds between controller kills (default 5; --short 3.5).") var killEvery: Double?
    @Option(help: "Seconds PostgreSQL and NATS stay down when restarted.") var outage = 3.0
    @Option(help: "Seconds between restarts of one random simulated agent (0: none).") var agentRestartEvery = 5.0
    @Option(help: "Seconds to wait for convergence after the last fault (default 90; --short 45).") var convergenceTimeout: Int?
    @Option(help: "Seed of the fault plan and the workload (default: $ROUTEPLANE_CHAOS_SEED, else random; printed).") var seed: UInt64?
    @Option(help: "Folder for logs, agent state and pid files (default: a new one under /tmp).") var workDir: String?
    @Option(help: "Folder for the agents' state folders (default: under /dev/shm when it exists, else the work folder).") var agentStateDir: String?
    @Option(help: "ops/services script (stop/start postgres|nats of this run's own instance, from its environment).") var servicesScript = "ops/services"
    @Option(help: "routeplane binary for the controllers and admin commands (default: the one next to this executable).") var binary: String?
    @Option(name: .customLong("nats-url"), help: "NATS URL (default: $ROUTEPLANE_NATS_URL).") var natsURL: String?
    @Flag(help: "TEST ONLY: controller 1 acknowledges its 40th write without committing it (the run must then fail).") var injectLostWrite = false

    func run() async throws {
        bootstrapLogging(level: database.logLevel)
        let databaseURL = try database.resolvedURL()
        guard let nats = natsURL ?? ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_URL"], !nats.isEmpty else {
            throw ValidationError("no NATS: pass --nats-url or set ROUTEPLANE_NATS_URL")
        }
        for url in [databaseURL, nats] where !ChaosSettings.isLoopback(url) {
            throw ValidationError("the chaos run kills and restarts what it uses: loopback services only, got \(url)")
        }
        guard controllers >= 2 else { throw ValidationError("--controllers must be at least 2 (one is always up)") }
        let work = workDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-chaos-\(ProcessInfo.processInfo.processIdentifier)").path
        var settings = ChaosSettings(
            duration: Double(duration ?? (short ? 40 : 120)), controllers: controllers, basePort: basePort,
            tenants: tenants ?? (short ? 3 : 4), agentsPerTenant: agents ?? (short ? 40 : 75), workers: workers, pauseMs: pauseMs,
            maxWrites: maxWrites, killEvery: killEvery ?? (short ? 3.5 : 5), outage: outage,
            agentRestartEvery: agentRestartEvery > 0 ? agentRestartEvery : nil,
            convergenceTimeout: Double(convergenceTimeout ?? (short ? 45 : 90)), seed: try resolvedSeed(),
            workDir: work,
            servicesScript: servicesScript, binary: binary ?? Executables.sibling("routeplane"), databaseURL: databaseURL, natsURL: nats,
            agentStateDir: agentStateDir ?? ChaosSettings.defaultAgentStateDir(workDir: work)).with(cluster: try clusterOptions.settings())
        if injectLostWrite {
            settings.injectLostWrite = 40
            print("routeplane-chaos: --inject-lost-write: controller 1 will acknowledge its write number 40 WITHOUT committing it; this run must FAIL")
        }
        // One HTTP client for the run's own requests, shut down when the run returns.
        let runSettings = settings
        let passed = try await HTTPClient.withHTTPClient(configuration: ChaosHTTP.configuration) { http in
            try await ChaosRun(settings: runSettings, http: ChaosHTTP.Client(http, timeout: .seconds(15))).run()
        }
        if !passed { throw ExitCode(1) }
    }
}

extension Chaos {
    /// --seed, else $ROUTEPLANE_CHAOS_SEED (so CI can repeat a failed run's seed), else a random one (printed).
    func resolvedSeed() throws -> UInt64 {
        if let seed { return seed }
        if let text = ProcessInfo.processInfo.environment["ROUTEPLANE_CHAOS_SEED"], !text.isEmpty {
            guard let value = UInt64(text) else { throw ValidationError("ROUTEPLANE_CHAOS_SEED must be a non-negative integer, got \(text)") }
            return value
        }
        return UInt64.random(in: 1...999_999)
    }
}

extension ChaosSettings {
    /// The agents persist every applied view with fsync. Hundreds of them in one process would queue those fsyncs on
    /// the two threads of the cooperative pool (each real agent has its own process), so their folders go on tmpfs.
    static func defaultAgentStateDir(workDir: String) -> String? {
        guard access("/dev/shm", W_OK) == 0 else { return nil }
        return "/dev/shm/" + (workDir as NSString).lastPathComponent + "-agents"
    }
}
