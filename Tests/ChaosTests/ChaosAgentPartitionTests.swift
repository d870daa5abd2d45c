import ChaosKit
import Testing

/// The agent partition's pure parts: its place in the plan and the minimums (removing it fails the run), the drop rules,
/// the check (work covered, catching up within the bound, none left on an old view) and the recovery line.
@Suite struct ChaosAgentPartitionTests {
    let network = ChaosAgentPartitionNetwork(namespace: "rp-x", serviceAddress: "10.231.1.1", natsPorts: [24322, 24323, 24324], agents: 3)
    var allOn: ChaosClusterSettings {
        var s = ChaosClusterSettings(failover: true, natsNodeKill: true, partition: true)
        s.agentPartition = true
        s.agentPartitionNetwork = network
        return s
    }
    var minimums: ChaosClusterMinimums {
        ChaosClusterMinimums(failovers: 1, natsNodeKills: 1, partitions: 1, writesAfterFailover: 2, requestsDuringPartition: 3,
                             agentPartitions: 1, agentsInPartition: 2, agentCatchUpBound: 10)
    }
    let a = ChaosViewKey(tenant: "t1", peer: "a")
    let b = ChaosViewKey(tenant: "t2", peer: "b")

    func agent(_ key: ChaosViewKey, _ applied: [(Int64, Double)]) -> ChaosAgentHistory {
        ChaosAgentHistory(tenant: key.tenant, peer: key.peer, applied: applied.map { ChaosAppliedView(version: $0.0, digest: "d\($0.0)", source: "state folder", at: $0.1) },
                          finalVersion: applied.last?.0 ?? 0, finalDigest: applied.last.map { "d\($0.0)" })
    }

    /// A cut from 10 to 15 s: both agents at version 3 when it began, 5 projected at the heal.
    func tally(healed: Double? = 15, atHeal: Int64 = 5) -> ChaosClusterTally {
        var t = ChaosClusterTally()
        var e = ChaosClusterEvent(fault: .agentPartition, at: 10, healed: healed, detail: "2 agents", viewVersions: [a: atHeal, b: atHeal])
        e.viewVersionsAtCut = [a: 3, b: 3]
        t.events = [e]
        return t
    }

    @Test func plannedAfterTheControllerPartitionAndRequiredWhereNamespacesWork() {
        let plan = ChaosClusterPlan.make(duration: 40, settings: allOn)
        #expect(plan.steps.map(\.fault) == [.partition, .agentPartition, .failover, .natsNodeKill])
        #expect(plan.steps.first { $0.fault == .agentPartition }.map { abs($0.at - 8.8) < 1e-9 } == true)
        #expect(ChaosClusterPlan.make(duration: 1800, settings: allOn).count(.agentPartition) == 5)  // 396, 696, 996, 1296, 1596
        // --no-agent-partition removes it from the plan, not from the minimums.
        var off = allOn
        off.agentPartition = false
        #expect(ChaosClusterPlan.make(duration: 40, settings: off).count(.agentPartition) == 0)
        let m = ChaosClusterMinimums.forRun(duration: 40, settings: off)
        #expect(m.agentPartitions == 1 && m.agentsInPartition == 2 && m.agentCatchUpBound == 10)
        #expect(!ChaosChecks.agentPartitions(ChaosClusterTally(), agents: [], minimums: m).passed)
        // Where it cannot run (no namespace), it is not required.
        var unavailable = allOn
        unavailable.agentPartitionUnavailable = "needs root"
        #expect(ChaosClusterPlan.make(duration: 40, settings: unavailable).count(.agentPartition) == 0)
        let none = ChaosClusterMinimums.forRun(duration: 40, settings: unavailable)
        #expect(none.agentPartitions == 0 && none.agentsInPartition == 0)
        #expect(ChaosChecks.agentPartitions(ChaosClusterTally(), agents: [], minimums: none).passed)
    }

