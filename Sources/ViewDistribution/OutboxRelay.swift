import PostgresClient
import EventStore
import Foundation
import Logging
import NATSClient
import Synchronization

/// Publishes outbox rows to JetStream: the I/O shell around `OutboxRelayStateMachine`.
///
/// One batch = one PostgreSQL transaction: claim, publish, mark sent, commit.
/// - Claim: unsent rows in id order (oldest first), each only if this transaction gets its *peer's lock*, a
///   transaction-scoped advisory lock tried without waiting: a peer another relay holds is skipped (as SKIP LOCKED
///   skips a row), so at most one relay handles a peer at a time. Then, in a new statement (a snapshot taken
///   after the locks), each locked peer's newest row.
/// - Publish that newest row of each locked peer (if still unsent), signed by the relay's `ViewSigner`, all in one
///   pipelined batch, each with `Nats-Msg-Id = tenant:peer:version:<HMAC>` (`ViewSigner.messageID`: the same row gets
///   the same id from every relay holding the same key), and wait for the acknowledgements.
/// - Mark sent, for each acknowledged peer, its rows from its oldest unsent candidate up to the published version
///   (older versions are superseded: a view is the full state, agents apply only newer versions), then COMMIT. A
///   peer whose newest row another relay published meanwhile only gets its older rows marked (superseded).
/// So per peer, versions reach the stream in increasing order and the stream's last message is the highest
/// version committed so far. A relay that dies after publishing and before COMMIT leaves its rows unsent and
/// unlocked; the next relay publishes the same (or a newer) version, and JetStream drops a same-id duplicate
/// within the stream's duplicate window (an agent ignores an equal version anyway).
/// A transaction holds one lock-table entry per locked peer (at most the batch size) until COMMIT; PostgreSQL's
/// shared lock table has `max_locks_per_transaction × max_connections` entries (6,400 by default), so keep
/// batch size × workers × controllers well below that.
///
/// Workers: `run()` drives `configuration.workers` batch loops (each with its own state machine, JetStream publisher
/// and claim transaction), so one claims and marks in PostgreSQL while another waits for JetStream's acks; they
/// share the outbox exactly as several relays in several controllers do (the per-peer lock).
///
/// NATS down: nothing is claimed (no transaction held open), the relay backs off (capped, with jitter) and wakes
/// when libnats reconnects; it logs once per state change. Work is found by `LISTEN routeplane_outbox` (the
/// projection runner NOTIFYs after writing outbox rows) with a poll fallback.
///
/// With a `PartitionOwnership` (several controllers) a relay claims only rows of tenants in the partitions its
/// controller owns (the claim filters on the tenant's partition before it tries a peer's lock), ignores other
/// tenants' NOTIFYs without a query, claims nothing while it owns nothing, and looks at once when it gains a partition.
public final class OutboxRelay: Sendable {
    public struct Configuration: Sendable {
        public var stream: StreamSpec
        public var machine: OutboxRelayStateMachine.Configuration
        /// How long a batch waits for its acknowledgements (the claim transaction stays open that long at most).
        public var publishTimeout: Duration
        /// For logs.
        public var name: String
        /// Batch loops `run()` drives concurrently (at least 1). Each holds one pooled database connection while
        /// it has a batch in flight.
        public var workers: Int
        /// Test hook: runs after the batch's acknowledgements, before rows are marked sent and the transaction
        /// commits. Throwing (or terminating the session) is a relay killed between publish and mark-sent.
        public var afterPublish: (@Sendable ([PublishedRow], PostgresSession) throws -> Void)?
        /// Profiling hook: each batch that claimed something reports its stage timestamps (after COMMIT).
        public var onBatchTiming: (@Sendable (RelayBatchTiming) -> Void)?

        public init(stream: StreamSpec = .views, machine: OutboxRelayStateMachine.Configuration = .init(),
                    publishTimeout: Duration = .seconds(5), name: String = "outbox-relay", workers: Int = 2,
                    afterPublish: (@Sendable ([PublishedRow], PostgresSession) throws -> Void)? = nil) {
            self.stream = stream
            self.machine = machine
            self.publishTimeout = publishTimeout
            self.name = name
            self.workers = max(1, workers)
            self.afterPublish = afterPublish
        }
    }

