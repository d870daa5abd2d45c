import Foundation
import Logging
import ProcessSpawn
import RouteModel
#if canImport(Glibc)
import Glibc
#endif

/// The Linux applier on a WireGuard mesh: the agent owns one WireGuard interface (the kernel's where the host has the
/// module, else a `wireguard-go` child), keeps its peers equal to the view's (`WireGuardPlanner`: a network's allowed
/// IPs on the routing peer the selection chose), installs routes through the interface in Routeplane's own table
/// with ip rules (`PolicyRoutingPlanner`), and on a routing peer lets its routed traffic through foreign forward
/// chains that drop by default (`ForwardPinholePlanner`); forwarding, masquerade and access control are the
/// `LinuxApplier`'s, which it wraps (routes in `policy.table`). A shell: observe, plan, run, observe again.
public actor WireGuardApplier: RouteApplier {
    public struct Configuration: Sendable {
        /// Unique on the host: wireguard-go's control socket is `/var/run/wireguard/<name>.sock` for every namespace.
        public var interface: String
        public var listenPort: Int
        /// The private key file (0600, in the state folder).
        public var privateKeyFile: String
        public var policy: PolicyRouting
        public var commandTimeout: Duration

        public init(interface: String, listenPort: Int = 51820, privateKeyFile: String, policy: PolicyRouting = .default,
                    commandTimeout: Duration = .seconds(10)) {
            self.interface = interface
            self.listenPort = listenPort
            self.privateKeyFile = privateKeyFile
            self.policy = policy
            self.commandTimeout = commandTimeout
        }
    }

    public nonisolated let configuration: Configuration
    private let inner: LinuxApplier
    private let runner: any CommandRunning
    private let logger: Logger
    private let folder: AgentStateFolder
    /// Keys of the WireGuard peers this agent added (persisted in the state folder).
    private var owned: Set<String>
    /// The wireguard-go child when the kernel has no WireGuard.
    private var child: pid_t?
    private var interfaceUp = false
    /// Addresses that never enter the tunnel besides the peers' endpoints: the controller's and NATS's.
    private var exclusions: [IPAddress] = []

    public init(configuration: Configuration, folder: AgentStateFolder, runner: any CommandRunning = CommandRunner(),
                logger: Logger = Logger(label: "routeplane.applier.wireguard")) throws {
        guard LinuxNames.isValidInterfaceName(configuration.interface) else {
            throw ApplierError.invalidConfiguration("WireGuard interface name \"\(configuration.interface)\" is not a Linux interface name (1-15 of [A-Za-z0-9_.-])")
        }
        if runner is CommandRunner, CommandRunner.resolve("wg") == nil {
            throw ApplierError.missingTool("wg not found: install Debian's wireguard-tools (and wireguard-go where the kernel has no WireGuard module)")
        }
        self.configuration = configuration
        self.runner = runner
        self.logger = logger
        self.folder = folder
        self.owned = folder.loadWireGuardPeers()
        inner = try LinuxApplier(configuration: .init(marking: RouteMarking(table: configuration.policy.table)), runner: runner, logger: logger)
    }

    // MARK: - the interface

    /// Brings the interface up with `meshAddress/prefixLength` (reusing one that exists, e.g. a wireguard-go left by
    /// an agent that was killed): key, listen port and fwmark set, address replaced, link up.
    public func start(meshAddress: IPAddress, prefixLength: Int, exclusions: [IPAddress]) async throws {
        self.exclusions = exclusions
        let name = configuration.interface
        let existing = try await run(["wg", "show", name])
        if !existing.succeeded {
            if try await run(["ip", "link", "add", name, "type", "wireguard"]).succeeded {
                logger.notice("created kernel WireGuard interface", metadata: ["interface": "\(name)"])
            } else {
                try startUserspace(name)
            }
        }
        try await must(["wg", "set", name, "private-key", configuration.privateKeyFile, "listen-port", String(configuration.listenPort),
                        "fwmark", "0x" + String(configuration.policy.fwmark, radix: 16)])
        try await must(["ip", "address", "replace", "\(meshAddress)/\(prefixLength)", "dev", name])
        try await must(["ip", "link", "set", name, "up"])
        interfaceUp = true
    }

    private func startUserspace(_ name: String) throws {
        guard let program = CommandRunner.resolve("wireguard-go") else {
            throw ApplierError.missingTool("the kernel has no WireGuard and wireguard-go is not installed (Debian: apt-get install wireguard-go)")
        }
        // In the foreground, as our child: its daemonising default did not survive `ip netns exec`.
        let pid: pid_t
        do {
            pid = try ProcessSpawn.start([program, "-f", name],
                                         environment: ["WG_PROCESS_FOREGROUND": "1", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"])
        } catch {
            throw ApplierError.commandFailed(command: "wireguard-go -f \(name)", status: -1, stderr: "\(error)")
        }
        child = pid
        // Wait (≤ 5 s) for its control socket.
        let socket = "/var/run/wireguard/\(name).sock"
        for _ in 0..<100 {
            if FileManager.default.fileExists(atPath: socket) { break }
            if let status = ProcessSpawn.exited(pid) {
                child = nil
                throw ApplierError.commandFailed(command: "wireguard-go -f \(name)", status: status, stderr: "exited before its socket appeared")
            }
            usleep(50_000)
        }
        logger.notice("started wireguard-go (no kernel WireGuard)", metadata: ["interface": "\(name)", "pid": "\(pid)"])
    }

    /// The interface's state (`wg show IF dump`): latest handshakes for health and status.
    public func observeWireGuard() async throws -> ObservedWireGuard {
        let r = try await run(["wg", "show", configuration.interface, "dump"])
        guard r.succeeded else {
            throw ApplierError.commandFailed(command: "wg show \(configuration.interface) dump", status: r.status, stderr: r.stderr)
        }
        return try ObservedWireGuard.parse(dump: r.stdout)
    }

    // MARK: - RouteApplier

    @discardableResult
    public func apply(_ desired: DesiredRouteState) async throws -> ApplyReport {
        try desired.validate()
        guard interfaceUp else { throw ApplierError.invalidConfiguration("the WireGuard interface is not up yet") }
        // 1. WireGuard peers: the chosen routing peer gets the range before its route exists or moves.
        let (wanted, unreachable) = WireGuardPlanner.wanted(desired)
        for r in unreachable { logger.warning("route not installed: its routing peer reported no WireGuard key", metadata: ["route": "\(r)"]) }
        let observed = try await observeWireGuard()
        let plan = WireGuardPlanner.plan(wanted: wanted, observed: observed, owned: owned)
        for c in plan.conflicts { logger.warning("range held by a WireGuard peer this agent did not add: not routed", metadata: ["range": "\(c)"]) }
        try await execute(plan.actions)
        owned = plan.owned
        try folder.saveWireGuardPeers(owned)
        let blocked = Set(unreachable.map(\.destination)).union(plan.conflicts)

        // 2. Routes through the interface in our table (forwarding, NAT and filters as the Linux applier does them).
        var routed = desired
        routed.routes = desired.routes.filter { !blocked.contains($0.destination) }.map {
            var r = $0
            r.device = configuration.interface
            return r
        }
        let report = try await inner.apply(routed)

        // 3. Policy rules: our table is looked up only once the routes are in it; exclusions first.
        let endpoints = wanted.compactMap { $0.endpoint.flatMap(WireGuardEndpoint.init(parsing:))?.address }
        let rules = PolicyRoutingPlanner.wanted(routes: routed.routes.map(\.destination), exclusions: exclusions + endpoints,
                                                config: configuration.policy)
        let observedRules = try await observeRules()
        let ruleActions = PolicyRoutingPlanner.plan(wanted: rules, observed: observedRules, config: configuration.policy)
        try await execute(ruleActions)

        // 4. The routing peer's side through foreign drop-policy forward chains.
        let chains = try await observeForwardChains()
        let pinholes = ForwardPinholePlanner.plan(interface: configuration.interface, ranges: desired.routingPeer.networks, chains: chains)
        try await execute(pinholes)
        return report
    }

    @discardableResult
    public func cleanup(keepRoutes: Bool) async throws -> ApplyReport {
        var errors: [String] = []
        if let chains = try? await observeForwardChains() {
            do { try await execute(ForwardPinholePlanner.plan(interface: nil, ranges: [], chains: chains)) } catch { errors.append("\(error)") }
        }
        let rules = (try? await observeRules()) ?? []
        do { try await execute(PolicyRoutingPlanner.planCleanup(observed: rules, config: configuration.policy)) } catch { errors.append("\(error)") }
        let report = try await inner.cleanup(keepRoutes: keepRoutes)
        if !keepRoutes {
            if let observed = try? await observeWireGuard() {
                do { try await execute(WireGuardPlanner.planCleanup(observed: observed, owned: owned)) } catch { errors.append("\(error)") }
            }
            owned = []
            try? folder.saveWireGuardPeers([])
            // The interface is ours: it goes (a wireguard-go child exits when its interface is deleted).
            _ = try? await run(["ip", "link", "del", configuration.interface])
            if let pid = child {
                kill(pid, SIGTERM)
                child = nil
            }
            interfaceUp = false
        }
        for e in errors { logger.error("cleanup: \(e)") }
        return report
    }

    public func forwardCounters() async -> [ForwardCounter] { await inner.forwardCounters() }

    // MARK: - observe

    private func observeRules() async throws -> [PolicyRule] {
        var out: [PolicyRule] = []
        for family in [IPAddress.Family.v4, .v6] {
            let r = try await run(["ip", "-j", family == .v4 ? "-4" : "-6", "rule", "show"])
            guard r.succeeded else { throw ApplierError.commandFailed(command: "ip rule show", status: r.status, stderr: r.stderr) }
            out += try PolicyRoutingPlanner.parse(ipJSON: r.stdout, family: family)
        }
        return out
    }

    /// Foreign forward chains; none when nft is not installed (then nothing can drop by nftables either).
    private func observeForwardChains() async throws -> [ForwardPinholePlanner.Chain] {
        let r: CommandResult
        do { r = try await run(["nft", "-j", "list", "ruleset"]) } catch CommandError.notFound { return [] }
        if !r.succeeded { return [] }
        let own = inner.configuration.marking
        return try ForwardPinholePlanner.parse(rulesetJSON: r.stdout, ownTables: [own.natTableName, own.filterTableName])
    }

    // MARK: - execute

    private func execute(_ actions: [WireGuardAction]) async throws {
        for a in actions {
            logger.info("\(a)")
            switch a {
            case .setPeer(let key, let endpoint, let keepalive, let allowed):
                var args = ["wg", "set", configuration.interface, "peer", key]
                if let endpoint { args += ["endpoint", endpoint] }
                args += ["persistent-keepalive", keepalive == 0 ? "off" : String(keepalive), "allowed-ips", allowed.map(\.description).joined(separator: ",")]
                try await must(args)
            case .removePeer(let key):
                try await must(["wg", "set", configuration.interface, "peer", key, "remove"])
            }
        }
    }

    private func execute(_ actions: [PolicyRoutingPlanner.Action]) async throws {
        for a in actions {
            logger.info("\(a)")
            switch a {
            case .add(let r): try await must(["ip", r.family == .v4 ? "-4" : "-6", "rule", "add"] + r.arguments)
            case .delete(let r): try await must(["ip", r.family == .v4 ? "-4" : "-6", "rule", "del"] + r.arguments)
            }
        }
    }

    private func execute(_ actions: [ForwardPinholePlanner.Action]) async throws {
        for a in actions {
            logger.info("\(a)")
            switch a {
            case .insert(let f, let t, let c, let e, let comment):
                try await must(["nft", "insert rule \(f) \(t) \(c) \(e) comment \"\(comment)\""])
            case .delete(let f, let t, let c, let h):
                try await must(["nft", "delete", "rule", f, t, c, "handle", String(h)])
            }
        }
    }

    private func must(_ arguments: [String]) async throws {
        let r = try await run(arguments)
        guard r.succeeded else {
            throw ApplierError.commandFailed(command: arguments.joined(separator: " "), status: r.status, stderr: r.stderr)
        }
    }

    private func run(_ arguments: [String]) async throws -> CommandResult {
        try await runner.run(arguments, input: nil, timeout: configuration.commandTimeout)
    }
}

extension WireGuardApplier {
    /// The addresses the host part of `url` resolves to (an IP literal, or a name through the system resolver); empty
    /// when it does not resolve.
    public static func addresses(ofURL url: String) -> [IPAddress] {
        guard let host = URLComponents(string: url)?.host, !host.isEmpty else { return [] }
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        if let literal = try? IPAddress(parsing: bare) { return [literal] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(bare, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(list) }
        var out = Set<IPAddress>()
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let a = p {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(a.pointee.ai_addr, a.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0,
               let ip = try? IPAddress(parsing: String(cString: buffer)) {
                out.insert(ip)
            }
            p = a.pointee.ai_next
        }
        return out.sorted()
    }
}
