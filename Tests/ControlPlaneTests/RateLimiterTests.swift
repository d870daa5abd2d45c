@testable import ControlPlane
import Testing

/// The enrollment limiter as a pure value: the caller gives the time.
@Suite struct RateLimiterTests {
    @Test("a burst is allowed at once, the next is refused with the whole seconds until it would pass, and the rate refills")
    func burstThenRate() {
        var limiter = RateLimiterState<String>(limit: RateLimit(burst: 3, perSecond: 0.5), capacity: 10)
        for _ in 0..<3 { #expect(limiter.admit("a", now: 100) == .allowed) }
        #expect(limiter.admit("a", now: 100) == .limited(retryAfter: 2))
        #expect(limiter.admit("a", now: 101.5) == .limited(retryAfter: 1))
        // Refused requests do not count: at 102 one more passes, then the key is refused again.
        #expect(limiter.admit("a", now: 102) == .allowed)
        #expect(limiter.admit("a", now: 102) == .limited(retryAfter: 2))
        // Other keys are independent.
        #expect(limiter.admit("b", now: 102) == .allowed)
        // After a long pause the whole burst is back, no more.
        for _ in 0..<3 { #expect(limiter.admit("a", now: 1_000) == .allowed) }
        #expect(limiter.admit("a", now: 1_000) != .allowed)
    }

    @Test("a burst of 1 allows one request per interval")
    func burstOfOne() {
        var limiter = RateLimiterState<Int>(limit: RateLimit(burst: 1, perSecond: 10), capacity: 10)
        #expect(limiter.admit(1, now: 0) == .allowed)
        #expect(limiter.admit(1, now: 0.05) == .limited(retryAfter: 1))
        #expect(limiter.admit(1, now: 0.1) == .allowed)
    }

    @Test("memory is bounded: idle keys are dropped first, then the one closest to idle; a busy key keeps its count")
    func bounded() {
        var limiter = RateLimiterState<Int>(limit: RateLimit(burst: 2, perSecond: 1), capacity: 100)
        for key in 0..<100 { #expect(limiter.admit(key, now: 0) == .allowed) }
        #expect(limiter.arrivals.count == 100)
        // Key 7 is used up (two requests).
        #expect(limiter.admit(7, now: 0) == .allowed)
        #expect(limiter.admit(7, now: 0) == .limited(retryAfter: 1))
        // Thousands of new keys never hold more than the capacity.
        for key in 1_000..<5_000 {
            #expect(limiter.admit(key, now: 0.5) == .allowed)
            #expect(limiter.arrivals.count <= 100)
        }
        // At 10 s every one of them is idle: when the limiter is full again, they are all dropped, not just a tenth.
        let room = 100 - limiter.arrivals.count
        for key in 0..<room { #expect(limiter.admit(-1 - key, now: 10) == .allowed) }
        #expect(limiter.arrivals.count == 100)
        #expect(limiter.admit(-10_000, now: 10) == .allowed)
        #expect(limiter.arrivals.count == room + 1)
        // The busy key survives eviction of idler ones: fill, then key 7's debt remains (capacity 3: one is freed at a time).
        var small = RateLimiterState<Int>(limit: RateLimit(burst: 2, perSecond: 1), capacity: 3)
        _ = small.admit(7, now: 0)
        _ = small.admit(7, now: 0)
        _ = small.admit(1, now: 0)
        _ = small.admit(2, now: 0)
        _ = small.admit(3, now: 0)
        #expect(small.arrivals.count == 3 && small.arrivals[7] != nil)
        #expect(small.admit(7, now: 0) == .limited(retryAfter: 1))
    }

    @Test("a flood of new busy keys frees a tenth of the capacity at a time, the keys closest to idle")
    func batchEviction() {
        var limiter = RateLimiterState<Int>(limit: RateLimit(burst: 1, perSecond: 0.001), capacity: 100)
        for key in 0..<100 { #expect(limiter.admit(key, now: Double(key)) == .allowed) }
        #expect(limiter.admit(100, now: 100) == .allowed)
        // Keys 0…9 (the earliest, so the closest to idle) made room; 90 old ones and the new one remain.
        #expect(limiter.arrivals.count == 91 && (0..<10).allSatisfy { limiter.arrivals[$0] == nil } && limiter.arrivals[10] != nil)
        for key in 101..<110 { _ = limiter.admit(key, now: 100) }
        #expect(limiter.arrivals.count == 100)
    }

    @Test("sources: IPv4 as is, IPv6 by its /64, IPv4-mapped IPv6 as IPv4")
    func sourceKeys() {
        #expect(enrollmentSourceKey("192.0.2.7") == "192.0.2.7")
        #expect(enrollmentSourceKey("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64")
        #expect(enrollmentSourceKey("2001:db8:1:2:bbbb::9") == enrollmentSourceKey("2001:db8:1:2:aaaa::1"))
        #expect(enrollmentSourceKey("2001:db8:1:3::1") != enrollmentSourceKey("2001:db8:1:2::1"))
        #expect(enrollmentSourceKey("::ffff:192.0.2.7") == "192.0.2.7")
        #expect(enrollmentSourceKey("not an address") == "not an address")
    }

    @Test("the shared limiter counts per key")
    func shared() {
        let limiter = RateLimiter<String>(limit: RateLimit(burst: 2, perSecond: 0.001), capacity: 4)
        #expect(limiter.admit("x") == .allowed && limiter.admit("x") == .allowed)
        guard case .limited(let retry) = limiter.admit("x") else { Issue.record("not limited"); return }
        #expect(retry >= 999)
        #expect(limiter.admit("y") == .allowed && limiter.trackedKeys == 2)
    }
}
