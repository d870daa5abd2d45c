import EventStore
import Foundation
import Logging
import Synchronization

/// Publishes outbox rows to JetStream: the I/O shell around `OutboxRelayStateMachine`.
///
/// One batch = one PostgreSQL transaction: claim, publish, mark sent, commit.
/// - Claim: the *oldest unsent row of each peer* (`NOT EXISTS` an older unsent row of the same tenant and peer),
///   `FOR UPDATE SKIP LOCKED`, in id order. The locked head row is the peer's lock: while one relay holds it,
///   every other relay skips it and sees the peer's newer rows as "not the head", so at most one message per
///   peer is in flight across all relays.
/// - Publish the peer's *newest* unsent row (highest version) for each claimed head, all in one pipelined
///   batch, each with `Nats-Msg-Id = tenant:peer:version`, and wait for the acknowledgements.
/// - Mark sent, for each acknowledged peer, every unsent row with a version up to the published one (older
///   versions are superseded: a view is the full state, agents apply only newer versions), then COMMIT.
/// So per peer, versions reach the stream in increasing order and the stream's last message is the highest
/// version committed so far. A relay that dies after publishing and before COMMIT leaves its rows unsent and
/// unlocked; the next relay publishes the same (or a newer) version, and JetStream drops a same-id duplicate
/// within the stream's duplicate window (an agent ignores an equal version anyway).
///
/// NATS down: nothing is claimed (no transaction held open), the relay backs off (capped, with jitter) and wakes
/// when libnats reconnects; it logs once per state change. Work is found by `LISTEN routeplane_outbox` (the
/// projection runner NOTIFYs after writing outbox rows) with a poll fallback.
public final class OutboxRelay: Sendable {
    public struct Configuration: Sendable {
        public var stream: StreamSpec
        public var machine: OutboxRelayStateMachine.Configuration
        /// How long a batch waits for its acknowledgements (the claim transaction stays open that long at most).
        public var publishTimeout: Duration
        /// For logs.
        public var name: String
        /// Test hook: runs after the batch's acknowledgements, before rows are marked sent and the transaction
        /// commits. Throwing (or terminating the session) is a relay killed between publish and mark-sent.
        public var afterPublish: (@Sendable ([PublishedRow], PostgresSession) throws -> Void)?

