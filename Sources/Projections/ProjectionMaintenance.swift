import EventStore
import Logging
import RouteModel

/// `rebuild` and `verify`: the I/O shell around `TenantFold` and `ProjectionComparison`.
public struct ProjectionMaintenance: Sendable {
    public let store: EventStore
    /// Events read per query.
    public var pageSize: Int

    public init(store: EventStore, pageSize: Int = 10_000) {
        self.store = store
        self.pageSize = pageSize
    }

    public struct Progress: Sendable {
        public var events: Int64
        public var totalEvents: Int64
        public var tenants: Int
        public var totalTenants: Int
        public var elapsed: Duration
    }

    public struct RebuildReport: Sendable {
        public var tenants = 0
        public var events: Int64 = 0
        public var views = 0
        /// Views whose digest differed from the stored one (or new / removed peers) and were published (outbox rows).
        public var changedViews = 0
        /// Changed views whose stored version already is the tenant's head: repaired, not republished
        /// (see `RebuiltTenant.replacement`).
        public var unpublishable: [String: [PeerID]] = [:]
        public var readModels = 0
        public var elapsed = Duration.zero
        /// Time spent reading and folding events (the rest is computing views and writing rows).
        public var foldTime = Duration.zero
        /// Time spent computing views and read models from the folded states (in the swap).
        public var viewTime = Duration.zero
        /// Time spent in the swap transactions' SQL (lock, catch-up reads, replacing rows, outbox, commit).
        public var writeTime = Duration.zero
    }

    public struct TenantVerification: Sendable {
        public var tenant: String
        public var checkpoint: Int64
        public var head: Int64
        public var views: Int
        public var readModels: Int
        public var differences: [ProjectionDifference]
    }

    /// Every tenant with events or projections, with its head sequence.
    public func tenants() async throws -> [(tenant: String, head: Int64)] {
        let rows = try await store.pool.withSession { s in
            try s.query("""
                SELECT t.tenant_id, coalesce(h.seq, 0) FROM
                  (SELECT tenant_id FROM tenant_heads UNION SELECT tenant_id FROM projection_checkpoints) t
                  LEFT JOIN tenant_heads h USING (tenant_id)
                 ORDER BY t.tenant_id
                """)
        }
        return rows.rows.compactMap { row in
            guard let t = row[0], let h = row[1].flatMap({ Int64($0) }) else { return nil }
            return (t, h)
        }
    }

    // MARK: - Rebuild

