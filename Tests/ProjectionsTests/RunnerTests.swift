import PostgresClient
import EventStore
import Foundation
import Projections
import RouteModel
import Synchronization
import Testing
import TestSupport

/// The projection runner, rebuild and verify against the real PostgreSQL.
@Suite(.timeLimit(.minutes(10))) struct RunnerTests {
    /// Thousands of random commands over several tenants, projected in batches of varying size while they
    /// are appended: the stored views equal a rebuild byte for byte (verify says so), the outbox has one row
    /// per changed version and none for an unchanged view, and a rebuild then changes nothing.
    @Test func incrementalViewsEqualARebuild() async throws {
        let db = try await TestDatabase.create()
        do {
            let store = db.store
            let runner = ProjectionRunner(store: store, configuration: .init(batchSize: 13))
            var scripts = (0..<4).map { TenantScript(tenant: "tenant-\($0)", seed: UInt64(100 + $0)) }
            var rng = SplitMix64(seed: 7)
            var commands = 0
            while commands < 2_400 {
                let t = Int.random(in: 0..<scripts.count, using: &rng)
                for _ in 0..<Int.random(in: 1...30, using: &rng) {
                    try await scripts[t].appendNext(to: store)
                    commands += 1
                }
                if Bool.random(using: &rng) { try await runner.catchUp(tenant: scripts[t].tenant) }
            }
            for s in scripts { try await runner.catchUp(tenant: s.tenant) }

            let maintenance = ProjectionMaintenance(store: store)
            let report = try await maintenance.verify()
            #expect(report.count == scripts.count)
            for (r, s) in zip(report, scripts) {
                #expect(r.tenant == s.tenant)
                #expect(r.checkpoint == Int64(s.events.count) && r.head == r.checkpoint)
                #expect(r.differences.isEmpty, "\(r.differences.prefix(5).map(\.description))")
                #expect(r.views == s.state.peers.count && r.views > 0)
                try await checkOutbox(store, tenant: s.tenant)
            }
            // In memory too: the stored bodies are the pure rebuild's, byte for byte.
            for s in scripts {
                var fold = TenantFold(tenant: s.tenant)
                try fold.fold(s.events)
                let rebuilt = fold.result()
                let stored = try await store.pool.withSession { session in
                    try session.query("SELECT peer_id, body FROM peer_views WHERE tenant_id = $1", [s.tenant])
                }
                #expect(stored.count == rebuilt.views.count)
                for row in stored.rows { #expect(Array(row[1]!.utf8) == rebuilt.views[PeerID(row[0]!)]?.body) }
            }
            let outboxBefore = try await store.pool.withSession { try $0.query("SELECT count(*) FROM outbox") }.rows[0][0]
            let rebuild = try await maintenance.rebuild()
            #expect(rebuild.changedViews == 0)
            #expect(rebuild.events == Int64(scripts.map(\.events.count).reduce(0, +)))
            let outboxAfter = try await store.pool.withSession { try $0.query("SELECT count(*) FROM outbox") }.rows[0][0]
            #expect(outboxBefore == outboxAfter)
            #expect(try await maintenance.verify().allSatisfy { $0.differences.isEmpty })
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    /// Batches that die before COMMIT (an error, or the session killed) leave nothing behind; restarting
    /// continues from the checkpoint; in the end nothing is lost or duplicated.
    @Test func killedBatchesLoseAndDuplicateNothing() async throws {
        let db = try await TestDatabase.create()
        do {
            let store = db.store
            struct Injected: Error {}
            let counter = Locked(0)
            let runner = ProjectionRunner(store: store, configuration: .init(batchSize: 9, beforeCommit: { _, session in
                let n = counter.withLock { n in n += 1; return n }
                switch n % 3 {
                case 1: throw Injected()
                case 2: try session.query("SELECT pg_terminate_backend(pg_backend_pid())")
                default: break
                }
            }))
            var script = TenantScript(tenant: "crashy", seed: 4242)
            var failures = 0
            for round in 0..<40 {
                for _ in 0..<15 { try await script.appendNext(to: store) }
                let before = try await checkpoint(store, tenant: "crashy")
                let outboxBefore = try await outboxRows(store, tenant: "crashy").count
                do {
                    _ = try await runner.processBatch(tenant: "crashy")
                } catch {
                    failures += 1
                    #expect(try await checkpoint(store, tenant: "crashy") == before, "round \(round)")
                    #expect(try await outboxRows(store, tenant: "crashy").count == outboxBefore, "round \(round)")
                }
            }
            // Restart: a fresh runner (empty cache) and then the crashing one again until caught up.
            let fresh = ProjectionRunner(store: store, configuration: .init(batchSize: 50))
            _ = try await fresh.processBatch(tenant: "crashy")
            var attempts = 0
            while try await checkpoint(store, tenant: "crashy") < Int64(script.events.count) && attempts < 1_000 {
                attempts += 1
                _ = try? await runner.catchUp(tenant: "crashy")
            }
            #expect(failures >= 20)
            #expect(try await checkpoint(store, tenant: "crashy") == Int64(script.events.count))
            let report = try await ProjectionMaintenance(store: store).verify(tenant: "crashy")
            #expect(report.first?.differences == [])
            try await checkOutbox(store, tenant: "crashy")
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    /// Two runners on one tenant while it is being appended to: the batches they commit never overlap
    /// and together cover every event exactly once; a runner facing a held lock reports busy.
    @Test func twoRunnersNeverBothAdvanceATenant() async throws {
        let db = try await TestDatabase.create()
        do {
            let store = db.store
            let slow: @Sendable (ProjectionBatch, PostgresSession) throws -> Void = { _, _ in usleep(2_000) }
            let runners = [ProjectionRunner(store: store, configuration: .init(batchSize: 5, beforeCommit: slow)),
                           ProjectionRunner(store: store, configuration: .init(batchSize: 7, beforeCommit: slow))]
            let done = Locked(false)
            let total = try await withThrowingTaskGroup(of: [ProjectionRunner.BatchSummary].self) { group in
                group.addTask {
                    var script = TenantScript(tenant: "shared", seed: 77)
                    for _ in 0..<300 { try await script.appendNext(to: store) }
                    done.withLock { $0 = true }
                    return []
                }
                for runner in runners {
                    group.addTask {
                        var mine: [ProjectionRunner.BatchSummary] = []
                        var busy = 0
                        while true {
                            let finished = done.withLock { $0 }
                            switch try await runner.processBatch(tenant: "shared") {
                            case .advanced(let s): mine.append(s)
                            case .busy: busy += 1
                            case .caughtUp: if finished { return mine }
                            }
                        }
                    }
                }
                var all: [ProjectionRunner.BatchSummary] = []
                for try await part in group { all += part }
                return all
            }
            let sorted = total.sorted { $0.firstSequence < $1.firstSequence }
            var next: Int64 = 1
            for b in sorted {
                #expect(b.firstSequence == next, "batch \(b.firstSequence)...\(b.lastSequence) overlaps or leaves a gap before it")
                next = b.lastSequence + 1
            }
            let head = try await store.version(tenant: "shared")
            #expect(next == head + 1)
            // When the other runner moved the tenant on, a runner fast-forwards its cached state over those events
            // instead of refolding the tenant: only each runner's first batch loads it from scratch. (The verify
            // below shows the fast-forwarded batches wrote the same views a rebuild computes.)
            #expect(total.filter(\.reloaded).count <= runners.count, "\(total.filter(\.reloaded).count) reloads")

            // A held lock: busy, checkpoint untouched.
            var extra = TenantScript(tenant: "held", seed: 5)
            for _ in 0..<5 { try await extra.appendNext(to: store) }
            let holder = try await db.rawConnection()
            _ = try await holder.withSession { s in
                try s.query("BEGIN")
                try s.query("SELECT pg_advisory_xact_lock(hashtextextended('routeplane.projection:' || $1, 0))", ["held"])
            }
            #expect(try await runners[0].processBatch(tenant: "held") == .busy)
            #expect(try await checkpoint(store, tenant: "held") == 0)
            _ = try await holder.withSession { try $0.query("COMMIT") }
            holder.close()
            guard case .advanced = try await runners[0].processBatch(tenant: "held") else {
                Issue.record("runner did not advance after the lock was released")
                return
            }
            try await checkOutbox(store, tenant: "shared")
            #expect(try await ProjectionMaintenance(store: store).verify().allSatisfy { $0.differences.isEmpty })
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    /// `run()` follows NOTIFY (and the sweep) for every tenant; `waitUntilProjected` returns once the
    /// checkpoint reaches the sequence, and times out when nothing projects.
    @Test func runFollowsAppendsAndWaitUntilProjected() async throws {
        let db = try await TestDatabase.create()
        do {
            let store = db.store
            // Events appended before the runner starts are found by the first sweep.
            var early = TenantScript(tenant: "early", seed: 1)
            for _ in 0..<20 { try await early.appendNext(to: store) }
            let runner = ProjectionRunner(store: store, configuration: .init(batchSize: 100, sweepInterval: .seconds(2)))
            let task = Task { await runner.run() }
            try await runner.waitUntilProjected(tenant: "early", sequence: Int64(early.events.count), timeout: .seconds(10))

            var scripts = (0..<3).map { TenantScript(tenant: "live-\($0)", seed: UInt64(10 + $0)) }
            for round in 0..<10 {
                for i in scripts.indices {
                    try await scripts[i].appendNext(to: store)
                    let seq = Int64(scripts[i].events.count)
                    if round % 2 == 0 {
                        try await runner.waitUntilProjected(tenant: scripts[i].tenant, sequence: seq, timeout: .seconds(10))
                    } else {
                        // As another controller would: poll the checkpoint.
                        try await ProjectionCheckpoints(store: store).waitUntilProjected(tenant: scripts[i].tenant, sequence: seq, timeout: .seconds(10))
                    }
                    #expect(try await checkpoint(store, tenant: scripts[i].tenant) >= seq)
                }
            }
            task.cancel()
            await task.value

            try await scripts[0].appendNext(to: store)
            await #expect(throws: ProjectionError.self) {
                try await runner.waitUntilProjected(tenant: scripts[0].tenant, sequence: Int64(scripts[0].events.count), timeout: .milliseconds(200))
            }
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    /// Corrupted and missing rows: verify prints the differences, rebuild repairs them and publishes only
    /// the views that really differ, and the runner carries on afterwards.
    @Test func rebuildRepairsAndPublishesOnlyDifferences() async throws {
        let db = try await TestDatabase.create()
        do {
            let store = db.store
            let runner = ProjectionRunner(store: store)
            var script = TenantScript(tenant: "repair", seed: 31337)
            for _ in 0..<300 { try await script.appendNext(to: store) }
            try await runner.catchUp(tenant: "repair")
            let maintenance = ProjectionMaintenance(store: store, pageSize: 50)
            #expect(try await maintenance.verify(tenant: "repair").first?.differences == [])

            let peers = try await store.pool.withSession { s in
                // Views last changed before the head: the rebuild can give them a newer version.
                try s.query("SELECT peer_id FROM peer_views WHERE tenant_id = 'repair' AND version < (SELECT seq FROM tenant_heads WHERE tenant_id = 'repair') ORDER BY peer_id LIMIT 2")
            }.rows.map { $0[0]! }
            try #require(peers.count == 2)
            _ = try await store.pool.withSession { s in
                try s.query("UPDATE peer_views SET digest = 'bad', body = '{\"forwards\":[],\"ha_sets\":[],\"peer_id\":\"x\"}' WHERE tenant_id = 'repair' AND peer_id = $1", [peers[0]])
                try s.query("DELETE FROM peer_views WHERE tenant_id = 'repair' AND peer_id = $1", [peers[1]])
                try s.query("UPDATE projected_groups SET version = version + 1000 WHERE tenant_id = 'repair'")
            }
            let found = try await maintenance.verify(tenant: "repair").first?.differences ?? []
            #expect(found.contains { if case .viewBody(_, let p, _, _) = $0 { p.rawValue == peers[0] } else { false } })
            #expect(found.contains { if case .viewDigest(_, let p, _, _) = $0 { p.rawValue == peers[0] } else { false } })
            #expect(found.contains(.viewMissing(tenant: "repair", peer: PeerID(peers[1]))))
            #expect(found.contains { if case .readModelVersion = $0 { true } else { false } })

            let before = try await outboxRows(store, tenant: "repair").count
            let report = try await maintenance.rebuild(tenant: "repair")
            #expect(report.changedViews == 2)
            #expect(report.unpublishable.isEmpty)
            #expect(try await outboxRows(store, tenant: "repair").count == before + 2)
            #expect(try await maintenance.verify(tenant: "repair").first?.differences == [])

            for _ in 0..<50 { try await script.appendNext(to: store) }
            try await runner.catchUp(tenant: "repair")
            #expect(try await maintenance.verify(tenant: "repair").first?.differences == [])
            #expect(try await checkpoint(store, tenant: "repair") == Int64(script.events.count))
            // The two repaired views went out again with the content agents already had (only the rows were damaged).
            try await checkOutbox(store, tenant: "repair", allowRepublished: true)
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }
}

extension RunnerTests {
    /// A view whose stored version already is the head cannot get a newer version from a rebuild (it appends
    /// no event); whether its repair reaches the agents depends on the outbox row at that version.
    @Test func rebuildRepublishesViewsAtTheHeadWhenTheOutboxAllows() async throws {
        let db = try await TestDatabase.create()
        do {
            let store = db.store
            let runner = ProjectionRunner(store: store)
            let maintenance = ProjectionMaintenance(store: store, pageSize: 40)
            var script = TenantScript(tenant: "head", seed: 4242)
            for _ in 0..<120 { try await script.appendNext(to: store) }
            try await runner.catchUp(tenant: "head")
            // A peer whose view changed with the last event.
            var peer: String?
            for _ in 0..<300 where peer == nil {
                try await script.appendNext(to: store)
                try await runner.catchUp(tenant: "head")
                peer = try await store.pool.withSession { s in
                    try s.query("SELECT peer_id FROM peer_views WHERE tenant_id = 'head' AND version = (SELECT seq FROM tenant_heads WHERE tenant_id = 'head') ORDER BY peer_id LIMIT 1")
                }.rows.first?[0] ?? nil
            }
            let p = try #require(peer)
            let head = Int64(script.events.count)
            let damage = "SET digest = 'bad', body = '{\"forwards\":[],\"ha_sets\":[],\"peer_id\":\"x\"}'"
            func damageView() async throws {
                _ = try await store.pool.withSession { try $0.query("UPDATE peer_views \(damage) WHERE tenant_id = 'head' AND peer_id = $1", [p]) }
            }
            func outbox(_ sql: String) async throws {
                _ = try await store.pool.withSession { try $0.query(sql, [p, String(head)]) }
            }
            func outboxCount() async throws -> Int { try await outboxRows(store, tenant: "head").count }

            // Only the stored row is damaged; the outbox row at the head has the right view: nothing to publish.
            try await damageView()
            var before = try await outboxCount()
            var report = try await maintenance.rebuild(tenant: "head")
            #expect(report.changedViews == 0 && report.unpublishable.isEmpty)
            #expect(try await outboxCount() == before)
            #expect(try await maintenance.verify(tenant: "head").first?.differences == [])
            try await checkOutbox(store, tenant: "head")

            // The unsent outbox row at the head is damaged too: the rebuild gives it the repaired view.
            try await damageView()
            try await outbox("UPDATE outbox \(damage) WHERE tenant_id = 'head' AND peer_id = $1 AND version = $2::bigint")
            report = try await maintenance.rebuild(tenant: "head")
            #expect(report.changedViews == 1 && report.unpublishable.isEmpty)
            #expect(try await outboxCount() == before)
            try await checkOutbox(store, tenant: "head")

            // No outbox row at the head version (nothing was published under it): the rebuild writes one.
            try await damageView()
            try await outbox("DELETE FROM outbox WHERE tenant_id = 'head' AND peer_id = $1 AND version = $2::bigint")
            report = try await maintenance.rebuild(tenant: "head")
            #expect(report.changedViews == 1 && report.unpublishable.isEmpty)
            #expect(try await outboxCount() == before)
            try await checkOutbox(store, tenant: "head")

            // Sent with other content: agents hold that version already; repaired, reported, published with the next change.
            try await damageView()
            try await outbox("UPDATE outbox \(damage), sent_at = now() WHERE tenant_id = 'head' AND peer_id = $1 AND version = $2::bigint")
            before = try await outboxCount()
            report = try await maintenance.rebuild(tenant: "head")
            #expect(report.changedViews == 0)
            #expect(report.unpublishable == ["head": [PeerID(p)]])
            #expect(try await outboxCount() == before)
            #expect(try await maintenance.verify(tenant: "head").first?.differences == [])
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    /// Names with quotes, backslashes, control characters and non-ASCII text survive the rebuild's binary
    /// COPY byte for byte (views and read models equal what the runner wrote).
    @Test func rebuildKeepsUnusualTextByteForByte() async throws {
        let db = try await TestDatabase.create()
        do {
            let store = db.store
            let runner = ProjectionRunner(store: store)
            var script = TenantScript(tenant: "text", seed: 99)
            for _ in 0..<150 { try await script.appendNext(to: store) }
            let names = ["quote \" back\\slash", "tab\tnew\nline\r", "ünïcødé ☃ 🚀", "nul-free \u{1} \u{7f}", "{\"json\":[1,2]}"]
            for (i, peer) in script.state.peers.keys.sorted().prefix(names.count).enumerated() {
                try await script.append(.renamePeer(id: peer, name: names[i]), to: store)
            }
            for (i, group) in script.state.groups.keys.sorted().prefix(2).enumerated() {
                let g = try #require(script.state.group(group))
                try await script.append(.updateGroup(id: group, name: names[i] + " group", peers: g.peers), to: store)
            }
            for _ in 0..<20 { try await script.appendNext(to: store) }
            try await runner.catchUp(tenant: "text")
            func snapshot() async throws -> [[String?]] {
                try await store.pool.withSession { s in
                    var rows = try s.query("SELECT peer_id, version, digest, body::text FROM peer_views WHERE tenant_id = 'text' ORDER BY 1").rows
                    for kind in ReadModelKind.allCases {
                        rows += try s.query("SELECT \(kind.table.idColumn), version, body::text FROM \(kind.table.name) WHERE tenant_id = 'text' ORDER BY 1").rows
                    }
                    return rows
                }
            }
            let before = try await snapshot()
            let report = try await ProjectionMaintenance(store: store, pageSize: 64).rebuild(tenant: "text")
            #expect(report.changedViews == 0)
            #expect(try await snapshot() == before)
            #expect(try await ProjectionMaintenance(store: store).verify(tenant: "text").first?.differences == [])
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }
}

/// A value behind a mutex, shareable between tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