        public init(stream: StreamSpec = .views, machine: OutboxRelayStateMachine.Configuration = .init(),
                    publishTimeout: Duration = .seconds(5), name: String = "outbox-relay",
                    afterPublish: (@Sendable ([PublishedRow], PostgresSession) throws -> Void)? = nil) {
            self.stream = stream
            self.machine = machine
            self.publishTimeout = publishTimeout
            self.name = name
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
    let logger: Logger
    private let publisherSlot = Mutex<JetStreamPublisher?>(nil)
    private let counters = Mutex(Metrics())

    public init(store: EventStore, connection: NATSConnection, configuration: Configuration = .init(),
                logger: Logger = Logger(label: "routeplane.outbox-relay")) {
        self.store = store
        self.connection = connection
        self.configuration = configuration
        self.logger = logger
    }

    public var metrics: Metrics { counters.withLock { $0 } }

    /// `SELECT count(*) … WHERE sent_at IS NULL` (the partial index `outbox_pending` serves it).
    public func depth() async throws -> Depth {
        let rows = try await store.pool.withSession { s in
            try s.query("SELECT count(*), extract(epoch FROM now() - min(created_at))::float8 FROM outbox WHERE sent_at IS NULL")
        }
        let pending = Int64(rows.rows.first?[0] ?? "0") ?? 0
        let age = rows.rows.first?[1].flatMap(Double.init).map { Duration.milliseconds(Int64(($0 * 1000).rounded())) }
        return Depth(pending: pending, oldestPendingAge: age)
    }

    /// Creates (or updates) the stream, idempotently. `run()` does it at start and after "no stream" answers.
    @discardableResult
    public func ensureStream() async throws -> StreamState {
        let state = try await JetStream(connection: connection).ensureStream(configuration.stream)
        _ = try publisher()
        return state
    }

    private func publisher() throws -> JetStreamPublisher {
        try publisherSlot.withLock { slot in
            if let slot { return slot }
            let made = try JetStreamPublisher(connection: connection, stream: configuration.stream.name)
            slot = made
            return made
        }
    }

    // MARK: - One batch

    /// Claims, publishes and marks one batch (one transaction). Never throws: failures are in the outcome.
    public func runBatch() async -> OutboxRelayStateMachine.BatchOutcome {
        guard connection.isConnected else {
            counters.withLock { $0.failedAttempts += 1 }
            return .init(claimed: 0, published: 0, failure: .natsUnavailable("NATS connection \(connection.status)"))
        }
        let publisher: JetStreamPublisher
        do {
            publisher = try self.publisher()
        } catch {
            counters.withLock { $0.failedAttempts += 1 }
            return .init(claimed: 0, published: 0, failure: .natsUnavailable("\(error)"))
        }
        let limit = configuration.machine.batchSize
        let timeout = configuration.publishTimeout
        let hook = configuration.afterPublish
        let report: BatchReport
        do {
            report = try await store.pool.withSession { s in
                try Self.batch(s, limit: limit, publisher: publisher, timeout: timeout, hook: hook)
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

    static let claimSQL = """
        WITH heads AS (
            SELECT o.id, o.tenant_id, o.peer_id
              FROM outbox o
             WHERE o.sent_at IS NULL
               AND o.tenant_id ~ '\(ViewSubjects.tokenPattern)' AND o.peer_id ~ '\(ViewSubjects.tokenPattern)'
               AND NOT EXISTS (SELECT 1 FROM outbox e
                                WHERE e.tenant_id = o.tenant_id AND e.peer_id = o.peer_id
                                  AND e.sent_at IS NULL AND e.id < o.id)
             ORDER BY o.id
             LIMIT $1
               FOR UPDATE SKIP LOCKED
        )
        SELECT h.id, n.id, n.tenant_id, n.peer_id, n.version, n.digest, n.body, n.removed,
               (extract(epoch FROM n.created_at) * 1000)::bigint
          FROM heads h
          CROSS JOIN LATERAL (
                SELECT x.id, x.tenant_id, x.peer_id, x.version, x.digest, x.body, x.removed, x.created_at
                  FROM outbox x
                 WHERE x.tenant_id = h.tenant_id AND x.peer_id = h.peer_id AND x.sent_at IS NULL
                 ORDER BY x.version DESC, x.id DESC
                 LIMIT 1) n
         ORDER BY h.id
        """

    static let markSQL = """
        UPDATE outbox o SET sent_at = now()
          FROM unnest($1::text[], $2::text[], $3::bigint[]) AS p(tenant_id, peer_id, version)
         WHERE o.tenant_id = p.tenant_id AND o.peer_id = p.peer_id AND o.sent_at IS NULL AND o.version <= p.version
        """

    /// The batch transaction; runs on the pooled connection's thread (the publish blocks that thread, never a
    /// cooperative one).
    static func batch(_ s: PostgresSession, limit: Int, publisher: JetStreamPublisher, timeout: Duration,
                      hook: (@Sendable ([PublishedRow], PostgresSession) throws -> Void)?) throws -> BatchReport {
        try s.query("BEGIN")
        do {
            let claimed = try s.query(prepared: claimSQL, [String(limit)])
            var report = BatchReport(claimed: claimed.count)
            guard claimed.count > 0 else {
                try s.query("COMMIT")
                return report
            }
            var rows: [PublishedRow] = []
            var messages: [OutgoingMessage] = []
            rows.reserveCapacity(claimed.count)
            messages.reserveCapacity(claimed.count)
            for r in claimed.rows {
                guard let id = r[1].flatMap(Int64.init), let tenant = r[2], let peer = r[3], let version = r[4].flatMap(Int64.init),
                      let digest = r[5], let body = r[6] else {
                    throw EventStoreError.invalidResponse("outbox row with NULL fields")
                }
                let envelope = ViewEnvelope(tenant: tenant, peer: peer, version: version, digest: digest, removed: r[7] == "t",
                                            createdAtMillis: r[8].flatMap(Int64.init) ?? 0, view: Array(body.utf8))
                // The claim only returns ids matching the token pattern, so the subject is valid.
                let subject = (try? envelope.subject) ?? ""
                messages.append(OutgoingMessage(subject: subject, messageID: envelope.messageID, payload: envelope.encoded()))
                rows.append(PublishedRow(outboxID: id, tenant: tenant, peer: peer, version: version, result: .failed(.timeout)))
            }
            let clock = ContinuousClock()
            let started = clock.now
            let results = publisher.publishBlocking(messages, timeout: timeout)
            report.latency = clock.now - started
            for i in rows.indices { rows[i].result = results[i] }
            try hook?(rows, s)
            let acknowledged = rows.filter { $0.result.isStored }
            if !acknowledged.isEmpty {
                let marked = try s.query(prepared: markSQL, [
                    PostgresArray.literal(acknowledged.map(\.tenant)),
                    PostgresArray.literal(acknowledged.map(\.peer)),
                    PostgresArray.literal(acknowledged.map { String($0.version) }),
                ])
                report.marked = marked.affectedRows
            }
            try s.query("COMMIT")
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
        let wake = WakeSignal()
        logger.info("outbox relay started", metadata: ["relay": "\(configuration.name)", "stream": "\(configuration.stream.name)"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listenLoop(wake) }
            group.addTask { await self.watchConnection(wake) }
            group.addTask { await self.mainLoop(wake) }
            await group.waitForAll()
        }
        logger.info("outbox relay stopped", metadata: ["relay": "\(configuration.name)"])
    }

    private func mainLoop(_ wake: WakeSignal) async {
        var machine = OutboxRelayStateMachine(configuration: configuration.machine)
        var actions = machine.start()
        while !Task.isCancelled {
            var next: [OutboxRelayStateMachine.Action] = []
            for action in actions {
                switch action {
                case let .log(event):
                    log(event)
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
            let health = machine.health
            counters.withLock { $0.health = health }
            actions = next
        }
    }

    private func log(_ event: OutboxRelayStateMachine.LogEvent) {
        let relay: Logger.MetadataValue = "\(configuration.name)"
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

    private func watchConnection(_ wake: WakeSignal) async {
        for await event in connection.events() {
            switch event {
            case .connected, .reconnected: wake.signal(.natsUp)
            default: break
            }
        }
    }

    private func listenLoop(_ wake: WakeSignal) async {
        var listener: PostgresConnection?
        var down = false
        while !Task.isCancelled {
            if listener == nil {
                do {
                    let c = try await store.pool.dedicatedConnection(label: "outbox-listen")
                    _ = try await c.withSession { try $0.query("LISTEN routeplane_outbox") }
                    listener = c
                    if down { logger.notice("outbox relay listening again", metadata: ["relay": "\(configuration.name)"]) }
                    down = false
                    // Notifications sent while nobody listened are lost: look once.
                    wake.signal(.outbox)
                } catch {
                    if !down { logger.warning("outbox relay cannot LISTEN; polling", metadata: ["relay": "\(configuration.name)", "error": "\(error)"]) }
                    down = true
                    try? await Task.sleep(for: .seconds(1))
                    continue
                }
            }
            do {
                let notes = try await listener!.withSession { try $0.waitForNotifications(timeout: .milliseconds(250)) }
                if notes.contains(where: { $0.channel == "routeplane_outbox" }) { wake.signal(.outbox) }
            } catch {
                logger.warning("outbox relay lost its LISTEN connection", metadata: ["relay": "\(configuration.name)", "error": "\(error)"])
                listener?.close()
                listener = nil
                down = true
            }
        }
        listener?.close()
    }
}
