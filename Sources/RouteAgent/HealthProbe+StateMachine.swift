import RouteModel

/// How often and how patiently candidates are probed.
///
/// A dead peer is declared unreachable at the latest `missThreshold × interval + timeout` after it
/// died (the first unanswered probe leaves within one interval; the `missThreshold`-th expires
/// `timeout` after it was sent): 3 × 500 ms + 1 s = 2.5 s by default, inside the 3 s the issue asks.
public struct HealthProbeConfiguration: Hashable, Sendable {
    public var interval: Duration
    /// A probe not answered within this time is a miss (a later echo for it is ignored).
    public var timeout: Duration
    /// Consecutive misses that make a candidate unreachable.
    public var missThreshold: Int
    /// Consecutive echoes that make an unreachable candidate reachable again (from unknown, one is enough).
    public var recoveryThreshold: Int
    /// The port every agent answers probes on (UDP, on its mesh address).
    public var port: UInt16

    public static let defaultPort: UInt16 = 51821

    public init(interval: Duration = .milliseconds(500), timeout: Duration = .seconds(1), missThreshold: Int = 3,
                recoveryThreshold: Int = 2, port: UInt16 = HealthProbeConfiguration.defaultPort) {
        precondition(interval > .zero && timeout > .zero && missThreshold >= 1 && recoveryThreshold >= 1)
        self.interval = interval
        self.timeout = timeout
        self.missThreshold = missThreshold
        self.recoveryThreshold = recoveryThreshold
        self.port = port
    }

    /// The longest time from a peer's death to its `unreachable` verdict.
    public var worstCaseDetection: Duration { interval * missThreshold + timeout }
}

/// A candidate to probe: a routing peer's mesh address.
public struct ProbeTarget: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var id: String
    public var address: IPAddress
    public var port: UInt16

    public init(id: String, address: IPAddress, port: UInt16 = HealthProbeConfiguration.defaultPort) {
        self.id = id
        self.address = address
        self.port = port
    }

    public static func < (a: ProbeTarget, b: ProbeTarget) -> Bool {
        if a.id != b.id { return a.id < b.id }
        if a.address != b.address { return a.address < b.address }
        return a.port < b.port
    }

    public var description: String { "\(id)@\(address.isV6 ? "[\(address)]" : address.description):\(port)" }
}

public enum ProbeReachability: String, Hashable, Sendable {
    /// Not yet decided (just added: no echo and fewer than `missThreshold` misses).
    case unknown
    case reachable
    case unreachable
}

/// What the prober knows about one candidate.
public struct ProbeHealth: Hashable, Sendable, CustomStringConvertible {
    public var target: ProbeTarget
    public var reachability: ProbeReachability
    /// Smoothed round-trip time (RFC 6298: 7/8 old + 1/8 sample); nil before the first echo.
    public var smoothedRTT: Duration?
    /// Mean deviation of the RTT (RFC 6298: 3/4 old + 1/4 |srtt − sample|).
    public var rttVariation: Duration?
    public var lastRTT: Duration?
    public var consecutiveMisses: Int
    public var consecutiveReplies: Int
    /// Monotonic nanoseconds of the last echo.
    public var lastReplyAt: UInt64?
    public var sent: UInt64
    public var received: UInt64
    public var missed: UInt64

    init(target: ProbeTarget) {
        self.target = target
        reachability = .unknown
        consecutiveMisses = 0
        consecutiveReplies = 0
        sent = 0
        received = 0
        missed = 0
    }

    public var description: String {
        "\(target) \(reachability.rawValue)" + (smoothedRTT.map { " srtt \($0)" } ?? "")
            + " sent \(sent) received \(received) missed \(missed)"
    }
}

/// The health prober's decisions, without I/O: when to send a probe to whom, what an echo or a
/// missing echo means. Time is monotonic nanoseconds, passed in by the caller.
///
/// The shell calls `tick(now:)` at `nextDeadline` (or earlier), `receive` for every datagram, and
/// performs the returned actions: `.send` a packet, report `.reachabilityChanged`.
public struct HealthProbeStateMachine: Sendable {
    public enum Action: Hashable, Sendable {
        case send(ProbePacket, to: ProbeTarget)
        case reachabilityChanged(ProbeHealth)
    }

    struct Peer: Sendable {
        var health: ProbeHealth
        var nextSendAt: UInt64
        /// Outstanding probes: nonce → send time.
        var outstanding: [UInt64: UInt64] = [:]
    }

    public let configuration: HealthProbeConfiguration
    private var peers: [String: Peer] = [:]
    /// Outstanding nonce → peer id.
    private var nonces: [UInt64: String] = [:]
    private var rng: SplitMix64

    /// `seed` makes the nonces unpredictable in production (pass a random one) and repeatable in tests.
    public init(configuration: HealthProbeConfiguration = HealthProbeConfiguration(), seed: UInt64) {
        self.configuration = configuration
        rng = SplitMix64(seed: seed)
    }

