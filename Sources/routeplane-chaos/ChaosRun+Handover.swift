// Partition handover after a controller kill, read from pg_locks: which controller holds which projection and relay
// partition just before the kill, then every 50 ms until each of the killed controller's partitions is locked again by
// a live controller (ChaosKit's ChaosHandover has the check). Controllers are told apart by their PostgreSQL
// application_name (PGAPPNAME, set per controller by ChaosRun.init). The reads go through a connection of their own
// (`lockReader`), so the workload's and the convergence poll's queries never delay them.
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
    /// The application_name controller `index` connects with.
    static func applicationName(_ index: Int) -> String { "routeplane-chaos-ctl\(index + 1)" }

    /// Every granted projection and relay partition lock in the run's database; nil when PostgreSQL did not answer.
    func partitionLocks() async -> [ChaosPartitionLock]? {
        let projection = PartitionOwnership.partitionLockClass(.projection)
        let relay = PartitionOwnership.partitionLockClass(.relay)
        guard let rows = try? await lockReader.withSession({ s in
            try s.query("""
                SELECT l.pid, l.classid::int8 AS class, l.objid::int8 AS partition, coalesce(a.application_name, '') AS application_name
                  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND l.classid::int8 IN (\(projection), \(relay))
                """)
        }) else { return nil }
        return rows.compactMap { r in
            guard let pid = r.int64("pid"), let c = r.int64("class"), let p = r.int64("partition") else { return nil }
            return ChaosPartitionLock(pid: pid, applicationName: r.string("application_name") ?? "", work: c == Int64(projection) ? .projection : .relay, partition: p)
        }
    }

    /// Polls pg_locks every 50 ms (for up to 10 s) until every partition is locked again and none by the killed
    /// controller's old sessions; records the sample.
    func measureHandover(of victim: ChaosController, killedAt: Double, heldBefore: [ChaosPartitionLock]?) async {
        var sample = ChaosHandoverSample(killedAt: killedAt, controller: victim.index)
        defer { faults.withLock { [sample] in $0.handovers.append(sample) } }
        guard let heldBefore else {
            sample.notMeasured = "PostgreSQL did not answer before the kill"
            return
        }
        let name = Self.applicationName(victim.index)
        let victimLocks = heldBefore.filter { $0.applicationName == name }
        let victimPids = Set(victimLocks.map(\.pid))
        sample.projectionPartitions = victimLocks.count(where: { $0.work == .projection })
        sample.relayPartitions = victimLocks.count(where: { $0.work == .relay })
        guard !victimLocks.isEmpty else {
            sample.notMeasured = "the killed controller held no partition"
            return
        }
        // Every projection partition; relay partitions only where another controller with NATS is up to take them.
        let partitionedIndex = Self.partitionedIndex(settings)
        let relayExpected = controllers.contains { $0.isUp && $0.index != victim.index && $0.index != partitionedIndex }
        let count = TenantPartitions.standard.count
        // A failed read (the run's pool reconnecting after a failover) is tried again at the next poll; kills near a
        // PostgreSQL fault are not judged anyway (ChaosChecks.handoverDisturbances).
        var (answered, failed) = (0, 0)
        var last = ""
        while now - killedAt < 10 {
            if stopping.load(ordering: .relaxed) {
                sample.notMeasured = "the run ended before the handover did"
                return
            }
            guard let locks = await partitionLocks() else {
                failed += 1
                await chaosSleep(.milliseconds(50))
                continue
            }
            answered += 1
            let stillHeld = locks.filter { victimPids.contains($0.pid) }.count
            let live = locks.filter { !victimPids.contains($0.pid) }
            let projection = Set(live.filter { $0.work == .projection }.map(\.partition))
            let relay = Set(live.filter { $0.work == .relay }.map(\.partition))
            if stillHeld == 0 && projection.count == count && (!relayExpected || relay.count == count) {
                sample.seconds = now - killedAt
                if sample.seconds ?? 0 > ChaosChecks.handoverBound {
                    sample.detail = "before: \(last); \(answered) reads of pg_locks, \(failed) failed"
                }
                return
            }
            last = "at \(String(format: "%.2f", now - killedAt)) s the killed controller's sessions held \(stillHeld) lock(s), "
                + "live controllers \(projection.count) projection and \(relay.count) relay partition(s)\(relayExpected ? "" : " (relay not expected)")"
            await chaosSleep(.milliseconds(50))
        }
        if answered == 0 {
            sample.notMeasured = "PostgreSQL did not answer during the handover"
        } else {
            sample.detail = "last: \(last); \(answered) reads of pg_locks, \(failed) failed"
        }
    }

    /// `partitionLocks()`, tried up to three times 50 ms apart (just before a kill: the pool may be reconnecting).
    func partitionLocksBeforeKill() async -> [ChaosPartitionLock]? {
        for attempt in 0..<3 {
            if let locks = await partitionLocks() { return locks }
            if attempt < 2 { await chaosSleep(.milliseconds(50)) }
        }
        return nil
    }
}
