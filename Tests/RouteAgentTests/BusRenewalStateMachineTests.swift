@testable import RouteAgent
import Testing

/// When the agent renews its NATS user JWT and how long it backs off, decided without I/O.
@Suite("Bus credential renewal state machine")
struct BusRenewalStateMachineTests {
    typealias Machine = BusRenewalStateMachine
    let refusal = "the controller answered 403: peer deleted"
    let down = "connection refused"

    /// A JWT issued at 1000 for `life` seconds, received at `receivedAt`.
    func jwt(life: Int64 = 100, receivedAt: Int64 = 1_000) -> BusJWT {
        BusJWT(text: "jwt", claims: .init(issuedAt: 1_000, expires: 1_000 + life), now: receivedAt, fresh: true)
    }

    @Test("a JWT is renewed at half of its life, measured from when it was received; before that the loop waits")
    func halfLife() {
        var m = Machine()
        let r1 = m.next(jwt: jwt(receivedAt: 1_010), now: 1_020)
        #expect(r1 == .wait(.seconds(40)))
        let r2 = m.next(jwt: jwt(receivedAt: 1_010), now: 1_059)
        #expect(r2 == .wait(.seconds(1)))
        let r3 = m.next(jwt: jwt(receivedAt: 1_010), now: 1_060)
        #expect(r3 == .renew)
        // After a renewal the pause runs to half of the new JWT's life.
        m.renewed()
        #expect(Machine.pause(jwt: jwt(receivedAt: 2_000), now: 2_000) == .seconds(50))
        #expect(Machine.pause(jwt: jwt(life: 100_000, receivedAt: 2_000), now: 2_000) == .seconds(3_600))
    }

    @Test("no JWT, one that does not decode, or one without expiry: renew at once")
    func noUsableJWT() {
        var m = Machine()
        let r4 = m.next(jwt: nil, now: 1_000)
        #expect(r4 == .renew)
        let r5 = m.next(jwt: BusJWT(text: "x", claims: nil, now: 1_000, fresh: false), now: 1_000)
        #expect(r5 == .renew)
        let r6 = m.next(jwt: BusJWT(text: "x", claims: .init(issuedAt: 900, expires: nil), now: 1_000, fresh: false), now: 1_000)
        #expect(r6 == .renew)
    }

    @Test("a JWT loaded from disk is timed from its issue time, not from a clock running behind it")
    func loadedFromDisk() {
        #expect(BusJWT(text: "x", claims: .init(issuedAt: 900, expires: 1_000), now: 1_000, fresh: false).receivedAt == 900)
        #expect(BusJWT(text: "x", claims: .init(issuedAt: 1_100, expires: 1_200), now: 1_000, fresh: false).receivedAt == 1_000)
        #expect(BusJWT(text: "x", claims: .init(issuedAt: 900, expires: 1_000), now: 1_000, fresh: true).receivedAt == 1_000)
    }

    @Test("a request renews at once, even with a young JWT, and is taken by that renewal")
    func request() {
        var m = Machine()
        let r7 = m.requestRenewal()
        #expect(r7)
        #expect(m.renewRequested)
        let r8 = m.next(jwt: jwt(), now: 1_001)
        #expect(r8 == .renew)
        #expect(m.renewal == .scheduled)
        m.renewed()
        let r9 = m.next(jwt: jwt(), now: 1_001)
        #expect(r9 == .wait(.seconds(49)))
    }

    @Test("a request during a renewal call stays pending after it")
    func requestDuringCall() {
        var m = Machine()
        let r10 = m.next(jwt: nil, now: 1_000)
        #expect(r10 == .renew)
        let r11 = m.requestRenewal()
        #expect(r11)
        m.renewed()
        #expect(m.renewal == .requested(after: nil))
        let r12 = m.next(jwt: jwt(), now: 1_001)
        #expect(r12 == .renew)
    }

    @Test("an unreachable controller: retries after 2, 4, 8 … at most 60 s, a warning only when the error changes")
    func backOff() {
        var m = Machine()
        _ = m.next(jwt: nil, now: 1_000)
        var waits: [Duration] = []
        var logs: [Machine.Log?] = []
        for _ in 0..<7 {
            let action = m.failed(down, now: 1_000)
            waits.append(action.wait)
            logs.append(action.log)
        }
        #expect(waits == [2, 4, 8, 16, 32, 60, 60].map { .seconds($0) })
        #expect(logs == [.failing, nil, nil, nil, nil, nil, nil])
        let r13 = m.failed("timed out", now: 1_000)
        #expect(r13 == .init(log: .failing, wait: .seconds(60)))
        // A success resets the back-off.
        m.renewed()
        #expect(m.renewal == .scheduled)
        let r14 = m.failed(down, now: 1_000)
        #expect(r14 == .init(log: .failing, wait: .seconds(2)))
    }

    @Test("a request while failing renews at once and keeps the back-off")
    func requestWhileFailing() {
        var m = Machine()
        _ = m.failed(down, now: 1_000)
        let r15 = m.requestRenewal()
        #expect(r15)
        let r16 = m.next(jwt: jwt(), now: 1_001)
        #expect(r16 == .renew)
        let r17 = m.failed(down, now: 1_001)
        #expect(r17 == .init(log: nil, wait: .seconds(4)))
    }

    @Test("a refusal (401/403) is logged once and retried every 5 minutes")
    func refusalIsLoggedOnce() {
        var m = Machine()
        let r18 = m.failed(refusal, now: 1_000)
        #expect(r18 == .init(log: .refused, wait: .seconds(300)))
        #expect(m.refused)
        let r19 = m.failed("the controller answered 401", now: 1_300)
        #expect(r19 == .init(log: nil, wait: .seconds(300)))
        #expect(m.renewal == .refused(since: 1_000))
        // The controller unreachable after refusing: a warning, then the usual back-off from 60 s.
        let r20 = m.failed(down, now: 1_600)
        #expect(r20 == .init(log: .failing, wait: .seconds(300)))
        #expect(!m.refused)
        let r21 = m.failed(down, now: 1_900)
        #expect(r21 == .init(log: nil, wait: .seconds(60)))
        // Refused again after failing: logged again.
        let r22 = m.failed(refusal, now: 2_000)
        #expect(r22.log == .refused)
        m.renewed()
        #expect(!m.refused)
    }

    @Test("a request to renew at once is ignored while refused (it used to cut the 5-minute back-off short)")
    func requestWhileRefused() {
        var m = Machine()
        _ = m.failed(refusal, now: 1_000)
        let r23 = m.requestRenewal()
        #expect(!r23, "the renewal loop is not woken")
        #expect(!m.renewRequested)
        #expect(m.renewal == .refused(since: 1_000))
        // The refused state does not renew by itself before the JWT's half-life; past it, it does.
        let r24 = m.next(jwt: jwt(), now: 1_010)
        #expect(r24 == .wait(.seconds(40)))
        let r25 = m.next(jwt: jwt(), now: 1_300)
        #expect(r25 == .renew)
    }

    @Test("a refusal drops a request that came during the call")
    func refusalDropsRequest() {
        var m = Machine()
        _ = m.next(jwt: nil, now: 1_000)
        let r26 = m.requestRenewal()
        #expect(r26)
        let r27 = m.failed(refusal, now: 1_000)
        #expect(r27.wait == .seconds(300))
        #expect(!m.renewRequested)
    }
}
