@testable import PostgresClient
import Testing

@Suite("Connection pool lease deadline (state machine, no I/O)")
struct PoolLeaseDeadlineTests {
    let w0 = WaiterID(raw: 0), w1 = WaiterID(raw: 1), w2 = WaiterID(raw: 2)
    let c0 = ConnectionID(raw: 0)

    func busyPool() -> PoolStateMachine {
        var m = PoolStateMachine(configuration: .init(maxConnections: 1))
        _ = m.leaseRequested(w0)
        _ = m.connected(c0)                     // w0 holds the only connection
        return m
    }

    @Test func aQueuedWaiterWithADeadlineGetsATimerAndTimesOutWhenItPasses() {
        var m = busyPool()
        #expect(m.leaseRequested(w1, deadline: .milliseconds(500)) == [.scheduleLeaseDeadline(w1, after: .milliseconds(500))])
        #expect(m.waiterCount == 1)
        #expect(m.leaseDeadlinePassed(w1) == [.timeOut(w1, waited: .milliseconds(500))])
        #expect(m.waiterCount == 0)
        // The connection coming back later goes idle: the timed-out waiter is not served.
        #expect(m.released(c0, broken: false) == [])
        #expect(m.idleConnectionCount == 1)
    }

    @Test func aWaiterServedBeforeItsDeadlineIsNotTimedOut() {
        var m = busyPool()
        _ = m.leaseRequested(w1, deadline: .seconds(2))
        #expect(m.released(c0, broken: false) == [.lease(c0, to: w1)])
        #expect(m.leaseDeadlinePassed(w1) == [])
    }

    @Test func onlyTheExpiredWaiterLeavesTheQueueAndFIFOOrderHolds() {
        var m = busyPool()
        _ = m.leaseRequested(w1, deadline: .seconds(1))
        _ = m.leaseRequested(w2, deadline: .seconds(5))
        #expect(m.leaseDeadlinePassed(w1) == [.timeOut(w1, waited: .seconds(1))])
        #expect(m.released(c0, broken: false) == [.lease(c0, to: w2)])
        #expect(m.leaseDeadlinePassed(w2) == [])
    }

    @Test func anIdleConnectionIsLeasedAtOnceWithoutATimer() {
        var m = busyPool()
        _ = m.released(c0, broken: false)
        #expect(m.leaseRequested(w1, deadline: .seconds(1)) == [.lease(c0, to: w1)])
    }

    @Test func withoutADeadlineNoTimerIsScheduled() {
        var m = busyPool()
        #expect(m.leaseRequested(w1) == [])           // queued, no timer: it waits until served (background work)
        #expect(m.waiterCount == 1)
    }

    @Test func aCancelledOrShutDownWaiterIsNotTimedOutLater() {
        var m = busyPool()
        _ = m.leaseRequested(w1, deadline: .seconds(1))
        _ = m.waiterCancelled(w1)
        #expect(m.leaseDeadlinePassed(w1) == [])
        _ = m.leaseRequested(w2, deadline: .seconds(1))
        _ = m.shutdown()
        #expect(m.leaseDeadlinePassed(w2) == [])
    }
}
