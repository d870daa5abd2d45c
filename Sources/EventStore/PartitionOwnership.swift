import Logging
import PostgresClient
import Synchronization

/// Which tenant partitions this controller works on (projection batches, relay claims): the I/O shell around
/// `PartitionOwnershipStateMachine`.
///
/// One dedicated connection (outside the pool) holds a member lock, `pg_advisory_lock(memberClass, backend pid)`,
/// and one session lock per owned partition, `pg_advisory_lock(partitionClass, partition)`. Both key classes include
/// the partition count, so controllers configured with different counts never share locks (each group balances on
/// its own; correctness still rests on the per-tenant transaction locks) and the observation reports the other
/// group's members, which is logged. The work loops ask `owns(tenant:)` for each NOTIFY (no query) and follow
/// `updates()` to sweep partitions they gain. A controller killed with -9 closes its socket; PostgreSQL frees its
/// locks, and the survivors lock its partitions within one tick (250 ms by default).
public final class PartitionOwnership: Sendable {
    /// The work whose partitions are owned. Projection and relay work are owned separately (lock classes of their own):
    /// a controller without NATS has no relay and must not hold relay partitions, or their views would stay in the
    /// outbox (a chaos run found exactly that when the controller cut off in a namespace ran without NATS).
    public enum Work: String, Sendable {
        case projection, relay
        /// Added to both lock class bases.
        var classOffset: Int32 { self == .projection ? 0 : 20_000 }
    }

    public let work: Work
    public let partitions: TenantPartitions
    public let configuration: PartitionOwnershipStateMachine.Configuration
    private let pool: ConnectionPool
    private let logger: Logger
    private let label: String

    private struct Shared {
        var owned: Set<Int> = []
        var observations = 0
        var subscribers: [Int: AsyncStream<Set<Int>>.Continuation] = [:]
        var nextSubscriber = 0
        var connection: PostgresConnection?
        var abandoned = false
    }
    private let shared = Mutex(Shared())

    /// Lock key classes (the first int4 of the two-key advisory lock; the relay and projections use one-bigint
    /// keys, which `pg_locks` shows with `objsubid = 1`, so they never collide).
    static let memberClassBase: Int32 = 7_260_000
    static let partitionClassBase: Int32 = 7_270_000
    var memberBase: Int32 { Self.memberClassBase + work.classOffset }
    var memberClass: Int32 { memberBase + Int32(partitions.count) }
    var partitionClass: Int32 { Self.partitionLockClass(work, partitions: partitions) }

    /// The first key of partition `p`'s advisory lock for `work` (the second is `p`): what `pg_locks` shows as `classid`
    /// (with `objid` = p, `objsubid` = 2) while a controller owns it. For operators and the fault-injection run.
    public static func partitionLockClass(_ work: Work, partitions: TenantPartitions = .standard) -> Int32 {
        partitionClassBase + work.classOffset + Int32(partitions.count)
    }

    public init(pool: ConnectionPool, work: Work = .projection, partitions: TenantPartitions = .standard, tick: Duration = .milliseconds(250),
                label: String = "partition-ownership", logger: Logger = Logger(label: "routeplane.partitions")) {
        self.work = work
        self.pool = pool
        self.partitions = partitions
        self.configuration = .init(partitions: partitions.count, tick: tick)
        self.label = label
        self.logger = logger
    }

    /// The partitions held now.
    public var owned: Set<Int> { shared.withLock { $0.owned } }

    /// Ticks that read the locks so far (each one may balance): lets a caller wait for "a few more ticks" by condition.
    public var observations: Int { shared.withLock { $0.observations } }

    /// Whether this controller works on `tenant` now (no query).
    public func owns(tenant: String) -> Bool {
        let p = partitions.partition(of: tenant)
        return shared.withLock { $0.owned.contains(p) }
    }

    /// The owned set now and at every change, until `run()` ends.
    public func updates() -> AsyncStream<Set<Int>> {
        let (stream, continuation) = AsyncStream.makeStream(of: Set<Int>.self, bufferingPolicy: .bufferingNewest(1))
        let id = shared.withLock { s in
            let id = s.nextSubscriber
            s.nextSubscriber += 1
            s.subscribers[id] = continuation
            continuation.yield(s.owned)
            return id
        }
        continuation.onTermination = { [weak self] _ in self?.shared.withLock { _ = $0.subscribers.removeValue(forKey: id) } }
        return stream
    }

    /// Test hook: closes the ownership connection as a killed process would (no unlock: PostgreSQL frees the
    /// locks when it sees the socket close) and ends `run()` without reconnecting.
    public func closeConnectionAbruptly() {
        shared.withLock { s in
            s.abandoned = true
            s.connection?.close()
            s.connection = nil
        }
    }

    /// Holds and balances partitions until the task is cancelled; then gives them up (closes the connection).
    public func run() async {
        var machine = PartitionOwnershipStateMachine(configuration: configuration)
        var actions = machine.start()
        var stopping = false
        while !actions.isEmpty {
            if !stopping && (Task.isCancelled || shared.withLock({ $0.abandoned })) {
                stopping = true
                actions = machine.stop()
            }
            var next: [PartitionOwnershipStateMachine.Action] = []
            for action in actions {
                next += await perform(action, &machine)
            }
            actions = next
        }
        let subscribers = shared.withLock { s in
            defer { s.subscribers = [:] }
            return Array(s.subscribers.values)
        }
        for c in subscribers { c.finish() }
    }