    /// One claimed peer's message and what JetStream answered.
    public struct PublishedRow: Sendable, Equatable {
        public var outboxID: Int64
        public var tenant: String
        public var peer: String
        public var version: Int64
        public var result: PublishResult
    }

    /// Counters since start (plain values; the controller exports them).
    public struct Metrics: Sendable, Equatable {
        /// Messages acknowledged and committed as sent (including acks that said "duplicate").
        public var published: UInt64 = 0
        /// Of those, acknowledgements that said the server already had the message id.
        public var duplicates: UInt64 = 0
        /// Older unsent rows marked sent because a newer version of the same peer was published.
        public var superseded: UInt64 = 0
        /// Batches (or pre-claim checks) that failed in part or whole.
        public var failedAttempts: UInt64 = 0
        public var batches: UInt64 = 0
        /// First publish → last acknowledgement of the most recent batch that published something.
        public var lastPublishLatency: Duration? = nil
        public var lastBatchSize: Int = 0
        public var health: OutboxRelayStateMachine.Health = .starting
    }

    /// Unsent rows (including rows whose ids cannot be subjects, which stay unsent).
    public struct Depth: Sendable, Equatable {
        public var pending: Int64
        public var oldestPendingAge: Duration?
    }

    public let store: EventStore
    public let connection: NATSConnection
    public let configuration: Configuration
    /// Signs every published envelope (and keys its message ids).
    public let signer: ViewSigner
    /// nil: this relay claims rows of every tenant.
    public let ownership: PartitionOwnership?
    let logger: Logger
    /// Idle publishers (each has its own ack inbox and handles one batch at a time); a batch takes one or makes one.
    private let publisherPool = Mutex<[JetStreamPublisher]>([])
    private let counters = Mutex(Metrics())
    /// Each worker's state (`metrics.health` reports the worst).
    private let workerHealth = Mutex<[OutboxRelayStateMachine.Health]>([])

    public init(store: EventStore, connection: NATSConnection, signer: ViewSigner, configuration: Configuration = .init(),
                ownership: PartitionOwnership? = nil, logger: Logger = Logger(label: "routeplane.outbox-relay")) {
        self.store = store
        self.connection = connection
        self.signer = signer
        self.ownership = ownership
        self.configuration = configuration
        self.logger = logger
    }

    public var metrics: Metrics { counters.withLock { $0 } }

    private func setHealth(_ health: OutboxRelayStateMachine.Health, worker: Int) {
        let overall = workerHealth.withLock { all -> OutboxRelayStateMachine.Health in
            if all.count <= worker { all += Array(repeating: .starting, count: worker + 1 - all.count) }
            all[worker] = health
            return all.first { $0 != .running && $0 != .starting } ?? (all.contains(.running) ? .running : .starting)
        }
        counters.withLock { $0.health = overall }
    }

    /// `SELECT count(*) … WHERE sent_at IS NULL` (the partial index `outbox_pending` serves it).
    public func depth() async throws -> Depth {
        let rows = try await store.pool.withSession { s in
            try s.query("SELECT count(*) AS pending, extract(epoch FROM now() - min(created_at))::float8 AS age FROM outbox WHERE sent_at IS NULL")
        }
        let pending = rows.first?.int64("pending") ?? 0
        let age = rows.first?.double("age").map { Duration.milliseconds(Int64(($0 * 1000).rounded())) }
        return Depth(pending: pending, oldestPendingAge: age)
    }

    /// Creates (or updates) the stream, idempotently. `run()` does it at start and after "no stream" answers.
    @discardableResult
    public func ensureStream() async throws -> StreamState {
        let state = try await JetStream(connection: connection).ensureStream(configuration.stream)
        returnPublisher(try takePublisher())
        return state
    }

    private func takePublisher() throws -> JetStreamPublisher {
        if let idle = publisherPool.withLock({ $0.popLast() }) { return idle }
        return try JetStreamPublisher.forViews(connection: connection, stream: configuration.stream.name)
    }

    private func returnPublisher(_ publisher: JetStreamPublisher) {
        publisherPool.withLock { $0.append(publisher) }
    }

    // MARK: - One batch

