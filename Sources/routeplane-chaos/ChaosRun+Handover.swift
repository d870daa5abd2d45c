// Partition handover after a controller kill, read from pg_locks: which controller holds which projection and relay
// partition just before the kill, then until each of the killed controller's partitions is locked again by a live
// controller (ChaosKit's ChaosHandover has the check). Controllers are told apart by their PostgreSQL
// application_name (PGAPPNAME, set per controller by ChaosRun.init).
//
// The wait runs inside PostgreSQL (a temporary PL/pgSQL function polling pg_locks every 20 ms, timed by the server's
// clock), not in this process: the run's hundreds of in-process agents can keep its threads busy for seconds (see
// ChaosTimer), and a client-side poll measured that stall instead of the handover (10.02 s once, for a handover the
// controllers' logs put under 0.5 s). Both ends of the figure are server timestamps: the read just before the kill and
// the moment the partitions were all held again.
import ChaosKit
import EventStore
import Foundation
import PostgresClient
import Synchronization

/// One granted partition lock: the backend holding it, its controller (application_name), the work and partition.
struct ChaosPartitionLock: Sendable, Equatable {
    var pid: Int64
    var applicationName: String
    var work: PartitionOwnership.Work
    var partition: Int64
}

extension ChaosRun {
    /// Granted two-key advisory locks (`objsubid = 2`, as `PartitionOwnership` takes them) in this database: the part
    /// of the read before the kill and of the server-side wait that picks out partition locks.
    static let grantedPartitionLocks = """
        l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """

    /// The application_name controller `index` connects with.
    static func applicationName(_ index: Int) -> String { "routeplane-chaos-ctl\(index + 1)" }

    /// Every granted projection and relay partition lock in the run's database, and the server's clock (Unix seconds)
    /// when it read them; nil when PostgreSQL did not answer. Tried up to three times 50 ms apart (just before a kill
    /// the run's pool may be reconnecting).
    func partitionLocksBeforeKill() async -> (locks: [ChaosPartitionLock], serverTime: Double)? {
        let projection = PartitionOwnership.partitionLockClass(.projection)
        let relay = PartitionOwnership.partitionLockClass(.relay)
        for attempt in 0..<3 {
            if let (rows, time) = try? await store.pool.withSession({ s in
                let rows = try s.query("""
                    SELECT l.pid, l.classid::int8 AS class, l.objid::int8 AS partition, coalesce(a.application_name, '') AS application_name
                      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE \(Self.grantedPartitionLocks)
                       AND l.classid::int8 IN (\(projection), \(relay))
                    """)
                let time = try s.query("SELECT extract(epoch FROM clock_timestamp())::float8 AS now").first?.string("now").flatMap(Double.init)
                return (rows, time)
            }), let time {
                let locks = rows.compactMap { r -> ChaosPartitionLock? in
                    guard let pid = r.int64("pid"), let c = r.int64("class"), let p = r.int64("partition") else { return nil }
                    return ChaosPartitionLock(pid: pid, applicationName: r.string("application_name") ?? "",
                                              work: c == Int64(projection) ? .projection : .relay, partition: p)
                }
                return (locks, time)
            }
            if attempt < 2 { await chaosSleep(.milliseconds(50)) }
        }
        return nil
    }

