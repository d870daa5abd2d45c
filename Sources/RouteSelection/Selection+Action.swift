import RouteModel

/// Whether the route of an HA set carries traffic.
public enum SelectionStatus: String, Hashable, Sendable, CustomStringConvertible {
    /// Routed via a connected candidate.
    case active
    /// Every candidate is down: the route stays on the last choice, so traffic is dropped, never leaked to
    /// the default route, until a candidate comes back.
    case allDown

    public var description: String { rawValue }
}

/// The routing peer chosen for one HA set. A set with no `Selection` has had no candidate up yet (nothing
/// is installed for it).
public struct Selection: Hashable, Sendable {
    public var candidate: RouteCandidate
    public var status: SelectionStatus
    /// When this peer was chosen (the start of its dwell time).
    public var since: ContinuousClock.Instant

    public init(candidate: RouteCandidate, status: SelectionStatus, since: ContinuousClock.Instant) {
        self.candidate = candidate
        self.status = status
        self.since = since
    }
}

/// Why the route moved from one routing peer to another (for the log line at 3 a.m.).
public enum SwitchReason: Hashable, Sendable, CustomStringConvertible {
    // Forced: immediate, whatever the dwell and uptime settings.
    /// The current peer is not connected (`nil`: no observation of it).
    case currentDown(Reachability?)
    /// The current peer is no longer a candidate of the HA set.
    case currentRemoved
    /// An operator drains the current peer and a peer not draining is up.
    case currentDraining
    // Voluntary: subject to hysteresis, minimum dwell and minimum uptime.
    /// The challenger's metric is lower.
    case lowerMetric(from: Int, to: Int)
    /// Same metric; the challenger is direct, the current one relayed.
    case directPath
    /// Same metric and path kind; the challenger is faster by more than the hysteresis (effective
    /// latencies: an unmeasured one counts as `Configuration.unmeasuredLatency`).
    case lowerLatency(from: Duration, to: Duration)

    /// The current choice could not stay (as opposed to a better one being available).
    public var isForced: Bool {
        switch self {
        case .currentDown, .currentRemoved, .currentDraining: return true
        case .lowerMetric, .directPath, .lowerLatency: return false
        }
    }

    public var description: String {
        switch self {
        case .currentDown(let r): return "current peer \(r.map(\.description) ?? "not observed")"
        case .currentRemoved: return "current peer no longer a candidate"
        case .currentDraining: return "current peer draining"
        case .lowerMetric(let from, let to): return "lower metric \(from) -> \(to)"
        case .directPath: return "direct path beats relayed"
        case .lowerLatency(let from, let to):
            return "lower latency \(formatMilliseconds(from)) -> \(formatMilliseconds(to))"
        }
    }
}

extension SelectionStateMachine {
    /// What the I/O shell must do. Only `install`, `switch`, `update` and `remove` change the OS;
    /// `allDown` and `recovered` are status changes to log or report.
    public enum Action: Hashable, Sendable, CustomStringConvertible {
        /// First choice for an HA set: route it via `candidate.meshIP`.
        case install(HAKey, RouteCandidate)
        /// Move the HA set's route from one routing peer to another.
        case `switch`(HAKey, from: RouteCandidate, to: RouteCandidate, reason: SwitchReason)
        /// Same routing peer, but its entry in the view changed (mesh address, metric, flags): replace the
        /// route if the next hop changed, and remember the new flags.
        case update(HAKey, from: RouteCandidate, to: RouteCandidate)
        /// The HA set left the view (or the agent stops). With `keepRoute` the OS route stays installed.
        case remove(HAKey, RouteCandidate, keepRoute: Bool)
        /// Every candidate is down; the route stays on `keeping` (traffic dropped, not leaked). No OS change.
        case allDown(HAKey, keeping: RouteCandidate)
        /// The kept choice is connected again after `allDown`. No OS change.
        case recovered(HAKey, RouteCandidate)

        public var key: HAKey {
            switch self {
            case .install(let k, _), .switch(let k, _, _, _), .update(let k, _, _), .remove(let k, _, _),
                 .allDown(let k, _), .recovered(let k, _):
                return k
            }
        }

        /// Whether the OS routing table must change.
        public var changesRoutes: Bool {
            switch self {
            case .install, .switch, .update, .remove: return true
            case .allDown, .recovered: return false
            }
        }

        public var description: String {
            func peer(_ c: RouteCandidate) -> String { "\(c.peerID) (\(c.meshIP), metric \(c.metric))" }
            switch self {
            case .install(let k, let c): return "install \(k) via \(peer(c))"
            case .switch(let k, let from, let to, let reason):
                return "switch \(k) from \(peer(from)) to \(peer(to)): \(reason)"
            case .update(let k, let from, let to): return "update \(k): \(peer(from)) now \(peer(to))"
            case .remove(let k, let c, let keep):
                return keep ? "remove \(k) via \(peer(c)) (keep_route: route stays installed)" : "remove \(k) via \(peer(c))"
            case .allDown(let k, let c): return "all candidates of \(k) down: keeping \(peer(c)), traffic dropped"
            case .recovered(let k, let c): return "\(k) recovered: \(peer(c)) up again"
            }
        }
    }
}
