import ViewTransport
import RouteModel
import RouteSelection

/// The agent's decisions, without I/O: which view it holds, what it asks the OS to have, which
/// routing peers it probes, when it reports. The shell (`AgentRunner`) feeds it views (from NATS,
/// the HTTP fallback or the state folder), health observations and ticks, and performs its actions.
public struct AgentStateMachine: Sendable {
    public typealias Instant = ContinuousClock.Instant

    public struct Configuration: Sendable {
        /// The mesh ranges traffic to a routing peer comes from (its masquerade rules' sources).
        public var meshRanges: [Prefix]
        public var selection: SelectionStateMachine.Configuration
        /// Treat every candidate as connected (direct, latency unknown) instead of waiting for probes:
        /// for simulated agents whose mesh addresses exist nowhere.
        public var assumeCandidatesUp: Bool
        /// Domain routes: TTL bounds, retry backoff (Agent+RouteChoices.swift).
        public var domains: DomainResolutionStateMachine.Configuration

        public init(meshRanges: [Prefix] = [try! Prefix(parsing: "100.64.0.0/10")],
                    selection: SelectionStateMachine.Configuration = .default, assumeCandidatesUp: Bool = false,
                    domains: DomainResolutionStateMachine.Configuration = .init()) {
            self.meshRanges = meshRanges
            self.selection = selection
            self.assumeCandidatesUp = assumeCandidatesUp
            self.domains = domains
        }
    }

    /// A verified view: its digest checked against its bytes (envelope decoder, HTTP client, state folder) and its
    /// signature checked against the pinned key by the shell (`ViewVerifier`) before it is fed here.
    public struct ViewUpdate: Sendable, Equatable {
        public enum Source: String, Sendable { case nats, http, persisted }
        public var version: Int64
        public var digest: String
        /// The view's canonical JSON as published (kept so the persisted copy can be verified again).
        public var body: [UInt8]
        /// nil for a tombstone (the peer was removed): nothing to install.
        public var view: PeerRouteView?
        public var source: Source
        /// The controller's signature (persisted with the view, so it is checked again at the next start).
        public var signature: ViewSignature?

        public init(version: Int64, digest: String, body: [UInt8], view: PeerRouteView?, source: Source, signature: ViewSignature? = nil) {
            self.version = version
            self.digest = digest
            self.body = body
            self.view = view
            self.source = source
            self.signature = signature
        }

        /// A tombstone: the signed removed flag.
        public var removed: Bool { view == nil }
    }

    public enum Action: Sendable, Equatable {
        /// Keep this view in the state folder (it is the one applied).
        case persist(ViewUpdate)
        /// Make the OS have exactly this.
        case apply(DesiredRouteState)
        /// Probe these routing peers (mesh addresses) from now on.
        case probe([PeerID: IPAddress])
        /// Send a status message now.
        case publishStatus
        /// Something an operator wants in the log (selection switches with their reasons, ignored views).
        case log(String)
        /// Resolve these names (domain routes) and feed the outcome to `domainResolved` (Agent+RouteChoices.swift).
        case resolve([String])
    }

    public struct Counters: Sendable, Equatable {
        public var applied = 0
        public var ignoredOlder = 0
        public var ignoredDuplicate = 0
        public var switches = 0
        /// Times an HA set became shadowed (or shadowed by another winner).
        public var shadowings = 0
    }

    /// The view the agent holds: none yet, an applied one, or a tombstone (its peer was removed).
    public enum Held: Sendable, Equatable {
        case nothing
        case applied(version: Int64, digest: String, view: PeerRouteView)
        case removed(version: Int64, digest: String)
    }

    public let configuration: Configuration
    public private(set) var held = Held.nothing
    public private(set) var selection: SelectionStateMachine
    /// Which HA set is installed when HA sets of several network ids lead to the same destination.
    public private(set) var arbiter: DestinationArbiter
    public private(set) var desired = DesiredRouteState.empty
    public private(set) var counters = Counters()
    /// The user's route selection (exit nodes, skip_auto_apply routes): Agent+RouteChoices.swift.
    public internal(set) var choices = RouteChoices.defaults
    /// The names of domain routes and their addresses: Agent+RouteChoices.swift.
    public internal(set) var domains: DomainResolutionStateMachine
    private var probeTargets: [PeerID: IPAddress] = [:]
    /// The last health observation of every probed candidate (the full picture the selection machine needs).
    private var observed: [PeerID: PeerHealth] = [:]

    /// The held view's version (0 before the first).
    public var appliedVersion: Int64 {
        switch held {
        case .nothing: 0
        case .applied(let version, _, _), .removed(let version, _): version
        }
    }

