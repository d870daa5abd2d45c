@testable import PostgresClient
import Testing

@Suite("Connection pool state machine (no I/O)")
struct PoolStateMachineTests {
    typealias A = PoolStateMachine.Action
    let w0 = WaiterID(raw: 0), w1 = WaiterID(raw: 1), w2 = WaiterID(raw: 2)
    let c0 = ConnectionID(raw: 0), c1 = ConnectionID(raw: 1)

    func machine(max: Int = 2) -> PoolStateMachine {
        PoolStateMachine(configuration: .init(maxConnections: max, minBackoff: .milliseconds(100), maxBackoff: .seconds(2)))
    }

    @Test func firstLeaseOpensAConnectionThenHandsItOut() {
        var m = machine()
        #expect(m.leaseRequested(w0) == [.connect(c0)])
        #expect(m.connected(c0) == [.lease(c0, to: w0)])
        #expect(m.released(c0, broken: false) == [])
        #expect(m.idleConnectionCount == 1)
        // The idle connection is reused, nothing new is opened.
        #expect(m.leaseRequested(w1) == [.lease(c0, to: w1)])
    }

    @Test func leaseIdleTakesAnIdleConnectionWithoutQueueing() {
        var m = machine(max: 1)
        #expect(m.leaseIdle() == nil)                 // nothing open: the caller must ask with leaseRequested
        #expect(m.waiterCount == 0)
        #expect(m.leaseRequested(w0) == [.connect(c0)])
        #expect(m.connected(c0) == [.lease(c0, to: w0)])
        #expect(m.leaseIdle() == nil)                 // leased, not idle
        #expect(m.released(c0, broken: false) == [])
        #expect(m.leaseIdle() == c0)
        #expect(m.idleConnectionCount == 0)
        #expect(m.leaseRequested(w1) == [])           // queued behind the lease, as with leaseRequested
        #expect(m.released(c0, broken: false) == [.lease(c0, to: w1)])
        #expect(m.released(c0, broken: false) == [])
        _ = m.shutdown()
        #expect(m.leaseIdle() == nil)
    }

    @Test func neverOpensMoreThanMaxAndQueuesWaitersFIFO() {
        var m = machine(max: 1)
        #expect(m.leaseRequested(w0) == [.connect(c0)])
        #expect(m.leaseRequested(w1) == [])
        #expect(m.leaseRequested(w2) == [])
        #expect(m.connected(c0) == [.lease(c0, to: w0)])
        #expect(m.released(c0, broken: false) == [.lease(c0, to: w1)])
        #expect(m.released(c0, broken: false) == [.lease(c0, to: w2)])
        #expect(m.waiterCount == 0)
    }

