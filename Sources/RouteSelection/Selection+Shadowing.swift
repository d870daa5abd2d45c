import RouteModel

/// An HA set as it competes with the HA sets of other network ids that lead to the same destination (the same
/// range, the same domain list, or two default routes).
public struct DestinationEntrant: Hashable, Sendable {
    /// What the HA set can do for its destination right now (from its own choice of routing peer).
    public enum Standing: Hashable, Sendable {
        /// Its chosen routing peer is connected: it may carry the traffic.
        case up(Contender)
        /// It has a chosen routing peer (its route would stay installed), but every candidate is down.
        case down(RouteCandidate)
        /// None of its candidates has been up yet: there is nothing to install for it.
        case pending

        /// The chosen routing peer, when there is one.
        public var candidate: RouteCandidate? {
            switch self {
            case .up(let contender): contender.candidate
            case .down(let candidate): candidate
            case .pending: nil
            }
        }
    }

    public var key: HAKey
    public var standing: Standing

    public init(key: HAKey, standing: Standing) {
        self.key = key
        self.standing = standing
    }

    var contender: Contender? {
        if case .up(let contender) = standing { return contender }
        return nil
    }
}

/// Why the winner of a destination shadows another HA set (for the log line, decided when it changes).
public enum ShadowReason: Hashable, Sendable, CustomStringConvertible {
    /// The shadowed set's chosen routing peer is not connected (or it has none yet); the winner's is.
    case notUp
    /// Both down (or pending): the winner keeps the route installed (traffic dropped, not leaked).
    case allDown
    /// The shadowed set's routing peer is draining; the winner's is not.
    case draining
    case lowerMetric(winner: Int, shadowed: Int)
    case directPath
    case lowerLatency(winner: Duration, shadowed: Duration)
    /// Equal on metric and connection: the lower network id wins.
    case lowerNetworkID
    /// The current winner stays: the other is not better by more than the latency hysteresis.
    case incumbent

    public var description: String {
        switch self {
        case .notUp: return "its routing peer is not connected"
        case .allDown: return "all routing peers of both are down; keeping the installed one"
        case .draining: return "its routing peer is draining"
        case .lowerMetric(let w, let s): return "lower metric \(w) < \(s)"
        case .directPath: return "direct path beats relayed"
        case .lowerLatency(let w, let s): return "lower latency \(formatMilliseconds(w)) < \(formatMilliseconds(s))"
        case .lowerNetworkID: return "same metric and connection quality: lower network id"
        case .incumbent: return "installed first, not worse beyond the latency hysteresis"
        }
    }
}

/// The choice between HA sets of different network ids that lead to the same destination, as pure functions;
/// `DestinationArbiter` adds memory (the current winner, for the latency hysteresis).
///
/// The same rules as within one HA set (`SelectionRules`), applied to each set's chosen routing peer:
/// 1. Only a set whose chosen routing peer is connected may win over one that is not.
/// 2. A set whose routing peer drains loses to one whose peer does not.
/// 3. Lower metric (of the chosen routing peer's route) wins.
/// 4. At equal metric a direct path beats a relayed one.
/// 5. Then lower latency; a winner that is up stays unless beaten on 2–4 or on latency by more than the hysteresis.
/// 6. Then the lower network id (lexicographic): never random.
/// When no set is up, the current winner stays (its route stays installed, traffic dropped, not leaked); a new
/// choice among sets that are down takes the lower metric, then the lower network id. Sets with nothing chosen
/// yet win only when no other set has anything to install, which means no winner at all.
public enum ShadowRules {
    /// Strict total order of sets that are up (rules 2–6): `a` is preferred over `b`.
    public static func prefers(_ a: Contender, _ aKey: HAKey, over b: Contender, _ bKey: HAKey) -> Bool {
        if a.draining != b.draining { return !a.draining }
        if a.candidate.metric != b.candidate.metric { return a.candidate.metric < b.candidate.metric }
        if a.health.relayed != b.health.relayed { return !a.health.relayed }
        if a.latency != b.latency { return a.latency < b.latency }
        return aKey < bKey
    }

