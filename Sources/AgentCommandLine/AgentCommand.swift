import CommandLogging
import ArgumentParser
import Foundation
import Logging
import RouteAgent
import RouteModel
import ServiceLifecycle
import UnixSignals

/// `routeplane agent` and the lean executable `routeplane-agent` (Sources/routeplane-agent): one command, two names.
public struct Agent: AsyncParsableCommand {
    /// Named after the executable run: `routeplane-agent` when it is the lean executable, else `agent` (a subcommand).
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: CommandLine.arguments.first?.split(separator: "/").last == "routeplane-agent" ? "routeplane-agent" : "agent",
            abstract: "Run the agent on a peer: enroll once, follow this peer's route view, choose HA routing peers locally, apply routes.",
            subcommands: [AgentRoutes.self])
    }

    enum ApplierKind: String, ExpressibleByArgument, CaseIterable { case linux, dryRun = "dry-run" }

    // Optional for the parser only (the `routes` subcommand runs without it); `run` requires it.
    @Option(help: "Controller URL, e.g. https://controller.example.net (http:// only to loopback, unless --insecure).") var controller: String?
    @OptionGroup var transport: AgentTransportOptions
    @OptionGroup var domainOptions: AgentDomainOptions
    @OptionGroup var wireGuard: AgentWireGuardOptions
    @Option(help: "FOR TESTS ONLY: the setup key on the command line is readable by every local user (/proc/PID/cmdline); use --setup-key-file or $ROUTEPLANE_SETUP_KEY.")
    var setupKey: String?
    @Option(help: "File holding the setup key to enroll with (only needed the first time; keep it 0600). Or set $ROUTEPLANE_SETUP_KEY.")
    var setupKeyFile: String?
    /// `--state-dir`, shared with `agent routes` (AgentRoutesCommand.swift).
    @OptionGroup var stateFolder: AgentStateDirOption
    var stateDir: String { stateFolder.stateDir }
    @Option(help: "linux (ip route / nftables; needs root) or dry-run (records what it would do).") var applier: ApplierKind = .linux
    @Option(help: "Peer name at enrollment (default: host name).") var name: String?
    @Option(help: "Mesh IP to report at enrollment (default: the controller allocates one).") var ip: String?
    @Option(help: "NATS URL (default: the one the controller gave at enrollment).") var natsURL: String?
    @Option(help: "NATS credentials file (JWT + NKEY seed) to use instead of the per-agent user the controller issues at enrollment.") var natsCredentials: String?
    @Option(help: "Probe interval in milliseconds (a dead routing peer is detected after 3 misses + 1 s).") var probeIntervalMs = 500
    @Option(help: "UDP port of the health probe/echo on mesh addresses.") var probePort: UInt16 = 51821
    @Flag(help: "Treat every candidate as reachable (simulated agents without a mesh network).") var assumeCandidatesUp = false
    @Flag(help: "Remove every route and NAT rule the agent added (keep_route routes included) and exit.") var cleanup = false
    @Option(help: "Log level.") var logLevel: Logger.Level = .notice

    public init() {}

    public func run() async throws {
        guard let controller else { throw ArgumentParser.ValidationError("Missing expected argument '--controller <controller>'") }
        bootstrapLogging(level: logLevel)
        let logger = Logger(label: "routeplane.agent")
        let setupKey: String?
        do {
            let resolved = try SetupKeySource.resolve(flag: self.setupKey, file: setupKeyFile, environment: ProcessInfo.processInfo.environment)
            if resolved.source == .commandLine {
                logger.warning("setup key given with --setup-key: any local user can read it from /proc while the agent runs; this flag is for tests, use --setup-key-file or ROUTEPLANE_SETUP_KEY")
            }
            setupKey = resolved.key
        } catch {
            throw ArgumentParser.ValidationError(error.description)
        }
        var routeApplier: any RouteApplier
        switch applier {
        case .linux: routeApplier = try LinuxApplier(logger: logger)
        case .dryRun: routeApplier = DryRunApplier()
        }
        if wireGuard.wireguard, applier != .linux { throw ArgumentParser.ValidationError("--wireguard needs --applier linux") }
        var probe = HealthProbeConfiguration()
        probe.interval = .milliseconds(probeIntervalMs)
        probe.port = probePort
        var configuration = AgentConfiguration(
            controller: controller, setupKey: setupKey, stateFolder: stateDir,
            name: name ?? ProcessInfo.processInfo.hostName, os: "linux", ip: ip, natsURL: natsURL, natsCredentials: natsCredentials,
            machine: .init(assumeCandidatesUp: assumeCandidatesUp, domains: domainOptions.configuration), probe: assumeCandidatesUp ? nil : probe,
            answerProbes: !assumeCandidatesUp)
        configuration.transport = transport.settings
        if let wg = try wireGuard.setUp(stateDir: stateDir, controller: controller, natsURL: natsURL, configuration: &configuration,
                                        logger: logger) {
            routeApplier = wg
        }
        let runner = try AgentRunner(configuration: configuration, applier: routeApplier, logger: logger)
        if cleanup {
            try await runner.cleanup(keepRoutes: false)
            return
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: AgentService(runner: runner))], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        // Graceful exit: take our routes out, except keep_route ones.
        try? await runner.cleanup(keepRoutes: true)
    }
}

struct AgentService: Service {
    let runner: AgentRunner
    func run() async throws {
        try await cancelWhenGracefulShutdown { try await runner.run() }
    }
}
