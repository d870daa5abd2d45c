import Foundation
import RouteModel

// The faults of replicated services: a PostgreSQL primary killed with -9 and its synchronous standby promoted, the NATS
// JetStream server leading the views stream killed with -9, and one controller cut off from PostgreSQL by a network
// partition. Pure parts: the plan, the tally, the minimums per fault kind, the time each fault took to recover from,
// the checks, and the hosts of multi-host service URLs.

/// Which replicated-service faults a run injects, and how often in a long run.
public struct ChaosClusterSettings: Sendable, Equatable {
    /// kill -9 of the PostgreSQL primary and promotion of its standby (`ops/services pg-failover`), then a new standby.
    public var failover: Bool
    /// kill -9 of the NATS server leading the views stream (`ops/services nats-kill-leader`), started again after `natsDownFor`.
    public var natsNodeKill: Bool
    /// One controller (the last) in a network namespace; nftables there drops its packets to PostgreSQL for `partitionHold`.
    public var partition: Bool
    /// Why the partition cannot run on this machine (no root, no `ip netns`): its minimum is then 0 and the run says so.
    public var partitionUnavailable: String?
    /// Seconds between repeated faults of one kind in a long run (the first comes at a fixed share of the duration).
    public var every: Double
    public var natsDownFor: Double
    public var partitionHold: Double
    /// Where the partitioned controller runs (set up by ops/chaos).
    public var partitionNetwork: ChaosPartitionNetwork?
    /// A few real agents in the partition's namespace; nftables there drops their packets to NATS for `agentPartitionHold`
    /// (ChaosAgentPartition.swift).
    public var agentPartition = false
    /// Why the agent partition cannot run (no namespace, no NATS ports given): its minimum is then 0 and the run says so.
    public var agentPartitionUnavailable: String?
    public var agentPartitionHold = 5.0
    public var agentPartitionNetwork: ChaosAgentPartitionNetwork?

    public init(failover: Bool = false, natsNodeKill: Bool = false, partition: Bool = false, partitionUnavailable: String? = nil,
                every: Double = 300, natsDownFor: Double = 3, partitionHold: Double = 6, partitionNetwork: ChaosPartitionNetwork? = nil) {
        self.failover = failover
        self.natsNodeKill = natsNodeKill
        self.partition = partition
        self.partitionUnavailable = partitionUnavailable
        self.every = every
        self.natsDownFor = natsDownFor
        self.partitionHold = partitionHold
        self.partitionNetwork = partitionNetwork
    }
}

/// The network namespace of the partitioned controller, joined to the root namespace by a veth pair: the controller
/// listens on `controllerAddress` inside it and reaches PostgreSQL at `serviceAddress` (the root side), on `postgresPorts`.
public struct ChaosPartitionNetwork: Sendable, Equatable {
    public var namespace: String
    public var controllerAddress: String
    public var serviceAddress: String
    public var postgresPorts: [Int]

    public init(namespace: String, controllerAddress: String, serviceAddress: String, postgresPorts: [Int]) {
        self.namespace = namespace
        self.controllerAddress = controllerAddress
        self.serviceAddress = serviceAddress
        self.postgresPorts = postgresPorts
    }

    /// The nftables table that cuts the namespace off from PostgreSQL both ways (`nft -f` input inside the namespace).
    public var dropRules: String {
        let ports = postgresPorts.map(String.init).joined(separator: ", ")
        return "table inet rp_partition {\n"
            + "  chain out { type filter hook output priority 0; policy accept; ip daddr \(serviceAddress) tcp dport { \(ports) } drop; }\n"
            + "  chain in { type filter hook input priority 0; policy accept; ip saddr \(serviceAddress) tcp sport { \(ports) } drop; }\n"
            + "}\n"
    }
}

extension ChaosSettings {
    /// These settings with `cluster` as the replicated-service faults.
    public func with(cluster: ChaosClusterSettings) -> ChaosSettings {
        var s = self
        s.cluster = cluster
        return s
    }
}

/// One kind of replicated-service fault.
public enum ChaosClusterFault: String, Sendable, Equatable, CaseIterable {
    case failover = "PostgreSQL failover"
    case natsNodeKill = "NATS leader kill"
    case partition = "partition controller↔PostgreSQL"
    case agentPartition = "partition agents↔NATS"
}