    /// The server-side wait: polls pg_locks every 20 ms for up to `timeout` seconds until none of `victim`'s backends
    /// holds a partition lock and live ones hold every projection partition (and every relay partition when
    /// `need_relay`). Returns the server's clock when it started and when that held (NULL on timeout), and what the
    /// last poll saw.
    static let handoverWaitFunction = """
        CREATE OR REPLACE FUNCTION pg_temp.routeplane_handover_wait(victim int[], projection_class int8, relay_class int8,
                                                                     need_relay bool, partitions int, timeout_s float8)
        RETURNS TABLE (started float8, complete float8, still_held int, projection int, relay int) LANGUAGE plpgsql AS $$
        DECLARE
          t0 timestamptz := clock_timestamp();
          v int; p int; r int;
        BEGIN
          LOOP
            SELECT count(*) FILTER (WHERE l.pid = ANY (victim)),
                   count(DISTINCT l.objid) FILTER (WHERE NOT (l.pid = ANY (victim)) AND l.classid::int8 = projection_class),
                   count(DISTINCT l.objid) FILTER (WHERE NOT (l.pid = ANY (victim)) AND l.classid::int8 = relay_class)
              INTO v, p, r
              FROM pg_locks l
             WHERE \(grantedPartitionLocks)
               AND l.classid::int8 IN (projection_class, relay_class);
            IF v = 0 AND p = partitions AND (NOT need_relay OR r = partitions) THEN
              RETURN QUERY SELECT extract(epoch FROM t0)::float8, extract(epoch FROM clock_timestamp())::float8, v, p, r;
              RETURN;
            END IF;
            IF clock_timestamp() - t0 > make_interval(secs => timeout_s) THEN
              RETURN QUERY SELECT extract(epoch FROM t0)::float8, NULL::float8, v, p, r;
              RETURN;
            END IF;
            PERFORM pg_sleep(0.02);
          END LOOP;
        END $$
        """

    /// Waits (in PostgreSQL, up to 10 s) until every partition is locked again and none by the killed controller's
    /// old sessions; records the sample, timed from the server's clock at the read before the kill.
    func measureHandover(of victim: ChaosController, killedAt: Double, heldBefore: (locks: [ChaosPartitionLock], serverTime: Double)?) async {
        var sample = ChaosHandoverSample(killedAt: killedAt, controller: victim.index)
        defer { faults.withLock { [sample] in $0.handovers.append(sample) } }
        guard let heldBefore else {
            sample.notMeasured = "PostgreSQL did not answer before the kill"
            return
        }
        let name = Self.applicationName(victim.index)
        let victimLocks = heldBefore.locks.filter { $0.applicationName == name }
        sample.projectionPartitions = victimLocks.count(where: { $0.work == .projection })
        sample.relayPartitions = victimLocks.count(where: { $0.work == .relay })
        guard !victimLocks.isEmpty else {
            sample.notMeasured = "the killed controller held no partition"
            return
        }
        // Every projection partition; relay partitions only where another controller with NATS is up to take them.
        let partitionedIndex = Self.partitionedIndex(settings)
        let relayExpected = controllers.contains { $0.isUp && $0.index != victim.index && $0.index != partitionedIndex }
        let pids = PostgresArray.literal(Set(victimLocks.map(\.pid)).sorted().map(String.init))
        let arguments = [pids, String(PartitionOwnership.partitionLockClass(.projection)), String(PartitionOwnership.partitionLockClass(.relay)),
                         relayExpected ? "true" : "false", String(TenantPartitions.standard.count), "10"]
        let row: PostgresRow?
        do {
            row = try await lockReader.withSession { s in
                _ = try s.query(Self.handoverWaitFunction)
                return try s.query("SELECT * FROM pg_temp.routeplane_handover_wait($1::int[], $2::int8, $3::int8, $4::bool, $5::int, $6::float8)",
                                   arguments).first
            }
        } catch {
            sample.notMeasured = "PostgreSQL did not answer during the handover"
            return
        }
        guard let row, let started = row.string("started").flatMap(Double.init) else {
            sample.notMeasured = "PostgreSQL did not answer during the handover"
            return
        }
        // The wait must have begun right after the kill: a wait that began late (this process busy) could miss the
        // moment the partitions were free.
        let lateBy = started - heldBefore.serverTime
        if lateBy > 0.5 {
            sample.notMeasured = "the wait began over 0.5 s after the kill (this process was busy)"
            return
        }
        let seen = "the last poll saw \(row.string("still_held") ?? "?") lock(s) of the killed controller's sessions, "
            + "\(row.string("projection") ?? "?") projection and \(row.string("relay") ?? "?") relay partition(s) held by live ones"
            + (relayExpected ? "" : " (relay not expected)")
        guard let complete = row.string("complete").flatMap(Double.init) else {
            sample.detail = seen
            return
        }
        sample.seconds = complete - heldBefore.serverTime
        if (sample.seconds ?? 0) > ChaosChecks.handoverBound { sample.detail = seen }
    }
}
