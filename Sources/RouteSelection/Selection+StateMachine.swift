import RouteModel

/// The agent's choice of routing peer per HA set, as a pure state machine: inputs are events (a new view,
/// health observations, drain flags, a periodic tick), each with the current time passed in; outputs are
/// `Action`s the I/O shell performs (route changes, status logs). No I/O, never reads a clock.
///
/// Rules (see `SelectionRules` for the order): only connected peers are chosen; a draining peer only when
/// nothing else is up; the current choice stays unless it is down, gone or draining (forced: moved in the
/// same evaluation) or a challenger wins on metric, path kind, or latency by more than the hysteresis
/// (voluntary: only after `minimumDwell` on the current choice and `minimumUptime` of the challenger).
/// Connection events (up/down, direct/relayed) and view or drain changes re-evaluate the HA sets they
/// touch at once; latency-only changes are re-evaluated on `tick`. When every candidate is down the route
/// stays on the last choice (`allDown`) until one comes back.
/// Output is deterministic: the same inputs in any order give the same actions, ordered by HA key.
public struct SelectionStateMachine: Sendable {
    public typealias Instant = ContinuousClock.Instant

    /// An HA set's choice of routing peer.
    enum Choice: Hashable, Sendable {
        /// None of its candidates has been up yet.
        case none
        case chosen(Selection)
        /// A voluntary switch away from the selection is waiting for dwell or uptime until `retryAt`.
        case holdingBack(Selection, retryAt: Instant)

        var selection: Selection? {
            switch self {
            case .none: nil
            case .chosen(let selection), .holdingBack(let selection, _): selection
            }
        }

        var retryAt: Instant? {
            if case .holdingBack(_, let retryAt) = self { return retryAt }
            return nil
        }
    }

    struct SetState: Hashable, Sendable {
        /// Canonical order, one per peer (`SelectionRules.normalized`).
        var candidates: [RouteCandidate]
        var choice: Choice
    }

    /// The last health observation of a peer, and when it came up if it is up.
    enum Observed: Hashable, Sendable {
        case up(PeerHealth, since: Instant)
        case notUp(PeerHealth)

        var health: PeerHealth {
            switch self {
            case .up(let health, _), .notUp(let health): health
            }
        }

        var upSince: Instant? {
            if case .up(_, let since) = self { return since }
            return nil
        }
    }

    public let configuration: Configuration
    private var sets: [HAKey: SetState] = [:]
    private var observations: [PeerID: Observed] = [:]
    private var draining: Set<PeerID> = []

    public init(configuration: Configuration = .default) {
        self.configuration = configuration
    }

    // MARK: Queries

    /// The HA sets of the current view, sorted.
    public var keys: [HAKey] { sets.keys.sorted() }
    /// The candidates of an HA set as the machine sees them (canonical order, one per peer).
    public func candidates(of key: HAKey) -> [RouteCandidate] { sets[key]?.candidates ?? [] }
    /// The current choice for an HA set; nil when none of its candidates has been up yet.
    public func selection(for key: HAKey) -> Selection? { sets[key]?.choice.selection }
    public var selections: [HAKey: Selection] { sets.compactMapValues(\.choice.selection) }
    public func health(of peer: PeerID) -> PeerHealth? { observations[peer]?.health }
    public var drainingPeers: Set<PeerID> { draining }
    /// What an HA set can do for its destination now, as `DestinationArbiter` weighs it against the HA sets of
    /// other network ids with the same destination (nil: not in the view).
    public func standing(of key: HAKey) -> DestinationEntrant.Standing? {
        guard let set = sets[key] else { return nil }
        guard let selection = set.choice.selection else { return .pending }
        let chosen = selection.candidate
        guard selection.status == .active, let health = observations[chosen.peerID]?.health, health.isUp else { return .down(chosen) }
        return .up(Contender(candidate: chosen, health: health, draining: draining.contains(chosen.peerID), configuration: configuration))
    }
    /// The earliest time a `tick` would carry out a switch now held back by dwell or uptime (the shell may
    /// wake up then rather than wait for its next periodic tick).
    public var nextDeadline: Instant? { sets.values.compactMap(\.choice.retryAt).min() }

    // MARK: Events

    /// A new view (the agent's own route view) arrived: HA sets added, changed or removed.
    public mutating func viewChanged(_ view: PeerRouteView, now: Instant) -> [Action] {
        haSetsChanged(view.haSets, now: now)
    }

    /// The HA sets to route. Sets that did not change are not re-evaluated (their latency waits for `tick`);
    /// a set that disappeared yields `remove` if anything was installed for it.
    public mutating func haSetsChanged(_ haSets: [HASet], now: Instant) -> [Action] {
        var incoming: [HAKey: [RouteCandidate]] = [:]
        for set in haSets { incoming[set.key, default: []].append(contentsOf: set.candidates) }
        var actions: [Action] = []
        for key in Set(sets.keys).union(incoming.keys).sorted() {
            guard let raw = incoming[key], !raw.isEmpty else {
                if let selection = sets.removeValue(forKey: key)?.choice.selection {
                    actions.append(.remove(key, selection.candidate, keepRoute: selection.candidate.keepRoute))
                }
                continue
            }
            let candidates = SelectionRules.normalized(raw)
            if let existing = sets[key], existing.candidates == candidates { continue }
            sets[key, default: SetState(candidates: [], choice: .none)].candidates = candidates
            evaluate(key, now: now, into: &actions)
        }
        return actions
    }

    /// One peer's health changed (`nil`: no longer observed, counted as down). A connection change
    /// re-evaluates the HA sets the peer is a candidate of at once; a latency-only change waits for `tick`.
    public mutating func healthObserved(_ peer: PeerID, _ observation: PeerHealth?, now: Instant) -> [Action] {
        let changed = record(peer, observation, now: now)
        return changed ? evaluate(touching: [peer], now: now) : []
    }

