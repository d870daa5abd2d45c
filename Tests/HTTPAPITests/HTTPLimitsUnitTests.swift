@testable import HTTPAPI
import Testing

/// The pure parts of the HTTP limits: a connection's request deadlines and the negative token cache.
@Suite("HTTP limits: request deadlines and the negative token cache, without I/O")
struct HTTPLimitsUnitTests {
    let t0 = ContinuousClock.now

    @Test("the head's clock starts at its first byte; trickled bytes do not extend it; its end starts the body's")
    func headThenBody() {
        var d = RequestDeadlines(headTimeout: .seconds(10), bodyTimeout: .seconds(30))
        #expect(d.state == .betweenRequests)
        #expect(d.bytesRead(now: t0) == .schedule(t0 + .seconds(10)))
        #expect(d.bytesRead(now: t0 + .seconds(5)) == RequestDeadlines.Action.none, "a later byte must not move the deadline")
        #expect(d.timerFired(now: t0 + .seconds(9)) == .schedule(t0 + .seconds(10)), "an early timer is set again")
        #expect(d.headRead(now: t0 + .seconds(9)) == .schedule(t0 + .seconds(39)))
        #expect(d.bytesRead(now: t0 + .seconds(20)) == RequestDeadlines.Action.none)
        #expect(d.endRead() == .cancelTimer)
        #expect(d.state == .betweenRequests)
        #expect(d.timerFired(now: t0 + .seconds(100)) == RequestDeadlines.Action.none, "between requests the idle timeout rules")
        #expect(d.bytesRead(now: t0 + .seconds(100)) == .schedule(t0 + .seconds(110)), "the next request gets its own clock")
    }

    @Test("a head or body not complete by its deadline closes the connection, once")
    func timeouts() {
        var head = RequestDeadlines(headTimeout: .seconds(10), bodyTimeout: .seconds(30))
        _ = head.bytesRead(now: t0)
        #expect(head.timerFired(now: t0 + .seconds(10)) == .close(.head))
        #expect(head.state == .closed)
        #expect(head.timerFired(now: t0 + .seconds(11)) == RequestDeadlines.Action.none)
        #expect(head.headRead(now: t0 + .seconds(11)) == RequestDeadlines.Action.none, "nothing restarts a closed connection")

        var body = RequestDeadlines(headTimeout: .seconds(10), bodyTimeout: .seconds(30))
        _ = body.bytesRead(now: t0)
        _ = body.headRead(now: t0 + .seconds(1))
        #expect(body.timerFired(now: t0 + .seconds(30)) == .schedule(t0 + .seconds(31)))
        #expect(body.timerFired(now: t0 + .seconds(31)) == .close(.body))
    }

    @Test("pipelined requests: a head decoded with no byte counted since the last end still gets the body's clock")
    func pipelined() {
        var d = RequestDeadlines(headTimeout: .seconds(10), bodyTimeout: .seconds(30))
        _ = d.bytesRead(now: t0)
        _ = d.headRead(now: t0)
        _ = d.endRead()
        #expect(d.headRead(now: t0) == .schedule(t0 + .seconds(30)))
        #expect(d.connectionClosed() == .cancelTimer)
        #expect(d.timerFired(now: t0 + .seconds(60)) == RequestDeadlines.Action.none)
    }

    @Test("negative cache: an unknown token is remembered for its TTL, by hash")
    func negativeTTL() {
        var cache = NegativeTokenCache(ttl: .seconds(10), capacity: 100)
        let key = NegativeTokenCache.key(secret: "rpt_secret", kind: "api_token")
        #expect(!key.contains("rpt_secret") && key.count == 64)
        #expect(key != NegativeTokenCache.key(secret: "rpt_secret", kind: "peer"), "kinds are apart")
        #expect(!cache.contains(key, now: t0))
        cache.insert(key, now: t0)
        #expect(cache.contains(key, now: t0 + .seconds(9)))
        #expect(!cache.contains(key, now: t0 + .seconds(10)), "forgotten after its TTL")
        cache.insert(key, now: t0 + .seconds(20))
        #expect(cache.contains(key, now: t0 + .seconds(29)))
    }

    @Test("negative cache: bounded; the oldest are forgotten first, expired ones before any live one")
    func negativeBound() {
        var cache = NegativeTokenCache(ttl: .seconds(10), capacity: 3)
        let keys = (0..<6).map { NegativeTokenCache.key(secret: "t\($0)", kind: "api_token") }
        for i in 0..<3 { cache.insert(keys[i], now: t0 + .seconds(i)) }
        #expect(cache.count == 3)
        cache.insert(keys[3], now: t0 + .seconds(3))
        #expect(cache.count == 3)
        #expect(!cache.contains(keys[0], now: t0 + .seconds(3)), "the oldest went")
        #expect(cache.contains(keys[1], now: t0 + .seconds(3)) && cache.contains(keys[3], now: t0 + .seconds(3)))
        // Re-remembering a key moves it to the back: the next eviction takes the one after it.
        cache.insert(keys[1], now: t0 + .seconds(4))
        cache.insert(keys[4], now: t0 + .seconds(4))
        #expect(cache.contains(keys[1], now: t0 + .seconds(4)) && !cache.contains(keys[2], now: t0 + .seconds(4)))
        #expect(cache.count == 3)
        // Later, every entry has expired: inserting forgets them all rather than only the oldest.
        cache.insert(keys[5], now: t0 + .seconds(30))
        #expect(cache.count == 1 && cache.contains(keys[5], now: t0 + .seconds(30)))
        // Many insertions stay within the bound.
        for i in 0..<5_000 { cache.insert(NegativeTokenCache.key(secret: "x\(i)", kind: "api_token"), now: t0 + .seconds(31)) }
        #expect(cache.count == 3)
    }
}
