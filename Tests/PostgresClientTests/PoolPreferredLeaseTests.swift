@testable import PostgresClient
import Testing

/// `leaseIdle(preferring:)`: the pool leases an idle connection whose session settings already match the lease's
/// (its statement_timeout), so work alternating between reads and appends does not change the setting on most leases.
@Suite("Connection pool: preferred idle connections (no I/O)")
struct PoolPreferredLeaseTests {
    let w0 = WaiterID(raw: 0), w1 = WaiterID(raw: 1), w2 = WaiterID(raw: 2)
    let c0 = ConnectionID(raw: 0), c1 = ConnectionID(raw: 1), c2 = ConnectionID(raw: 2)

    /// Three open connections, idle, handed back c2 first, then c1, then c0 (c0 is the most recent).
    func threeIdle() -> PoolStateMachine {
        var m = PoolStateMachine(configuration: .init(maxConnections: 3))
        _ = m.leaseRequested(w0); _ = m.leaseRequested(w1); _ = m.leaseRequested(w2)
        _ = m.connected(c0); _ = m.connected(c1); _ = m.connected(c2)
        _ = m.released(c2, broken: false)
        _ = m.released(c1, broken: false)
        _ = m.released(c0, broken: false)
        return m
    }

    @Test func aPreferredIdleConnectionIsLeasedBeforeAMoreRecentOne() {
        var m = threeIdle()
        #expect(m.leaseIdle(preferring: { $0 == self.c2 }) == c2)
        #expect(m.idleConnectionCount == 2)
    }

    @Test func amongPreferredOnesTheMostRecentlyReturnedIsLeased() {
        var m = threeIdle()
        #expect(m.leaseIdle(preferring: { $0 != self.c0 }) == c1)
    }

    @Test func withoutAPreferredIdleConnectionTheMostRecentOneIsLeased() {
        var m = threeIdle()
        #expect(m.leaseIdle(preferring: { _ in false }) == c0)
        #expect(m.leaseIdle(preferring: { $0 == self.c0 }) == c1)   // c0 is leased, not idle: the most recent idle one
        #expect(m.leaseIdle(preferring: { $0 == self.c0 }) == c2)
        #expect(m.leaseIdle(preferring: { _ in true }) == nil)
    }

    /// Two kinds of work overlapping (a request's read with one limit while another request's append, with another
    /// limit, holds a connection), on two connections: once each connection holds one kind's setting, every lease finds
    /// a matching connection — two setting changes in all. Without the preference each lease takes the connection
    /// handed back last, which the other kind just used, and changes it every time.
    @Test func overlappingReadsAndAppendsKeepEachConnectionOnItsSetting() {
        var m = PoolStateMachine(configuration: .init(maxConnections: 2))
        _ = m.leaseRequested(w0); _ = m.leaseRequested(w1)
        _ = m.connected(c0); _ = m.connected(c1)
        _ = m.released(c0, broken: false); _ = m.released(c1, broken: false)
        var setting: [ConnectionID: Int] = [:]
        var changes = 0
        func lease(_ wanted: Int) -> ConnectionID? {
            guard let id = m.leaseIdle(preferring: { (setting[$0] ?? 0) == wanted }) else { return nil }
            if setting[id] != wanted { changes += 1; setting[id] = wanted }
            return id
        }
        for _ in 0..<10 {
            guard let read = lease(5_000), let append = lease(30_000) else { Issue.record("no idle connection"); return }
            _ = m.released(read, broken: false)
            _ = m.released(append, broken: false)
        }
        #expect(changes == 2)
    }
}