    /// Claims, publishes and marks one batch (one transaction). Never throws: failures are in the outcome.
    public func runBatch() async -> OutboxRelayStateMachine.BatchOutcome {
        guard connection.isConnected else {
            counters.withLock { $0.failedAttempts += 1 }
            return .init(claimed: 0, published: 0, failure: .natsUnavailable("NATS connection \(connection.status)"))
        }
        // Which partitions to claim from: nil = every tenant (no partitioning, or we own them all).
        var partitionFilter: [Int]?
        if let ownership {
            let owned = ownership.owned
            if owned.isEmpty {
                return .init(claimed: 0, published: 0, failure: nil)
            }
            if owned.count < ownership.partitions.count { partitionFilter = owned.sorted() }
        }
        let candidates = partitionFilter == nil ? Self.candidatesSQL : Self.candidatesSQL(partitions: ownership!.partitions)
        let filter = partitionFilter
        let publisher: JetStreamPublisher
        do {
            publisher = try takePublisher()
        } catch {
            counters.withLock { $0.failedAttempts += 1 }
            return .init(claimed: 0, published: 0, failure: .natsUnavailable("\(error)"))
        }
        let limit = configuration.machine.batchSize
        let timeout = configuration.publishTimeout
        let hook = configuration.afterPublish
        let observe = configuration.onBatchTiming
        let signer = self.signer
        let report: BatchReport
        defer { returnPublisher(publisher) }
        do {
            report = try await store.pool.withSession { s in
                try Self.batch(s, candidatesSQL: candidates, partitions: filter, limit: limit, publisher: publisher,
                               signer: signer, timeout: timeout, hook: hook, observe: observe)
            }
        } catch {
            counters.withLock { $0.failedAttempts += 1 }
            return .init(claimed: 0, published: 0, failure: .database("\(error)"))
        }
        counters.withLock { m in
            m.batches += report.claimed > 0 ? 1 : 0
            m.published += UInt64(report.published)
            m.duplicates += UInt64(report.duplicates)
            m.superseded += UInt64(max(report.marked - report.published, 0))
            if report.failure != nil { m.failedAttempts += 1 }
            if report.published > 0 {
                m.lastPublishLatency = report.latency
                m.lastBatchSize = report.claimed
            }
        }
        return .init(claimed: report.claimed, published: report.published, failure: report.failure)
    }

    struct BatchReport: Sendable {
        var claimed = 0
        var published = 0
        var duplicates = 0
        var marked = 0
        var latency: Duration = .zero
        var failure: OutboxRelayStateMachine.Failure?
    }

    /// Candidates: unsent rows in id order (oldest first), each only if this transaction gets its peer's lock
    /// (`pg_try_advisory_xact_lock`, re-entrant for a peer's further rows; a peer another relay holds is skipped,
    /// as SKIP LOCKED skips a locked row). The filter runs on the rows the ordered scan of `outbox_pending` yields,
    /// and the scan stops at the LIMIT, so only the returned rows' peers are locked (at most `limit` locks, held
    /// until COMMIT). Why a peer lock and not the row lock of its oldest unsent row, as before: deciding "oldest
    /// unsent row of its peer" needed a per-row `NOT EXISTS` over the unsent rows, and with the statistics of a
    /// drained outbox (autoanalyze sees `sent_at IS NULL` on ~0 rows, the partial indexes as empty) the planner
    /// served it by scanning every unsent row for every candidate: 30 ms to 1.2 s per 256-row batch at 10,000
    /// unsent rows (auto_explain, `bench propagation --agents 10000`). Here no lookup can be planned that way.
    static let candidatesSQL = """
        SELECT o.id, o.tenant_id, o.peer_id, o.version
          FROM outbox o
         WHERE o.sent_at IS NULL
           AND o.tenant_id ~ '\(ViewSubjects.tokenPattern)' AND o.peer_id ~ '\(ViewSubjects.tokenPattern)'
           AND pg_try_advisory_xact_lock(hashtextextended('routeplane.outbox:' || o.tenant_id || ':' || o.peer_id, 0))
         ORDER BY o.id
         LIMIT $1
        """

