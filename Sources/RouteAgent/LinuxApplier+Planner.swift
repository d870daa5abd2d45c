import RouteModel

/// How Routeplane marks what it installs, so it can find it again and never touch anything else.
///
/// Routes go into the **main table** (by default) carrying a **route protocol number of Routeplane's
/// own**: `proto 239` for ordinary routes, `proto 238` for `keep_route` ones. The protocol number is
/// the ownership marker the kernel itself checks: `ip route del … proto 239` cannot delete another
/// program's route, and `ip -j route show proto 239` lists exactly ours, also from a fresh process
/// (`routeplane agent --cleanup` after a crash knows which routes are `keep_route` from the kernel
/// alone). The main table keeps ordinary longest-prefix semantics with the host's other routes and needs
/// no `ip rule` (a table of our own would need a policy rule whose position decides whether our /24 or
/// the host's more or less specific routes win, and would have to coexist with wg-quick/Tailscale/NetBird
/// rules). The one risk of the main table, overwriting another route with the same key (destination +
/// metric), is excluded by the planner: such a desired route is reported as a conflict and not installed.
public struct RouteMarking: Hashable, Sendable {
    /// Routing table (254 = main).
    public var table: UInt32
    /// Protocol number on ordinary routes.
    public var routeProtocol: UInt8
    /// Protocol number on `keep_route` routes.
    public var keepRouteProtocol: UInt8
    /// Metric of installed routes (IPv6 stores 0 as 1024; the planner compares the stored value).
    public var metric: UInt32
    /// Name of the nftables table (`table inet NAME`) that holds the masquerade rules.
    public var natTableName: String
    /// Name of the nftables table that holds the forward filter of guarded ranges (`<natTableName>-filter`).
    public var filterTableName: String { natTableName + "-filter" }

    public init(table: UInt32 = 254, routeProtocol: UInt8 = 239, keepRouteProtocol: UInt8 = 238, metric: UInt32 = 0,
                natTableName: String = "routeplane") {
        self.table = table
        self.routeProtocol = routeProtocol
        self.keepRouteProtocol = keepRouteProtocol
        self.metric = metric
        self.natTableName = natTableName
    }

    /// True for a route Routeplane installed (in its table, with one of its protocol numbers).
    public func isOurs(_ r: KernelRoute) -> Bool {
        r.table == table && (r.protocolNumber == routeProtocol || r.protocolNumber == keepRouteProtocol)
    }

    /// The metric as the kernel stores it for `family`.
    public func storedMetric(_ family: IPAddress.Family) -> UInt32 {
        family == .v6 && metric == 0 ? 1024 : metric
    }

    /// The kernel route of an `unreachable` destination (the `::/0` blackhole beside an exit node).
    public func unreachableRoute(_ destination: Prefix) -> KernelRoute {
        KernelRoute(destination: destination, gateway: nil, metric: storedMetric(destination.family), protocolNumber: routeProtocol,
                    table: table, type: "unreachable")
    }

    /// The kernel route that realises `route`.
    public func kernelRoute(for route: ClientRoute) -> KernelRoute {
        KernelRoute(destination: route.destination, gateway: route.nextHop, device: route.device,
                    metric: storedMetric(route.family),
                    protocolNumber: route.keepRoute ? keepRouteProtocol : routeProtocol, table: table)
    }

    public func validate() throws(ApplierError) {
        if routeProtocol == keepRouteProtocol {
            throw .invalidConfiguration("route and keep_route protocol numbers must differ")
        }
        for p in [routeProtocol, keepRouteProtocol] where p <= 4 {
            throw .invalidConfiguration("protocol \(p) is reserved for the kernel (use 5...255, e.g. 239)")
        }
        if table == 0 || table == 255 {
            throw .invalidConfiguration("table \(table) cannot hold Routeplane's routes")
        }
        let ok = !natTableName.isEmpty && natTableName.utf8.count <= 64 && natTableName.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
        }
        if !ok { throw .invalidConfiguration("NAT table name \"\(natTableName)\" must be [a-z0-9_-]+") }
    }
}

