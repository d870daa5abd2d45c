import Foundation
import RouteModel

/// Something that makes the operating system hold a `DesiredRouteState`.
///
/// `apply` reconciles from what is actually there (not from what it did last time), so calling it
/// again with the same state changes nothing, and a state changed behind its back is repaired.
/// Only what the applier itself added is ever removed or changed.
public protocol RouteApplier: Sendable {
    /// Reconciles the OS towards `desired`; reports what it did.
    @discardableResult
    func apply(_ desired: DesiredRouteState) async throws -> ApplyReport
    /// Removes everything the applier added (routes, NAT table, forwarding it turned on), except the
    /// `keep_route` routes when `keepRoutes` is true (graceful exit).
    @discardableResult
    func cleanup(keepRoutes: Bool) async throws -> ApplyReport
    /// The filter rules' counters (for the agent's status); empty when there is no filter table.
    func forwardCounters() async -> [ForwardCounter]
}

extension RouteApplier {
    public func forwardCounters() async -> [ForwardCounter] { [] }
}

/// One change to the OS, as an applier plans it. Pure description; the Linux applier turns it into
/// `ip`/`nft`/`sysctl` input.
public enum ApplierAction: Hashable, Sendable, CustomStringConvertible {
    /// A new route (`ip route add`: fails rather than overwrite a route that appeared meanwhile).
    case addRoute(KernelRoute)
    /// A route of ours whose next hop, device or keep flag changes (`ip route replace`, same key:
    /// no moment without a route).
    case replaceRoute(old: KernelRoute, new: KernelRoute)
    /// A route of ours that is no longer wanted (`ip route del` with our protocol number, so the
    /// kernel itself refuses to delete anyone else's).
    case removeRoute(KernelRoute)
    case setForwarding(IPAddress.Family, Bool)
    /// Writes the NAT table as a whole (delete + create in one nft transaction).
    case replaceNATTable([MasqueradeRule])
    case deleteNATTable
    /// Writes the filter table as a whole (delete + create in one nft transaction; its counters start again).
    case replaceFilterTable([ForwardFilter])
    case deleteFilterTable

    public var description: String {
        switch self {
        case .addRoute(let r): return "add route \(r)"
        case .replaceRoute(let old, let new): return "replace route \(old) with \(new)"
        case .removeRoute(let r): return "remove route \(r)"
        case .setForwarding(let f, let on): return "set \(f == .v4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding") = \(on ? 1 : 0)"
        case .replaceNATTable(let rules): return "write NAT table: " + (rules.isEmpty ? "(no rules)" : rules.map(\.description).joined(separator: ", "))
        case .deleteNATTable: return "delete NAT table"
        case .replaceFilterTable(let filters):
            return "write filter table: " + (filters.isEmpty ? "(no filters)" : filters.map(\.description).joined(separator: ", "))
        case .deleteFilterTable: return "delete filter table"
        }
    }
}

/// A desired route that was not installed because a route of someone else holds its key
/// (same table, destination and metric): Routeplane never overwrites it.
public struct RouteConflict: Hashable, Sendable, CustomStringConvertible {
    public var route: ClientRoute
    public var existing: KernelRoute
    public init(route: ClientRoute, existing: KernelRoute) {
        self.route = route
        self.existing = existing
    }
    public var description: String { "route \(route) not installed: \(existing) is not Routeplane's" }
}

/// What an apply (or cleanup) did.
public struct ApplyReport: Hashable, Sendable, CustomStringConvertible {
    public var actions: [ApplierAction]
    public var conflicts: [RouteConflict]

    public init(actions: [ApplierAction] = [], conflicts: [RouteConflict] = []) {
        self.actions = actions
        self.conflicts = conflicts
    }

    public var changed: Bool { !actions.isEmpty }

    public var description: String {
        let lines = actions.map(\.description) + conflicts.map(\.description)
        return lines.isEmpty ? "no changes" : lines.joined(separator: "\n")
    }
}

/// Why an applier could not do its work.
public enum ApplierError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Not root / no CAP_NET_ADMIN.
    case insufficientPrivileges(String)
    /// `ip`, `nft` or `sysctl` is not installed.
    case missingTool(String)
    /// A command failed (exit status, its stderr).
    case commandFailed(command: String, status: Int32, stderr: String)
    /// After applying, the kernel still differs from the desired state.
    case notConverged(remaining: [ApplierAction], errors: [String])
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .insufficientPrivileges(let s): return s
        case .missingTool(let s): return s
        case .commandFailed(let c, let st, let e): return "\(c) failed (status \(st)): \(e.trimmingCharacters(in: [" ", "\n"]))"
        case .notConverged(let remaining, let errors):
            return "kernel state did not converge; still to do: " + remaining.map(\.description).joined(separator: "; ")
                + (errors.isEmpty ? "" : "; errors: " + errors.joined(separator: "; "))
        case .invalidConfiguration(let s): return "invalid applier configuration: \(s)"
        }
    }
}

/// Records what it would do, against a simulated kernel that starts empty; never touches the OS.
/// Plans with the Linux planner, so its actions are the ones the Linux applier would take from the
/// same kernel state. Always works (no privileges needed): `--applier dry-run`, and tests.
public actor DryRunApplier: RouteApplier {
    public struct Entry: Hashable, Sendable {
        /// `nil` for a cleanup.
        public var desired: DesiredRouteState?
        public var keepRoutes: Bool?
        public var report: ApplyReport
    }

    public let configuration: RouteMarking
    /// The simulated kernel (readable, and settable to play "someone changed it behind our back").
    public var kernel: ObservedState
    public private(set) var history: [Entry] = []
    private var forwardingEnabledByUs: Set<IPAddress.Family> = []

    public init(configuration: RouteMarking = RouteMarking(), kernel: ObservedState = ObservedState()) {
        self.configuration = configuration
        self.kernel = kernel
    }

    /// The last desired state applied (nil before the first apply or after a cleanup).
    public var lastDesired: DesiredRouteState? {
        guard let last = history.last else { return nil }
        return last.desired
    }

    public func setKernel(_ state: ObservedState) { kernel = state }

    @discardableResult
    public func apply(_ desired: DesiredRouteState) async throws -> ApplyReport {
        try desired.validate()
        let plan = LinuxApplyPlanner.plan(desired: desired, observed: kernel, forwardingEnabledByUs: forwardingEnabledByUs,
                                          marking: configuration)
        run(plan)
        history.append(Entry(desired: desired, keepRoutes: nil, report: plan.report))
        return plan.report
    }

    @discardableResult
    public func cleanup(keepRoutes: Bool) async throws -> ApplyReport {
        let plan = LinuxApplyPlanner.planCleanup(observed: kernel, keepRoutes: keepRoutes,
                                                 forwardingEnabledByUs: forwardingEnabledByUs, marking: configuration)
        run(plan)
        history.append(Entry(desired: nil, keepRoutes: keepRoutes, report: plan.report))
        return plan.report
    }

    private func run(_ plan: LinuxApplyPlanner.Plan) {
        for a in plan.actions {
            if case .setForwarding(let f, let on) = a {
                if on, kernel.forwarding[f] != true { forwardingEnabledByUs.insert(f) }
                if !on { forwardingEnabledByUs.remove(f) }
            }
        }
        kernel = LinuxApplyPlanner.simulate(plan.actions, on: kernel)
    }
}
