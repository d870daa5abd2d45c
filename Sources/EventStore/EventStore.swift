import Foundation
import Logging
import PostgresClient
import Synchronization

/// The event store: append with optimistic concurrency, read per tenant, read all tenants in a
/// late-commit-safe order, and subscribe. Every statement is parameterised.
public final class EventStore: Sendable {
    public let pool: ConnectionPool
    let logger: Logger
    /// How many times a statement that failed because the connection broke is retried (appends are idempotent).
    let connectionRetries: Int

    let notifier: AppendNotifier

    public init(url: String, maxConnections: Int = 8, logger: Logger = Logger(label: "routeplane.eventstore"), connectionRetries: Int = 3) {
        self.pool = ConnectionPool(url: url, configuration: .init(maxConnections: maxConnections), logger: logger)
        self.logger = logger
        self.connectionRetries = connectionRetries
        self.notifier = AppendNotifier(pool: pool, logger: logger)
    }

    public func shutdown() async {
        await notifier.flush()
        pool.shutdown()
    }

    /// Appends `events` to `tenant` in one transaction (all or nothing) and returns their sequence numbers.
    /// Throws `EventStoreError.conflict` when the tenant is not at `expected`.
    @discardableResult
    public func append(tenant: String, expected: ExpectedVersion, events: [NewEvent]) async throws -> ClosedRange<Int64> {
        guard !events.isEmpty else { throw EventStoreError.invalidArgument("append needs at least one event") }
        var parameters: [String?]
        let sql: String
        if events.count == 1 {
            // One event: plain scalar parameters, no array literal to build, escape and parse.
            let event = events[0]
            parameters = [tenant, String(expected.sqlValue), FastUUID.text(event.id), event.type, event.data, event.metadata.json, "false"]
            sql = Self.appendOneSQL
        } else {
            parameters = [
                tenant,
                String(expected.sqlValue),
                PostgresArray.literal(events.map { FastUUID.text($0.id) }),
                PostgresArray.literal(events.map(\.type)),
                PostgresArray.literal(events.map(\.data)),
                PostgresArray.literal(events.map { $0.metadata.json }),
                "false",
            ]
            sql = Self.appendBatchSQL
        }
        let count = Int64(events.count)
        do {
            var attempt = 0
            let text: String?
            while true {
                // A retry after a lost connection asks the server to check whether the first attempt committed.
                parameters[6] = attempt == 0 ? "false" : "true"
                do {
                    // Non-blocking libpq from this thread, completed by the I/O loop: no thread hop (see PostgresIOLoop).
                    // Under the API request's write limit, not its read limit (see StatementBudget).
                    let call = parameters
                    text = try await StatementBudget.writing { try await pool.value(prepared: sql, call) }
                    break
                } catch let error as EventStoreError {
                    guard case .connectionLost = error, attempt < connectionRetries else { throw error }
                    attempt += 1
                    logger.warning("retrying append after lost connection", metadata: ["tenant": "\(tenant)", "attempt": "\(attempt)", "error": "\(error)"])
                    try await Task.sleep(for: .milliseconds(50 * attempt))
                }
            }
            guard let text, let head = Int64(text) else {
                throw EventStoreError.invalidResponse("append_events returned no head")
            }
            notifier.appended(tenant: tenant)
            return (head - count + 1)...head
        } catch let EventStoreError.server(sqlState, message, detail) where sqlState == "RP409" || sqlState == "23505" {
            // The same event ids appended before (a client retrying a request that did commit): answer as
            // the first append did. Checked only on this slow path, so ordinary appends pay nothing for it.
            if let existing = try await storedSequences(tenant: tenant, ids: events.map(\.id)) {
                return existing
            }
            if sqlState == "23505" {
                throw EventStoreError.invalidArgument("an event id of this batch was already used by another append: \(message)")
            }
            let actual = Self.actualVersion(fromDetail: detail) ?? -1
            logger.debug("append conflict", metadata: ["tenant": "\(tenant)", "detail": "\(message)"])
            throw EventStoreError.conflict(tenant: tenant, expected: expected.sqlValue, actual: actual)
        }
    }

    /// A statement run in the append's transaction (e.g. storing a credential's hash with the event
    /// that creates it): both commit or neither does.
    public struct SideStatement: Sendable {
        public var sql: String
        public var parameters: [String?]
        public init(_ sql: String, _ parameters: [String?]) {
            self.sql = sql
            self.parameters = parameters
        }
    }

