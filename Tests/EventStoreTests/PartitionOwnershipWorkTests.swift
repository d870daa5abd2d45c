@testable import EventStore
import PostgresClient
import TestSupport
import Testing

/// Projection and relay partitions are owned separately: a controller without NATS (no relay) takes its share of
/// the projection work but none of the relay work, which the controllers with a relay split among themselves.
@Suite("Partition ownership per kind of work", .timeLimit(.minutes(3)))
struct PartitionOwnershipWorkTests {
    @Test("two controllers split the projection partitions 8/8; the one with a relay owns all 16 relay partitions")
    func relayPartitionsGoOnlyToControllersWithARelay() async throws {
        let db = try await TestDatabase.create(migrate: false, maxConnections: 3)
        // Controller A: projection and relay. Controller B: projection only (started without NATS).
        let projectionA = PartitionOwnership(pool: db.store.pool, work: .projection, label: "a-projection")
        let relayA = PartitionOwnership(pool: db.store.pool, work: .relay, label: "a-relay")
        let projectionB = PartitionOwnership(pool: db.store.pool, work: .projection, label: "b-projection")
        let runs = [Task { await projectionA.run() }, Task { await relayA.run() }, Task { await projectionB.run() }]
        let balanced = await eventually(timeout: .seconds(30)) {
            projectionA.owned.count == 8 && projectionB.owned.count == 8 && projectionA.owned.isDisjoint(with: projectionB.owned)
        }
        #expect(balanced, "projection: A \(projectionA.owned.sorted()) B \(projectionB.owned.sorted())")
        // Two controllers are live, but only A has a relay: its relay share is all 16, not ceil(16 / 2).
        #expect(await eventually(timeout: .seconds(30)) { relayA.owned.count == 16 }, "relay: A \(relayA.owned.sorted())")
        // Still 16 after four more ticks (B's member lock must not make A give half of them up).
        let ticks = relayA.observations
        #expect(await eventually(timeout: .seconds(30)) { relayA.observations >= ticks + 4 })
        #expect(relayA.owned.count == 16, "relay: A \(relayA.owned.sorted())")
        for run in runs { run.cancel() }
        for run in runs { await run.value }
        await db.drop()
    }
}