    @Test func dropRulesCutTheNATSPortsBothWaysOnly() {
        #expect(network.dropRules.hasPrefix("table inet rp_agent_partition {"))
        #expect(network.dropRules.contains("ip daddr 10.231.1.1 tcp dport { 24322, 24323, 24324 } drop;"))
        #expect(network.dropRules.contains("ip saddr 10.231.1.1 tcp sport { 24322, 24323, 24324 } drop;"))
        #expect(network.natsURL == "nats://10.231.1.1:24322,nats://10.231.1.1:24323,nats://10.231.1.1:24324")
    }

    @Test func agentsCatchingUpWithinTheBoundPass() {
        let agents = [agent(a, [(3, 1), (5, 17.5)]), agent(b, [(3, 2), (4, 16), (5, 19)])]
        let check = ChaosChecks.agentPartitions(tally(), agents: agents, minimums: minimums)
        #expect(check.passed, "\(check.problems)")
        #expect(check.detail.contains("views changed during each cut: 2") && check.detail.contains("after: 4.00 s"))
        #expect(ChaosReport.recoveryLines(tally(), records: [], agents: agents)[3]
                == "  recovery: partition agents↔NATS ×1, from the heal until every cut-off agent had the view of that moment: worst 4.00 s (each: 4.00 s)")
        // Other agents in the list (in-process ones) are not judged by this fault.
        #expect(ChaosChecks.agentPartitions(tally(), agents: agents + [agent(ChaosViewKey(tenant: "t1", peer: "z"), [(1, 1)])], minimums: minimums).passed)
    }

    @Test func anAgentLeftOnAnOldViewFails() {
        let stuck = [agent(a, [(3, 1), (5, 17.5)]), agent(b, [(3, 2), (4, 16)])]
        #expect(!ChaosChecks.agentPartitions(tally(), agents: stuck, minimums: minimums).passed)
        let missing = [agent(a, [(3, 1), (5, 17.5)])]
        #expect(!ChaosChecks.agentPartitions(tally(), agents: missing, minimums: minimums).passed)
    }

    @Test func catchingUpAfterTheBoundFails() {
        let late = [agent(a, [(3, 1), (5, 17.5)]), agent(b, [(3, 2), (5, 25.5)])]
        let check = ChaosChecks.agentPartitions(tally(), agents: late, minimums: minimums)
        #expect(!check.passed)
        #expect(check.problems.contains { $0.contains("above the bound of 10 s") })
    }

    @Test func aCutWithoutViewChangesOrNeverHealedOrTooFewAgentsFails() {
        let agents = [agent(a, [(3, 1)]), agent(b, [(3, 2)])]
        // Nothing changed during the cut: nothing was tested.
        #expect(!ChaosChecks.agentPartitions(tally(atHeal: 3), agents: agents, minimums: minimums).passed)
        #expect(!ChaosChecks.agentPartitions(tally(healed: nil), agents: agents, minimums: minimums).passed)
        var one = tally()
        one.events[0].viewVersions = [a: 5]
        #expect(!ChaosChecks.agentPartitions(one, agents: [agent(a, [(3, 1), (5, 16)])], minimums: minimums).passed)
        var failed = tally()
        failed.errors = ["partition agents↔NATS: nft -f in rp-x failed"]
        #expect(!ChaosChecks.agentPartitions(failed, agents: [agent(a, [(3, 1), (5, 16)]), agent(b, [(3, 1), (5, 16)])], minimums: minimums).passed)
    }

    @Test func namespacedAgentsMustEndOnTheirProjectedViews() {
        let projected = [a: ChaosProjectedView(version: 5, digest: "d5"), b: ChaosProjectedView(version: 5, digest: "d5")]
        let on = [agent(a, [(5, 1)]), agent(b, [(5, 2)])]
        #expect(ChaosChecks.namespacedAgentsConverged(on, projected: projected, minimum: 2).passed)
        #expect(!ChaosChecks.namespacedAgentsConverged([agent(a, [(5, 1)]), agent(b, [(4, 2)])], projected: projected, minimum: 2).passed)
        #expect(!ChaosChecks.namespacedAgentsConverged(Array(on.prefix(1)), projected: projected, minimum: 2).passed)
    }
}