    /// The winner among `entrants` (all of one destination), given the current winner; nil when none of them has
    /// anything to install.
    public static func winner(of entrants: [DestinationEntrant], current: HAKey?,
                              configuration: SelectionStateMachine.Configuration = .default) -> DestinationEntrant? {
        let incumbent = current.flatMap { k in entrants.first { $0.key == k } }
        let up = entrants.compactMap { e in e.contender.map { (e, $0) } }.sorted { prefers($0.1, $0.0.key, over: $1.1, $1.0.key) }
        if let (best, bestContender) = up.first {
            if let incumbent, incumbent.key != best.key, let kept = incumbent.contender,
               SelectionRules.improvement(of: bestContender, over: kept, configuration: configuration) == nil {
                return incumbent
            }
            return best
        }
        if let incumbent, incumbent.standing.candidate != nil { return incumbent }
        return entrants.filter { $0.standing.candidate != nil }.min { a, b in
            let (ma, mb) = (a.standing.candidate!.metric, b.standing.candidate!.metric)
            return ma != mb ? ma < mb : a.key < b.key
        }
    }

    /// Why `winner` shadows `other` (rules in order; `.incumbent` when `other` would have won a fresh choice).
    public static func reason(_ winner: DestinationEntrant, over other: DestinationEntrant) -> ShadowReason {
        guard let w = winner.contender else { return .allDown }
        guard let o = other.contender else { return .notUp }
        if prefers(o, other.key, over: w, winner.key) { return .incumbent }
        if w.draining != o.draining { return .draining }
        if w.candidate.metric != o.candidate.metric { return .lowerMetric(winner: w.candidate.metric, shadowed: o.candidate.metric) }
        if w.health.relayed != o.health.relayed { return .directPath }
        if w.latency != o.latency { return .lowerLatency(winner: w.latency, shadowed: o.latency) }
        return .lowerNetworkID
    }
}

/// Exactly one HA set per destination is installed; the others of that destination are *shadowed* by it. Pure:
/// fed the HA sets that could be installed (with their standing) after every change of the selection, it answers
/// which sets became shadowed (by which) or stopped being shadowed. It remembers each destination's winner, so a
/// winner that is up is not replaced by a set that is merely faster within the latency hysteresis, and a winner
/// whose routing peers are all down stays while no other set is up.
public struct DestinationArbiter: Sendable {
    /// What changed for one HA set (logged once per change, never per tick).
    public enum Change: Hashable, Sendable, CustomStringConvertible {
        /// `key` is not installed: `by` is installed for the same destination.
        case shadowed(HAKey, by: HAKey, reason: ShadowReason)
        /// `key` is no longer shadowed: it is the winner now, or alone for its destination.
        case unshadowed(HAKey)

        public var key: HAKey {
            switch self {
            case .shadowed(let k, _, _), .unshadowed(let k): k
            }
        }

        public var description: String {
            switch self {
            case .shadowed(let k, let by, let reason):
                return "\(k) shadowed by \(by) (same destination \(k.destination)): \(reason); not installed"
            case .unshadowed(let k): return "\(k) no longer shadowed"
            }
        }
    }

    public let configuration: SelectionStateMachine.Configuration
    /// The installed HA set of each destination that has one.
    public private(set) var winners: [RouteDestination: HAKey] = [:]
    /// Each shadowed HA set, with the HA set installed instead.
    public private(set) var shadowedBy: [HAKey: HAKey] = [:]

    public init(configuration: SelectionStateMachine.Configuration = .default) {
        self.configuration = configuration
    }

    /// Chooses again for every destination. `entrants`: every HA set of the view that could be installed (sets
    /// that install nothing, such as `skip_auto_apply` ones, neither shadow nor are shadowed). The output is
    /// ordered by HA key, whatever the order of `entrants`.
    public mutating func evaluate(_ entrants: [DestinationEntrant]) -> [Change] {
        var byDestination: [RouteDestination: [DestinationEntrant]] = [:]
        for e in entrants { byDestination[e.key.destination, default: []].append(e) }
        var nextWinners: [RouteDestination: HAKey] = [:]
        var nextShadowed: [HAKey: HAKey] = [:]
        var reasons: [HAKey: ShadowReason] = [:]
        for (destination, group) in byDestination {
            guard let winner = ShadowRules.winner(of: group, current: winners[destination], configuration: configuration) else { continue }
            nextWinners[destination] = winner.key
            for other in group where other.key != winner.key {
                nextShadowed[other.key] = winner.key
                reasons[other.key] = ShadowRules.reason(winner, over: other)
            }
        }
        let present = Set(entrants.map(\.key))
        var changes: [Change] = []
        for key in Set(shadowedBy.keys).union(nextShadowed.keys).sorted() {
            let (before, after) = (shadowedBy[key], nextShadowed[key])
            guard before != after else { continue }
            if let after {
                changes.append(.shadowed(key, by: after, reason: reasons[key]!))
            } else if present.contains(key) {
                changes.append(.unshadowed(key))
            }
        }
        winners = nextWinners
        shadowedBy = nextShadowed
        return changes
    }
}