/// When each replicated-service fault happens (seconds from the start of the chaos phase). The first failover comes at
/// half the duration (after the PostgreSQL restart at 35 %), the first NATS server kill at 70 % (after the NATS restart
/// at 60 %), the first partition at 12 %; each repeats every `every` seconds while it still ends 6 s before the end.
public struct ChaosClusterPlan: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var at: Double
        public var fault: ChaosClusterFault
    }

    public var steps: [Step]

    public static func make(duration: Double, settings s: ChaosClusterSettings) -> ChaosClusterPlan {
        var steps: [Step] = []
        func add(_ fault: ChaosClusterFault, first: Double, lasts: Double) {
            var t = first
            while t + lasts <= duration - 6 {
                steps.append(Step(at: t, fault: fault))
                t += max(s.every, lasts + 10)
            }
        }
        if s.failover { add(.failover, first: duration * 0.5, lasts: 2) }
        if s.natsNodeKill { add(.natsNodeKill, first: duration * 0.7, lasts: s.natsDownFor) }
        if s.partition && s.partitionUnavailable == nil { add(.partition, first: duration * 0.12, lasts: s.partitionHold) }
        if s.agentPartition && s.agentPartitionUnavailable == nil { add(.agentPartition, first: duration * 0.22, lasts: s.agentPartitionHold) }
        return ChaosClusterPlan(steps: steps.sorted { $0.at < $1.at })
    }

    public func count(_ fault: ChaosClusterFault) -> Int { steps.count(where: { $0.fault == fault }) }
}

/// One fault as it happened: when it was injected and when it was healed (seconds from the run's start).
public struct ChaosClusterEvent: Sendable, Equatable {
    public var fault: ChaosClusterFault
    public var at: Double
    public var healed: Double?
    /// What the fault hit (the promoted port, the killed server, the partitioned controller).
    public var detail: String
    /// For a NATS server kill: every peer's view version at the kill (each agent must reach it afterwards).
    public var viewVersions: [ChaosViewKey: Int64]
    /// For a NATS server kill: on how many servers the views stream was (1 + its followers) before the kill.
    public var replicas: Int?
    /// For a failover: when the kill command started (`at` is when it returned; the kill is in between).
    public var killStarted: Double?
    /// For an agent partition: the namespaced agents' projected view versions when the cut began (`viewVersions` holds
    /// them at the heal: the views each agent must reach after it).
    public var viewVersionsAtCut: [ChaosViewKey: Int64] = [:]

    public init(fault: ChaosClusterFault, at: Double, healed: Double? = nil, detail: String = "", viewVersions: [ChaosViewKey: Int64] = [:],
                replicas: Int? = nil) {
        self.fault = fault
        self.at = at
        self.healed = healed
        self.detail = detail
        self.viewVersions = viewVersions
        self.replicas = replicas
    }
}

/// The replicated-service faults of a run so far.
public struct ChaosClusterTally: Sendable {
    public var events: [ChaosClusterEvent] = []
    /// Faults that could not be injected or healed, one line each (a failed check).
    public var errors: [String] = []
    /// The partitioned controller (index), when the run has one.
    public var partitionedController: Int?

    public init() {}

    public func done(_ fault: ChaosClusterFault) -> [ChaosClusterEvent] { events.filter { $0.fault == fault } }
}

/// The least each replicated-service fault must have covered: planned faults done, work around them.
public struct ChaosClusterMinimums: Sendable, Equatable {
    public var failovers: Int
    public var natsNodeKills: Int
    public var partitions: Int
    /// Writes acknowledged after each failover (service resumed on the promoted primary).
    public var writesAfterFailover: Int
    /// Requests sent to the partitioned controller while it was cut off.
    public var requestsDuringPartition: Int
    /// Agent partitions (agents cut off from NATS), the agents in the namespace during each, and the seconds each of
    /// them has after the heal to reach the view of its peer as projected at the heal.
    public var agentPartitions: Int
    public var agentsInPartition: Int
    public var agentCatchUpBound: Double

    public init(failovers: Int, natsNodeKills: Int, partitions: Int, writesAfterFailover: Int, requestsDuringPartition: Int,
                agentPartitions: Int = 0, agentsInPartition: Int = 0, agentCatchUpBound: Double = 10) {
        self.failovers = failovers
        self.natsNodeKills = natsNodeKills
        self.partitions = partitions
        self.writesAfterFailover = writesAfterFailover
        self.requestsDuringPartition = requestsDuringPartition
        self.agentPartitions = agentPartitions
        self.agentsInPartition = agentsInPartition
        self.agentCatchUpBound = agentCatchUpBound
    }

