import RouteModel

/// A connected candidate with what the choice needs to know about it.
public struct Contender: Hashable, Sendable {
    public var candidate: RouteCandidate
    public var health: PeerHealth
    public var draining: Bool
    /// Measured latency, or the configured one for an unmeasured peer.
    public var latency: Duration

    public init(candidate: RouteCandidate, health: PeerHealth, draining: Bool,
                configuration: SelectionStateMachine.Configuration = .default) {
        self.candidate = candidate
        self.health = health
        self.draining = draining
        self.latency = health.latency ?? configuration.unmeasuredLatency
    }

    public var peerID: PeerID { candidate.peerID }
}

/// The choice rules as pure functions; `SelectionStateMachine` adds memory (current choice, dwell).
///
/// 1. Only connected candidates are eligible (connecting, unreachable and unobserved never are).
/// 2. A draining peer loses to any peer not draining (it is chosen only when nothing else is up).
/// 3. Lower metric wins.
/// 4. At equal metric a direct path beats a relayed one.
/// 5. Then lower latency.
/// 6. Then lower peer id, then lower route id: ties are deterministic, never random.
/// A current choice is replaced only by a challenger that wins on 2–4, or on 5 by more than the hysteresis.
public enum SelectionRules {
    public static func isEligible(_ health: PeerHealth?) -> Bool { health?.isUp ?? false }

    /// Strict total preference order (rules 2–6): `a` is preferred over `b`.
    public static func prefers(_ a: Contender, over b: Contender) -> Bool {
        if a.draining != b.draining { return !a.draining }
        if a.candidate.metric != b.candidate.metric { return a.candidate.metric < b.candidate.metric }
        if a.health.relayed != b.health.relayed { return !a.health.relayed }
        if a.latency != b.latency { return a.latency < b.latency }
        return canonicallyPrecedes(a.candidate, b.candidate)
    }

    /// The connected candidates, best first.
    public static func ranked(_ candidates: [RouteCandidate], health: [PeerID: PeerHealth], draining: Set<PeerID>,
                              configuration: SelectionStateMachine.Configuration = .default) -> [Contender] {
        candidates.compactMap { c -> Contender? in
            guard let h = health[c.peerID], h.isUp else { return nil }
            return Contender(candidate: c, health: h, draining: draining.contains(c.peerID), configuration: configuration)
        }
        .sorted { prefers($0, over: $1) }
    }

    /// The best connected candidate without history (the choice for a fresh HA set), or nil when none is up.
    public static func best(_ candidates: [RouteCandidate], health: [PeerID: PeerHealth], draining: Set<PeerID>,
                            configuration: SelectionStateMachine.Configuration = .default) -> RouteCandidate? {
        ranked(candidates, health: health, draining: draining, configuration: configuration).first?.candidate
    }

    /// Why `challenger` should replace the connected `current`, or nil when `current` stays (worse, equal,
    /// or faster by no more than the hysteresis).
    public static func improvement(of challenger: Contender, over current: Contender,
                                   configuration: SelectionStateMachine.Configuration = .default) -> SwitchReason? {
        if challenger.draining != current.draining { return current.draining ? .currentDraining : nil }
        let (cm, km) = (challenger.candidate.metric, current.candidate.metric)
        if cm != km { return cm < km ? .lowerMetric(from: km, to: cm) : nil }
        if challenger.health.relayed != current.health.relayed { return current.health.relayed ? .directPath : nil }
        if challenger.latency + configuration.latencyHysteresis < current.latency {
            return .lowerLatency(from: current.latency, to: challenger.latency)
        }
        return nil
    }

    /// A total order on candidates (the view's order, completed so that any input order sorts the same).
    public static func canonicallyPrecedes(_ a: RouteCandidate, _ b: RouteCandidate) -> Bool {
        if a.metric != b.metric { return a.metric < b.metric }
        if a.peerID != b.peerID { return a.peerID < b.peerID }
        if a.routeID != b.routeID { return a.routeID < b.routeID }
        if a.meshIP != b.meshIP { return a.meshIP < b.meshIP }
        if a.keepRoute != b.keepRoute { return !a.keepRoute }
        if a.masquerade != b.masquerade { return !a.masquerade }
        if a.skipAutoApply != b.skipAutoApply { return !a.skipAutoApply }
        return !a.draining && b.draining
    }

    /// Candidates of one HA set in canonical order, one per routing peer (its best entry: a peer listed
    /// twice keeps the lower metric, then the lower route id).
    public static func normalized(_ candidates: [RouteCandidate]) -> [RouteCandidate] {
        var seen = Set<PeerID>()
        return candidates.sorted(by: canonicallyPrecedes).filter { seen.insert($0.peerID).inserted }
    }
}
