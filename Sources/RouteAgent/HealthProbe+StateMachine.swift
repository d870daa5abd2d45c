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

/// What the prober knows about one candidate: its reachability with the run of probe outcomes that decides the next
/// change and the round-trip times once it answered (one `State`), plus counters.
public struct ProbeHealth: Hashable, Sendable, CustomStringConvertible {
    /// Round-trip times, known from the first echo on.
    public struct RTT: Hashable, Sendable {
        /// Smoothed round-trip time (RFC 6298: 7/8 old + 1/8 sample).
        public var smoothed: Duration
        /// Mean deviation of the RTT (RFC 6298: 3/4 old + 1/4 |srtt − sample|).
        public var variation: Duration
        public var last: Duration
        /// Monotonic nanoseconds of the last echo.
        public var lastReplyAt: UInt64

        /// The first sample, or `previous` smoothed with `sample` (nanoseconds), answered at `now`.
        init(previous: RTT?, sample: Int64, at now: UInt64) {
            if let previous {
                let srtt = previous.smoothed.nanoseconds, rttvar = previous.variation.nanoseconds
                variation = .nanoseconds((3 * rttvar + abs(srtt - sample)) / 4)
                smoothed = .nanoseconds((7 * srtt + sample) / 8)
            } else {
                smoothed = .nanoseconds(sample)
                variation = .nanoseconds(sample / 2)
            }
            last = .nanoseconds(sample)
            lastReplyAt = now
        }
    }

    /// The latest run of probe outcomes: consecutive echoes or consecutive misses.
    public enum Streak: Hashable, Sendable {
        case replies(Int)
        case misses(Int)

        var replies: Int { if case .replies(let n) = self { n } else { 0 } }
        var misses: Int { if case .misses(let n) = self { n } else { 0 } }
        var replied: Streak { .replies(replies + 1) }
        var missed: Streak { .misses(misses + 1) }
    }

    public enum State: Hashable, Sendable {
        /// Not yet decided: no echo yet, and fewer than `missThreshold` misses.
        case unknown(misses: Int)
        /// Answering: fewer than `missThreshold` misses in a row since the last echo.
        case reachable(RTT, Streak)
        /// Not answering: fewer than `recoveryThreshold` echoes in a row since the last miss; `last`: the round-trip
        /// times from before (nil if it never answered).
        case unreachable(Streak, last: RTT?)
    }

    public var target: ProbeTarget
    public internal(set) var state: State
    public internal(set) var sent: UInt64
    public internal(set) var received: UInt64
    public internal(set) var missed: UInt64

    init(target: ProbeTarget) {
        self.target = target
        state = .unknown(misses: 0)
        sent = 0
        received = 0
        missed = 0
    }

    public var reachability: ProbeReachability {
        switch state {
        case .unknown: .unknown
        case .reachable: .reachable
        case .unreachable: .unreachable
        }
    }

    /// nil before the first echo.
    public var rtt: RTT? {
        switch state {
        case .unknown: nil
        case .reachable(let rtt, _): rtt
        case .unreachable(_, let last): last
        }
    }

    /// Smoothed round-trip time; nil before the first echo.
    public var smoothedRTT: Duration? { rtt?.smoothed }
    public var rttVariation: Duration? { rtt?.variation }
    public var lastRTT: Duration? { rtt?.last }
    /// Monotonic nanoseconds of the last echo.
    public var lastReplyAt: UInt64? { rtt?.lastReplyAt }

    private var streak: Streak {
        switch state {
        case .unknown(let misses): .misses(misses)
        case .reachable(_, let streak), .unreachable(let streak, _): streak
        }
    }

    public var consecutiveMisses: Int { streak.misses }
    public var consecutiveReplies: Int { streak.replies }

    /// An echo after `sample` nanoseconds, at `now`. Returns whether the candidate became reachable.
    mutating func replied(sample: Int64, at now: UInt64, recoveryThreshold: Int) -> Bool {
        received += 1
        let rtt = RTT(previous: rtt, sample: sample, at: now)
        switch state {
        case .unknown:
            state = .reachable(rtt, .replies(1))
            return true
        case .reachable(_, let streak):
            state = .reachable(rtt, streak.replied)
            return false
        case .unreachable(let streak, _):
            let streak = streak.replied
            if streak.replies >= recoveryThreshold {
                state = .reachable(rtt, streak)
                return true
            }
            state = .unreachable(streak, last: rtt)
            return false
        }
    }

    /// A probe that expired unanswered. Returns whether the candidate became unreachable.
    mutating func missedProbe(missThreshold: Int) -> Bool {
        missed += 1
        switch state {
        case .unknown(let misses):
            if misses + 1 >= missThreshold {
                state = .unreachable(.misses(misses + 1), last: nil)
                return true
            }
            state = .unknown(misses: misses + 1)
            return false
        case .reachable(let rtt, let streak):
            let streak = streak.missed
            if streak.misses >= missThreshold {
                state = .unreachable(streak, last: rtt)
                return true
            }
            state = .reachable(rtt, streak)
            return false
        case .unreachable(let streak, let last):
            state = .unreachable(streak.missed, last: last)
            return false
        }
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
        let becameReachable = p.health.replied(sample: Int64(now - sentAt), at: now, recoveryThreshold: configuration.recoveryThreshold)
        peers[id] = p
        return becameReachable ? [.reachabilityChanged(p.health)] : []
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

    private func miss(_ h: inout ProbeHealth) -> Action? {
        h.missedProbe(missThreshold: configuration.missThreshold) ? .reachabilityChanged(h) : nil
    }

    private mutating func drop(_ id: String) {
        guard let p = peers.removeValue(forKey: id) else { return }
        for nonce in p.outstanding.keys { nonces[nonce] = nil }
    }
}