    /// At least one of each fault kind in every run (also when a `--no-…` switch removed it, so that removing a fault
    /// fails the run), and every planned one; the partition only where namespaces work.
    public static func forRun(duration: Double, settings s: ChaosClusterSettings) -> ChaosClusterMinimums {
        var all = ChaosClusterSettings(failover: true, natsNodeKill: true, partition: true, partitionUnavailable: s.partitionUnavailable, every: s.every,
                                       natsDownFor: s.natsDownFor, partitionHold: s.partitionHold)
        all.agentPartition = true
        all.agentPartitionUnavailable = s.agentPartitionUnavailable
        all.agentPartitionHold = s.agentPartitionHold
        let plan = ChaosClusterPlan.make(duration: duration, settings: all)
        let agentsCut = s.agentPartitionUnavailable == nil
        return ChaosClusterMinimums(failovers: max(1, plan.count(.failover)), natsNodeKills: max(1, plan.count(.natsNodeKill)),
                                    partitions: s.partitionUnavailable == nil ? max(1, plan.count(.partition)) : 0,
                                    writesAfterFailover: 5, requestsDuringPartition: s.partitionUnavailable == nil ? 3 : 0,
                                    agentPartitions: agentsCut ? max(1, plan.count(.agentPartition)) : 0,
                                    agentsInPartition: agentsCut ? min(2, s.agentPartitionNetwork?.agents ?? 2) : 0,
                                    agentCatchUpBound: ChaosAgentPartitionNetwork.catchUpBound)
    }

    public var summary: String {
        "replicated-service minimums: \(failovers) PostgreSQL failover(s) with \(writesAfterFailover) writes acknowledged after each, "
            + "\(natsNodeKills) NATS leader kill(s), \(partitions) partition(s) with \(requestsDuringPartition) requests to the cut-off controller each, "
            + "\(agentPartitions) agent partition(s) with \(agentsInPartition) agents cut off from NATS, on the view of the heal within \(Int(agentCatchUpBound)) s"
    }
}

extension ChaosChecks {
    /// Seconds from a fault until the first write acknowledged that was sent after it (by `controller`, when given).
    public static func firstAcknowledged(_ records: [ChaosRequestRecord], after t: Double, controller: Int? = nil) -> Double? {
        records.filter { $0.kind.isWrite && $0.outcome.isSuccess && $0.start >= t && (controller == nil || $0.controller == controller) }
            .map(\.end).min().map { $0 - t }
    }

    /// Each failover done as often as the minimum asks, and service resumed after it: writes sent after the kill were
    /// acknowledged (by the promoted primary). That no acknowledged write was lost is the acknowledged-writes check's,
    /// over every write of the run.
    public static func failovers(_ tally: ChaosClusterTally, records: [ChaosRequestRecord], minimums m: ChaosClusterMinimums) -> ChaosCheck {
        let done = tally.done(.failover)
        var problems: [String] = []
        if done.count < m.failovers { problems.append("\(done.count) PostgreSQL failover(s), below the minimum of \(m.failovers)") }
        var after: [Int] = []
        for (i, e) in done.enumerated() {
            let end = i + 1 < done.count ? done[i + 1].at : .infinity
            let n = records.count(where: { $0.kind.isWrite && $0.outcome.isSuccess && $0.start >= e.at && $0.start < end })
            after.append(n)
            if n < m.writesAfterFailover {
                problems.append("failover at \(ChaosReport.at(e.at).trimmingCharacters(in: .whitespaces)): \(n) writes acknowledged after it, below the minimum of \(m.writesAfterFailover)")
            }
        }
        problems += tally.errors.filter { $0.hasPrefix(ChaosClusterFault.failover.rawValue) }
        let indeterminate = indeterminateAtKills(tally, records: records).count
        return ChaosCheck(name: "PostgreSQL primary killed with -9, standby promoted, service resumed", passed: problems.isEmpty,
                          detail: "\(done.count) failover(s) (minimum \(m.failovers)), writes acknowledged after each: "
                            + (after.isEmpty ? "none" : after.map(String.init).joined(separator: ", ")) + " (minimum \(m.writesAfterFailover) each); "
                            + "\(indeterminate) write(s) answered with an error while in flight at a kill (checked by the failed-writes check like every other)",
                          problems: Array(problems.prefix(maxProblems)))
    }

