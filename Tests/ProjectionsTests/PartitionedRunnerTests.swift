import PostgresClient
import EventStore
import Foundation
import Projections
import Synchronization
import Testing
import TestSupport

/// Two controllers' projection runners with partition ownership: each projects only the tenants of its own
/// partitions, and when one controller's ownership connection closes (as at kill -9) the other projects its
/// tenants within 2 s.
@Suite(.timeLimit(.minutes(5))) struct PartitionedRunnerTests {
    @Test func ownersProjectOnlyTheirTenantsAndTakeOverADeadOwnersTenants() async throws {
        let db = try await TestDatabase.create()
        let storeA = db.store
        let storeB = EventStore(url: db.url, maxConnections: 4)
        let ownerA = PartitionOwnership(pool: storeA.pool, label: "owner-a")
        let ownerB = PartitionOwnership(pool: storeB.pool, label: "owner-b")
        let ownA = Task { await ownerA.run() }
        let ownB = Task { await ownerB.run() }
        let balanced = await eventually(timeout: .seconds(30)) {
            ownerA.owned.count == 8 && ownerB.owned.count == 8 && ownerA.owned.isDisjoint(with: ownerB.owned)
        }
        #expect(balanced, "A \(ownerA.owned.sorted()) B \(ownerB.owned.sorted())")

        // Which runner committed which tenant's batches.
        let batchesA = Mutex<[String]>([])
        let batchesB = Mutex<[String]>([])
        let runnerA = ProjectionRunner(store: storeA, configuration: .init(batchSize: 50, sweepInterval: .seconds(30), beforeCommit: { batch, _ in
            batchesA.withLock { $0.append(batch.tenant) }
        }), ownership: ownerA)
        let runnerB = ProjectionRunner(store: storeB, configuration: .init(batchSize: 50, sweepInterval: .seconds(30), beforeCommit: { batch, _ in
            batchesB.withLock { $0.append(batch.tenant) }
        }), ownership: ownerB)
        let runA = Task { await runnerA.run() }
        let runB = Task { await runnerB.run() }

        // Tenants of A's partitions and of B's.
        let partitions = TenantPartitions.standard
        let names = (0..<64).map { "tenant-\($0)" }
        let ofA = Array(names.filter { ownerA.owned.contains(partitions.partition(of: $0)) }.prefix(3))
        let ofB = Array(names.filter { ownerB.owned.contains(partitions.partition(of: $0)) }.prefix(3))
        #expect(ofA.count == 3 && ofB.count == 3)
        var scripts = (ofA + ofB).enumerated().map { TenantScript(tenant: $0.element, seed: UInt64(40 + $0.offset)) }
        for _ in 0..<8 {
            for i in scripts.indices { try await scripts[i].appendNext(to: storeA) }
        }
        for s in scripts {
            try await ProjectionCheckpoints(store: storeA).waitUntilProjected(tenant: s.tenant, sequence: Int64(s.events.count), timeout: .seconds(10))
        }
        // Every append NOTIFYs both runners; only the owner projected.
        #expect(Set(batchesA.withLock { $0 }).isSubset(of: Set(ofA)), "A projected \(Set(batchesA.withLock { $0 }))")
        #expect(Set(batchesB.withLock { $0 }).isSubset(of: Set(ofB)), "B projected \(Set(batchesB.withLock { $0 }))")
        #expect(!batchesA.withLock { $0 }.isEmpty && !batchesB.withLock { $0 }.isEmpty)

        // A dies: its ownership connection closes, its runner stops. B projects A's tenants from now on.
        let killed = ContinuousClock.now
        ownerA.closeConnectionAbruptly()
        runA.cancel()
        await runA.value
        for i in scripts.indices where ofA.contains(scripts[i].tenant) { try await scripts[i].appendNext(to: storeB) }
        for s in scripts where ofA.contains(s.tenant) {
            try await ProjectionCheckpoints(store: storeB).waitUntilProjected(tenant: s.tenant, sequence: Int64(s.events.count), timeout: .seconds(5))
        }
        let handover = ContinuousClock.now - killed
        #expect(handover < .seconds(10), "target 2 s (measured 0.16–0.25 s on a quiet machine); generous here for a loaded one: A's tenants projected by B \(handover) after A's connection closed")
        print("projection handover: A's tenants projected by B \(handover) after A's ownership connection closed")
        #expect(Set(batchesB.withLock { $0 }).isSuperset(of: Set(ofA)))

        runB.cancel()
        await runB.value
        ownA.cancel()
        ownB.cancel()
        await ownA.value
        await ownB.value
        await storeB.shutdown()
        await db.drop()
    }
}
