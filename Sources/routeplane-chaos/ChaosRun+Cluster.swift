// The fault-injection run's replicated-service faults: the PostgreSQL primary killed with -9 and its standby promoted
// (then a new standby made), the NATS server leading the views stream killed with -9 (then started again), and the
// last controller cut off from PostgreSQL by nftables in its network namespace. The plan, the checks and the recovery
// times are ChaosKit's (ChaosCluster); this is the shell: ops/services, `ip netns exec … nft`, the records.
import ChaosKit
import Foundation
import RouteModel
import Synchronization

extension ChaosRun {
    /// The controller that runs in the partition's namespace, when the run has one (the last).
    static func partitionedIndex(_ s: ChaosSettings) -> Int? {
        s.cluster.partitionNetwork != nil && s.cluster.partitionUnavailable == nil ? s.controllers - 1 : nil
    }

    /// Where the controllers listen, by port (the partitioned one inside its namespace; the others on loopback).
    static func controllerHosts(_ s: ChaosSettings) -> [Int: String] {
        guard let i = partitionedIndex(s), let network = s.cluster.partitionNetwork else { return [:] }
        return [s.basePort + i: network.controllerAddress]
    }

    /// `serve`'s arguments for controller `index`: with a NATS cluster (three servers or more) the views stream gets 3
    /// replicas; the partitioned controller runs in its namespace (`ip netns exec`, which execs, so the pid stays the
    /// controller's), listens there, reaches PostgreSQL through the veth and has no NATS (loopback is not reachable from
    /// the namespace; the other controllers' relays publish what its writes put in the outbox).
    static func placed(_ index: Int, settings s: ChaosSettings, _ arguments: [String]) -> [String] {
        var args = arguments
        if (ChaosServiceURL.hosts(s.natsURL)?.count ?? 1) >= 3 { args += ["--nats-stream-replicas", "3"] }
        guard index == partitionedIndex(s), let network = s.cluster.partitionNetwork else { return args }
        var out: [String] = []
        var i = 0
        while i < args.count {
            switch args[i] {
            case "--host": out += ["--host", network.controllerAddress]; i += 2
            case "--database-url": out += ["--database-url", args[i + 1].replacingOccurrences(of: "127.0.0.1", with: network.serviceAddress)]; i += 2
            case "--nats-url", "--nats-stream-replicas": i += 2
            default: out.append(args[i]); i += 1
            }
        }
        let ip = Self.ipTool
        return [ip, "netns", "exec", network.namespace, "/usr/bin/env", "-u", "ROUTEPLANE_NATS_URL"] + out
    }

    /// `ops/services <arguments>` of this run's instance: whether it exited 0, and its standard output (trimmed).
    func services(_ arguments: [String], timeout: Duration) async -> (ok: Bool, output: String) {
        let out = settings.workDir + "/services-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: out) }
        guard let status = try? await ChaosSpawn.run(["/bin/bash", settings.servicesScript] + arguments, log: out,
                                                     errorLog: settings.workDir + "/services.log", timeout: timeout) else { return (false, "") }
        let text = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return (ChaosSpawn.exitedCleanly(status), text)
    }

    // MARK: - Executing the plan

    func executeCluster(_ plan: ChaosClusterPlan, from chaosStart: Double) async {
        await withTaskGroup(of: Void.self) { group in
            for step in plan.steps {
                let wait = chaosStart + step.at - now
                if wait > 0 { await chaosSleep(.milliseconds(Int(wait * 1000))) }
                if stopping.load(ordering: .relaxed) { return }
                switch step.fault {
                case .failover: group.addTask { await self.failover() }
                case .natsNodeKill: group.addTask { await self.natsNodeKill() }
                case .partition: group.addTask { await self.partition() }
                case .agentPartition: group.addTask { await self.agentPartition() }
                }
            }
        }
    }