    /// Each NATS server kill done, and after it every agent reached the view it had to have at the kill (no agent stuck);
    /// that no view was lost is the convergence and agents-match-projection checks'.
    public static func natsNodeKills(_ tally: ChaosClusterTally, agents: [ChaosAgentHistory], minimums m: ChaosClusterMinimums) -> ChaosCheck {
        let done = tally.done(.natsNodeKill)
        var problems: [String] = []
        if done.count < m.natsNodeKills { problems.append("\(done.count) NATS server kill(s), below the minimum of \(m.natsNodeKills)") }
        var covered = 0
        for e in done {
            covered += e.viewVersions.count
            if catchUp(agents, targets: e.viewVersions, since: e.at) == nil {
                problems.append("after the NATS kill at \(ChaosReport.at(e.at).trimmingCharacters(in: .whitespaces)) (\(e.detail)) some agent never reached the view it had then")
            }
            if e.viewVersions.isEmpty { problems.append("NATS kill at \(ChaosReport.at(e.at).trimmingCharacters(in: .whitespaces)): no view versions read at the kill") }
            if let r = e.replicas, r < 3 { problems.append("the views stream was on \(r) server(s) at the kill, not 3: losing its leader loses it") }
            if e.replicas == nil { problems.append("the views stream's replicas were not found before the kill (\(e.detail))") }
        }
        problems += tally.errors.filter { $0.hasPrefix(ChaosClusterFault.natsNodeKill.rawValue) }
        return ChaosCheck(name: "NATS server leading the views stream killed with -9: every agent caught up", passed: problems.isEmpty,
                          detail: "\(done.count) kill(s) (minimum \(m.natsNodeKills)) of \(done.map(\.detail).joined(separator: ", ")); \(covered) agent views followed through them",
                          problems: Array(problems.prefix(maxProblems)))
    }

    /// Each partition done; while the controller was cut off from PostgreSQL it acknowledged nothing (every write it
    /// answered 2xx was answered after the partition healed), it was sent work, and it served writes again afterwards.
    public static func partitions(_ tally: ChaosClusterTally, records: [ChaosRequestRecord], minimums m: ChaosClusterMinimums) -> ChaosCheck {
        let done = tally.done(.partition)
        var problems: [String] = []
        if done.count < m.partitions { problems.append("\(done.count) partition(s), below the minimum of \(m.partitions)") }
        var sent: [Int] = []
        for e in done {
            guard let c = tally.partitionedController else { continue }
            let label = ChaosReport.at(e.at).trimmingCharacters(in: .whitespaces)
            guard let healed = e.healed else {
                problems.append("partition at \(label) never healed")
                continue
            }
            // Started once the drop was in place: nothing it does can reach PostgreSQL until the heal.
            let during = records.filter { $0.controller == c && $0.start >= e.at && $0.start < healed }
            sent.append(during.count)
            if during.count < m.requestsDuringPartition {
                problems.append("partition at \(label): \(during.count) requests sent to controller \(c + 1) while cut off, below the minimum of \(m.requestsDuringPartition)")
            }
            for r in during where r.kind.isWrite && r.outcome.isSuccess && r.end < healed {
                problems.append("\(r.requestID) acknowledged by controller \(c + 1) at \(ChaosReport.at(r.end).trimmingCharacters(in: .whitespaces)) while it was cut off from PostgreSQL")
            }
            if firstAcknowledged(records, after: healed, controller: c) == nil {
                problems.append("controller \(c + 1) acknowledged no write after the partition of \(label) healed")
            }
        }
        problems += tally.errors.filter { $0.hasPrefix(ChaosClusterFault.partition.rawValue) }
        let detail = tally.partitionedController.map { "controller \($0 + 1): " } ?? ""
        return ChaosCheck(name: "partitioned controller acknowledged nothing it could not commit, and served again after healing", passed: problems.isEmpty,
                          detail: detail + "\(done.count) partition(s) (minimum \(m.partitions)), requests sent while cut off: "
                            + (sent.isEmpty ? "none" : sent.map(String.init).joined(separator: ", ")) + " (minimum \(m.requestsDuringPartition) each)",
                          problems: Array(problems.prefix(maxProblems)))
    }