    /// `candidatesSQL` for the rows of some partitions only (`$2`: the partitions). The CASE makes the partition test
    /// run before the peer's lock is tried, so a relay never locks (and so never hides from its owner) a peer of a
    /// partition it does not own.
    static func candidatesSQL(partitions: TenantPartitions) -> String {
        """
        SELECT o.id, o.tenant_id, o.peer_id, o.version
          FROM outbox o
         WHERE o.sent_at IS NULL
           AND o.tenant_id ~ '\(ViewSubjects.tokenPattern)' AND o.peer_id ~ '\(ViewSubjects.tokenPattern)'
           AND CASE WHEN \(partitions.sqlExpression(tenantColumn: "o.tenant_id")) = ANY($2::int4[])
                    THEN pg_try_advisory_xact_lock(hashtextextended('routeplane.outbox:' || o.tenant_id || ':' || o.peer_id, 0))
                    ELSE false END
         ORDER BY o.id
         LIMIT $1
        """
    }

    /// For each locked peer, in a statement (so a snapshot) taken after the lock: its rows from its oldest
    /// candidate version up (the newest among them is what to publish; the unsent ones are what to mark). One
    /// backward range scan of the `(tenant_id, peer_id, version)` unique index per peer (OFFSET 0 keeps it a
    /// per-peer lookup). No WHERE here mentions `sent_at`, so no lookup can be planned on a partial index, whatever
    /// the statistics say. Usually one row per peer; more only when a peer had several unsent versions.
    static let resolveSQL = """
        SELECT p.tenant_id, p.peer_id, x.id, x.version, x.sent_at IS NULL AS unsent, x.digest, x.body, x.removed,
               (extract(epoch FROM x.created_at) * 1000)::bigint AS created_at_millis
          FROM unnest($1::text[], $2::text[], $3::bigint[]) AS p(tenant_id, peer_id, from_version)
          CROSS JOIN LATERAL (
                SELECT r.id, r.version, r.sent_at, r.digest, r.body, r.removed, r.created_at
                  FROM outbox r
                 WHERE r.tenant_id = p.tenant_id AND r.peer_id = p.peer_id AND r.version >= p.from_version
                 ORDER BY r.version DESC
                OFFSET 0) x
        """

    /// Sent with BEGIN, in the same round trip. The candidates must come from the ordered scan of `outbox_pending`
    /// that stops at the LIMIT (a bitmap scan plus sort would evaluate the lock filter on every unsent row); with
    /// statistics that call the outbox empty, both look equally cheap to the planner. Without seq scans, bitmap
    /// scans, sorts, hash and merge joins the ordered scan is the only plan left. JIT off: the disabled
    /// alternatives' cost penalty would otherwise cross `jit_above_cost` and compile the query (~1 s). The other
    /// statements are unaffected (nested loops over index ranges or keys). Only this transaction (SET LOCAL).
    static let beginSQL = """
        BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off;
        SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off
        """

    /// Marks the given rows sent: primary-key lookups. No `sent_at IS NULL` condition: with it the planner may
    /// (statistics of a drained outbox) scan a whole partial index instead (measured: 230 ms for 256 rows at
    /// 10,000 unsent). The ids are of rows unsent in a snapshot taken under the peers' locks, and only a holder
    /// of a peer's lock marks its rows, so they are still unsent.
    static let markSQL = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"