/// The Linux applier's decisions: (desired, observed) → actions. Pure; no I/O.
public enum LinuxApplyPlanner {
    public struct Plan: Hashable, Sendable {
        public var actions: [ApplierAction]
        public var conflicts: [RouteConflict]
        public var report: ApplyReport { ApplyReport(actions: actions, conflicts: conflicts) }
    }

    /// What to do so the kernel holds `desired`.
    ///
    /// - Routes: only routes that `marking.isOurs` are ever removed or replaced. A desired route
    ///   whose key (destination, metric) is held by someone else's route is a conflict, never installed.
    ///   A default route (an exit node's, the `unreachable ::/0` beside it) is a conflict as soon as another program
    ///   has a default route of that family in the table, whatever its metric.
    /// - Forwarding: turned on where wanted; turned off only where this applier turned it on
    ///   (`forwardingEnabledByUs`): forwarding someone else enabled (Docker, …) is left alone.
    /// - NAT: the table is left as is when it already holds exactly the wanted rules, rewritten as a
    ///   whole otherwise, and deleted when no masquerade is wanted.
    ///
    /// Order: removals first, then forwarding on, NAT, route installs, forwarding off last.
    public static func plan(desired: DesiredRouteState, observed: ObservedState,
                            forwardingEnabledByUs: Set<IPAddress.Family>, marking: RouteMarking) -> Plan {
        var removals: [ApplierAction] = []
        var installs: [ApplierAction] = []
        var conflicts: [RouteConflict] = []

        // Routes. Ours grouped by destination; a destination keeps at most one route of ours.
        var ours: [Prefix: [KernelRoute]] = [:]
        var foreignKeys: [RouteKey: KernelRoute] = [:]
        var foreignDefaults: [Prefix: KernelRoute] = [:]
        for r in observed.routes where r.table == marking.table {
            if marking.isOurs(r) {
                ours[r.destination, default: []].append(r)
            } else {
                if foreignKeys[RouteKey(r)] == nil { foreignKeys[RouteKey(r)] = r }
                if r.destination.length == 0, foreignDefaults[r.destination] == nil { foreignDefaults[r.destination] = r }
            }
        }
        var wanted: [Prefix: ClientRoute] = [:]
        for route in desired.routes { wanted[route.destination] = route }
        // Unreachable destinations (the ::/0 blackhole beside an exit node), reported as a route to :: / 0.0.0.0 in conflicts.
        var unreachable: [Prefix: KernelRoute] = [:]
        for p in desired.unreachable where wanted[p] == nil { unreachable[p] = marking.unreachableRoute(p) }

        for dst in ours.keys.sorted() where wanted[dst] == nil && unreachable[dst] == nil {
            for r in ours[dst]!.sorted() { removals.append(.removeRoute(r)) }
        }
        for dst in Set(wanted.keys).union(unreachable.keys).sorted() {
            let route = wanted[dst] ?? ClientRoute(destination: dst, nextHop: Prefix(dst.address, length: 0).address)
            let target = unreachable[dst] ?? marking.kernelRoute(for: route)
            // A default route (exit node, blackhole) never goes beside another program's default route in the same table,
            // whatever its metric: in the main table it would take the host's default traffic (controller included).
            let foreignAtKey = foreignKeys[RouteKey(target)] ?? (dst.length == 0 ? foreignDefaults[dst] : nil)
            let existing = (ours[dst] ?? []).sorted()
            // A route of ours at the same key can be changed in place; others of ours go.
            let sameKey = existing.first { $0.metric == target.metric }
            for r in existing where r != sameKey { removals.append(.removeRoute(r)) }
            if let current = sameKey {
                if !matches(current, target) || (dst.length == 0 && foreignAtKey != nil) {
                    if let foreign = foreignAtKey {
                        // `replace` could hit the other route: take ours away instead of risking it.
                        removals.append(.removeRoute(current))
                        conflicts.append(RouteConflict(route: route, existing: foreign))
                    } else {
                        installs.append(.replaceRoute(old: current, new: target))
                    }
                }
            } else if let foreign = foreignAtKey {
                conflicts.append(RouteConflict(route: route, existing: foreign))
            } else {
                installs.append(.addRoute(target))
            }
        }

        // Forwarding.
        var forwardingOn: [ApplierAction] = []
        var forwardingOff: [ApplierAction] = []
        for family in [IPAddress.Family.v4, .v6] {
            let want = desired.routingPeer.forwarding(family)
            let have = observed.forwarding[family]
            if want, have != true {
                forwardingOn.append(.setForwarding(family, true))
            } else if !want, have == true, forwardingEnabledByUs.contains(family) {
                forwardingOff.append(.setForwarding(family, false))
            }
        }

        // NAT.
        var nat: [ApplierAction] = []
        let rules = Set(desired.routingPeer.masquerade).sorted()
        if rules.isEmpty {
            if observed.natTable != nil { nat.append(.deleteNATTable) }
        } else if let table = observed.natTable, table.wellFormed, Set(table.rules) == Set(rules) {
            // already right
        } else {
            nat.append(.replaceNATTable(rules))
        }

        // Filter: written as a whole when its fingerprint differs (so an unchanged table keeps counting), deleted
        // when no range is guarded. Written before routes are installed, so a guarded range is never open meanwhile.
        var filter: [ApplierAction] = []
        let filters = desired.routingPeer.filters.sorted()
        if filters.isEmpty {
            if observed.filterTable != nil { filter.append(.deleteFilterTable) }
        } else if observed.filterTable?.fingerprint != LinuxCommandScripts.nftFilterFingerprint(filters) {
            filter.append(.replaceFilterTable(filters))
        }

        return Plan(actions: removals + filter + forwardingOn + nat + installs + forwardingOff, conflicts: conflicts)
    }

