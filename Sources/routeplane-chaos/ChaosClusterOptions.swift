import ArgumentParser
import ChaosKit
import Foundation

/// `routeplane-chaos`'s options for the replicated-service faults. Each is on by default (ops/chaos starts the standby,
/// the NATS cluster and the partition's namespace); `--no-…` removes one, and the run then fails its minimum for that
/// fault (the way to see that the check is not vacuous).
struct ChaosClusterOptions: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "kill -9 the PostgreSQL primary and promote its synchronous standby (needs ops/services --pg-standby).")
    var failover = true
    @Flag(inversion: .prefixedNo, help: "kill -9 the NATS server leading the views stream (needs ops/services --nats-cluster).")
    var natsNodeKill = true
    @Flag(inversion: .prefixedNo, help: "Cut the last controller off from PostgreSQL with nftables in its network namespace (needs --partition-netns).")
    var partition = true
    @Option(help: "Why the partition cannot run here (no root, no `ip netns`): it is skipped, loudly, and not required.")
    var partitionUnavailable: String?
    @Option(help: "Network namespace of the partitioned controller (made by ops/chaos).") var partitionNetns: String?
    @Option(help: "The partitioned controller's address inside its namespace.") var partitionAddress: String?
    @Option(help: "PostgreSQL's address on the root side of the namespace's veth.") var partitionServiceAddress: String?
    @Option(help: "PostgreSQL ports (primary and standby), comma-separated.") var partitionPostgresPorts: String?
    @Option(help: "Seconds a partition lasts.") var partitionHold = 6.0
    @Flag(inversion: .prefixedNo, help: "Cut a few `routeplane agent` processes in the partition's namespace off from NATS with nftables (needs --partition-nats-ports).")
    var agentPartition = true
    @Option(help: "NATS client ports (every server), comma-separated: relayed on --partition-service-address for the namespaced agents, dropped by the agent partition.")
    var partitionNatsPorts: String?
    @Option(help: "`routeplane agent` processes in the partition's namespace.") var partitionAgents = 3
    @Option(help: "Seconds an agent partition lasts.") var agentPartitionHold = 5.0
    @Option(help: "Seconds a killed NATS server stays down.") var natsDownFor = 3.0
    @Option(help: "Seconds between repeated failovers, NATS kills and partitions in a long run.") var clusterFaultEvery = 300.0

    func settings() throws -> ChaosClusterSettings {
        var network: ChaosPartitionNetwork?
        var unavailable = partitionUnavailable
        if let ns = partitionNetns {
            guard let address = partitionAddress, let service = partitionServiceAddress else {
                throw ValidationError("--partition-netns needs --partition-address and --partition-service-address")
            }
            let ports = (partitionPostgresPorts ?? "").split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !ports.isEmpty else { throw ValidationError("--partition-netns needs --partition-postgres-ports (comma-separated)") }
            network = ChaosPartitionNetwork(namespace: ns, controllerAddress: address, serviceAddress: service, postgresPorts: ports)
        } else if unavailable == nil {
            unavailable = "no --partition-netns given (ops/chaos makes the namespace when it runs as root)"
        }
        guard partitionHold > 0, natsDownFor > 0, agentPartitionHold > 0, clusterFaultEvery >= 30 else {
            throw ValidationError("--partition-hold, --agent-partition-hold and --nats-down-for must be positive, --cluster-fault-every at least 30 s")
        }
        guard (1...20).contains(partitionAgents) else { throw ValidationError("--partition-agents must be between 1 and 20") }
        var s = ChaosClusterSettings(failover: failover, natsNodeKill: natsNodeKill, partition: partition, partitionUnavailable: unavailable,
                                     every: clusterFaultEvery, natsDownFor: natsDownFor, partitionHold: partitionHold, partitionNetwork: network)
        s.agentPartition = agentPartition
        s.agentPartitionHold = agentPartitionHold
        let natsPorts = (partitionNatsPorts ?? "").split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        if let network, unavailable == nil {
            if natsPorts.isEmpty {
                s.agentPartitionUnavailable = "no --partition-nats-ports given (ops/chaos passes the NATS servers' ports)"
            } else {
                s.agentPartitionNetwork = ChaosAgentPartitionNetwork(namespace: network.namespace, serviceAddress: network.serviceAddress,
                                                                     natsPorts: natsPorts, agents: partitionAgents)
            }
        } else {
            s.agentPartitionUnavailable = unavailable ?? "no partition namespace"
        }
        return s
    }
}