    /// `append` plus `statements`, in one transaction. Not retried on a lost connection: the store first looks
    /// whether it committed (`outcomeAfterLostConnection`) and answers as committed when it did; otherwise, or when that
    /// cannot be known in time, the caller gets `connectionLost` (retrying with the same event ids is safe: the append
    /// is idempotent by event id and side statements should be too).
    @discardableResult
    public func append(tenant: String, expected: ExpectedVersion, events: [NewEvent], with statements: [SideStatement]) async throws -> ClosedRange<Int64> {
        guard !statements.isEmpty else { return try await append(tenant: tenant, expected: expected, events: events) }
        guard !events.isEmpty else { throw EventStoreError.invalidArgument("append needs at least one event") }
        let parameters: [String?] = [
            tenant,
            String(expected.sqlValue),
            PostgresArray.literal(events.map { FastUUID.text($0.id) }),
            PostgresArray.literal(events.map(\.type)),
            PostgresArray.literal(events.map(\.data)),
            PostgresArray.literal(events.map { $0.metadata.json }),
            "false",
        ]
        let count = Int64(events.count)
        let backend = Mutex<Int32?>(nil)
        do {
            let text = try await StatementBudget.writing { try await pool.withSession { session -> String? in
                backend.withLock { $0 = session.backendPID }
                try session.script("BEGIN")
                do {
                    let head = try session.value(prepared: Self.appendBatchSQL, parameters)
                    for statement in statements { try session.query(statement.sql, statement.parameters) }
                    try session.script("COMMIT")
                    return head
                } catch {
                    try? session.script("ROLLBACK")
                    throw error
                }
            } }
            guard let text, let head = Int64(text) else {
                throw EventStoreError.invalidResponse("append_events returned no head")
            }
            notifier.appended(tenant: tenant)
            return (head - count + 1)...head
        } catch let EventStoreError.server(sqlState, message, detail) where sqlState == "RP409" {
            let actual = Self.actualVersion(fromDetail: detail) ?? -1
            logger.debug("append conflict", metadata: ["tenant": "\(tenant)", "detail": "\(message)"])
            throw EventStoreError.conflict(tenant: tenant, expected: expected.sqlValue, actual: actual)
        } catch let error as EventStoreError {
            guard case .connectionLost = error else { throw error }
            // The COMMIT may have reached the server (or a promoted standby) before the connection broke.
            guard let committed = await outcomeAfterLostConnection(tenant: tenant, ids: events.map(\.id), backendPID: backend.withLock { $0 })
            else { throw error }
            notifier.appended(tenant: tenant)
            return committed
        }
    }

    /// What a decision taken under the tenant lock appends: events (none = nothing to do), statements for the
    /// same transaction, and a value handed back to the caller.
    public struct LockedAppend<Value: Sendable>: Sendable {
        public var events: [NewEvent]
        public var statements: [SideStatement]
        public var value: Value
        public init(events: [NewEvent], statements: [SideStatement] = [], value: Value) {
            self.events = events
            self.statements = statements
            self.value = value
        }
    }

    /// Decide-and-append that cannot conflict: in one transaction, takes the tenant's append lock (the one
    /// `append_events` takes, before the transaction has an xid), reads the tenant's events after `version`,
    /// hands them to `decide`, and appends what it returns at exactly the version it saw. Writers of the
    /// tenant in every process queue on the lock instead of failing and deciding again, so it is the path
    /// for a tenant under contention (the optimistic `append` is one round trip, this is four or more, and
    /// the lock is held for them). `decide` runs on the connection's thread while the lock is held: keep it
    /// pure and quick. A throw from it rolls back and appends nothing. Not retried on a lost connection (an append whose
    /// COMMIT was sent is looked up first, as in `append(…, with:)`).
    public func appendUnderTenantLock<Value: Sendable>(
        tenant: String, after version: Int64,
        _ decide: @escaping @Sendable ([RecordedEvent]) throws -> LockedAppend<Value>
    ) async throws -> (sequences: ClosedRange<Int64>?, value: Value) {
        // What was sent for COMMIT, kept for the case the connection breaks before the answer (see below).
        let sent = Mutex<(backendPID: Int32?, ids: [UUID], value: Value?)>((nil, [], nil))
        let outcome: (ClosedRange<Int64>?, Value)
        do { outcome = try await StatementBudget.writing { try await pool.withSession { session -> (ClosedRange<Int64>?, Value) in
            sent.withLock { $0.backendPID = session.backendPID }
            try session.script("BEGIN")
            do {
                _ = try session.query("SELECT pg_advisory_xact_lock(hashtextextended('routeplane.tenant:' || $1, 0))", [tenant])
                var newer: [RecordedEvent] = []
                var after = version
                while true {
                    let page = try Self.decode(session.query(
                        "SELECT \(Self.columns) FROM events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT 2000",
                        [tenant, String(after)]))
                    newer += page
                    after = page.last?.sequence ?? after
                    if page.count < 2000 { break }
                }
                let decision = try decide(newer)
                guard !decision.events.isEmpty else {
                    try session.script("COMMIT")
                    return (nil, decision.value)
                }
                let events = decision.events
                let parameters: [String?] = [
                    tenant, String(after),
                    PostgresArray.literal(events.map { FastUUID.text($0.id) }),
                    PostgresArray.literal(events.map(\.type)),
                    PostgresArray.literal(events.map(\.data)),
                    PostgresArray.literal(events.map { $0.metadata.json }),
                    "false",
                ]
                guard let text = try session.value(prepared: Self.appendBatchSQL, parameters), let head = Int64(text) else {
                    throw EventStoreError.invalidResponse("append_events returned no head")
                }
                for statement in decision.statements { try session.query(statement.sql, statement.parameters) }
                sent.withLock { $0.ids = events.map(\.id); $0.value = decision.value }
                try session.script("COMMIT")
                return ((head - Int64(events.count) + 1)...head, decision.value)
            } catch {
                try? session.script("ROLLBACK")
                throw error
            }
        } } } catch let error as EventStoreError {
            guard case .connectionLost = error else { throw error }
            let (pid, ids, value) = sent.withLock { $0 }
            guard let value, !ids.isEmpty,
                  let committed = await outcomeAfterLostConnection(tenant: tenant, ids: ids, backendPID: pid) else { throw error }
            notifier.appended(tenant: tenant)
            return (sequences: committed, value: value)
        }
        if outcome.0 != nil { notifier.appended(tenant: tenant) }
        return (sequences: outcome.0, value: outcome.1)
    }

