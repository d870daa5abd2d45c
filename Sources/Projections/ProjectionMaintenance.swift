import PostgresClient
import EventStore
import Logging
import RouteModel

/// `rebuild` and `verify`: the I/O shell around `TenantFold` and `ProjectionComparison`.
public struct ProjectionMaintenance: Sendable {
    public let store: EventStore
    /// Events read per query.
    public var pageSize: Int
    /// Pages `rebuild` reads ahead of its fold, each on its own pooled connection (so one is decoded
    /// while PostgreSQL produces the next). The swap needs one more connection.
    public var readAhead: Int

    public init(store: EventStore, pageSize: Int = 10_000, readAhead: Int = 2) {
        self.store = store
        self.pageSize = pageSize
        self.readAhead = max(1, readAhead)
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
        /// Views whose digest differed from the stored one (or new / removed peers) and were published (outbox
        /// rows written, or an unsent one at the head version given the repaired content).
        public var changedViews = 0
        /// Changed views that could not be republished: their stored version already is the tenant's head and
        /// the outbox row at that version was sent with other content (see `RebuiltTenant.Replacement.atHead`).
        /// Repaired; agents get them with the next event that changes them.
        public var unpublishable: [String: [PeerID]] = [:]
        public var readModels = 0
        public var elapsed = Duration.zero
        /// Time spent reading and folding events (the rest is computing views and writing rows).
        public var foldTime = Duration.zero
        /// Time spent computing views and read models from the folded states (ahead of each swap; again in
        /// the swap when events arrived meanwhile) and the swap's replacement plan.
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
                SELECT t.tenant_id, coalesce(h.seq, 0) AS head FROM
                  (SELECT tenant_id FROM tenant_heads UNION SELECT tenant_id FROM projection_checkpoints) t
                  LEFT JOIN tenant_heads h USING (tenant_id)
                 ORDER BY t.tenant_id
                """)
        }
        return rows.compactMap { row in
            guard let t = row.string("tenant_id"), let h = row.int64("head") else { return nil }
            return (t, h)
        }
    }

    // MARK: - Rebuild

    /// Replays `tenant` (or every tenant) from event zero and swaps the result in, one transaction per
    /// tenant under its projection lock. Writes outbox rows for the views that differ from the stored ones.
    ///
    /// A pipeline of three stages, so PostgreSQL's work and this process's overlap on several cores:
    /// `EventPages` reads and decodes the events (up to `readAhead` pages ahead, each on its own pooled
    /// connection, crossing tenant boundaries); a task folds the next tenant and computes its views and
    /// read models; the current tenant's swap writes its rows.
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
        let pages = EventPages(store: store, tenants: selected, pageSize: pageSize, readAhead: readAhead)
        /// Folds tenant `i` from its pages and computes its views and read models (before its swap, so
        /// that this overlaps the previous tenant's writes).
        func startFold(_ i: Int) -> Task<Folded, any Error> {
            let tenant = selected[i].tenant
            let base = bases[i]
            return Task {
                let foldStart = clock.now
                var fold = TenantFold(tenant: tenant)
                while let page = try await pages.next(of: i) {
                    try fold.fold(page)
                    progress(Progress(events: base + fold.sequence, totalEvents: max(total, base + fold.sequence), tenants: i,
                                      totalTenants: count, elapsed: clock.now - start))
                }
                let viewStart = clock.now
                let rebuilt = fold.result()
                return Folded(fold: fold, rebuilt: rebuilt, foldTime: viewStart - foldStart, viewTime: clock.now - viewStart)
            }
        }
        var next = selected.isEmpty ? nil : startFold(0)
        defer {
            next?.cancel()
            Task { await pages.cancel() }
        }
        for (i, t) in selected.enumerated() {
            guard let current = next else { break }
            let folded = try await current.value
            next = i + 1 < count ? startFold(i + 1) : nil
            report.foldTime += folded.foldTime
            report.viewTime += folded.viewTime
            let outcome = try await swap(tenant: t.tenant, folded)
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

    /// A tenant folded from its pages, with the views and read models of that state.
    struct Folded: Sendable {
        var fold: TenantFold
        var rebuilt: RebuiltTenant
        var foldTime: Duration
        var viewTime: Duration
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

    /// One transaction: wait for the tenant's projection lock, fold the events appended since the fold
    /// (and then compute the views again), replace the tenant's rows, write outbox rows for changed views,
    /// set the checkpoint.
    func swap(tenant: String, _ folded: Folded) async throws -> SwapOutcome {
        let pageSize = pageSize
        return try await store.pool.withSession { s in
            let clock = ContinuousClock()
            let start = clock.now
            try s.query("BEGIN")
            do {
                try ProjectionSQL.lock(s, tenant: tenant)
                try ProjectionSQL.preferFastCompression(s)
                _ = try ProjectionSQL.checkpointForUpdate(s, tenant: tenant)
                var fold = folded.fold
                while true {
                    let more = try ProjectionSQL.readEvents(s, tenant: tenant, after: fold.sequence, limit: pageSize)
                    if more.isEmpty { break }
                    try fold.fold(more)
                }
                let stored = try ProjectionSQL.storedRefs(s, tenant: tenant)
                let viewStart = clock.now
                let rebuilt = fold.sequence == folded.fold.sequence ? folded.rebuilt : fold.result()
                var plan = rebuilt.replacement(stored: stored)
                let readModels = rebuilt.readModels.values.sorted { $0.key < $1.key }
                let viewTime = clock.now - viewStart
                try ProjectionSQL.replaceAll(s, tenant: tenant, views: plan.rows, readModels: readModels)
                let republished = try Self.publishAtHead(s, tenant: tenant, &plan)
                try ProjectionSQL.writeOutboxFromViews(s, tenant: tenant, plan.outbox)
                try ProjectionSQL.setCheckpoint(s, tenant: tenant, sequence: fold.sequence)
                try s.query("COMMIT")
                return SwapOutcome(events: fold.sequence, views: plan.rows.count, changed: plan.outbox.count + republished,
                                   readModels: readModels.count, unpublishable: plan.unpublishable, viewTime: viewTime,
                                   writeTime: clock.now - start - viewTime)
            } catch {
                _ = try? s.query("ROLLBACK")
                throw error
            }
        }
    }

    /// Resolves `plan.atHead` (changed views whose stored version already is the head) against the outbox
    /// row at that version: none → add it to `plan.outbox`; unsent → replace its content (returns how many);
    /// same content → nothing to do; sent with another content → `plan.unpublishable`.
    static func publishAtHead(_ s: PostgresSession, tenant: String, _ plan: inout RebuiltTenant.Replacement) throws -> Int {
        guard !plan.atHead.isEmpty else { return 0 }
        let existing = try ProjectionSQL.outboxAt(s, tenant: tenant, plan.atHead.map { ($0.peer, $0.version) })
        var replaced = 0
        for u in plan.atHead {
            guard let row = existing[u.peer] else {
                plan.outbox.append(u)
                continue
            }
            if row.digest == u.digest && row.removed == u.removed { continue }
            if !row.sent, try ProjectionSQL.replaceUnsentOutbox(s, tenant: tenant, u) {
                replaced += 1
            } else {
                plan.unpublishable.append(u.peer)
            }
        }
        plan.outbox.sort { $0.peer < $1.peer }
        plan.unpublishable.sort()
        return replaced
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
                let head = headRows.first?.int64("seq") ?? 0
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

/// The events of several tenants, in order, in pages planned from their heads (sequences are dense:
/// page k of a tenant is `k * pageSize < seq <= (k + 1) * pageSize`), read and decoded up to `readAhead`
/// pages ahead of the consumer, each read on its own pooled connection. Events appended after the heads
/// were listed are not read here: the swap folds them under the tenant's lock.
actor EventPages {
    private struct Request: Sendable {
        var tenantIndex: Int
        var tenant: String
        var after: Int64
        var upTo: Int64
    }

    private let store: EventStore
    private let pageSize: Int
    private let readAhead: Int
    private let plan: [Request]
    private var planned = 0
    private var ahead: [(tenantIndex: Int, task: Task<[SequencedEvent], any Error>)] = []

    init(store: EventStore, tenants: [(tenant: String, head: Int64)], pageSize: Int, readAhead: Int) {
        self.store = store
        self.pageSize = pageSize
        self.readAhead = readAhead
        var plan: [Request] = []
        for (i, t) in tenants.enumerated() {
            var after: Int64 = 0
            repeat {
                let upTo = min(after + Int64(pageSize), t.head)
                plan.append(Request(tenantIndex: i, tenant: t.tenant, after: after, upTo: upTo))
                after = upTo
            } while after < t.head
        }
        self.plan = plan
    }

    /// The next page of tenant `index` (the tenants are consumed in order), or nil when it has no more.
    func next(of index: Int) async throws -> [SequencedEvent]? {
        fill()
        guard let first = ahead.first, first.tenantIndex == index else { return nil }
        ahead.removeFirst()
        fill()
        return try await first.task.value
    }

    func cancel() {
        for a in ahead { a.task.cancel() }
        ahead.removeAll()
        planned = plan.count
    }

    private func fill() {
        while ahead.count < readAhead && planned < plan.count {
            let r = plan[planned]
            planned += 1
            let store = store
            let limit = pageSize
            ahead.append((r.tenantIndex, Task {
                try Task.checkCancellation()
                return try await store.pool.withSession { s in
                    try ProjectionSQL.readEvents(s, tenant: r.tenant, after: r.after, upTo: r.upTo, limit: limit)
                }
            }))
        }
    }
}
