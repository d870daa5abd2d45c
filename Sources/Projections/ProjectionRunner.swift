import PostgresClient
import EventStore
import Logging
import RouteModel
import Synchronization

/// Advances the projections of every tenant, asynchronously behind the append: the I/O shell around
/// `TenantProjection`.
///
/// One batch = one transaction: take the tenant's projection lock with `pg_try_advisory_xact_lock`
/// (another runner holds it: skip, it is doing the work), read the checkpoint `FOR UPDATE`, read the
/// events after it, fold them into the cached projection, write the changed views, their outbox rows,
/// the read models and the new checkpoint, COMMIT. A runner killed mid-batch rolls back and frees the
/// lock; the next one continues from the checkpoint. The cache of a tenant is trusted only when its
/// sequence equals the checkpoint read under the lock; otherwise (another controller advanced the
/// tenant, or a batch failed) it is rebuilt from the events.
///
/// Which tenants need work: NOTIFY `routeplane_events` (payload: the tenant) from every append, plus
/// a periodic sweep of `tenant_heads` against the checkpoints, so a missed notification, a dead peer
/// controller or a failed batch only delays a tenant by one sweep interval. With a `PartitionOwnership`
/// (several controllers), `run()` works only on the tenants of the partitions this controller owns: other
/// tenants' NOTIFYs are ignored without a query, the sweep keeps only owned tenants, and a gained partition
/// is swept at once (a dead owner's tenants move within its handover time).
public actor ProjectionRunner {
    public struct Configuration: Sendable {
        /// Events per batch (per transaction).
        public var batchSize: Int
        public var mode: ProjectionMode
        /// How often `run()` compares `tenant_heads` with the checkpoints.
        public var sweepInterval: Duration
        /// Tenants processed concurrently by `run()` (each uses one pooled connection during a batch).
        public var workers: Int
        /// Test hook: runs inside the batch transaction after its writes, before COMMIT. Throwing (or
        /// terminating the session) aborts the batch as a crash would.
        public var beforeCommit: (@Sendable (ProjectionBatch, PostgresSession) throws -> Void)?
        /// A cached projection at most this many events behind the checkpoint (another runner advanced the
        /// tenant) is fast-forwarded; further behind, it is refolded from the first event.
        public var fastForwardLimit: Int64 = 100_000
        /// Profiling hook: each committed batch that advanced reports its stage timestamps.
        public var onBatchTiming: (@Sendable (ProjectionBatchTiming) -> Void)?

        public init(batchSize: Int = 1_000, mode: ProjectionMode = .incremental, sweepInterval: Duration = .seconds(2),
                    workers: Int = 2, beforeCommit: (@Sendable (ProjectionBatch, PostgresSession) throws -> Void)? = nil) {
            self.batchSize = batchSize
            self.mode = mode
            self.sweepInterval = sweepInterval
            self.workers = workers
            self.beforeCommit = beforeCommit
        }
    }

    /// A committed batch.
    public struct BatchSummary: Sendable, Equatable {
        public var tenant: String
        public var firstSequence: Int64
        public var lastSequence: Int64
        /// `peer_views` rows written or deleted (= outbox rows).
        public var viewsChanged: Int
        public var viewsComputed: Int
        public var affectedPeers: Int
        /// The cached state had to be rebuilt from the events first.
        public var reloaded: Bool
    }

    public enum Outcome: Sendable, Equatable {
        case advanced(BatchSummary)
        /// Nothing after the checkpoint.
        case caughtUp(sequence: Int64)
        /// Another runner holds the tenant's projection lock.
        case busy
    }

    public let store: EventStore
    public let configuration: Configuration
    /// nil: this runner works on every tenant.
    public let ownership: PartitionOwnership?
    let logger: Logger

    /// One cached projection per tenant. Guarded by a mutex because the batch folds it on the
    /// connection's thread, inside the transaction; the advisory lock means one batch at a time anyway.
    final class Slot: Sendable {
        let projection = Mutex<TenantProjection?>(nil)
    }
    private var slots: [String: Slot] = [:]
    /// Checkpoints this runner committed (or read), for local waiters.
    private var projected: [String: Int64] = [:]
    private var waiters: [String: [(id: Int, sequence: Int64, continuation: CheckedContinuation<Void, Never>)]] = [:]
    private var nextWaiterID = 0

    // Work queue of `run()`.
    private var pending: [String] = []
    private var queued: Set<String> = []
    private var active: Set<String> = []
    private var again: Set<String> = []
    private var idle: [CheckedContinuation<Void, Never>] = []
    private var stopping = false
    private var reportedFailures: [String: String] = [:]

    public init(store: EventStore, configuration: Configuration = .init(), ownership: PartitionOwnership? = nil,
                logger: Logger = Logger(label: "routeplane.projections")) {
        self.store = store
        self.configuration = configuration
        self.ownership = ownership
        self.logger = logger
    }

    /// Whether `run()` works on `tenant` (its partition is ours, or there is no partitioning).
    nonisolated func mine(_ tenant: String) -> Bool {
        ownership?.owns(tenant: tenant) ?? true
    }

    // MARK: - One tenant

    /// Runs one batch for `tenant`.
    public func processBatch(tenant: String) async throws -> Outcome {
        let slot = slots[tenant] ?? Slot()
        slots[tenant] = slot
        let configuration = configuration
        let outcome: Outcome
        do {
            outcome = try await store.pool.withSession { session in
                try Self.batch(session, tenant: tenant, slot: slot, configuration: configuration)
            }
        } catch {
            // The cache may be ahead of what committed: drop it (the checkpoint check would catch it too).
            slot.projection.withLock { $0 = nil }
            throw error
        }
        switch outcome {
        case .advanced(let s):
            committed(tenant: tenant, sequence: s.lastSequence)
            if s.viewsChanged >= ProjectionSQL.stagedViews { MallocControl.releaseFreedMemory() }
        case .caughtUp(let seq): committed(tenant: tenant, sequence: seq)
        case .busy: break
        }
        return outcome
    }

    /// Runs batches until `tenant` is caught up (as of the last batch's snapshot) or another runner holds it.
    @discardableResult
    public func catchUp(tenant: String) async throws -> [BatchSummary] {
        var done: [BatchSummary] = []
        while true {
            switch try await processBatch(tenant: tenant) {
            case .advanced(let s):
                done.append(s)
                if s.lastSequence - s.firstSequence + 1 < Int64(configuration.batchSize) { return done }
            case .caughtUp, .busy:
                return done
            }
        }
    }

    /// The batch transaction; runs on the connection's thread.
    static func batch(_ s: PostgresSession, tenant: String, slot: Slot, configuration: Configuration) throws -> Outcome {
        let began = configuration.onBatchTiming == nil ? 0 : ProjectionBatchTiming.now()
        try s.query("BEGIN")
        do {
            guard try ProjectionSQL.tryLock(s, tenant: tenant) else {
                try s.query("ROLLBACK")
                return .busy
            }
            let checkpoint = try ProjectionSQL.checkpointForUpdate(s, tenant: tenant)
            var reloaded = false
            let result: ProjectionBatch? = try slot.projection.withLock { cached in
                if let behind = cached?.sequence, behind < checkpoint, checkpoint - behind <= configuration.fastForwardLimit {
                    // Another controller's runner projected (behind, checkpoint]: fold those events into the cached
                    // state and take the views it stored, instead of refolding the tenant from its first event
                    // (with several controllers the tenant changes hands often; a refold per batch is O(tenant)).
                    var gap: [SequencedEvent] = []
                    while true {
                        let page = try ProjectionSQL.readEvents(s, tenant: tenant, after: gap.last?.sequence ?? behind, upTo: checkpoint, limit: 10_000)
                        gap += page
                        if page.count < 10_000 { break }
                    }
                    try cached!.fastForward(gap, changedViews: try ProjectionSQL.storedRefs(s, tenant: tenant, after: behind))
                }
                if cached?.sequence != checkpoint {
                    let fold = try ProjectionSQL.fold(s, tenant: tenant, upTo: checkpoint)
                    guard fold.sequence == checkpoint else {
                        throw ProjectionError.gap(tenant: tenant, expected: checkpoint, got: fold.sequence)
                    }
                    cached = fold.projection(stored: try ProjectionSQL.storedRefs(s, tenant: tenant))
                    reloaded = true
                }
                let events = try ProjectionSQL.readEvents(s, tenant: tenant, after: checkpoint, limit: configuration.batchSize)
                if events.isEmpty { return nil }
                return try cached!.apply(events, mode: configuration.mode)
            }
            guard let batch = result else {
                try s.query("COMMIT")
                return .caughtUp(sequence: checkpoint)
            }
            let applied = configuration.onBatchTiming == nil ? 0 : ProjectionBatchTiming.now()
            try ProjectionSQL.writeViewsAndOutbox(s, tenant: tenant, batch.views)
            try ProjectionSQL.writeReadModels(s, tenant: tenant, batch.readModels)
            try ProjectionSQL.setCheckpoint(s, tenant: tenant, sequence: batch.lastSequence)
            try configuration.beforeCommit?(batch, s)
            let written = configuration.onBatchTiming == nil ? 0 : ProjectionBatchTiming.now()
            try s.query("COMMIT")
            configuration.onBatchTiming?(ProjectionBatchTiming(
                tenant: tenant, began: began, applied: applied, written: written, committed: ProjectionBatchTiming.now(),
                lastSequence: batch.lastSequence, viewsChanged: batch.views.count))
            return .advanced(BatchSummary(tenant: tenant, firstSequence: batch.firstSequence, lastSequence: batch.lastSequence,
                                          viewsChanged: batch.views.count, viewsComputed: batch.viewsComputed,
                                          affectedPeers: batch.affectedPeers, reloaded: reloaded))
        } catch {
            _ = try? s.query("ROLLBACK")
            throw error
        }
    }

    /// Drops the cached projection of `tenant` (or of every tenant): the next batch reloads it.
    public func forget(tenant: String? = nil) {
        if let tenant { slots[tenant] = nil } else { slots = [:] }
    }

    // MARK: - Waiting for "projected up to N"

    /// The checkpoint of `tenant` in the database.
    public func projectedSequence(tenant: String) async throws -> Int64 {
        let seq = try await ProjectionCheckpoints(store: store).sequence(tenant: tenant)
        committed(tenant: tenant, sequence: seq)
        return seq
    }

    /// Returns once `tenant` is projected up to `sequence` (by this runner, seen at once, or by another
    /// controller's, seen by polling the checkpoint); throws `ProjectionError.timeout` after `timeout`.
    public func waitUntilProjected(tenant: String, sequence: Int64, timeout: Duration = .seconds(5)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var poll = Duration.milliseconds(2)
        while true {
            if (projected[tenant] ?? -1) >= sequence { return }
            let seq = try await projectedSequence(tenant: tenant)
            if seq >= sequence { return }
            let now = clock.now
            guard now < deadline else { throw ProjectionError.timeout(tenant: tenant, sequence: sequence, projected: seq) }
            await waitLocally(tenant: tenant, sequence: sequence, atMost: min(poll, deadline - now))
            poll = min(poll * 2, .milliseconds(50))
        }
    }

    private func waitLocally(tenant: String, sequence: Int64, atMost: Duration) async {
        let id = nextWaiterID
        nextWaiterID += 1
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiters[tenant, default: []].append((id, sequence, continuation))
            Task {
                try? await Task.sleep(for: atMost)
                self.timeOut(tenant: tenant, id: id)
            }
        }
    }

    private func timeOut(tenant: String, id: Int) {
        guard var list = waiters[tenant], let i = list.firstIndex(where: { $0.id == id }) else { return }
        list.remove(at: i).continuation.resume()
        waiters[tenant] = list.isEmpty ? nil : list
    }

    private func committed(tenant: String, sequence: Int64) {
        if sequence > (projected[tenant] ?? -1) { projected[tenant] = sequence }
        guard let list = waiters[tenant] else { return }
        let (ready, rest) = (list.filter { $0.sequence <= sequence }, list.filter { $0.sequence > sequence })
        waiters[tenant] = rest.isEmpty ? nil : rest
        for w in ready { w.continuation.resume() }
    }

    // MARK: - Following every tenant

    /// Tenants whose head is beyond their checkpoint.
    public func sweep() async throws -> [String] {
        let rows = try await store.pool.withSession { s in
            try s.query("""
                SELECT h.tenant_id FROM tenant_heads h LEFT JOIN projection_checkpoints c USING (tenant_id)
                 WHERE h.seq > coalesce(c.seq, 0) ORDER BY h.tenant_id
                """)
        }
        return rows.compactMap { $0.string("tenant_id") }
    }

    /// Asks `run()` to process `tenant` soon (e.g. right after an append in this process).
    public func nudge(_ tenant: String) {
        if active.contains(tenant) {
            again.insert(tenant)
        } else if queued.insert(tenant).inserted {
            pending.append(tenant)
            if !idle.isEmpty { idle.removeFirst().resume() }
        }
    }

    /// Follows NOTIFY and sweeps until the task is cancelled.
    public func run() async {
        stopping = false
        logger.info("projection runner started", metadata: ["mode": "\(configuration.mode.rawValue)", "workers": "\(configuration.workers)"])
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.listenLoop() }
                group.addTask { await self.sweepLoop() }
                if let ownership = self.ownership { group.addTask { await self.ownershipLoop(ownership) } }
                for _ in 0..<max(1, configuration.workers) { group.addTask { await self.workerLoop() } }
                await group.waitForAll()
            }
        } onCancel: {
            Task { await self.stop() }
        }
        logger.info("projection runner stopped")
    }

    private func stop() {
        stopping = true
        let sleepers = idle
        idle = []
        for s in sleepers { s.resume() }
    }

    private func nextTenant() async -> String? {
        while !stopping && !Task.isCancelled {
            if !pending.isEmpty {
                let tenant = pending.removeFirst()
                queued.remove(tenant)
                active.insert(tenant)
                return tenant
            }
            await withCheckedContinuation { idle.append($0) }
        }
        return nil
    }

    private func finished(_ tenant: String) {
        active.remove(tenant)
        if again.remove(tenant) != nil { nudge(tenant) }
    }

    private func workerLoop() async {
        while let tenant = await nextTenant() {
            logger.trace("projecting", metadata: ["tenant": "\(tenant)"])
            do {
                try await catchUp(tenant: tenant)
                if reportedFailures.removeValue(forKey: tenant) != nil {
                    logger.notice("projection of tenant recovered", metadata: ["tenant": "\(tenant)"])
                }
            } catch {
                let text = "\(error)"
                if reportedFailures[tenant] != text {
                    reportedFailures[tenant] = text
                    logger.error("projection batch failed; retried at the next sweep", metadata: ["tenant": "\(tenant)", "error": "\(text)"])
                }
            }
            finished(tenant)
        }
    }

    private func sweepLoop() async {
        var down = false
        while !Task.isCancelled && !stopping {
            do {
                for tenant in try await sweep() where mine(tenant) { nudge(tenant) }
                if down { logger.notice("projection sweep works again") }
                down = false
            } catch {
                if !down { logger.warning("projection sweep failed; retrying", metadata: ["error": "\(error)"]) }
                down = true
            }
            try? await Task.sleep(for: configuration.sweepInterval)
        }
    }

    /// Sweeps at once when the owned partitions change (a gained partition's tenants may be behind).
    private func ownershipLoop(_ ownership: PartitionOwnership) async {
        for await owned in ownership.updates() {
            if stopping { break }
            logger.debug("owned partitions changed; sweeping", metadata: ["owned": "\(owned.count)"])
            if let behind = try? await sweep() { for t in behind where mine(t) { nudge(t) } }
        }
    }

    private func listenLoop() async {
        for await event in store.pool.notifications(channels: ["routeplane_events"], label: "projection-listen") {
            if stopping { break }
            switch event {
            case let .notification(note):
                logger.trace("notified", metadata: ["tenant": "\(note.payload)"])
                if note.channel == "routeplane_events", mine(note.payload) { nudge(note.payload) }
            case let .listening(recovered):
                if recovered { logger.notice("projection runner listening again") }
                // Notifications sent while nobody listened are lost: look at every tenant.
                if let behind = try? await sweep() { for t in behind where mine(t) { nudge(t) } }
            case let .unavailable(reason):
                logger.warning("projection runner cannot LISTEN; relying on the sweep", metadata: ["error": "\(reason)"])
            case let .lost(reason):
                logger.warning("projection runner lost its LISTEN connection", metadata: ["error": "\(reason)"])
            case .idle:
                break
            }
        }
    }
}

/// Reads checkpoints, for a controller that did not run the batch itself.
public struct ProjectionCheckpoints: Sendable {
    public let store: EventStore

    public init(store: EventStore) { self.store = store }

    /// The tenant is projected up to this sequence (0 when never).
    public func sequence(tenant: String) async throws -> Int64 {
        try await store.pool.withSession { s in try ProjectionSQL.checkpoint(s, tenant: tenant) }
    }

    /// Polls the checkpoint (2 ms, doubling up to 50 ms) until it reaches `sequence`.
    public func waitUntilProjected(tenant: String, sequence: Int64, timeout: Duration = .seconds(5)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var poll = Duration.milliseconds(2)
        while true {
            let seq = try await self.sequence(tenant: tenant)
            if seq >= sequence { return }
            guard clock.now < deadline else { throw ProjectionError.timeout(tenant: tenant, sequence: sequence, projected: seq) }
            try await Task.sleep(for: min(poll, deadline - clock.now))
            poll = min(poll * 2, .milliseconds(50))
        }
    }
}