    /// Prepared once per connection (see `PostgresSession.query(prepared:)`).
    static let appendOneSQL = "SELECT append_events($1, $2, ARRAY[$3::uuid], ARRAY[$4::text], ARRAY[$5::json], ARRAY[$6::jsonb], $7::boolean)"
    static let appendBatchSQL = "SELECT append_events($1, $2, $3::uuid[], $4::text[], $5::json[], $6::jsonb[], $7::boolean)"

    /// The sequence numbers of a batch if every one of its event ids is stored for this tenant, consecutively.
    func storedSequences(tenant: String, ids: [UUID]) async throws -> ClosedRange<Int64>? {
        let rows = try await retryingOnConnectionLoss("append-lookup") {
            try await self.pool.withSession { session in
                try session.query("SELECT seq FROM events WHERE tenant_id = $1 AND event_id = ANY($2::uuid[]) ORDER BY seq",
                                  [tenant, PostgresArray.literal(ids.map { FastUUID.text($0) })])
            }
        }
        let seqs = rows.compactMap { $0.int64("seq") }
        guard seqs.count == ids.count, let first = seqs.first, let last = seqs.last, last - first + 1 == Int64(ids.count) else { return nil }
        return first...last
    }

    /// The tenant's last sequence number (0 when it has no events).
    public func version(tenant: String) async throws -> Int64 {
        let rows = try await retryingOnConnectionLoss("version") {
            try await self.pool.withSession { session in
                try session.query("SELECT seq FROM tenant_heads WHERE tenant_id = $1", [tenant])
            }
        }
        return rows.first?.int64("seq") ?? 0
    }

    /// Events of one tenant with sequence ≥ `fromSequence`, in sequence order.
    public func read(tenant: String, fromSequence: Int64 = 1, limit: Int = 1000) async throws -> [RecordedEvent] {
        let rows = try await retryingOnConnectionLoss("read") {
            try await self.pool.withSession { session in
                try session.query(
                    "SELECT \(Self.columns) FROM events WHERE tenant_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
                    [tenant, String(fromSequence), String(limit)])
            }
        }
        return try Self.decode(rows)
    }

    /// Events of every tenant after `position`, in global order, never skipping one committed late:
    /// only events of transactions older than the oldest still running one are returned, ordered by
    /// (transaction id, position), so nothing can later appear before what was already returned.
    /// Within a tenant this order is its sequence order (appends take the tenant lock before getting an xid).
    public func readAll(after position: GlobalPosition, limit: Int = 1000) async throws -> [RecordedEvent] {
        let rows = try await retryingOnConnectionLoss("readAll") {
            try await self.pool.withSession { session in
                try session.query(
                    """
                    SELECT \(Self.columns) FROM events
                     WHERE (tx_id, position) > ($1::text::xid8, $2::bigint)
                       AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                     ORDER BY tx_id, position
                     LIMIT $3
                    """,
                    [String(position.transaction), String(position.position), String(limit)])
            }
        }
        return try Self.decode(rows)
    }