    /// The batch transaction; runs on the pooled connection's thread (the publish blocks that thread, never a
    /// cooperative one).
    static func batch(_ s: PostgresSession, candidatesSQL: String = candidatesSQL, partitions: [Int]? = nil, limit: Int,
                      publisher: JetStreamPublisher, signer: ViewSigner, timeout: Duration,
                      hook: (@Sendable ([PublishedRow], PostgresSession) throws -> Void)?,
                      observe: (@Sendable (RelayBatchTiming) -> Void)? = nil) throws -> BatchReport {
        var timing = RelayBatchTiming(began: observe == nil ? 0 : RelayBatchTiming.now())
        try s.script(beginSQL)
        do {
            let candidates = try s.query(prepared: candidatesSQL,
                                         [String(limit)] + (partitions.map { [PostgresArray.literal($0.map(String.init))] } ?? []))
            var report = BatchReport(claimed: candidates.count)
            let peers = OutboxClaim.lockedPeers(try candidates.map { r in
                guard let tenant = r.string("tenant_id"), let peer = r.string("peer_id"), let version = r.int64("version") else {
                    throw EventStoreError.invalidResponse("outbox row with NULL fields")
                }
                return OutboxClaim.Candidate(tenant: tenant, peer: peer, version: version)
            })
            guard !peers.isEmpty else {
                try s.query("COMMIT")
                return report
            }
            let resolved = try s.query(prepared: resolveSQL, [
                PostgresArray.literal(peers.map(\.tenant)), PostgresArray.literal(peers.map(\.peer)),
                PostgresArray.literal(peers.map { String($0.fromVersion) }),
            ])
            var peerRows: [OutboxClaim.PeerRow] = []
            var payloads: [Int64: (digest: String, body: String, removed: Bool, createdAtMillis: Int64)] = [:]
            peerRows.reserveCapacity(resolved.count)
            for r in resolved {
                guard let tenant = r.string("tenant_id"), let peer = r.string("peer_id"), let id = r.int64("id"), let version = r.int64("version"),
                      let digest = r.string("digest"), let body = r.string("body") else {
                    throw EventStoreError.invalidResponse("outbox row with NULL fields")
                }
                peerRows.append(OutboxClaim.PeerRow(tenant: tenant, peer: peer, id: id, version: version, unsent: r.bool("unsent") == true))
                payloads[id] = (digest, body, r.bool("removed") == true, r.int64("created_at_millis") ?? 0)
            }
            let plan = OutboxClaim.plan(peerRows)
            if observe != nil { timing.claimed = RelayBatchTiming.now() }
            var rows: [PublishedRow] = []
            var messages: [OutgoingMessage] = []
            rows.reserveCapacity(plan.publish.count)
            messages.reserveCapacity(plan.publish.count)
            for p in plan.publish {
                guard let payload = payloads[p.newest.id] else { throw EventStoreError.invalidResponse("outbox row \(p.newest.id) missing") }
                let envelope = ViewEnvelope(tenant: p.newest.tenant, peer: p.newest.peer, version: p.newest.version, digest: payload.digest,
                                            removed: payload.removed, createdAtMillis: payload.createdAtMillis, view: Array(payload.body.utf8),
                                            signedBy: signer)
                // The candidates only have ids matching the token pattern, so the subject is valid.
                let subject = (try? envelope.subject) ?? ""
                messages.append(OutgoingMessage(subject: subject, messageID: envelope.messageID(using: signer), payload: envelope.encoded()))
                rows.append(PublishedRow(outboxID: p.newest.id, tenant: p.newest.tenant, peer: p.newest.peer, version: p.newest.version,
                                         result: .failed(.timeout)))
            }
            if observe != nil { timing.signed = RelayBatchTiming.now() }
            let clock = ContinuousClock()
            let started = clock.now
            let results = publisher.publishBlocking(messages, timeout: timeout)
            report.latency = clock.now - started
            if observe != nil { timing.acknowledged = RelayBatchTiming.now() }
            for i in rows.indices { rows[i].result = results[i] }
            try hook?(rows, s)
            let toMark = plan.superseded + rows.indices.filter { rows[$0].result.isStored }.flatMap { plan.publish[$0].markOnAck }
            if !toMark.isEmpty {
                report.marked = try s.query(prepared: markSQL, [PostgresArray.literal(toMark.map(String.init))]).affectedRows
            }
            try s.query("COMMIT")
            if let observe {
                timing.committed = RelayBatchTiming.now()
                timing.claimedRows = candidates.count
                timing.messages = messages.count
                observe(timing)
            }
            let acknowledged = rows.filter { $0.result.isStored }
            report.published = acknowledged.count
            report.duplicates = acknowledged.filter { if case .stored(_, true) = $0.result { true } else { false } }.count
            if let failed = rows.first(where: { !$0.result.isStored }), case let .failed(why) = failed.result {
                report.failure = failure(why, failedCount: rows.count - acknowledged.count)
            }
            return report
        } catch {
            _ = try? s.query("ROLLBACK")
            throw error
        }
    }

    static func failure(_ why: PublishFailure, failedCount: Int) -> OutboxRelayStateMachine.Failure {
        switch why {
        case .noStream: .streamMissing("\(failedCount) message(s): no stream answered")
        case let .notConnected(reason): .natsUnavailable("\(failedCount) message(s) unacknowledged: \(reason)")
        default: .publishFailed("\(failedCount) message(s) not acknowledged: \(why)")
        }
    }

    // MARK: - Following the outbox