    /// What `cleanup(keepRoutes:)` does: every route of ours goes (except `keep_route` ones when asked),
    /// the NAT table goes, forwarding this applier turned on is turned off again.
    public static func planCleanup(observed: ObservedState, keepRoutes: Bool,
                                   forwardingEnabledByUs: Set<IPAddress.Family>, marking: RouteMarking) -> Plan {
        var actions: [ApplierAction] = []
        for r in observed.routes.sorted() where marking.isOurs(r) {
            if keepRoutes && r.protocolNumber == marking.keepRouteProtocol { continue }
            actions.append(.removeRoute(r))
        }
        if observed.natTable != nil { actions.append(.deleteNATTable) }
        if observed.filterTable != nil { actions.append(.deleteFilterTable) }
        for family in [IPAddress.Family.v4, .v6] where observed.forwarding[family] == true && forwardingEnabledByUs.contains(family) {
            actions.append(.setForwarding(family, false))
        }
        return Plan(actions: actions, conflicts: [])
    }

    /// The kernel state after `actions` (what a perfect kernel would hold). Used by the dry-run
    /// applier and by tests to check that a plan converges.
    public static func simulate(_ actions: [ApplierAction], on state: ObservedState) -> ObservedState {
        var s = state
        for a in actions {
            switch a {
            case .addRoute(let r):
                s.routes.append(r)
            case .replaceRoute(let old, let new):
                if let i = s.routes.firstIndex(of: old) { s.routes[i] = new } else { s.routes.append(new) }
            case .removeRoute(let r):
                if let i = s.routes.firstIndex(of: r) { s.routes.remove(at: i) }
            case .setForwarding(let f, let on):
                s.forwarding[f] = on
            case .replaceNATTable(let rules):
                s.natTable = ObservedNATTable(rules: rules, wellFormed: true)
            case .deleteNATTable:
                s.natTable = nil
            case .replaceFilterTable(let filters):
                s.filterTable = ObservedFilterTable(fingerprint: LinuxCommandScripts.nftFilterFingerprint(filters))
            case .deleteFilterTable:
                s.filterTable = nil
            }
        }
        return s
    }

    /// Our route already realises the target (the device only counts when the target names one).
    static func matches(_ current: KernelRoute, _ target: KernelRoute) -> Bool {
        current.gateway == target.gateway && current.protocolNumber == target.protocolNumber
            && current.metric == target.metric && current.type == target.type
            && (target.device == nil || current.device == target.device)
    }

    /// The kernel's identity of a route within a table (TOS aside): `replace` overwrites the route
    /// with the same key, whoever owns it.
    struct RouteKey: Hashable {
        var destination: Prefix
        var metric: UInt32
        init(_ r: KernelRoute) {
            destination = r.destination
            metric = r.metric
        }
    }
}
