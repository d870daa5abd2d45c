/// How the agent reaches a candidate routing peer right now (from its own probe, with the controller's
/// status as a second signal). Only `connected` peers may carry traffic; `connecting` and a peer with no
/// observation yet are treated like `unreachable` for the choice.
public enum Reachability: String, Hashable, Sendable, CustomStringConvertible {
    case connected
    case connecting
    case unreachable

    public var description: String { rawValue }
}

/// One health observation of a routing peer (per peer, not per HA set: the tunnel is the same for every
/// network the peer serves).
public struct PeerHealth: Hashable, Sendable, CustomStringConvertible {
    public var reachability: Reachability
    /// The tunnel goes through a relay rather than peer to peer. At equal metric, direct beats relayed.
    public var relayed: Bool
    /// Measured round-trip time; `nil` while not measured (counted as `Configuration.unmeasuredLatency`).
    public var latency: Duration?

    public init(_ reachability: Reachability, relayed: Bool = false, latency: Duration? = nil) {
        self.reachability = reachability
        self.relayed = relayed
        self.latency = latency
    }

    public static func connected(relayed: Bool = false, latency: Duration? = nil) -> PeerHealth {
        PeerHealth(.connected, relayed: relayed, latency: latency)
    }
    public static let connecting = PeerHealth(.connecting)
    public static let unreachable = PeerHealth(.unreachable)

    /// May carry traffic.
    public var isUp: Bool { reachability == .connected }

    /// `self` differs from `old` in more than latency: a connection event, evaluated at once. Latency-only
    /// changes wait for the periodic `tick`.
    public func isConnectionChange(from old: PeerHealth?) -> Bool {
        guard let old else { return true }
        if reachability != old.reachability { return true }
        return isUp && relayed != old.relayed
    }

    public var description: String {
        guard isUp else { return reachability.description }
        var s = relayed ? "connected relayed" : "connected direct"
        if let latency { s += " \(formatMilliseconds(latency))" }
        return s
    }
}

/// `12.5ms`: for log lines.
func formatMilliseconds(_ d: Duration) -> String {
    let (seconds, attoseconds) = d.components
    let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    let whole = micros / 1000
    let frac = abs(micros % 1000) / 100
    return frac == 0 ? "\(whole)ms" : "\(whole).\(frac)ms"
}