    /// Writes in flight while a primary was killed that the controller answered with an error: their COMMIT may have
    /// reached the synchronous standby before the primary died. The controller looks such an append up on the promoted
    /// primary before answering, so an error answer must have left no trace: the failed-writes check covers them, and
    /// the failover check counts them (how much of that check the failover exercised).
    public static func indeterminateAtKills(_ tally: ChaosClusterTally, records: [ChaosRequestRecord]) -> Set<String> {
        let windows = tally.done(.failover).map { ($0.killStarted ?? $0.at)...$0.at }
        return Set(records.filter { r in
            r.kind.isWrite && !r.outcome.isSuccess && r.outcome.status != nil && windows.contains { r.start <= $0.upperBound && r.end >= $0.lowerBound }
        }.map(\.requestID))
    }

    /// The checks above, and the agent partition's (ChaosAgentPartition.swift).
    public static func cluster(_ tally: ChaosClusterTally, records: [ChaosRequestRecord], agents: [ChaosAgentHistory],
                               minimums m: ChaosClusterMinimums) -> [ChaosCheck] {
        [failovers(tally, records: records, minimums: m), natsNodeKills(tally, agents: agents, minimums: m), partitions(tally, records: records, minimums: m),
         agentPartitions(tally, agents: agents, minimums: m)]
    }
}

extension ChaosReport {
    /// Time to recover from each replicated-service fault: after a failover until the first write acknowledged (by the
    /// promoted primary); after a NATS server kill until every agent had the view of that moment; after a partition
    /// healed until the cut-off controller acknowledged a write again. The worst of each kind is printed, with each one.
    public static func recoveryLines(_ tally: ChaosClusterTally, records: [ChaosRequestRecord], agents: [ChaosAgentHistory]) -> [String] {
        func seconds(_ v: Double?) -> String { v.map { String(format: "%.2f s", $0) } ?? "never" }
        var lines: [String] = []
        for fault in ChaosClusterFault.allCases {
            let done = tally.done(fault)
            guard !done.isEmpty else {
                lines.append("  recovery: \(fault.rawValue) — none injected")
                continue
            }
            let times: [Double?] = done.map { e in
                switch fault {
                case .failover: return ChaosChecks.firstAcknowledged(records, after: e.at)
                case .natsNodeKill: return ChaosChecks.catchUp(agents, targets: e.viewVersions, since: e.at)
                case .partition: return e.healed.flatMap { ChaosChecks.firstAcknowledged(records, after: $0, controller: tally.partitionedController) }
                case .agentPartition: return e.healed.flatMap { ChaosChecks.catchUp(agents, targets: e.viewVersions, since: $0) }
                }
            }
            let worst = times.contains { $0 == nil } ? nil : times.compactMap { $0 }.max()
            let what = switch fault {
            case .failover: "from kill -9 to the first write acknowledged"
            case .natsNodeKill: "from kill -9 until every agent had the view of that moment"
            case .partition: "from the heal to the controller's first write acknowledged"
            case .agentPartition: "from the heal until every cut-off agent had the view of that moment"
            }
            lines.append("  recovery: \(fault.rawValue) ×\(done.count), \(what): worst \(seconds(worst)) (each: \(times.map(seconds).joined(separator: ", ")))")
        }
        return lines
    }
}

/// The hosts of a service URL: one (`postgresql://u@h:p/db`), several (libpq's `postgresql://u@h1:p1,h2:p2/db?…`), or
/// a comma-separated list of URLs (NATS's `nats://h1:p1,nats://h2:p2`). Brackets of IPv6 literals removed; nil when a
/// part has no host.
public enum ChaosServiceURL {
    public static func hosts(_ url: String) -> [String]? {
        var hosts: [String] = []
        var rest = Substring(url)
        var scheme: Substring?
        while !rest.isEmpty {
            // A list of URLs: each part after the first may repeat a scheme.
            if let sep = rest.range(of: "://") , rest[..<sep.lowerBound].allSatisfy({ $0.isLetter || $0 == "+" || $0 == "-" || $0 == "." }) {
                scheme = rest[..<sep.lowerBound]
                rest = rest[sep.upperBound...]
            } else if scheme == nil {
                return nil
            }
            // The authority ends at the path, query or fragment; a comma separates hosts (or URLs).
            let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" || $0 == "," }) ?? rest.endIndex
            guard let host = URLAuthority.host(rest[..<end]) else { return nil }
            hosts.append(host)
            if end < rest.endIndex && rest[end] == "," {
                rest = rest[rest.index(after: end)...]
            } else {
                break
            }
        }
        return hosts.isEmpty ? nil : hosts
    }
}