    /// Catches up from `position`, then follows new appends (LISTEN/NOTIFY, with a poll every
    /// `pollInterval` in case a notification is missed or the listening connection is down).
    public func subscribe(after position: GlobalPosition = .start, batchSize: Int = 500, pollInterval: Duration = .seconds(1)) -> EventSubscription {
        EventSubscription(store: self, start: position, batchSize: batchSize, pollInterval: pollInterval)
    }

    // MARK: - Internals

    static let columns = "event_id, tenant_id, seq, tx_id, position, type, data, metadata, (extract(epoch FROM recorded_at) * 1000000)::bigint AS recorded_micros"

    func retryingOnConnectionLoss<T: Sendable>(_ operation: String, _ body: @Sendable () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as EventStoreError {
                guard case .connectionLost = error, attempt < connectionRetries else { throw error }
                attempt += 1
                logger.warning("retrying after lost connection", metadata: ["operation": "\(operation)", "attempt": "\(attempt)", "error": "\(error)"])
                try await Task.sleep(for: .milliseconds(50 * attempt))
            }
        }
    }

    static func actualVersion(fromDetail detail: String?) -> Int64? {
        guard let detail, let range = detail.range(of: "actual=") else { return nil }
        return Int64(detail[range.upperBound...].prefix { $0.isNumber })
    }

    static func decode(_ rows: PostgresRows) throws -> [RecordedEvent] {
        let decoder = JSONDecoder()
        return try rows.map { row in
            guard row.values.count == 9,
                  let id = row.string("event_id").flatMap(UUID.init(uuidString:)),
                  let tenant = row.string("tenant_id"),
                  let seq = row.int64("seq"),
                  let tx = row.uint64("tx_id"),
                  let pos = row.int64("position"),
                  let type = row.string("type"), let data = row.string("data"), let metadataText = row.string("metadata"),
                  let recordedMicros = row.int64("recorded_micros")
            else { throw EventStoreError.invalidResponse("malformed event row") }
            let metadata = try decoder.decode(EventMetadata.self, from: Data(metadataText.utf8))
            return RecordedEvent(id: id, tenant: tenant, sequence: seq, globalPosition: GlobalPosition(transaction: tx, position: pos),
                                 type: type, data: data, metadata: metadata,
                                 recordedAt: Date(timeIntervalSince1970: Double(recordedMicros) / 1_000_000))
        }
    }
}

/// Wakes subscribers after appends: NOTIFY routeplane_events with the tenant id, sent outside the append
/// transaction and coalesced: the tenants appended within `window` (2 ms) go out in one statement, at most one
/// per window; while it is in flight and during the next window the next ones are collected. A NOTIFY per
/// append would cost a second transaction per append (measured: about half the single-writer rate).
/// Subscribers also poll, so a lost NOTIFY delays, never loses.
///
/// A `Mutex`, not an actor: `appended` is called after every append and must not cost the caller a hop.
final class AppendNotifier: Sendable {
    private struct State {
        var pending: Set<String> = []
        var flushing: Task<Void, Never>?
    }

    private let pool: ConnectionPool
    private let logger: Logger
    private let state = Mutex(State())
    private let window: Duration

    init(pool: ConnectionPool, logger: Logger, window: Duration = .milliseconds(2)) {
        self.pool = pool
        self.logger = logger
        self.window = window
    }

    func appended(tenant: String) {
        state.withLock { state in
            state.pending.insert(tenant)
            if state.flushing == nil {
                state.flushing = Task { await self.drain() }
            }
        }
    }

    /// Waits until every pending notification was sent.
    func flush() async {
        await state.withLock { $0.flushing }?.value
    }

    private func drain() async {
        while true {
            // At most one NOTIFY per window, also under sustained appends: sending the next one as soon as the
            // previous returned made it one NOTIFY transaction per round trip (measured with 4 writers: up to
            // ~1,300/s, ~10 % more transactions than appends, and ~0.25 extra thread sleeps per append).
            try? await Task.sleep(for: window)
            let tenants: [String]? = state.withLock { state in
                if state.pending.isEmpty {
                    state.flushing = nil
                    return nil
                }
                defer { state.pending.removeAll(keepingCapacity: true) }
                return state.pending.sorted()
            }
            guard let tenants else { return }
            do {
                // A wake-up hint: its commit need not wait for the WAL flush (PostgreSQL gives every
                // NOTIFY transaction an xid, so it would otherwise wait like a write).
                _ = try await pool.query(prepared: "SELECT set_config('synchronous_commit', 'off', true), pg_notify('routeplane_events', t) FROM unnest($1::text[]) AS t",
                                         [PostgresArray.literal(tenants)])
            } catch {
                logger.debug("could not NOTIFY subscribers; they will poll", metadata: ["error": "\(error)"])
            }
        }
    }
}