    private func perform(_ action: PartitionOwnershipStateMachine.Action, _ machine: inout PartitionOwnershipStateMachine) async
        -> [PartitionOwnershipStateMachine.Action] {
        switch action {
        case .connect:
            do {
                let connection = try await pool.dedicatedConnection(label: label)
                let memberClass = memberClass
                do {
                    _ = try await connection.withSession { s in try s.query("SELECT pg_advisory_lock($1, pg_backend_pid())", [String(memberClass)]) }
                } catch {
                    connection.close()
                    throw error
                }
                shared.withLock { $0.connection = connection }
                return machine.connected()
            } catch {
                return machine.connectFailed(reason: "\(error)")
            }
        case .observe:
            guard let connection = shared.withLock({ $0.connection }) else { return machine.connectionLost(reason: "connection closed") }
            let (memberBase, memberClass, partitionClass) = (memberBase, memberClass, partitionClass)
            do {
                let observation = try await connection.withSession { s in
                    try Self.observe(s, memberBase: memberBase, memberClass: memberClass, partitionClass: partitionClass)
                }
                let actions = machine.observed(observation)
                shared.withLock { $0.observations += 1 }
                return actions
            } catch {
                return machine.connectionLost(reason: "\(error)")
            }
        case let .change(acquire, release):
            guard let connection = shared.withLock({ $0.connection }) else { return machine.connectionLost(reason: "connection closed") }
            let partitionClass = partitionClass
            do {
                let (acquired, released) = try await connection.withSession { s -> ([Int], [Int]) in
                    var acquired: [Int] = []
                    var released: [Int] = []
                    if !acquire.isEmpty {
                        let rows = try s.query("SELECT p, pg_try_advisory_lock($1, p) AS ok FROM unnest($2::int4[]) AS p",
                                               [String(partitionClass), PostgresArray.literal(acquire.map(String.init))])
                        acquired = rows.filter { $0.bool("ok") == true }.compactMap { $0.int64("p").map(Int.init) }
                    }
                    if !release.isEmpty {
                        let rows = try s.query("SELECT p, pg_advisory_unlock($1, p) AS ok FROM unnest($2::int4[]) AS p",
                                               [String(partitionClass), PostgresArray.literal(release.map(String.init))])
                        released = rows.filter { $0.bool("ok") == true }.compactMap { $0.int64("p").map(Int.init) }
                    }
                    return (acquired, released)
                }
                return machine.changed(acquired: acquired, released: released)
            } catch {
                return machine.connectionLost(reason: "\(error)")
            }
        case let .announce(owned):
            let subscribers = shared.withLock { s in
                s.owned = owned
                return Array(s.subscribers.values)
            }
            for c in subscribers { c.yield(owned) }
            return []
        case let .sleep(duration):
            try? await Task.sleep(for: duration)
            return machine.slept()
        case .closeConnection:
            shared.withLock { s in
                s.connection?.close()
                s.connection = nil
            }
            return []
        case let .log(event):
            log(event)
            return []
        }
    }

    static func observe(_ s: PostgresSession, memberBase: Int32, memberClass: Int32, partitionClass: Int32) throws -> PartitionOwnershipStateMachine.Observation {
        let rows = try s.query("""
            SELECT classid::int8 AS class, objid::int8 AS key, pid, pg_backend_pid() AS me FROM pg_locks
             WHERE locktype = 'advisory' AND objsubid = 2 AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND (classid::int8 BETWEEN $1 AND $1 + 1024 OR classid::int8 = $2)
            UNION ALL SELECT NULL, NULL, NULL, pg_backend_pid()
            """, [String(memberBase), String(partitionClass)])
        var observation = PartitionOwnershipStateMachine.Observation(me: 0, members: 0, owners: [:])
        for r in rows {
            if let me = r.int64("me") { observation.me = Int32(truncatingIfNeeded: me) }
            guard let cls = r.int64("class"), let key = r.int64("key"), let pid = r.int64("pid") else { continue }
            if cls == Int64(partitionClass) {
                observation.owners[Int(key)] = Int32(truncatingIfNeeded: pid)
            } else if cls == Int64(memberClass) {
                observation.members += 1
            } else {
                observation.foreignMembers += 1
            }
        }
        return observation
    }

    private func log(_ event: PartitionOwnershipStateMachine.LogEvent) {
        switch event {
        case let .rebalanced(acquired, released, owned, members):
            logger.notice("tenant partitions rebalanced: this controller does the \(work.rawValue) work of the tenants of its partitions", metadata: [
                "acquired": "\(acquired)", "released": "\(released)", "owned": "\(owned.count) of \(partitions.count)",
                "controllers": "\(members)",
            ])
        case let .unavailable(reason):
            logger.warning("cannot open the partition ownership connection; no \(work.rawValue) work until it opens (retrying)",
                           metadata: ["error": "\(reason)"])
        case let .lost(reason):
            logger.warning("partition ownership connection lost: all partitions given up, reconnecting (other controllers take them over)",
                           metadata: ["error": "\(reason)"])
        case .recovered:
            logger.notice("partition ownership connection open again; claiming partitions")
        case let .foreignMembers(count):
            logger.error("controllers with another partition count share this database: both groups work on all tenants (correct, but wasteful); give every controller the same count",
                         metadata: ["others": "\(count)", "partitions": "\(partitions.count)"])
        }
    }
}
