@testable import EventStore
import Testing

/// The pure parts of partitioned work: the tenant → partition function and the ownership decisions (no I/O).
@Suite("Tenant partitions and their ownership state machine")
struct PartitionOwnershipStateMachineTests {
    typealias Machine = PartitionOwnershipStateMachine

    @Test("the partition function is stable, in range, and spreads tenants over every partition")
    func partitionFunction() {
        let p = TenantPartitions(count: 16)
        // Fixed values (MD5's first 32 bits mod 16; PostgreSQL's md5 gives the same: checked in PartitionOwnershipTests).
        #expect(p.partition(of: "abc") == Int(0x9001_5098 % 16))
        #expect(p.partition(of: "abc") == p.partition(of: "abc"))
        var seen = [Int](repeating: 0, count: 16)
        for i in 0..<1_600 {
            let x = p.partition(of: "tenant-\(i)")
            #expect((0..<16).contains(x))
            seen[x] += 1
        }
        // Every partition used, none more than twice its share.
        #expect(seen.allSatisfy { $0 > 0 && $0 < 200 })
        #expect(TenantPartitions(count: 1).partition(of: "anything") == 0)
        #expect(p.sqlExpression(tenantColumn: "t").contains("% 16"))
    }

    @Test("target is ceil(partitions / members)")
    func target() {
        #expect(Machine.target(partitions: 16, members: 1) == 16)
        #expect(Machine.target(partitions: 16, members: 2) == 8)
        #expect(Machine.target(partitions: 16, members: 3) == 6)
        #expect(Machine.target(partitions: 16, members: 0) == 16)
        #expect(Machine.target(partitions: 16, members: 20) == 1)
    }

    /// Starts a machine and connects it: the next action is `.observe`.
    func connected(partitions: Int = 16) -> Machine {
        var m = Machine(configuration: .init(partitions: partitions, tick: .milliseconds(250)))
        #expect(m.start() == [.connect])
        #expect(m.connected() == [.observe])
        return m
    }

    @Test("alone: locks every free partition, announces them, then sleeps a tick")
    func aloneTakesAll() {
        var m = connected()
        let actions = m.observed(.init(me: 5, members: 1, owners: [:]))
        guard case let .change(acquire, release) = actions.last else { Issue.record("no change: \(actions)"); return }
        #expect(Set(acquire) == Set(0..<16))
        #expect(release.isEmpty)
        #expect(acquire.first == 5, "starts at an offset of its own")
        let after = m.changed(acquired: acquire, released: [])
        #expect(after.contains(.announce(Set(0..<16))))
        #expect(after.last == .sleep(.milliseconds(250)))
        #expect(m.owned == Set(0..<16))
    }

    @Test("a second member joins: the first releases down to 8, the joiner takes the free ones")
    func joinRebalances() {
        var a = connected()
        var all: [Int: Int32] = [:]
        for p in 0..<16 { all[p] = 1 }
        _ = a.observed(.init(me: 1, members: 1, owners: [:]))
        _ = a.changed(acquired: Array(0..<16), released: [])
        #expect(a.slept() == [.observe])
        // B's member lock appears.
        let actions = a.observed(.init(me: 1, members: 2, owners: all))
        guard case let .change(acquire, release) = actions.last else { Issue.record("no change: \(actions)"); return }
        #expect(acquire.isEmpty)
        #expect(release.count == 8)
        let after = a.changed(acquired: [], released: release)
        #expect(a.owned.count == 8)
        #expect(after.contains(.announce(a.owned)))

        // B sees A's 8 and the 8 free ones.
        var b = connected()
        var owners: [Int: Int32] = [:]
        for p in a.owned { owners[p] = 1 }
        let bActions = b.observed(.init(me: 2, members: 2, owners: owners))
        guard case let .change(bAcquire, _) = bActions.last else { Issue.record("no change: \(bActions)"); return }
        #expect(Set(bAcquire) == Set(0..<16).subtracting(a.owned))
        _ = b.changed(acquired: bAcquire, released: [])
        #expect(b.owned.count == 8)
        // Balanced: the next observation changes nothing.
        for p in b.owned { owners[p] = 2 }
        #expect(b.slept() == [.observe])
        #expect(b.observed(.init(me: 2, members: 2, owners: owners)) == [.sleep(.milliseconds(250))])
    }