    /// The held view's digest (nil before the first).
    public var appliedDigest: String? {
        switch held {
        case .nothing: nil
        case .applied(_, let digest, _), .removed(_, let digest): digest
        }
    }

    /// The held view's routes (nil before the first, and after a tombstone).
    public var view: PeerRouteView? {
        if case .applied(_, _, let view) = held { return view }
        return nil
    }

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        self.selection = SelectionStateMachine(configuration: configuration.selection)
        self.arbiter = DestinationArbiter(configuration: configuration.selection)
        self.domains = DomainResolutionStateMachine(configuration: configuration.domains)
    }

    /// A view from any source. Applied only when newer than the one held; an older one or the same
    /// version again is ignored and counted.
    public mutating func receive(_ update: ViewUpdate, now: Instant) -> [Action] {
        if update.version < appliedVersion {
            counters.ignoredOlder += 1
            return []
        }
        if update.version == appliedVersion, held != .nothing {
            counters.ignoredDuplicate += 1
            if update.digest != appliedDigest {
                return [.log("ignored view version \(update.version) from \(update.source.rawValue): same version as the applied one but another digest")]
            }
            return []
        }
        held = update.view.map { .applied(version: update.version, digest: update.digest, view: $0) }
            ?? .removed(version: update.version, digest: update.digest)
        counters.applied += 1
        var actions: [Action] = [.persist(update)]
        let haSets = update.view?.haSets ?? []
        // Drain marks first, so HA sets that are new or changed in this view are chosen knowing them
        // (no install on a draining peer followed at once by a switch away from it).
        var selectionActions = selection.drainingChanged(Self.draining(in: haSets), now: now)
        selectionActions += selection.haSetsChanged(haSets, now: now)
        let targets = Self.candidates(of: haSets)
        if targets != probeTargets {
            // A candidate whose mesh address changed is probed afresh: its old observation goes too.
            let kept = observed.filter { targets[$0.key] != nil && targets[$0.key] == probeTargets[$0.key] }
            if !configuration.assumeCandidatesUp, kept.count != observed.count {
                observed = kept
                selectionActions += selection.healthObserved(observed, now: now)
            }
            probeTargets = targets
            actions.append(.probe(targets))
        }
        if configuration.assumeCandidatesUp {
            selectionActions += selection.healthObserved(Dictionary(uniqueKeysWithValues: targets.keys.map { ($0, PeerHealth.connected()) }), now: now)
        }
        actions += domainNamesChanged(haSets, now: now)
        let shadowChanges = arbitrate()
        actions += logLines(selectionActions, shadowChanges)
        actions += reconcile()
        actions.append(.publishStatus)
        return actions
    }

    /// Health of routing peers (from probes): a partial update. Peers not in `health` keep their last
    /// observation (the prober reports one peer's change at a time; a missing peer is not a dead one).
    /// Peers that are no longer candidates are forgotten when the view changes.
    public mutating func healthObserved(_ health: [PeerID: PeerHealth], now: Instant) -> [Action] {
        guard !configuration.assumeCandidatesUp else { return [] }
        observed.merge(health) { _, new in new }
        let selectionActions = selection.healthObserved(observed, now: now)
        return settle(selectionActions)
    }

    /// Periodic re-evaluation (latency-only changes, held-back switches).
    public mutating func tick(now: Instant) -> [Action] {
        return domainTick(now: now) + settle(selection.tick(now: now))
    }

    /// Operator drain marks of routing peers. `receive` sets them from each view's candidates (the
    /// controller's `draining` flag), replacing whatever was set here before.
    public mutating func drainingChanged(_ peers: Set<PeerID>, now: Instant) -> [Action] {
        return settle(selection.drainingChanged(peers, now: now))
    }

    /// The OS state the current view and choices call for: one route per destination (a shadowed HA set installs
    /// nothing, so `DesiredRouteState.validate()` never meets the same destination twice).
    public func computeDesired() -> DesiredRouteState {
        var routes: [Prefix: ClientRoute] = [:]
        for key in selection.keys where arbiter.shadowedBy[key] == nil {
            // Domain routes: host routes to their resolved addresses, added after every range (addDomainRoutes).
            guard case .network(let prefix) = key.destination, let chosen = selection.selection(for: key)?.candidate,
                  installs(chosen, for: key), routes[prefix] == nil else { continue }
            routes[prefix] = ClientRoute(destination: prefix, nextHop: chosen.meshIP, keepRoute: chosen.keepRoute)
        }
        addDomainRoutes(to: &routes)
        var networks: [(network: Prefix, masquerade: Bool)] = []
        for forward in view?.forwards ?? [] {
            if case .network(let prefix) = forward.key.destination {
                networks.append((prefix, forward.masquerade))
            } else {
                networks += domainForwardNetworks(masquerade: forward.masquerade)
            }
        }
        let filters = ForwardFilter.filters(from: view?.forwards ?? [], meshRanges: configuration.meshRanges)
        let routing = networks.isEmpty ? RoutingPeerState.off
            : RoutingPeerState(networks: networks, meshRanges: configuration.meshRanges, filters: filters)
        return DesiredRouteState(routes: routes.values.sorted(), routingPeer: routing, unreachable: exitNodeBlackholes(routes),
                                 meshPeers: view?.wireguardPeers ?? [])
    }

    /// Whether `candidate`, chosen for `key`, installs anything: the user's choices let the HA set in (`RouteChoices.applies`:
    /// exit nodes and `skip_auto_apply` sets only when selected), and for a range a next hop of its family.
    func installs(_ candidate: RouteCandidate, for key: HAKey) -> Bool {
        guard choices.applies(key, candidates: selection.candidates(of: key)) else { return false }
        if case .network(let prefix) = key.destination { return candidate.meshIP.family == prefix.family }
        return true
    }

    /// The HA sets that could be installed, with their standing, for the arbiter: a set whose choice installs
    /// nothing (or, with nothing chosen yet, none of whose candidates would) neither shadows nor is shadowed.
    func entrants() -> [DestinationEntrant] {
        selection.keys.compactMap { key in
            guard let standing = selection.standing(of: key) else { return nil }
            if let chosen = standing.candidate {
                guard installs(chosen, for: key) else { return nil }
            } else if !selection.candidates(of: key).contains(where: { installs($0, for: key) }) {
                return nil
            }
            return DestinationEntrant(key: key, standing: standing)
        }
    }

    /// The HA sets of the view that are not installed because another network id's HA set with the same destination
    /// is (for the status message), by HA key.
    public var shadowed: [ShadowedRouteStatus] {
        arbiter.shadowedBy.keys.sorted().map { key in
            let by = arbiter.shadowedBy[key]!
            return ShadowedRouteStatus(
                networkID: key.networkID, destination: key.destination,
                routeIDs: Set(selection.candidates(of: key).map(\.routeID.rawValue)).sorted(),
                shadowedByNetworkID: by.networkID, shadowedByRouteID: selection.selection(for: by)?.candidate.routeID.rawValue)
        }
    }

    private mutating func reconcile() -> [Action] {
        let next = computeDesired()
        guard next != desired else { return [] }
        desired = next
        return [.apply(next)]
    }

    /// After the selection moved: the arbiter chooses again, the OS follows; a status goes out when anything changed.
    mutating func settle(_ selectionActions: [SelectionStateMachine.Action]) -> [Action] {
        let shadowChanges = arbitrate()
        let changes = reconcile()
        return logLines(selectionActions, shadowChanges) + changes
            + (changes.isEmpty && shadowChanges.isEmpty ? [] : [.publishStatus])
    }

    private mutating func arbitrate() -> [DestinationArbiter.Change] {
        arbiter.evaluate(entrants())
    }

    /// One line per route change of the selection (marked when its HA set is shadowed, so installs nothing), and one
    /// per change of shadowing: never a line per tick.
    private mutating func logLines(_ actions: [SelectionStateMachine.Action], _ shadowChanges: [DestinationArbiter.Change] = []) -> [Action] {
        var out: [Action] = []
        for a in actions where a.changesRoutes {
            if case .switch = a { counters.switches += 1 }
            if let by = arbiter.shadowedBy[a.key] {
                out.append(.log("\(a.description) (shadowed by \(by): not installed)"))
            } else {
                out.append(.log(a.description))
            }
        }
        for change in shadowChanges {
            if case .shadowed = change { counters.shadowings += 1 }
            out.append(.log(change.description))
        }
        return out
    }

    /// The routing peers an operator drains, as the view marks them.
    static func draining(in haSets: [HASet]) -> Set<PeerID> {
        var out = Set<PeerID>()
        for set in haSets { for c in set.candidates where c.draining { out.insert(c.peerID) } }
        return out
    }

    static func candidates(of haSets: [HASet]) -> [PeerID: IPAddress] {
        var out: [PeerID: IPAddress] = [:]
        for set in haSets { for c in set.candidates { out[c.peerID] = c.meshIP } }
        return out
    }
}

extension ProbeHealth {
    /// What the selection state machine needs from a probe result: up or not, and the smoothed RTT.
    /// The probe runs over the peers' direct mesh path, so a reachable peer counts as direct.
    public var selectionHealth: PeerHealth {
        switch reachability {
        case .reachable: .connected(relayed: false, latency: smoothedRTT)
        case .unreachable: .unreachable
        case .unknown: .connecting
        }
    }
}
