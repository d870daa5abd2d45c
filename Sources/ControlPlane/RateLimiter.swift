import RouteModel
import Synchronization

/// A sustained rate with a burst: `burst` requests at once, then one every `1 / perSecond` seconds.
public struct RateLimit: Hashable, Sendable, CustomStringConvertible {
    public var burst: Int
    public var perSecond: Double

    public init(burst: Int, perSecond: Double) {
        self.burst = burst
        self.perSecond = perSecond
    }

    /// Seconds between two requests at the sustained rate.
    var interval: Double { 1 / perSecond }
    /// How far ahead of now a key's theoretical arrival time may run before it is refused.
    var tolerance: Double { interval * Double(max(burst, 1) - 1) }

    public var description: String { "\(burst) at once, \(perSecond)/s sustained" }
}

/// The outcome of asking a limiter.
public enum Admission: Hashable, Sendable {
    case allowed
    /// Refused; whole seconds until a request of this key would be allowed (at least 1).
    case limited(retryAfter: Int)
}

/// Rate limiting per key by GCRA (the generic cell rate algorithm, a token bucket kept as one number per key: the
/// theoretical arrival time of its next request). A pure value: the caller gives the time (seconds on a monotonic clock).
///
/// Memory is bounded: at most `capacity` keys. A key whose arrival time is in the past is idle (its bucket is full again)
/// and carries no information, so it is dropped first; when every key is busy, the tenth closest to idle is dropped to
/// make room (an attacker holding `capacity` sources at once frees some of them, it does not lock out newcomers). Room
/// is made in batches, so a flood of new keys costs O(log capacity) per request amortized, not a scan each.
public struct RateLimiterState<Key: Hashable & Sendable>: Sendable {
    public let limit: RateLimit
    public let capacity: Int
    /// Theoretical arrival time of each busy key's next request.
    public private(set) var arrivals: [Key: Double] = [:]

    public init(limit: RateLimit, capacity: Int) {
        precondition(limit.burst >= 1 && limit.perSecond > 0 && capacity >= 1, "rate limit and capacity must be positive")
        self.limit = limit
        self.capacity = capacity
    }

    /// Counts one request of `key` at `now`, or refuses it.
    public mutating func admit(_ key: Key, now: Double) -> Admission {
        let arrival = max(arrivals[key] ?? now, now)
        let earliest = arrival - limit.tolerance
        if earliest > now {
            return .limited(retryAfter: max(1, Int((earliest - now).rounded(.up))))
        }
        if arrivals[key] == nil && arrivals.count >= capacity { makeRoom(now: now) }
        arrivals[key] = arrival + limit.interval
        return .allowed
    }

    /// Drops idle keys; when that frees less than a tenth of the capacity, the busy keys closest to idle as well, so
    /// that a tenth of the capacity is free.
    mutating func makeRoom(now: Double) {
        arrivals = arrivals.filter { $0.value > now }
        let target = capacity - max(1, capacity / 10)
        if arrivals.count > target {
            for (key, _) in arrivals.sorted(by: { $0.value < $1.value }).prefix(arrivals.count - target) {
                arrivals.removeValue(forKey: key)
            }
        }
    }
}

/// A `RateLimiterState` shared by the requests of one process.
public final class RateLimiter<Key: Hashable & Sendable>: Sendable {
    private let state: Mutex<RateLimiterState<Key>>
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    public init(limit: RateLimit, capacity: Int) {
        state = Mutex(RateLimiterState(limit: limit, capacity: capacity))
        start = clock.now
    }

    public func admit(_ key: Key) -> Admission {
        let elapsed = clock.now - start
        let now = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return state.withLock { $0.admit(key, now: now) }
    }

    public var trackedKeys: Int { state.withLock { $0.arrivals.count } }
}

/// The per-source limiter's key for a peer address: an IPv4 address as is, an IPv6 address by its /64 (one host
/// commonly holds a whole /64, and would otherwise get a fresh burst per address); an IPv4-mapped IPv6 address as IPv4.
/// Text that is not an address is used as is.
public func enrollmentSourceKey(_ address: String) -> String {
    guard let ip = try? IPAddress(parsing: address) else { return address }
    if ip.isV6 && ip.high == 0 && ip.low >> 32 == 0xFFFF { return IPAddress(v4: UInt32(truncatingIfNeeded: ip.low)).description }
    return ip.isV6 ? Prefix(ip, length: 64).description : ip.description
}

/// What the controller admits: enrollment rates and tenants' quotas (`routeplane serve --enroll-… / --quota-…`).
public struct AdmissionSettings: Sendable, Equatable {
    /// Enrollments per setup key (the presented secret, before it is looked up).
    public var enrollPerSetupKey: RateLimit
    /// Enrollments per source address (the TCP peer: behind a proxy, the proxy).
    public var enrollPerSource: RateLimit
    /// Most keys each enrollment limiter remembers.
    public var trackedKeys: Int
    public var quotas: TenantQuotas

    public init(enrollPerSetupKey: RateLimit = RateLimit(burst: 20, perSecond: 2), enrollPerSource: RateLimit = RateLimit(burst: 40, perSecond: 5),
                trackedKeys: Int = 10_000, quotas: TenantQuotas = .defaults) {
        self.enrollPerSetupKey = enrollPerSetupKey
        self.enrollPerSource = enrollPerSource
        self.trackedKeys = trackedKeys
        self.quotas = quotas
    }
}

/// The enrollment limiters of one controller process.
public struct EnrollmentThrottle: Sendable {
    public let perSetupKey: RateLimiter<Int>
    public let perSource: RateLimiter<String>

    public init(_ settings: AdmissionSettings) {
        perSetupKey = RateLimiter(limit: settings.enrollPerSetupKey, capacity: settings.trackedKeys)
        perSource = RateLimiter(limit: settings.enrollPerSource, capacity: settings.trackedKeys)
    }
}