    /// kill -9 of the primary and promotion of the standby, once the planned PostgreSQL restart is over and the standby is
    /// synchronous again (ops/services refuses a failover without one); then a new standby from the promoted primary.
    func failover() async {
        let fault = ChaosClusterFault.failover
        let waitFrom = now
        while faults.withLock({ $0.postgresRestarts == 0 && $0.serviceErrors.isEmpty }) && now - waitFrom < 90 {
            await chaosSleep(.milliseconds(200))
        }
        var attempt = 0
        var killStarted = now
        while true {
            attempt += 1
            // The kill is timed when its command returns: a write sent after that was sent after the kill.
            killStarted = now
            if await services(["pg-kill-primary"], timeout: .seconds(60)).ok { break }
            if attempt >= 30 || stopping.load(ordering: .relaxed) {
                say("\(self.at(now))  PostgreSQL failover FAILED: no kill (see \(settings.workDir)/services.log)")
                cluster.withLock { $0.errors.append("\(fault.rawValue): ops/services pg-kill-primary failed \(attempt) times (see services.log)") }
                return
            }
            await chaosSleep(.seconds(2))  // the standby is not synchronous yet (a restart or a resync in progress)
        }
        let killed = now
        say("\(at(killed))  PostgreSQL primary killed with -9; promoting the standby")
        let promoted = await services(["pg-promote"], timeout: .seconds(90))
        guard promoted.ok else {
            say("\(at(now))  PostgreSQL promotion FAILED (see \(settings.workDir)/services.log)")
            cluster.withLock { $0.errors.append("\(fault.rawValue): ops/services pg-promote failed (see services.log)") }
            return
        }
        say("\(at(now))  PostgreSQL standby promoted on port \(promoted.output) (\(String(format: "%.2f", now - killed)) s after the kill); making a new standby")
        var event = ChaosClusterEvent(fault: fault, at: killed, detail: "promoted port \(promoted.output)")
        event.killStarted = killStarted
        cluster.withLock { [event] in $0.events.append(event) }
        let r = await services(["pg-resync"], timeout: .seconds(180))
        let healed = now
        if r.ok {
            say("\(at(healed))  PostgreSQL: new synchronous standby streaming")
            recordHeal(fault, at: healed)
        } else {
            say("\(at(healed))  PostgreSQL: making the new standby FAILED (see \(settings.workDir)/services.log)")
            cluster.withLock { $0.errors.append("\(fault.rawValue): ops/services pg-resync failed (see services.log)") }
        }
        faults.withLock { $0.lastHealed = max($0.lastHealed, healed) }
    }

    /// kill -9 of the NATS server leading the views stream (once the planned NATS restart is over), started again after
    /// `natsDownFor` seconds.
    func natsNodeKill() async {
        let fault = ChaosClusterFault.natsNodeKill
        let waitFrom = now
        while faults.withLock({ $0.natsRestarts == 0 && $0.serviceErrors.isEmpty }) && now - waitFrom < 90 {
            await chaosSleep(.milliseconds(200))
        }
        // Read through the run's own pool, which a failover just before may have broken: a few tries.
        var versions: [ChaosViewKey: Int64] = [:]
        for _ in 0..<20 {
            if let read = try? await viewVersions() {
                versions = read
                break
            }
            await chaosSleep(.milliseconds(500))
        }
        let at = now
        let r = await services(["nats-kill-leader"], timeout: .seconds(30))
        let parts = r.output.split(separator: " ")
        guard r.ok, parts.count == 2 else {
            say("\(self.at(now))  NATS server kill FAILED (see \(settings.workDir)/services.log)")
            cluster.withLock { $0.errors.append("\(fault.rawValue): ops/services nats-kill-leader failed (see services.log)") }
            return
        }
        let replicas = Int(parts[1]) ?? 0
        say("\(self.at(now))  kill -9 NATS server \(parts[0]) (leader of the views stream, on \(replicas) server(s)); start again in \(String(format: "%.0f", settings.cluster.natsDownFor)) s")
        cluster.withLock {
            $0.events.append(ChaosClusterEvent(fault: fault, at: at, detail: "\(parts[0])", viewVersions: versions, replicas: replicas > 0 ? replicas : nil))
        }
        await chaosSleep(.milliseconds(Int(settings.cluster.natsDownFor * 1000)))
        let started = await services(["start", "nats"], timeout: .seconds(90))
        let healed = now
        if started.ok {
            say("\(self.at(healed))  NATS server \(parts[0]) up again")
            recordHeal(fault, at: healed)
        } else {
            cluster.withLock { $0.errors.append("\(fault.rawValue): ops/services start nats failed after the kill (see services.log)") }
        }
        faults.withLock { $0.lastHealed = max($0.lastHealed, healed) }
    }

    /// nftables in the partitioned controller's namespace drops its traffic with PostgreSQL both ways for
    /// `partitionHold` seconds, then the table is deleted.
    func partition() async {
        let fault = ChaosClusterFault.partition
        guard let index = Self.partitionedIndex(settings), let network = settings.cluster.partitionNetwork else { return }
        let log = settings.workDir + "/partition.log"
        guard await applyNftRules(network.dropRules, file: settings.workDir + "/partition.nft", namespace: network.namespace, log: log) else {
            say("\(self.at(now))  partition FAILED: nft in namespace \(network.namespace) refused the rules (see \(log))")
            cluster.withLock { $0.errors.append("\(fault.rawValue): nft -f in \(network.namespace) failed (see partition.log)") }
            return
        }
        let at = now
        cluster.withLock { $0.events.append(ChaosClusterEvent(fault: fault, at: at, detail: "controller \(index + 1)")) }
        say("\(self.at(at))  partition: controller \(index + 1) (namespace \(network.namespace)) cut off from PostgreSQL for \(String(format: "%.0f", settings.cluster.partitionHold)) s")
        // Writes for the cut-off controller while it is cut off: the workload picks controllers at random and may send it
        // too few (2 in 6 s once, with it also killed and restarted), so the partition check would have too little to
        // judge. Recorded and checked like every workload write; not awaited before the heal (a write may be retried
        // by its key on another controller for up to 30 s).
        let holdEnd = at + settings.cluster.partitionHold
        let probes = Task { await self.writesToCutOffController(index, until: holdEnd) }
        await chaosSleep(.milliseconds(Int(settings.cluster.partitionHold * 1000)))
        let healedOK = await deleteNftTable("rp_partition", namespace: network.namespace, log: log)
        let healed = now
        if healedOK {
            say("\(self.at(healed))  partition healed: controller \(index + 1) reaches PostgreSQL again")
            recordHeal(fault, at: healed)
        } else {
            cluster.withLock { $0.errors.append("\(fault.rawValue): the drop rules could not be deleted (see partition.log)") }
        }
        faults.withLock { $0.lastHealed = max($0.lastHealed, healed) }
        await probes.value
    }