    /// Replays `tenant` (or every tenant) from event zero and swaps the result in, one transaction per
    /// tenant under its projection lock. Writes outbox rows for the views that differ from the stored ones.
    /// The next tenant is read and folded (in a task) while the current one's views are computed and
    /// written, so PostgreSQL's work and this process's overlap.
    public func rebuild(tenant: String? = nil, progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> RebuildReport {
        let all = try await tenants()
        let selected = tenant.map { t in all.filter { $0.tenant == t }.isEmpty ? [(t, Int64(0))] : all.filter { $0.tenant == t } } ?? all
        let total = selected.reduce(Int64(0)) { $0 + $1.head }
        let clock = ContinuousClock()
        let start = clock.now
        var report = RebuildReport()
        var done: Int64 = 0
        // Events before each tenant, by the heads read above (for progress while folding ahead).
        var bases: [Int64] = []
        bases.reserveCapacity(selected.count)
        var running: Int64 = 0
        for t in selected {
            bases.append(running)
            running += t.head
        }
        let count = selected.count
        func startFold(_ i: Int) -> Task<(TenantFold, Duration), any Error> {
            let tenant = selected[i].tenant
            let base = bases[i]
            return Task {
                let foldStart = clock.now
                let fold = try await foldTenant(tenant) { folded in
                    progress(Progress(events: base + folded, totalEvents: max(total, base + folded), tenants: i, totalTenants: count,
                                      elapsed: clock.now - start))
                }
                return (fold, clock.now - foldStart)
            }
        }
        var next = selected.isEmpty ? nil : startFold(0)
        defer { next?.cancel() }
        for (i, t) in selected.enumerated() {
            guard let current = next else { break }
            let (fold, foldTime) = try await current.value
            next = i + 1 < count ? startFold(i + 1) : nil
            report.foldTime += foldTime
            let outcome = try await swap(tenant: t.tenant, fold: fold)
            done += outcome.events
            report.tenants += 1
            report.events += outcome.events
            report.views += outcome.views
            report.changedViews += outcome.changed
            if !outcome.unpublishable.isEmpty { report.unpublishable[t.tenant] = outcome.unpublishable }
            report.readModels += outcome.readModels
            report.viewTime += outcome.viewTime
            report.writeTime += outcome.writeTime
            progress(Progress(events: done, totalEvents: max(total, done), tenants: i + 1, totalTenants: count, elapsed: clock.now - start))
        }
        report.elapsed = clock.now - start
        return report
    }

    /// Reads and folds every event of `tenant`: the next page is read and decoded in a task (on
    /// another core) while the current one is folded.
    func foldTenant(_ tenant: String, progress: (Int64) -> Void) async throws -> TenantFold {
        try Task.checkCancellation()
        var fold = TenantFold(tenant: tenant)
        let pageSize = pageSize
        let store = store
        @Sendable func read(after: Int64) async throws -> (events: [SequencedEvent], rows: Int) {
            let rows = try await store.pool.withSession { s in
                try s.query("SELECT seq, type, data FROM events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                            [tenant, String(after), String(pageSize)])
            }
            return (try ProjectionSQL.decode(rows, tenant: tenant), rows.count)
        }
        var next = Task { try await read(after: 0) }
        while true {
            let page = try await next.value
            guard let last = page.events.last?.sequence else { break }
            if page.rows == pageSize { next = Task { try await read(after: last) } }
            try fold.fold(page.events)
            progress(fold.sequence)
            if page.rows < pageSize { break }
        }
        return fold
    }

    struct SwapOutcome: Sendable {
        var events: Int64
        var views: Int
        var changed: Int
        var readModels: Int
        var unpublishable: [PeerID]
        var viewTime = Duration.zero
        var writeTime = Duration.zero
    }

    /// One transaction: wait for the tenant's projection lock, fold the events appended since the fold,
    /// replace the tenant's rows, write outbox rows for changed views, set the checkpoint.
    func swap(tenant: String, fold folded: TenantFold) async throws -> SwapOutcome {
        let pageSize = pageSize
        return try await store.pool.withSession { s in
            let clock = ContinuousClock()
            let start = clock.now
            try s.query("BEGIN")
            do {
                try ProjectionSQL.lock(s, tenant: tenant)
                try ProjectionSQL.preferFastCompression(s)
                _ = try ProjectionSQL.checkpointForUpdate(s, tenant: tenant)
                var fold = folded
                while true {
                    let more = try ProjectionSQL.readEvents(s, tenant: tenant, after: fold.sequence, limit: pageSize)
                    if more.isEmpty { break }
                    try fold.fold(more)
                }
                let stored = try ProjectionSQL.storedRefs(s, tenant: tenant)
                let viewStart = clock.now
                let rebuilt = fold.result()
                let (rows, outbox, unpublishable) = rebuilt.replacement(stored: stored)
                let readModels = rebuilt.readModels.values.sorted { $0.key < $1.key }
                let viewTime = clock.now - viewStart
                try ProjectionSQL.replaceAll(s, tenant: tenant, views: rows, readModels: readModels)
                try ProjectionSQL.writeOutbox(s, tenant: tenant, outbox)
                try ProjectionSQL.setCheckpoint(s, tenant: tenant, sequence: fold.sequence)
                try s.query("COMMIT")
                return SwapOutcome(events: fold.sequence, views: rows.count, changed: outbox.count, readModels: readModels.count,
                                   unpublishable: unpublishable, viewTime: viewTime, writeTime: clock.now - start - viewTime)
            } catch {
                _ = try? s.query("ROLLBACK")
                throw error
            }
        }
    }

    // MARK: - Verify

    /// Rebuilds `tenant` (or every tenant) in memory up to its checkpoint and compares it with the stored
    /// rows, in one repeatable-read snapshot per tenant (a runner may keep working meanwhile).
    public func verify(tenant: String? = nil) async throws -> [TenantVerification] {
        let all = try await tenants()
        let selected = tenant.map { t in all.filter { $0.tenant == t }.isEmpty ? [(t, Int64(0))] : all.filter { $0.tenant == t } } ?? all
        var out: [TenantVerification] = []
        for t in selected {
            out.append(try await verifyTenant(t.tenant))
        }
        return out
    }

    func verifyTenant(_ tenant: String) async throws -> TenantVerification {
        let pageSize = pageSize
        return try await store.pool.withSession { s in
            try s.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            do {
                let checkpoint = try ProjectionSQL.checkpoint(s, tenant: tenant)
                let headRows = try s.query("SELECT seq FROM tenant_heads WHERE tenant_id = $1", [tenant])
                let head = (headRows.rows.first?.first ?? nil).flatMap { Int64($0) } ?? 0
                let views = try ProjectionSQL.storedViews(s, tenant: tenant)
                let readModels = try ProjectionSQL.storedReadModels(s, tenant: tenant)
                let fold = try ProjectionSQL.fold(s, tenant: tenant, upTo: checkpoint, pageSize: pageSize)
                try s.query("COMMIT")
                var differences = ProjectionComparison.differences(stored: views, readModels: readModels, checkpoint: checkpoint, rebuilt: fold.result())
                if fold.sequence != checkpoint {
                    differences.insert(.viewVersionAhead(tenant: tenant, peer: "(checkpoint)", version: checkpoint, checkpoint: fold.sequence), at: 0)
                }
                return TenantVerification(tenant: tenant, checkpoint: checkpoint, head: head, views: views.count,
                                          readModels: readModels.count, differences: differences)
            } catch {
                _ = try? s.query("ROLLBACK")
                throw error
            }
        }
    }
}
