import PostgresClient
import EventStore
import Foundation
import NATSClient
import ViewDistribution
import Testing
import TestSupport

/// A relay with partition ownership claims only the rows of tenants in its controller's partitions, and none
/// while it owns nothing; a relay owning every partition claims everything.
@Suite(.timeLimit(.minutes(3))) struct PartitionedRelayTests {
    @Test func claimsOnlyOwnedPartitionsRows() async throws {
        try await withServices { db, nats in
            let connection = try await connect(nats)
            let storeB = EventStore(url: db.url, maxConnections: 2)
            let ownerA = PartitionOwnership(pool: db.store.pool, label: "owner-a")
            let ownerB = PartitionOwnership(pool: storeB.pool, label: "owner-b")
            let configuration = OutboxRelay.Configuration(
                machine: .init(batchSize: 64, pollInterval: .milliseconds(200), initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(500)),
                publishTimeout: .seconds(3), name: "relay-a")
            let relay = OutboxRelay(store: db.store, connection: connection, signer: testSigner, configuration: configuration, ownership: ownerA)
            try await relay.ensureStream()

            // Not running yet: owns nothing, claims nothing.
            let tenants = (0..<40).map { "t\($0)" }
            for t in tenants { try await insertOutbox(db.store, tenant: t, peer: "p1", version: 1) }
            #expect(await relay.runBatch().claimed == 0)

            let ownA = Task { await ownerA.run() }
            let ownB = Task { await ownerB.run() }
            #expect(await eventually(timeout: .seconds(30)) { ownerA.owned.count == 8 && ownerB.owned.count == 8 })
            let partitions = TenantPartitions.standard
            let mine = Set(tenants.filter { ownerA.owned.contains(partitions.partition(of: $0)) })
            #expect(!mine.isEmpty && mine.count < tenants.count)
            var claimed = 0
            for _ in 0..<20 {
                let outcome = await relay.runBatch()
                #expect(outcome.failure == nil)
                claimed += outcome.claimed
                if outcome.claimed == 0 { break }
            }
            #expect(claimed == mine.count)
            let unsent = try await db.store.pool.withSession { s in try s.query("SELECT tenant_id FROM outbox WHERE sent_at IS NULL") }
            #expect(Set(unsent.compactMap { $0.string("tenant_id") }) == Set(tenants).subtracting(mine))

            // B goes away: A owns all 16 and claims the rest.
            ownerB.closeConnectionAbruptly()
            await ownB.value
            #expect(await eventually(timeout: .seconds(30)) { ownerA.owned.count == 16 })
            for _ in 0..<20 {
                if await relay.runBatch().claimed == 0 { break }
            }
            #expect(try await unsentCount(db.store) == 0)

            ownA.cancel()
            await ownA.value
            await storeB.shutdown()
        }
    }
}