    /// Publishes until the task is cancelled.
    public func run() async {
        let wakes = WakeSignals((0..<configuration.workers).map { _ in WakeSignal() })
        logger.info("outbox relay started", metadata: ["relay": "\(configuration.name)", "stream": "\(configuration.stream.name)",
                                                       "workers": "\(configuration.workers)"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listenLoop(wakes) }
            group.addTask { await self.watchConnection(wakes) }
            if let ownership = self.ownership {
                // A gained partition may have unsent rows: look at once.
                group.addTask { for await _ in ownership.updates() { wakes.signal(.outbox) } }
            }
            for (worker, wake) in wakes.all.enumerated() {
                group.addTask { await self.mainLoop(wake, worker: worker) }
            }
            await group.waitForAll()
        }
        logger.info("outbox relay stopped", metadata: ["relay": "\(configuration.name)"])
    }

    private func mainLoop(_ wake: WakeSignal, worker: Int) async {
        var machine = OutboxRelayStateMachine(configuration: configuration.machine)
        var actions = machine.start()
        while !Task.isCancelled {
            var next: [OutboxRelayStateMachine.Action] = []
            for action in actions {
                switch action {
                case let .log(event):
                    log(event, worker: worker)
                case .ensureStream:
                    do {
                        try await ensureStream()
                        next = machine.streamEnsured()
                    } catch {
                        let text = "\(error)"
                        next = machine.failed(connection.isConnected ? .streamMissing("cannot ensure stream: \(text)") : .natsUnavailable(text))
                    }
                case .claimBatch:
                    next = machine.batchFinished(await runBatch())
                case let .idle(duration):
                    _ = await wake.wait(timeout: duration, accepting: [.outbox, .natsUp])
                    next = machine.woken()
                case let .backOff(duration):
                    _ = await wake.wait(timeout: duration, accepting: [.natsUp])
                    next = machine.woken()
                }
            }
            setHealth(machine.health, worker: worker)
            actions = next
        }
    }

    private func log(_ event: OutboxRelayStateMachine.LogEvent, worker: Int) {
        let relay: Logger.MetadataValue = configuration.workers > 1 ? "\(configuration.name)/\(worker)" : "\(configuration.name)"
        switch event {
        case let .degraded(.natsDown, reason):
            logger.warning("outbox relay paused: NATS unavailable; rows wait in the outbox", metadata: ["relay": relay, "reason": "\(reason)"])
        case let .degraded(.databaseDown, reason):
            logger.warning("outbox relay paused: database unavailable", metadata: ["relay": relay, "reason": "\(reason)"])
        case let .degraded(health, reason):
            logger.error("outbox relay: publishes failing", metadata: ["relay": relay, "state": "\(health.rawValue)", "reason": "\(reason)"])
        case let .recovered(from, attempts):
            logger.notice("outbox relay publishing again", metadata: ["relay": relay, "after": "\(from.rawValue)", "failedAttempts": "\(attempts)"])
        }
    }

    private func watchConnection(_ wake: WakeSignals) async {
        for await event in connection.events() {
            switch event {
            case .connected, .reconnected: wake.signal(.natsUp)
            default: break
            }
        }
    }

    private func listenLoop(_ wake: WakeSignals) async {
        let relay: Logger.MetadataValue = "\(configuration.name)"
        for await event in store.pool.notifications(channels: ["routeplane_outbox"], label: "outbox-listen") {
            switch event {
            case let .notification(note):
                if note.channel == "routeplane_outbox", ownership?.owns(tenant: note.payload) ?? true { wake.signal(.outbox) }
            case let .listening(recovered):
                if recovered { logger.notice("outbox relay listening again", metadata: ["relay": relay]) }
                // Notifications sent while nobody listened are lost: look once.
                wake.signal(.outbox)
            case let .unavailable(reason):
                logger.warning("outbox relay cannot LISTEN; polling", metadata: ["relay": relay, "error": "\(reason)"])
            case let .lost(reason):
                logger.warning("outbox relay lost its LISTEN connection", metadata: ["relay": relay, "error": "\(reason)"])
            case .idle:
                break
            }
        }
    }
}

/// The workers' wake signals: NOTIFY and reconnects wake every worker.
struct WakeSignals: Sendable {
    let all: [WakeSignal]
    init(_ all: [WakeSignal]) { self.all = all }
    func signal(_ reason: WakeSignal.Reason) { for w in all { w.signal(reason) } }
}
