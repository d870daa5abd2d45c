import ChaosKit
import Testing

/// The replicated-service faults' pure parts: multi-host URLs, the plan, the minimums per fault kind (a removed fault
/// fails its check), the checks of each fault and the time to recover from it.
@Suite struct ChaosClusterTests {
    func write(_ id: String, status: Int, controller: Int = 0, start: Double, end: Double) -> ChaosRequestRecord {
        ChaosRequestRecord(requestID: id, tenant: "t1", kind: .updateRoute, controller: controller, conditional: false, burst: nil,
                           outcome: .answered(status: status, sequence: status < 300 ? 1 : nil, retryAfter: nil, message: nil),
                           controllerKilledDuring: false, start: start, end: end)
    }
    var allOn: ChaosClusterSettings { ChaosClusterSettings(failover: true, natsNodeKill: true, partition: true) }
    var minimums: ChaosClusterMinimums {
        ChaosClusterMinimums(failovers: 1, natsNodeKills: 1, partitions: 1, writesAfterFailover: 2, requestsDuringPartition: 3)
    }

    // MARK: URLs

    @Test func hostsOfSingleMultiHostAndListURLs() {
        #expect(ChaosServiceURL.hosts("postgresql://postgres@127.0.0.1:5432/db") == ["127.0.0.1"])
        #expect(ChaosServiceURL.hosts("postgresql://postgres@127.0.0.1:26532,127.0.0.1:26533/routeplane_chaos?target_session_attrs=read-write")
                == ["127.0.0.1", "127.0.0.1"])
        #expect(ChaosServiceURL.hosts("postgresql://u@db1.example.com,[::1]:5433/x") == ["db1.example.com", "::1"])
        #expect(ChaosServiceURL.hosts("nats://127.0.0.1:1,nats://127.0.0.1:2,nats://localhost:3") == ["127.0.0.1", "127.0.0.1", "localhost"])
        #expect(ChaosServiceURL.hosts("not a url") == nil)
        #expect(ChaosServiceURL.hosts("postgresql://127.0.0.1:1,:2/db") == nil)
    }

    @Test func loopbackMeansEveryHost() {
        #expect(ChaosSettings.isLoopback("postgresql://postgres@127.0.0.1:26532,127.0.0.1:26533/db?target_session_attrs=read-write"))
        #expect(ChaosSettings.isLoopback("nats://127.0.0.1:26322,nats://127.0.0.1:26323,nats://127.0.0.1:26324"))
        #expect(!ChaosSettings.isLoopback("postgresql://postgres@127.0.0.1:26532,db.example.com:5432/db"))
        #expect(!ChaosSettings.isLoopback("nats://127.0.0.1:26322,nats://10.0.0.5:4222"))
    }

    // MARK: Plan and minimums

    @Test func shortRunPlansOneOfEachFault() {
        let plan = ChaosClusterPlan.make(duration: 40, settings: allOn)
        #expect(plan.steps.map(\.fault) == [.partition, .failover, .natsNodeKill])
        #expect(zip(plan.steps.map(\.at), [4.8, 20, 28]).allSatisfy { abs($0 - $1) < 1e-9 })
        // Removing one removes it from the plan, not from the minimums: the run then fails.
        var noFailover = allOn
        noFailover.failover = false
        #expect(ChaosClusterPlan.make(duration: 40, settings: noFailover).count(.failover) == 0)
        #expect(ChaosClusterMinimums.forRun(duration: 40, settings: noFailover).failovers == 1)
    }

    @Test func longRunRepeatsFaultsAndEndsThemBeforeTheEnd() {
        let plan = ChaosClusterPlan.make(duration: 1800, settings: allOn)
        #expect(plan.count(.failover) == 3)  // 900, 1200, 1500
        #expect(plan.count(.natsNodeKill) == 2)  // 1260, 1560
        #expect(plan.count(.partition) == 6)  // 216 … 1716
        #expect(plan.steps.allSatisfy { $0.at + 6 <= 1800 - 6 })
        let m = ChaosClusterMinimums.forRun(duration: 1800, settings: allOn)
        #expect(m.failovers == 3 && m.natsNodeKills == 2 && m.partitions == 6)
    }

    @Test func partitionUnavailableIsNotRequired() {
        var s = allOn
        s.partitionUnavailable = "needs root"
        #expect(ChaosClusterPlan.make(duration: 40, settings: s).count(.partition) == 0)
        let m = ChaosClusterMinimums.forRun(duration: 40, settings: s)
        #expect(m.partitions == 0 && m.requestsDuringPartition == 0)
        #expect(ChaosChecks.partitions(ChaosClusterTally(), records: [], minimums: m).passed)
        #expect(!ChaosChecks.partitions(ChaosClusterTally(), records: [], minimums: ChaosClusterMinimums.forRun(duration: 40, settings: allOn)).passed)
    }

    // MARK: Checks

    @Test func failoverNeedsTheFaultAndWritesAfterIt() {
        #expect(!ChaosChecks.failovers(ChaosClusterTally(), records: [], minimums: minimums).passed)
        var tally = ChaosClusterTally()
        tally.events = [ChaosClusterEvent(fault: .failover, at: 10, healed: 18)]
        let before = [write("w0", status: 200, start: 5, end: 6)]
        let check = ChaosChecks.failovers(tally, records: before + [write("w1", status: 503, start: 10.1, end: 10.2)], minimums: minimums)
        #expect(!check.passed)
        #expect(check.detail.hasPrefix("1 failover(s) (minimum 1), writes acknowledged after each: 0 (minimum 2 each); 0 write(s) answered with an error while in flight"))
        let after = [write("w2", status: 200, start: 10.5, end: 11.2), write("w3", status: 201, start: 11, end: 11.5)]
        #expect(ChaosChecks.failovers(tally, records: before + after, minimums: minimums).passed)
        #expect(abs((ChaosChecks.firstAcknowledged(before + after, after: 10) ?? 0) - 1.2) < 1e-9)
        tally.errors = ["PostgreSQL failover: ops/services pg-resync failed (see services.log)"]
        #expect(!ChaosChecks.failovers(tally, records: before + after, minimums: minimums).passed)
    }

    @Test func partitionedControllerMustNotAcknowledgeWhileCutOff() {
        var tally = ChaosClusterTally()
        tally.partitionedController = 2
        tally.events = [ChaosClusterEvent(fault: .partition, at: 10, healed: 16, detail: "controller 3")]
        let cutOff = (0..<3).map { write("p\($0)", status: 503, controller: 2, start: 10.5 + Double($0), end: 11 + Double($0)) }
        let healedWrite = write("h", status: 200, controller: 2, start: 16.5, end: 17)
        let ok = ChaosChecks.partitions(tally, records: cutOff + [healedWrite], minimums: minimums)
        #expect(ok.passed)
        #expect(ok.detail == "controller 3: 1 partition(s) (minimum 1), requests sent while cut off: 3 (minimum 3 each)")
        // A write it acknowledged before the heal could not have been committed: the drop was not in place.
        let leak = ChaosChecks.partitions(tally, records: cutOff + [write("x", status: 200, controller: 2, start: 12, end: 13), healedWrite], minimums: minimums)
        #expect(!leak.passed)
        #expect(leak.problems == ["x acknowledged by controller 3 at 13.0 s while it was cut off from PostgreSQL"])
        // Sent during the partition, answered after the heal: committed after the heal, fine.
        #expect(ChaosChecks.partitions(tally, records: cutOff + [write("y", status: 200, controller: 2, start: 15, end: 16.2), healedWrite], minimums: minimums).passed)
        // Too little work while cut off; never serving again.
        #expect(!ChaosChecks.partitions(tally, records: Array(cutOff.prefix(2)) + [healedWrite], minimums: minimums).passed)
        #expect(!ChaosChecks.partitions(tally, records: cutOff, minimums: minimums).passed)
    }

    @Test func natsKillNeedsReplicatedStreamAndAgentsCatchingUp() {
        let key = ChaosViewKey(tenant: "t1", peer: "p1")
        let agent = ChaosAgentHistory(tenant: "t1", peer: "p1", applied: [ChaosAppliedView(version: 3, digest: "a", source: "nats", at: 5),
                                                                           ChaosAppliedView(version: 4, digest: "b", source: "nats", at: 21.5)],
                                      finalVersion: 4, finalDigest: "b")
        var tally = ChaosClusterTally()
        tally.events = [ChaosClusterEvent(fault: .natsNodeKill, at: 20, healed: 23, detail: "n2", viewVersions: [key: 4], replicas: 3)]
        #expect(ChaosChecks.natsNodeKills(tally, agents: [agent], minimums: minimums).passed)
        #expect(ChaosReport.recoveryLines(tally, records: [], agents: [agent])[1]
                == "  recovery: NATS leader kill ×1, from kill -9 until every agent had the view of that moment: worst 1.50 s (each: 1.50 s)")
        tally.events[0].replicas = 1
        #expect(!ChaosChecks.natsNodeKills(tally, agents: [agent], minimums: minimums).passed)
        tally.events[0].replicas = 3
        tally.events[0].viewVersions = [key: 5]  // the agent never reached the version of the kill
        #expect(!ChaosChecks.natsNodeKills(tally, agents: [agent], minimums: minimums).passed)
        #expect(!ChaosChecks.natsNodeKills(ChaosClusterTally(), agents: [agent], minimums: minimums).passed)
    }

    @Test func dropRulesCutBothDirectionsOnThePostgresPorts() {
        let n = ChaosPartitionNetwork(namespace: "rp-x", controllerAddress: "10.231.1.2", serviceAddress: "10.231.1.1", postgresPorts: [26532, 26533])
        #expect(n.dropRules.contains("ip daddr 10.231.1.1 tcp dport { 26532, 26533 } drop;"))
        #expect(n.dropRules.contains("ip saddr 10.231.1.1 tcp sport { 26532, 26533 } drop;"))
        #expect(n.dropRules.hasPrefix("table inet rp_partition {"))
    }
}

@Suite struct ChaosFailoverIndeterminateTests {
    func write(_ id: String, status: Int, start: Double, end: Double) -> ChaosRequestRecord {
        ChaosRequestRecord(requestID: id, tenant: "t1", kind: .updateRoute, controller: 0, conditional: false, burst: nil,
                           outcome: .answered(status: status, sequence: nil, retryAfter: nil, message: "m"),
                           controllerKilledDuring: false, start: start, end: end)
    }

    /// Only error answers to writes in flight during the kill (between its command's start and return) are indeterminate.
    @Test func errorsInFlightAtTheKillAreIndeterminate() {
        var tally = ChaosClusterTally()
        var event = ChaosClusterEvent(fault: .failover, at: 34.6)
        event.killStarted = 34.5
        tally.events = [event]
        let records = [write("inFlight", status: 503, start: 34.45, end: 34.64), write("before", status: 503, start: 33, end: 34.4),
                       write("after", status: 503, start: 34.7, end: 35), write("ok", status: 200, start: 34.45, end: 34.64)]
        #expect(ChaosChecks.indeterminateAtKills(tally, records: records) == ["inFlight"])
        #expect(ChaosChecks.indeterminateAtKills(ChaosClusterTally(), records: records).isEmpty)
    }
}