    @Test("a dead member's partitions (freed by PostgreSQL) are locked by a survivor at its next observation")
    func deadMemberHandover() {
        var m = connected()
        var owners: [Int: Int32] = [:]
        for p in 0..<16 { owners[p] = p < 6 ? 1 : (p < 12 ? 2 : 3) }
        _ = m.observed(.init(me: 1, members: 3, owners: owners.filter { $0.value != 1 }))
        _ = m.changed(acquired: Array(0..<6), released: [])
        #expect(m.slept() == [.observe])
        // Member 3 died: its locks and member lock are gone.
        let actions = m.observed(.init(me: 1, members: 2, owners: owners.filter { $0.value != 3 }))
        guard case let .change(acquire, release) = actions.last else { Issue.record("no change: \(actions)"); return }
        #expect(release.isEmpty)
        #expect(Set(acquire) == [12, 13], "aims at 8: takes 2 of the 4 freed")
        // Only one of them granted (the other survivor won it): it holds 7 and tries again next tick.
        _ = m.changed(acquired: [12], released: [])
        #expect(m.owned == Set(0..<6).union([12]))
    }

    @Test("below target with nothing free: waits (the members above target shed their excess)")
    func nothingFree() {
        var m = connected()
        var owners: [Int: Int32] = [:]
        for p in 0..<16 { owners[p] = 9 }
        #expect(m.observed(.init(me: 1, members: 2, owners: owners)) == [.sleep(.milliseconds(250))])
        #expect(m.owned.isEmpty)
    }

    @Test("a lost connection gives everything up, announces it and reconnects; connect failures back off")
    func connectionLoss() {
        var m = connected()
        _ = m.observed(.init(me: 1, members: 1, owners: [:]))
        _ = m.changed(acquired: Array(0..<16), released: [])
        #expect(m.slept() == [.observe])
        let lost = m.connectionLost(reason: "server closed the connection")
        #expect(lost == [.log(.lost(reason: "server closed the connection")), .announce([]), .closeConnection, .connect])
        #expect(m.owned.isEmpty)
        // Reconnect fails: back off (not logged again: the loss was).
        #expect(m.connectFailed(reason: "refused") == [.sleep(.milliseconds(500))])
        #expect(m.slept() == [.connect])
        #expect(m.connectFailed(reason: "refused") == [.sleep(.seconds(1))])
        #expect(m.slept() == [.connect])
        #expect(m.connected() == [.log(.recovered), .observe])
    }

    @Test("the first connect failure is logged once")
    func firstConnectFailure() {
        var m = Machine()
        #expect(m.start() == [.connect])
        #expect(m.connectFailed(reason: "refused") == [.log(.unavailable(reason: "refused")), .sleep(.milliseconds(500))])
    }

    @Test("stop gives the partitions up and closes the connection; later reports are ignored")
    func stop() {
        var m = connected()
        _ = m.observed(.init(me: 1, members: 1, owners: [:]))
        _ = m.changed(acquired: [1, 2], released: [])
        #expect(m.stop() == [.announce([]), .closeConnection])
        #expect(m.slept() == [])
        #expect(m.owned.isEmpty)
        #expect(m.stop() == [])
    }

    @Test("controllers with another partition count are reported")
    func foreignMembers() {
        var m = connected()
        let actions = m.observed(.init(me: 1, members: 1, owners: [:], foreignMembers: 2))
        #expect(actions.first == .log(.foreignMembers(2)))
        _ = m.changed(acquired: Array(0..<16), released: [])
        _ = m.slept()
        var all: [Int: Int32] = [:]
        for p in 0..<16 { all[p] = 1 }
        // Same count again: not logged again.
        #expect(m.observed(.init(me: 1, members: 1, owners: all, foreignMembers: 2)) == [.sleep(.milliseconds(250))])
    }
}