    @Test func failedConnectBacksOffAndFailsWaitersWhenNothingIsOpen() {
        var m = machine()
        #expect(m.leaseRequested(w0) == [.connect(c0)])
        #expect(m.connectFailed(c0, reason: "refused")
                == [.log(.databaseDown(reason: "refused")), .scheduleRetry(after: .milliseconds(100), timer: 0), .fail([w0], reason: "refused")])
        // While backing off with nothing open, callers fail fast instead of queueing.
        #expect(m.leaseRequested(w1) == [.fail([w1], reason: "refused")])
        #expect(m.retryTimerFired(0) == [])
        // After the timer a new request probes the database again; a second failure doubles the delay
        // (and is not logged again: the database is still down).
        #expect(m.leaseRequested(w2) == [.connect(c1)])
        #expect(m.connectFailed(c1, reason: "refused") == [.scheduleRetry(after: .milliseconds(200), timer: 1), .fail([w2], reason: "refused")])
        #expect(m.consecutiveFailures == 2)
    }

    @Test func retryTimerOpensOneConnectionForQueuedWaiters() {
        var m = machine(max: 2)
        _ = m.leaseRequested(w0); _ = m.leaseRequested(w1)   // c0, c1
        _ = m.connected(c1)                                   // c1 leased to w0
        _ = m.connectFailed(c0, reason: "refused")            // backing off, w1 queued behind the leased c1
        #expect(m.waiterCount == 1)
        #expect(m.retryTimerFired(0) == [.connect(ConnectionID(raw: 2))])
    }

    // MARK: Defects of the flag-based machine

    /// A connection that opens while backing off ends the back-off: the waiters still queued get
    /// connections now instead of waiting for the (up to maxBackoff) retry timer.
    @Test func connectedDuringBackOffOpensForTheRemainingWaiters() {
        var m = machine(max: 3)
        let w3 = WaiterID(raw: 3), c2 = ConnectionID(raw: 2), c3 = ConnectionID(raw: 3), c4 = ConnectionID(raw: 4)
        #expect(m.leaseRequested(w0) == [.connect(c0)])
        #expect(m.leaseRequested(w1) == [.connect(c1)])
        #expect(m.leaseRequested(w2) == [.connect(c2)])
        _ = m.connectFailed(c0, reason: "refused")
        _ = m.connectFailed(c2, reason: "refused")
        #expect(m.leaseRequested(w3) == [])                   // backing off: queued, nothing opened
        #expect(m.connected(c1) == [.log(.databaseUp), .lease(c1, to: w0), .connect(c3), .connect(c4)])
        #expect(m.consecutiveFailures == 0)
        // The old timer firing afterwards changes nothing.
        #expect(m.retryTimerFired(0) == [])
        #expect(m.connected(c3) == [.lease(c3, to: w1)])
        #expect(m.connected(c4) == [.lease(c4, to: w2)])
        #expect(m.released(c1, broken: false) == [.lease(c1, to: w3)])
    }

    /// A retry timer made out of date (the database came back, then failed again and a new timer was
    /// scheduled) must not end the newer back-off early.
    @Test func anOutOfDateTimerDoesNotEndANewerBackOff() {
        var m = machine()
        let c2 = ConnectionID(raw: 2)
        _ = m.leaseRequested(w0); _ = m.leaseRequested(w1)
        #expect(m.connectFailed(c0, reason: "refused").contains(.scheduleRetry(after: .milliseconds(100), timer: 0)))
        #expect(m.connected(c1) == [.log(.databaseUp), .lease(c1, to: w0), .connect(c2)])
        #expect(m.released(c1, broken: true) == [.close(c1)])    // server restarted; c2 already opening for w1
        #expect(m.connectFailed(c2, reason: "refused again")
                == [.log(.databaseDown(reason: "refused again")), .scheduleRetry(after: .milliseconds(100), timer: 1),
                    .fail([w1], reason: "refused again")])
        #expect(m.retryTimerFired(0) == [])                       // the first timer: out of date
        #expect(m.leaseRequested(w2) == [.fail([w2], reason: "refused again")])
        #expect(m.retryTimerFired(1) == [])                       // the current one: nobody waits, nothing to open
        #expect(m.leaseRequested(w2) == [.connect(ConnectionID(raw: 3))])
        #expect(m.retryTimerFired(1) == [])                       // fired already
    }

    /// Each connection's state is kept once: whatever the order of events, a connection is never handed
    /// out while leased, and the idle count is the number of connections neither leased nor opening.
    @Test func aConnectionIsNeverHandedOutTwice() {
        var rng = SeededGenerator(seed: 22)
        for _ in 0..<200 {
            var m = machine(max: 3)
            var leased: Set<ConnectionID> = [], opening: Set<ConnectionID> = [], waiting: Set<WaiterID> = []
            var nextWaiter = 0, timers: [Int] = []
            func apply(_ actions: [A]) {
                for action in actions {
                    switch action {
                    case let .connect(id): #expect(opening.insert(id).inserted)
                    case let .lease(id, waiter):
                        #expect(leased.insert(id).inserted, "\(id) handed out while leased")
                        #expect(waiting.remove(waiter) != nil)
                    case .close: break
                    case let .fail(ws, _): for w in ws { waiting.remove(w) }
                    case let .scheduleRetry(_, timer): timers.append(timer)
                    case .log, .scheduleLeaseDeadline: break
                    case let .timeOut(w, _): #expect(waiting.remove(w) != nil, "\(w) timed out while not waiting")
                    }
                }
            }
            for _ in 0..<60 {
                switch Int.random(in: 0..<8, using: &rng) {
                case 0, 1:
                    let w = WaiterID(raw: nextWaiter); nextWaiter += 1
                    waiting.insert(w)
                    apply(m.leaseRequested(w, deadline: Bool.random(using: &rng) ? .seconds(1) : nil))
                case 2:
                    if let id = m.leaseIdle() { #expect(leased.insert(id).inserted, "\(id) handed out while leased") }
                case 3:
                    if let id = opening.randomElement(using: &rng) {
                        opening.remove(id)
                        apply(Bool.random(using: &rng) ? m.connected(id) : m.connectFailed(id, reason: "refused"))
                    }
                case 4, 5:
                    if let id = leased.randomElement(using: &rng) {
                        leased.remove(id)
                        apply(m.released(id, broken: Int.random(in: 0..<4, using: &rng) == 0))
                    }
                case 6:
                    if let timer = timers.randomElement(using: &rng) { apply(m.retryTimerFired(timer)) }
                default:
                    if let w = waiting.randomElement(using: &rng) {
                        apply(Bool.random(using: &rng) ? m.waiterCancelled(w) : m.leaseDeadlinePassed(w))
                    }
                }
                #expect(m.openConnectionCount == m.idleConnectionCount + leased.count)
                #expect(m.openConnectionCount + opening.count <= 3)
                #expect(m.waiterCount == waiting.count)
            }
        }
    }

    @Test func theMostRecentlyReturnedIdleConnectionIsLeasedFirst() {
        var m = machine(max: 2)
        _ = m.leaseRequested(w0); _ = m.leaseRequested(w1)
        _ = m.connected(c0); _ = m.connected(c1)
        _ = m.released(c1, broken: false)
        _ = m.released(c0, broken: false)
        #expect(m.leaseIdle() == c0)
        #expect(m.leaseIdle() == c1)
        _ = m.released(c0, broken: false)
        _ = m.released(c1, broken: false)
        #expect(m.leaseRequested(w2) == [.lease(c1, to: w2)])
    }

    /// The database going down and coming back is said once each, by the machine (the shell keeps no flag).
    @Test func downAndUpAreLoggedOncePerChange() {
        var m = machine(max: 1)
        _ = m.leaseRequested(w0)
        #expect(m.connectFailed(c0, reason: "refused").first == .log(.databaseDown(reason: "refused")))
        _ = m.retryTimerFired(0)
        _ = m.leaseRequested(w1)
        #expect(m.connectFailed(c1, reason: "refused").contains { if case .log = $0 { true } else { false } } == false)
        _ = m.retryTimerFired(1)
        _ = m.leaseRequested(w2)
        #expect(m.connected(ConnectionID(raw: 2)) == [.log(.databaseUp), .lease(ConnectionID(raw: 2), to: w2)])
        _ = m.released(ConnectionID(raw: 2), broken: false)
        let w3 = WaiterID(raw: 3)
        #expect(m.leaseRequested(w3) == [.lease(ConnectionID(raw: 2), to: w3)])
        #expect(m.released(ConnectionID(raw: 2), broken: true) == [.close(ConnectionID(raw: 2))])
        // Shutting down: a connection attempt failing then is not the database going down.
        let w4 = WaiterID(raw: 4)
        #expect(m.leaseRequested(w4) == [.connect(ConnectionID(raw: 3))])
        _ = m.shutdown()
        #expect(m.connectFailed(ConnectionID(raw: 3), reason: "refused") == [])
        #expect(m.retryTimerFired(1) == [])
    }

    @Test func backoffIsCapped() {
        let m = machine()
        #expect(m.backoff(afterFailures: 1) == .milliseconds(100))
        #expect(m.backoff(afterFailures: 3) == .milliseconds(400))
        #expect(m.backoff(afterFailures: 50) == .seconds(2))
    }

    @Test func brokenConnectionIsClosedWithTheIdleOnesAndReplacedForWaiters() {
        var m = machine(max: 2)
        _ = m.leaseRequested(w0); _ = m.leaseRequested(w1)
        _ = m.connected(c0); _ = m.connected(c1)
        #expect(m.released(c1, broken: false) == [])       // c1 idle
        _ = m.leaseRequested(w2)                              // takes c1
        _ = m.released(c1, broken: false)                     // c1 idle again
        let w3 = WaiterID(raw: 3)
        #expect(m.leaseRequested(w3) == [.lease(c1, to: w3)])
        _ = m.released(c1, broken: false)
        // c0 breaks: it and the idle c1 are closed (the server probably restarted).
        #expect(m.released(c0, broken: true) == [.close(c0), .close(c1)])
        #expect(m.openConnectionCount == 0)
        let w4 = WaiterID(raw: 4)
        #expect(m.leaseRequested(w4) == [.connect(ConnectionID(raw: 2))])
    }

    @Test func cancelledWaiterIsRemovedAndFailed() {
        var m = machine(max: 1)
        _ = m.leaseRequested(w0)
        _ = m.leaseRequested(w1)
        #expect(m.waiterCancelled(w1) == [.fail([w1], reason: "cancelled while waiting for a connection")])
        #expect(m.waiterCancelled(w1) == [])
        #expect(m.connected(c0) == [.lease(c0, to: w0)])
        #expect(m.released(c0, broken: false) == [])
    }

    @Test func shutdownClosesIdleFailsWaitersAndClosesLeasedOnReturn() {
        var m = machine(max: 1)
        _ = m.leaseRequested(w0)
        _ = m.connected(c0)
        _ = m.leaseRequested(w1)
        #expect(m.shutdown() == [.fail([w1], reason: "pool is shutting down")])
        #expect(m.released(c0, broken: false) == [.close(c0)])
        #expect(m.leaseRequested(w2) == [.fail([w2], reason: "pool is shutting down")])
    }
}

@Suite("PostgreSQL array literal")
struct PostgresArrayTests {
    @Test func escapesQuotesAndBackslashesAndKeepsUnicode() {
        #expect(PostgresArray.literal([]) == "{}")
        #expect(PostgresArray.literal(["a"]) == #"{"a"}"#)
        #expect(PostgresArray.literal(["a\"b", "c\\d", "Zürich 東京 🛰️", ""]) == #"{"a\"b","c\\d","Zürich 東京 🛰️",""}"#)
        #expect(PostgresArray.literal(["a", #"b"c"#, #"d\e"#, "{x,y}", "NULL"]) == #"{"a","b\"c","d\\e","{x,y}","NULL"}"#)
    }
}

/// xorshift64*: a reproducible sequence for the randomised test.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 1 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}
