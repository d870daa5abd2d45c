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
        #expect(m.connectFailed(c0, reason: "refused") == [.scheduleRetry(after: .milliseconds(100)), .fail([w0], reason: "refused")])
        // While backing off with nothing open, callers fail fast instead of queueing.
        #expect(m.leaseRequested(w1) == [.fail([w1], reason: "refused")])
        #expect(m.retryTimerFired() == [])
        // After the timer a new request probes the database again; a second failure doubles the delay.
        #expect(m.leaseRequested(w2) == [.connect(c1)])
        #expect(m.connectFailed(c1, reason: "refused") == [.scheduleRetry(after: .milliseconds(200)), .fail([w2], reason: "refused")])
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
