import EventStore
import Projections
import Synchronization
import Testing
import TestSupport

/// `ProjectionRunner.Configuration.onBatchTiming`: every batch that advanced reports its stage timestamps (the
/// profile of `routeplane-bench propagation --stages`), in order, with its last sequence and changed views.
@Suite(.timeLimit(.minutes(3))) struct ProjectionTimingTests {
    @Test func everyAdvancingBatchReportsItsStagesInOrder() async throws {
        let db = try await TestDatabase.create()
        do {
            let timings = Mutex<[ProjectionBatchTiming]>([])
            var configuration = ProjectionRunner.Configuration(batchSize: 7)
            configuration.onBatchTiming = { t in timings.withLock { $0.append(t) } }
            let runner = ProjectionRunner(store: db.store, configuration: configuration)
            var script = TenantScript(tenant: "timed", seed: 3)
            for _ in 0..<20 { try await script.appendNext(to: db.store) }
            let batches = try await runner.catchUp(tenant: "timed")
            // Caught up: nothing more to report.
            _ = try await runner.catchUp(tenant: "timed")
            let reported = timings.withLock { $0 }
            #expect(!batches.isEmpty)
            #expect(reported.map(\.lastSequence) == batches.map(\.lastSequence))
            #expect(reported.map(\.viewsChanged) == batches.map(\.viewsChanged))
            #expect(reported.last?.lastSequence == Int64(script.events.count))
            for t in reported {
                #expect(t.tenant == "timed")
                #expect(t.began > 0 && t.began <= t.applied && t.applied <= t.written && t.written <= t.committed)
            }
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }
}
