import Foundation

// The agent partition: a few real agents (`routeplane agent` processes) in the partition's network namespace reach NATS
// and a controller through the root side of its veth; nftables in the namespace drops their packets to NATS for a few
// seconds while the workload changes their views; after the heal each must be on the view of that moment within a
// bound. Pure parts: where they run, the drop rules, the check.

/// Where the namespaced agents run and what they reach: the namespace (the controller partition's), the root side of its
/// veth (`serviceAddress`, where routeplane-chaos relays the NATS servers' and controllers' loopback ports), and the
/// NATS client ports the cut drops.
public struct ChaosAgentPartitionNetwork: Sendable, Equatable {
    public var namespace: String
    public var serviceAddress: String
    public var natsPorts: [Int]
    /// `routeplane agent` processes started in the namespace.
    public var agents: Int

    /// Seconds each cut-off agent has, after the heal, to reach its peer's view as projected at the heal. A dropped TCP
    /// connection resumes on the next retransmission (Linux backs off to a few seconds after a 5 s cut), or the agent
    /// reconnects; 10 s covers both with room on a loaded machine.
    public static let catchUpBound = 10.0

    public init(namespace: String, serviceAddress: String, natsPorts: [Int], agents: Int) {
        self.namespace = namespace
        self.serviceAddress = serviceAddress
        self.natsPorts = natsPorts
        self.agents = agents
    }

    /// The nftables table that cuts the namespace off from NATS both ways (`nft -f` input inside the namespace). Only
    /// NATS: the agents' HTTP to the controller (their fallback) and the partitioned controller's PostgreSQL stay.
    public var dropRules: String {
        let ports = natsPorts.map(String.init).joined(separator: ", ")
        return "table inet rp_agent_partition {\n"
            + "  chain out { type filter hook output priority 0; policy accept; ip daddr \(serviceAddress) tcp dport { \(ports) } drop; }\n"
            + "  chain in { type filter hook input priority 0; policy accept; ip saddr \(serviceAddress) tcp sport { \(ports) } drop; }\n"
            + "}\n"
    }

    /// `nats://<serviceAddress>:<port>,…`: the agents' NATS URL list (every server, through the relays).
    public var natsURL: String { natsPorts.map { "nats://\(serviceAddress):\($0)" }.joined(separator: ",") }
}

extension ChaosChecks {
    /// Each agent partition done and healed; during each cut the cut-off agents' views changed (else nothing was tested);
    /// after each heal every cut-off agent reached its peer's view as projected at the heal within the bound (none left on
    /// an old view). `agents` may hold other agents too: only peers in an event's `viewVersions` are judged for it.
    public static func agentPartitions(_ tally: ChaosClusterTally, agents: [ChaosAgentHistory], minimums m: ChaosClusterMinimums) -> ChaosCheck {
        let done = tally.done(.agentPartition)
        var problems: [String] = []
        if done.count < m.agentPartitions { problems.append("\(done.count) agent partition(s), below the minimum of \(m.agentPartitions)") }
        var changed: [Int] = []
        var times: [String] = []
        for e in done {
            let label = ChaosReport.at(e.at).trimmingCharacters(in: .whitespaces)
            guard let healed = e.healed else {
                problems.append("agent partition at \(label) never healed")
                continue
            }
            if e.viewVersions.count < m.agentsInPartition {
                problems.append("agent partition at \(label): \(e.viewVersions.count) agent(s) cut off, below the minimum of \(m.agentsInPartition)")
            }
            let moved = e.viewVersions.count(where: { key, version in version > (e.viewVersionsAtCut[key] ?? Int64.max) })
            changed.append(moved)
            if moved == 0 {
                problems.append("agent partition at \(label): no cut-off agent's view changed during the cut (nothing to catch up on)")
            }
            let judged = agents.filter { e.viewVersions[ChaosViewKey(tenant: $0.tenant, peer: $0.peer)] != nil }
            if judged.count < e.viewVersions.count {
                problems.append("agent partition at \(label): \(e.viewVersions.count - judged.count) cut-off agent(s) have no history")
            }
            guard let took = catchUp(judged, targets: e.viewVersions, since: healed) else {
                problems.append("agent partition at \(label): some cut-off agent never reached the view of the heal (left on an old view)")
                times.append("never")
                continue
            }
            times.append(String(format: "%.2f s", took))
            if took > m.agentCatchUpBound {
                problems.append("agent partition at \(label): the last cut-off agent reached the view of the heal after \(String(format: "%.2f", took)) s, above the bound of \(Int(m.agentCatchUpBound)) s")
            }
        }
        problems += tally.errors.filter { $0.hasPrefix(ChaosClusterFault.agentPartition.rawValue) }
        return ChaosCheck(name: "agents cut off from NATS reached the view of the heal within \(Int(m.agentCatchUpBound)) s, none left on an old view",
                          passed: problems.isEmpty,
                          detail: "\(done.count) agent partition(s) (minimum \(m.agentPartitions)), agents cut off: "
                            + (done.isEmpty ? "none" : done.map { String($0.viewVersions.count) }.joined(separator: ", ")) + " (minimum \(m.agentsInPartition) each), "
                            + "views changed during each cut: " + (changed.isEmpty ? "none" : changed.map(String.init).joined(separator: ", "))
                            + ", on the view of the heal after: " + (times.isEmpty ? "none" : times.joined(separator: ", ")),
                          problems: Array(problems.prefix(maxProblems)))
    }

    /// The namespaced agents at the end: each on its peer's projected view (version and digest).
    public static func namespacedAgentsConverged(_ agents: [ChaosAgentHistory], projected: [ChaosViewKey: ChaosProjectedView], minimum: Int) -> ChaosCheck {
        var problems: [String] = []
        if agents.count < minimum { problems.append("\(agents.count) namespaced agent(s), below the minimum of \(minimum)") }
        for a in agents {
            guard let p = projected[ChaosViewKey(tenant: a.tenant, peer: a.peer)] else {
                problems.append("peer \(a.peer) (tenant \(a.tenant)) has no projected view")
                continue
            }
            if a.finalVersion != p.version || a.finalDigest != p.digest {
                problems.append("peer \(a.peer) (tenant \(a.tenant)) holds version \(a.finalVersion), projected \(p.version)")
            }
        }
        return ChaosCheck(name: "namespaced agents (routeplane agent processes) on their projected views at the end", passed: problems.isEmpty,
                          detail: "\(agents.count - problems.count(where: { $0.hasPrefix("peer") })) of \(agents.count) on their projected view (minimum \(minimum) agents)",
                          problems: Array(problems.prefix(maxProblems)))
    }
}