    var intervalNs: UInt64 { UInt64(configuration.interval.nanoseconds) }
    var timeoutNs: UInt64 { UInt64(configuration.timeout.nanoseconds) }

    // MARK: - inputs

    /// The candidates to probe from now on. New ones are probed at once and start `unknown`;
    /// a target whose address or port changed starts over; missing ones are forgotten.
    public mutating func setTargets(_ targets: [ProbeTarget], now: UInt64) {
        var keep = Set<String>()
        for t in targets {
            keep.insert(t.id)
            if let p = peers[t.id], p.health.target == t { continue }
            drop(t.id)
            peers[t.id] = Peer(health: ProbeHealth(target: t), nextSendAt: now)
        }
        for id in peers.keys where !keep.contains(id) { drop(id) }
    }

    /// Expires unanswered probes (misses) and sends the probes that are due.
    public mutating func tick(now: UInt64) -> [Action] {
        var actions: [Action] = []
        for id in peers.keys.sorted() {
            guard var p = peers[id] else { continue }
            // Misses, oldest first.
            for (nonce, sentAt) in p.outstanding.sorted(by: { $0.value < $1.value }) where sentAt &+ timeoutNs <= now {
                p.outstanding[nonce] = nil
                nonces[nonce] = nil
                if let a = miss(&p.health) { actions.append(a) }
            }
            if now >= p.nextSendAt {
                var nonce = rng.next()
                while nonces[nonce] != nil { nonce = rng.next() }
                nonces[nonce] = id
                p.outstanding[nonce] = now
                p.health.sent += 1
                actions.append(.send(ProbePacket(kind: .probe, nonce: nonce, timestamp: now), to: p.health.target))
                // Keep the cadence; after a stall, start again from now rather than sending a burst.
                let next = p.nextSendAt &+ intervalNs
                p.nextSendAt = next > now ? next : now &+ intervalNs
            }
            peers[id] = p
        }
        return actions
    }

    /// A datagram from `address:port`. Only an echo of a probe still outstanding for the target at
    /// that address, with the timestamp it was sent with, counts; anything else is ignored.
    public mutating func receive(_ packet: ProbePacket, from address: IPAddress, port: UInt16, now: UInt64) -> [Action] {
        guard packet.kind == .echo, let id = nonces[packet.nonce], var p = peers[id],
              p.health.target.address == address, p.health.target.port == port,
              let sentAt = p.outstanding[packet.nonce], sentAt == packet.timestamp, now >= sentAt else { return [] }
        // This probe and every older one of this peer are settled: the older ones were lost.
        for (nonce, s) in p.outstanding where s <= sentAt {
            p.outstanding[nonce] = nil
            nonces[nonce] = nil
            if nonce != packet.nonce { p.health.missed += 1 }
        }
        var h = p.health
        let sample = Int64(now - sentAt)
        h.received += 1
        h.lastReplyAt = now
        h.lastRTT = .nanoseconds(sample)
        if let srtt = h.smoothedRTT?.nanoseconds, let rttvar = h.rttVariation?.nanoseconds {
            h.rttVariation = .nanoseconds((3 * rttvar + abs(srtt - sample)) / 4)
            h.smoothedRTT = .nanoseconds((7 * srtt + sample) / 8)
        } else {
            h.smoothedRTT = .nanoseconds(sample)
            h.rttVariation = .nanoseconds(sample / 2)
        }
        h.consecutiveMisses = 0
        h.consecutiveReplies += 1
        var actions: [Action] = []
        let becomesReachable: Bool
        switch h.reachability {
        case .reachable: becomesReachable = false
        case .unknown: becomesReachable = true
        case .unreachable: becomesReachable = h.consecutiveReplies >= configuration.recoveryThreshold
        }
        if becomesReachable {
            h.reachability = .reachable
            actions.append(.reachabilityChanged(h))
        }
        p.health = h
        peers[id] = p
        return actions
    }

    // MARK: - outputs

    /// When `tick` next has something to do (a probe due or one expiring); nil without targets.
    public var nextDeadline: UInt64? {
        var d: UInt64? = nil
        for p in peers.values {
            var t = p.nextSendAt
            for s in p.outstanding.values { t = min(t, s &+ timeoutNs) }
            d = min(d ?? t, t)
        }
        return d
    }

    public func health(of id: String) -> ProbeHealth? { peers[id]?.health }

    /// Every target's health, by id.
    public var allHealth: [ProbeHealth] { peers.keys.sorted().map { peers[$0]!.health } }

    // MARK: - internals

    private mutating func miss(_ h: inout ProbeHealth) -> Action? {
        h.missed += 1
        h.consecutiveMisses += 1
        h.consecutiveReplies = 0
        if h.consecutiveMisses >= configuration.missThreshold, h.reachability != .unreachable {
            h.reachability = .unreachable
            return .reachabilityChanged(h)
        }
        return nil
    }

    private mutating func drop(_ id: String) {
        guard let p = peers.removeValue(forKey: id) else { return }
        for nonce in p.outstanding.keys { nonces[nonce] = nil }
    }
}