    /// Every peer's health at once; peers missing from `snapshot` are no longer observed (counted as down).
    public mutating func healthObserved(_ snapshot: [PeerID: PeerHealth], now: Instant) -> [Action] {
        var changed = Set<PeerID>()
        for peer in Set(observations.keys).union(snapshot.keys) where record(peer, snapshot[peer], now: now) {
            changed.insert(peer)
        }
        return evaluate(touching: changed, now: now)
    }

    /// The peers an operator drains (maintenance mode): chosen only when nothing else is up.
    public mutating func drainingChanged(_ peers: Set<PeerID>, now: Instant) -> [Action] {
        let changed = draining.symmetricDifference(peers)
        draining = peers
        return evaluate(touching: changed, now: now)
    }

    /// Periodic re-evaluation of every HA set: latency changes (with hysteresis), and switches held back
    /// by dwell or uptime that may now happen.
    public mutating func tick(now: Instant) -> [Action] {
        var actions: [Action] = []
        for key in sets.keys.sorted() { evaluate(key, now: now, into: &actions) }
        return actions
    }

    /// The agent stops: remove every installed route (`keepRoute` tells the applier which ones stay) and
    /// forget the view. Health and drain flags are kept.
    public mutating func shutdown() -> [Action] {
        var actions: [Action] = []
        for key in sets.keys.sorted() {
            if let c = sets[key]?.choice.selection?.candidate { actions.append(.remove(key, c, keepRoute: c.keepRoute)) }
        }
        sets = [:]
        return actions
    }

    // MARK: Internals

    /// Stores an observation; true when it is a connection change (reachability, or path kind while up).
    private mutating func record(_ peer: PeerID, _ observation: PeerHealth?, now: Instant) -> Bool {
        let previous = observations[peer]
        let old = previous?.health
        if let observation {
            if observation.isUp {
                observations[peer] = .up(observation, since: previous?.upSince ?? now)
            } else {
                observations[peer] = .notUp(observation)
            }
        } else {
            observations[peer] = nil
        }
        guard let observation else { return old != nil }
        return observation.isConnectionChange(from: old)
    }

    private mutating func evaluate(touching peers: Set<PeerID>, now: Instant) -> [Action] {
        guard !peers.isEmpty else { return [] }
        var actions: [Action] = []
        for key in sets.keys.sorted() {
            let set = sets[key]!
            let touched = set.candidates.contains { peers.contains($0.peerID) }
                || set.choice.selection.map { peers.contains($0.candidate.peerID) } ?? false
            if touched { evaluate(key, now: now, into: &actions) }
        }
        return actions
    }

    private mutating func evaluate(_ key: HAKey, now: Instant, into actions: inout [Action]) {
        guard var set = sets[key] else { return }
        defer { sets[key] = set }
        let ranked = SelectionRules.ranked(set.candidates, health: observations.mapValues(\.health), draining: draining,
                                           configuration: configuration)

        guard var selection = set.choice.selection else {
            if let best = ranked.first {
                set.choice = .chosen(Selection(candidate: best.candidate, status: .active, since: now))
                actions.append(.install(key, best.candidate))
            }
            return
        }
        let kept = selection.candidate
        let keptInView = set.candidates.first { $0.peerID == kept.peerID }

        guard let best = ranked.first else {
            // Nothing is up: stay on the last choice (following its entry if the view changed it).
            if let fresh = keptInView, fresh != kept {
                actions.append(.update(key, from: kept, to: fresh))
                selection.candidate = fresh
            }
            if selection.status != .allDown {
                selection.status = .allDown
                actions.append(.allDown(key, keeping: selection.candidate))
            }
            set.choice = .chosen(selection)
            return
        }

        guard let current = ranked.first(where: { $0.peerID == kept.peerID }) else {
            // Forced: the current peer is down or no longer a candidate.
            let reason: SwitchReason = keptInView == nil ? .currentRemoved : .currentDown(observations[kept.peerID]?.health.reachability)
            actions.append(.switch(key, from: kept, to: best.candidate, reason: reason))
            set.choice = .chosen(Selection(candidate: best.candidate, status: .active, since: now))
            return
        }

        if current.candidate != kept {
            actions.append(.update(key, from: kept, to: current.candidate))
            selection.candidate = current.candidate
        }
        if selection.status == .allDown {
            selection.status = .active
            actions.append(.recovered(key, current.candidate))
        }
        set.choice = .chosen(selection)
        if best.peerID == current.peerID { return }

        if current.draining && !best.draining {
            actions.append(.switch(key, from: current.candidate, to: best.candidate, reason: .currentDraining))
            set.choice = .chosen(Selection(candidate: best.candidate, status: .active, since: now))
            return
        }

        // Voluntary: the best challenger that beats the current one by the rules and may switch now.
        let dwellEnds = selection.since + configuration.minimumDwell
        for challenger in ranked where challenger.peerID != current.peerID {
            guard let reason = SelectionRules.improvement(of: challenger, over: current, configuration: configuration) else {
                continue
            }
            let upLongEnough = (observations[challenger.peerID]?.upSince ?? now) + configuration.minimumUptime
            let readyAt = max(dwellEnds, upLongEnough)
            if readyAt <= now {
                actions.append(.switch(key, from: current.candidate, to: challenger.candidate, reason: reason))
                set.choice = .chosen(Selection(candidate: challenger.candidate, status: .active, since: now))
                return
            }
            set.choice = .holdingBack(selection, retryAt: min(set.choice.retryAt ?? readyAt, readyAt))
        }
    }
}
