import Foundation
import Logging
import RouteModel
#if canImport(Glibc)
import Glibc
#endif

/// Applies a `DesiredRouteState` to Linux with iproute2, sysctl and nftables — a thin shell over
/// `LinuxApplyPlanner`: observe the kernel (`ip -j -N route show`, `sysctl -n`, `nft -j list table`),
/// plan, run the plan (`ip -force -batch -`, `sysctl -w`, `nft -f -`), observe again and check that
/// nothing is left to do. See `RouteMarking` for how its routes are marked.
///
/// Every command can be prefixed (`commandPrefix: ["ip", "netns", "exec", "ns1"]`) to work inside a
/// network namespace. An actor: applies never interleave.
public actor LinuxApplier: RouteApplier {
    public struct Configuration: Sendable {
        public var marking: RouteMarking
        /// Put before every command, e.g. `["ip", "netns", "exec", NAME]`.
        public var commandPrefix: [String]
        public var commandTimeout: Duration
        /// Refuse to start without CAP_NET_ADMIN (tests that drive a scripted runner turn it off).
        public var requirePrivileges: Bool

        public init(marking: RouteMarking = RouteMarking(), commandPrefix: [String] = [], commandTimeout: Duration = .seconds(10),
                    requirePrivileges: Bool = true) {
            self.marking = marking
            self.commandPrefix = commandPrefix
            self.commandTimeout = commandTimeout
            self.requirePrivileges = requirePrivileges
        }
    }

    public nonisolated let configuration: Configuration
    private let runner: any CommandRunning
    private let logger: Logger
    /// Families whose forwarding this applier switched from off to on (switched back on cleanup).
    private var forwardingEnabledByUs: Set<IPAddress.Family> = []

    /// Fails with `ApplierError.insufficientPrivileges` without CAP_NET_ADMIN, and with
    /// `ApplierError.missingTool` when `ip` or `sysctl` is not installed.
    public init(configuration: Configuration = Configuration(), runner: any CommandRunning = CommandRunner(),
                logger: Logger = Logger(label: "routeplane.applier.linux")) throws {
        try configuration.marking.validate()
        if configuration.requirePrivileges, !Privileges.hasNetAdmin() {
            throw ApplierError.insufficientPrivileges(
                "the Linux applier needs CAP_NET_ADMIN to change routes, forwarding and nftables: run the agent as root "
                    + "(or with cap_net_admin), or use --applier dry-run to see what it would do")
        }
        if configuration.commandPrefix.isEmpty, runner is CommandRunner {
            for tool in ["ip", "sysctl"] where CommandRunner.resolve(tool) == nil {
                throw ApplierError.missingTool("\(tool) not found: install Debian's \(tool == "ip" ? "iproute2" : "procps")")
            }
        }
        self.configuration = configuration
        self.runner = runner
        self.logger = logger
    }

    // MARK: - RouteApplier

    @discardableResult
    public func apply(_ desired: DesiredRouteState) async throws -> ApplyReport {
        try desired.validate()
        let needNft = !desired.routingPeer.masquerade.isEmpty || !desired.routingPeer.filters.isEmpty
        let observed = try await observe(requireNft: needNft)
        let plan = LinuxApplyPlanner.plan(desired: desired, observed: observed, forwardingEnabledByUs: forwardingEnabledByUs,
                                          marking: configuration.marking)
        for c in plan.conflicts { logger.warning("\(c)") }
        if plan.actions.isEmpty { return plan.report }
        let errors = await execute(plan.actions, observed: observed)
        // Check from the kernel, not from exit codes: the plan from the new state must be empty.
        let after = try await observe(requireNft: needNft)
        let remaining = LinuxApplyPlanner.plan(desired: desired, observed: after, forwardingEnabledByUs: forwardingEnabledByUs,
                                               marking: configuration.marking).actions
        if !remaining.isEmpty { throw ApplierError.notConverged(remaining: remaining, errors: errors) }
        return plan.report
    }

    @discardableResult
    public func cleanup(keepRoutes: Bool) async throws -> ApplyReport {
        let observed = try await observe(requireNft: false)
        let plan = LinuxApplyPlanner.planCleanup(observed: observed, keepRoutes: keepRoutes, forwardingEnabledByUs: forwardingEnabledByUs,
                                                 marking: configuration.marking)
        if plan.actions.isEmpty { return plan.report }
        let errors = await execute(plan.actions, observed: observed)
        let after = try await observe(requireNft: false)
        let remaining = LinuxApplyPlanner.planCleanup(observed: after, keepRoutes: keepRoutes, forwardingEnabledByUs: forwardingEnabledByUs,
                                                      marking: configuration.marking).actions
        if !remaining.isEmpty { throw ApplierError.notConverged(remaining: remaining, errors: errors) }
        return plan.report
    }

    // MARK: - observe

    /// The kernel's current state as far as Routeplane looks: every route of its table (both
    /// families), the forwarding switches, its NAT table.
    public func observe(requireNft: Bool = false) async throws -> ObservedState {
        let m = configuration.marking
        var state = ObservedState()
        for family in [IPAddress.Family.v4, .v6] {
            let r = try await run(["ip", "-j", "-N", family == .v4 ? "-4" : "-6", "route", "show", "table", "\(m.table)"])
            // A table of our own (not main) exists only once it holds a route: empty, not an error.
            if !r.succeeded, r.stderr.contains("FIB table does not exist") { continue }
            guard r.succeeded else {
                throw ApplierError.commandFailed(command: "ip route show table \(m.table)", status: r.status, stderr: r.stderr)
            }
            state.routes += try KernelStateParser.routes(fromIPJSON: r.stdout, family: family, table: m.table)
        }
        for family in [IPAddress.Family.v4, .v6] {
            let r = try await run(["sysctl", "-n", LinuxCommandScripts.sysctlKey(family)])
            if r.succeeded {
                state.forwarding[family] = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "0"
            }
        }
        state.natTable = try await observeNAT(required: requireNft)
        state.filterTable = try await observeFilter(required: requireNft)
        return state
    }

    /// The filter rules' counters, read from the kernel; empty when there is no filter table or it cannot be read.
    public func forwardCounters() async -> [ForwardCounter] {
        (try? await observeFilter(required: false))?.counters ?? []
    }

    private func observeFilter(required: Bool) async throws -> ObservedFilterTable? {
        let name = configuration.marking.filterTableName
        guard let text = try await listTable(name, required: required) else { return nil }
        return try KernelStateParser.filterTable(fromNftJSON: text, tableName: name)
    }

    private func observeNAT(required: Bool) async throws -> ObservedNATTable? {
        let name = configuration.marking.natTableName
        guard let text = try await listTable(name, required: required) else { return nil }
        return try KernelStateParser.natTable(fromNftJSON: text, tableName: name)
    }

    /// `nft -j list table inet NAME`'s output; nil when the table does not exist (or nft is missing and not required).
    private func listTable(_ name: String, required: Bool) async throws -> String? {
        let result: CommandResult
        do {
            result = try await run(["nft", "-j", "list", "table", "inet", name])
        } catch CommandError.notFound {
            if required { throw nftMissing() }
            return nil
        }
        if result.succeeded { return result.stdout }
        if result.stderr.contains("No such file or directory") && result.stderr.contains("list table") {
            return nil // the table does not exist
        }
        if Self.looksLikeMissingProgram(result) {
            if required { throw nftMissing() }
            return nil
        }
        throw ApplierError.commandFailed(command: "nft -j list table inet \(name)", status: result.status, stderr: result.stderr)
    }

    private func nftMissing() -> ApplierError {
        .missingTool("nft not found: masquerading and access control need Debian's nftables package (apt-get install nftables)")
    }

    /// `ip netns exec` reports a program it cannot exec this way (status 255).
    static func looksLikeMissingProgram(_ r: CommandResult) -> Bool {
        r.status == 127 || (r.stderr.contains("exec of") && r.stderr.contains("No such file or directory"))
    }

    // MARK: - execute

    /// Runs the actions in plan order, grouping consecutive route actions into one `ip -batch`.
    /// Returns the error messages; the caller checks the outcome against the kernel.
    private func execute(_ actions: [ApplierAction], observed: ObservedState) async -> [String] {
        var errors: [String] = []
        var batch: [ApplierAction] = []
        for action in actions {
            logger.info("\(action)")
            if LinuxCommandScripts.ipBatchLine(action) != nil {
                batch.append(action)
                continue
            }
            if let e = await runBatch(batch) { errors.append(e) }
            batch.removeAll()
            do {
                switch action {
                case .setForwarding(let family, let on):
                    let r = try await run(["sysctl", "-q", "-w", "\(LinuxCommandScripts.sysctlKey(family))=\(on ? 1 : 0)"])
                    if r.succeeded {
                        if on, observed.forwarding[family] == false { forwardingEnabledByUs.insert(family) }
                        if !on { forwardingEnabledByUs.remove(family) }
                    } else {
                        errors.append("sysctl: " + r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
                    }
                case .replaceNATTable(let rules):
                    let r = try await run(["nft", "-f", "-"], input: LinuxCommandScripts.nftReplaceTable(configuration.marking.natTableName, rules: rules))
                    if !r.succeeded { errors.append("nft: " + r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
                case .deleteNATTable:
                    let r = try await run(["nft", "-f", "-"], input: LinuxCommandScripts.nftDeleteTable(configuration.marking.natTableName))
                    if !r.succeeded { errors.append("nft: " + r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
                case .replaceFilterTable(let filters):
                    let r = try await run(["nft", "-f", "-"],
                                          input: LinuxCommandScripts.nftReplaceFilterTable(configuration.marking.filterTableName, filters: filters))
                    if !r.succeeded { errors.append("nft: " + r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
                case .deleteFilterTable:
                    let r = try await run(["nft", "-f", "-"], input: LinuxCommandScripts.nftDeleteTable(configuration.marking.filterTableName))
                    if !r.succeeded { errors.append("nft: " + r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
                default:
                    break
                }
            } catch {
                errors.append("\(error)")
            }
        }
        if let e = await runBatch(batch) { errors.append(e) }
        for e in errors { logger.error("\(e)") }
        return errors
    }

    /// One `ip -force -batch -` for consecutive route actions (`-force`: one failing line does not stop the rest).
    private func runBatch(_ batch: [ApplierAction]) async -> String? {
        guard !batch.isEmpty else { return nil }
        do {
            let r = try await run(["ip", "-force", "-batch", "-"], input: LinuxCommandScripts.ipBatch(batch))
            return r.succeeded ? nil : "ip -batch: " + r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            return "ip -batch: \(error)"
        }
    }

    private func run(_ arguments: [String], input: String? = nil) async throws -> CommandResult {
        try await runner.run(configuration.commandPrefix + arguments, input: input, timeout: configuration.commandTimeout)
    }
}

/// Whether this process may change network configuration.
public enum Privileges {
    /// CAP_NET_ADMIN in the effective set (`CapEff` in /proc/self/status), or euid 0 where that
    /// file cannot be read.
    public static func hasNetAdmin() -> Bool {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
                let hex = line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces)
                if let caps = UInt64(hex, radix: 16) { return caps & (1 << 12) != 0 }
            }
        }
        return geteuid() == 0
    }
}