    /// Marks the last event of `fault` healed at `healed`; `viewVersions`, when given, are the views the agents must
    /// reach after the heal.
    func recordHeal(_ fault: ChaosClusterFault, at healed: Double, viewVersions: [ChaosViewKey: Int64]? = nil) {
        cluster.withLock { tally in
            guard let i = tally.events.lastIndex(where: { $0.fault == fault }) else { return }
            tally.events[i].healed = healed
            if let viewVersions { tally.events[i].viewVersions = viewVersions }
        }
    }

    // MARK: - Checks and report

    func clusterChecks(records: [ChaosRequestRecord], convergence: ChaosConvergence) async -> [ChaosCheck] {
        let m = ChaosClusterMinimums.forRun(duration: settings.duration, settings: settings.cluster)
        // The namespaced agents' histories first (waiting for them to reach their projected views), then every check
        // over every agent: the in-process ones and the namespaced ones.
        let netns = await netnsAgentChecks(convergence)
        let agents = convergence.histories + netnsAgents.final.withLock { $0 }
        return ChaosChecks.cluster(cluster.withLock { $0 }, records: records, agents: agents, minimums: m) + netns
    }

    func clusterReport(records: [ChaosRequestRecord], convergence: ChaosConvergence) -> [String] {
        var lines = ["", "replicated services (time to recover after each fault):"]
        lines += ChaosReport.recoveryLines(cluster.withLock { $0 }, records: records, agents: convergence.histories + netnsAgents.final.withLock { $0 })
        if let why = settings.cluster.partitionUnavailable { lines.append("  SKIPPED the partition: \(why)") }
        lines += netnsAgentReport()
        return lines
    }
}

extension ChaosRun {
    static let ipTool = FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip"
    static let nftTool = ["/usr/sbin/nft", "/sbin/nft"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/nft"

    /// Writes `rules` to `file` and loads them with `nft -f` in `namespace` (output to `log`); false when nft refused them.
    func applyNftRules(_ rules: String, file: String, namespace: String, log: String) async -> Bool {
        _ = FileManager.default.createFile(atPath: file, contents: Data(rules.utf8))
        let status = try? await ChaosSpawn.run([Self.ipTool, "netns", "exec", namespace, Self.nftTool, "-f", file], log: log, timeout: .seconds(30))
        return status.map(ChaosSpawn.exitedCleanly) ?? false
    }

    /// Deletes nftables table `inet table` in `namespace` (the heal), up to 5 tries a second apart; false when it could not.
    func deleteNftTable(_ table: String, namespace: String, log: String) async -> Bool {
        for _ in 0..<5 {
            if let status = try? await ChaosSpawn.run([Self.ipTool, "netns", "exec", namespace, Self.nftTool, "delete", "table", "inet", table], log: log,
                                                      timeout: .seconds(30)), ChaosSpawn.exitedCleanly(status) {
                return true
            }
            await chaosSleep(.seconds(1))
        }
        return false
    }

    /// A group creation (the workload's own request) to controller `index` every 0.5 s until `end`, each sent without
    /// waiting for the answers before it: a cut-off controller may hold a request for seconds (its pool waiting for
    /// PostgreSQL), and one request at a time sent only 2 in a 6 s cut of the 1800 s run.
    func writesToCutOffController(_ index: Int, until end: Double) async {
        var rng = ChaosRandom(seed: settings.seed &+ 0x5a17)
        await withTaskGroup(of: Void.self) { group in
            while now < end {
                if let tenant = tenants.withLock({ $0 }).randomElement(using: &rng) {
                    let rid = ledger.newRequestID()
                    let body = ChaosWorkload.groupBody(tenant, prefix: "p", requestID: rid, using: &rng)
                    group.addTask {
                        let (outcome, response) = await self.send(tenant, kind: .createGroup, controller: index, method: "POST", path: "/api/groups",
                                                                  body: ChaosWorkload.json(body), requestID: rid)
                        self.learn(tenant.id, .createGroup, status: outcome.status, createdID: response.flatMap { Self.field("id", of: $0.body) })
                    }
                }
                await chaosSleep(.milliseconds(500))
            }
        }
    }
}
