// The agent partition's shell: a few real `routeplane agent` processes (dry-run appliers) in the controller partition's
// network namespace, reaching NATS and the loopback controllers through relays on the root side of the veth
// (ChaosTCPRelay); nftables in the namespace drops their NATS traffic for a few seconds while routes are added to their
// tenants, then the table is deleted. Their applied views are read from their state folders (the `view` file's header)
// every 100 ms. The check and the plan are ChaosKit's (ChaosAgentPartition, ChaosCluster).
import ChaosKit
import Foundation
import RouteModel
import Synchronization

/// The namespaced agents and the relays they use.
final class ChaosNetnsAgents: Sendable {
    struct Agent: Sendable {
        var tenantID: String
        var folder: String
        var log: String
        var pid: pid_t?
        var peerID: String?
        var applied: [ChaosAppliedView] = []
        /// How it ended, when it ended before the run stopped it (a failed check).
        var exited: Int32?
    }

    let agents = Mutex<[Agent]>([])
    let relays = Mutex<[ChaosTCPRelay]>([])
    let poller = Mutex<Task<Void, Never>?>(nil)
    /// What the checks judged (kept for the report).
    let final = Mutex<[ChaosAgentHistory]>([])

    /// The applied version and digest from a state folder's `view` header (`routeplane-view 2 <version> <removed> <digest> …`).
    static func viewHeader(_ folder: String) -> (version: Int64, digest: String)? {
        guard let handle = FileHandle(forReadingAtPath: folder + "/view") else { return nil }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 512)) ?? Data()
        guard let line = String(decoding: head, as: UTF8.self).split(separator: "\n").first else { return nil }
        let parts = line.split(separator: " ").map(String.init)
        guard parts.count >= 5, parts[0] == "routeplane-view", let version = Int64(parts[2]) else { return nil }
        return (version, parts[4])
    }

    static func peerID(_ folder: String) -> String? {
        guard let data = FileManager.default.contents(atPath: folder + "/identity.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["peer_id"] as? String
    }

    /// Reads every state folder once; records a new applied view with the time `now`.
    func poll(now: Double) {
        let snapshot = agents.withLock { $0.map { ($0.folder, $0.peerID) } }
        var found: [(String?, (version: Int64, digest: String)?)] = []
        for (folder, peer) in snapshot { found.append((peer ?? Self.peerID(folder), Self.viewHeader(folder))) }
        agents.withLock { list in
            for i in list.indices where i < found.count {
                if list[i].peerID == nil { list[i].peerID = found[i].0 }
                if let v = found[i].1, list[i].applied.last.map({ $0.version != v.version || $0.digest != v.digest }) ?? true {
                    list[i].applied.append(ChaosAppliedView(version: v.version, digest: v.digest, source: "state folder", at: now))
                }
                if list[i].exited == nil, let pid = list[i].pid, let status = ChaosSpawn.exited(pid) {
                    list[i].exited = status
                    list[i].pid = nil
                }
            }
        }
    }

    func histories() -> [ChaosAgentHistory] {
        agents.withLock { list in
            list.compactMap { a in
                guard let peer = a.peerID else { return nil }
                return ChaosAgentHistory(tenant: a.tenantID, peer: peer, applied: a.applied, finalVersion: a.applied.last?.version ?? 0,
                                         finalDigest: a.applied.last?.digest)
            }
        }
    }

    var keys: [ChaosViewKey] { histories().map { ChaosViewKey(tenant: $0.tenant, peer: $0.peer) } }

    func killNow() {
        for pid in agents.withLock({ $0.compactMap(\.pid) }) { kill(pid, SIGKILL) }
    }
}

extension ChaosRun {
    /// The relays (NATS servers and loopback controllers, on the veth's root side), then the agents in the namespace,
    /// each enrolling with its tenant's setup key at a loopback controller; waits until every one has a view.
    func startNetnsAgents(_ tenants: [ChaosTenant], setupKeys: [String]) async throws {
        guard let network = settings.cluster.agentPartitionNetwork, settings.cluster.agentPartitionUnavailable == nil, !tenants.isEmpty else { return }
        let loopback = controllers.filter { $0.index != Self.partitionedIndex(settings) }
        for port in network.natsPorts + loopback.map(\.port) {
            let relay = try ChaosTCPRelay(address: network.serviceAddress, port: port, targetPort: port)
            relay.start()
            netnsAgents.relays.withLock { $0.append(relay) }
        }
        let ip = Self.ipTool
        let base = (settings.agentStateDir ?? settings.workDir + "/agents") + "/netns"
        for k in 0..<network.agents {
            let t = k % tenants.count
            let folder = base + "/t\(t)-n\(k)"
            let keyFile = settings.workDir + "/netns-agent-\(k + 1).key"
            guard FileManager.default.createFile(atPath: keyFile, contents: Data(setupKeys[t].utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ChaosSpawn.Failure(description: "could not write \(keyFile)")
            }
            let controller = loopback[k % loopback.count]
            let log = settings.workDir + "/netns-agent-\(k + 1).log"
            // `ip netns exec` execs: the pid is the agent's (killed by ops/chaos if this run dies: " agent --controller ").
            let pid = try ChaosSpawn.start([ip, "netns", "exec", network.namespace, settings.binary, "agent", "--controller",
                                            "http://\(network.serviceAddress):\(controller.port)", "--insecure", "--setup-key-file", keyFile,
                                            "--state-dir", folder, "--applier", "dry-run", "--assume-candidates-up", "--name", "t\(t)-netns-\(k)",
                                            "--nats-url", network.natsURL, "--log-level", "info"],
                                           log: log, pidFile: settings.workDir + "/pids")
            netnsAgents.agents.withLock { $0.append(.init(tenantID: tenants[t].id, folder: folder, log: log, pid: pid)) }
        }
        let deadline = now + 60
        while now < deadline {
            netnsAgents.poll(now: now)
            let list = netnsAgents.agents.withLock { $0 }
            if let dead = list.firstIndex(where: { $0.exited != nil }) {
                throw ChaosSpawn.Failure(description: "namespaced agent \(dead + 1) exited (\(ChaosSpawn.describe(list[dead].exited!))); see \(list[dead].log)")
            }
            if list.allSatisfy({ $0.peerID != nil && !$0.applied.isEmpty }) {
                // Enrolled (the identity is in each state folder): the setup keys are not needed on disk any longer.
                for k in 0..<network.agents { try? FileManager.default.removeItem(atPath: settings.workDir + "/netns-agent-\(k + 1).key") }
                say("\(at(now))  \(list.count) agents (routeplane agent) in namespace \(network.namespace) enrolled at \(network.serviceAddress) (relayed to the loopback controllers) "
                    + "and on their views; NATS through \(network.natsURL)")
                let poller = Task { [self] in
                    while !Task.isCancelled {
                        netnsAgents.poll(now: now)
                        await chaosSleep(.milliseconds(100))
                    }
                }
                netnsAgents.poller.withLock { $0 = poller }
                return
            }
            await chaosSleep(.milliseconds(200))
        }
        throw ChaosSpawn.Failure(description: "the namespaced agents did not all enroll and apply a view within 60 s (logs \(settings.workDir)/netns-agent-*.log)")
    }

    /// SIGTERM to each namespaced agent (SIGKILL after 10 s), the relays closed.
    func stopNetnsAgents() async {
        netnsAgents.poller.withLock { $0?.cancel() }
        let pids = netnsAgents.agents.withLock { list in
            let pids = list.compactMap(\.pid)
            for i in list.indices { list[i].pid = nil }
            return pids
        }
        for pid in pids { kill(pid, SIGTERM) }
        for pid in pids { _ = await ChaosSpawn.wait(pid, timeout: .seconds(10)) }
        for relay in netnsAgents.relays.withLock({ $0 }) { relay.stop() }
    }

    /// The namespaced peers' projected view versions (a few tries: the run's pool may be reconnecting after a failover).
    func netnsViewVersions() async -> [ChaosViewKey: Int64] {
        let keys = Set(netnsAgents.keys)
        for _ in 0..<20 {
            if let all = try? await viewVersions() { return all.filter { keys.contains($0.key) } }
            await chaosSleep(.milliseconds(500))
        }
        return [:]
    }

    /// nftables in the namespace drops the agents' NATS traffic both ways for `agentPartitionHold` seconds, while a route
    /// for every peer of their tenants is added every second; then the table is deleted.
    func agentPartition() async {
        let fault = ChaosClusterFault.agentPartition
        guard let network = settings.cluster.agentPartitionNetwork else { return }
        let before = await netnsViewVersions()
        let log = settings.workDir + "/agent-partition.log"
        guard await applyNftRules(network.dropRules, file: settings.workDir + "/agent-partition.nft", namespace: network.namespace, log: log) else {
            say("\(at(now))  agent partition FAILED: nft in namespace \(network.namespace) refused the rules (see \(log))")
            cluster.withLock { $0.errors.append("\(fault.rawValue): nft -f in \(network.namespace) failed (see agent-partition.log)") }
            return
        }
        let cut = now
        var event = ChaosClusterEvent(fault: fault, at: cut, detail: "\(before.count) agents")
        event.viewVersionsAtCut = before
        cluster.withLock { $0.events.append(event) }
        let hold = settings.cluster.agentPartitionHold
        say("\(at(cut))  agent partition: \(before.count) agents in namespace \(network.namespace) cut off from NATS for \(String(format: "%.0f", hold)) s; a route for their tenants every second meanwhile")
        // Held for `hold` seconds and until a route for their tenants was acknowledged, plus a second for it to be
        // projected (at most 30 s more): with PostgreSQL down or failing over during the whole hold, nothing would
        // change for the agents to catch up on, and the check would rightly call the cut untested.
        let done = Atomic<Bool>(false)
        let acknowledged = Atomic<Int>(0)
        let writes = Task { await self.routesForCutOffAgents(until: done, acknowledged: acknowledged) }
        await chaosSleep(.milliseconds(Int(hold * 1000)))
        if acknowledged.load(ordering: .relaxed) == 0 {
            say("\(at(now))  agent partition: no route for the cut-off agents' tenants acknowledged yet; holding the cut until one is (at most 30 s)")
            while acknowledged.load(ordering: .relaxed) == 0 && now - cut < hold + 30 && !stopping.load(ordering: .relaxed) {
                await chaosSleep(.milliseconds(250))
            }
            await chaosSleep(.seconds(1))
        }
        done.store(true, ordering: .relaxed)
        let healedOK = await deleteNftTable("rp_agent_partition", namespace: network.namespace, log: log)
        let healed = now
        guard healedOK else {
            cluster.withLock { $0.errors.append("\(fault.rawValue): the drop rules could not be deleted (see agent-partition.log)") }
            await writes.value
            return
        }
        // The view each agent must reach after the heal: its peer's as projected now.
        let targets = await netnsViewVersions()
        say("\(at(healed))  agent partition healed: the agents reach NATS again (views to reach: \(targets.values.sorted().map(String.init).joined(separator: ", ")))")
        recordHeal(fault, at: healed, viewVersions: targets)
        faults.withLock { $0.lastHealed = max($0.lastHealed, healed) }
        await writes.value
    }

    /// A route distributed to the all-peers group of each namespaced agent's tenant, every second until `done`, through a
    /// loopback controller that is up; recorded and checked like every workload write; 2xx answers counted in `acknowledged`.
    func routesForCutOffAgents(until done: borrowing Atomic<Bool>, acknowledged: borrowing Atomic<Int>) async {
        var rng = ChaosRandom(seed: settings.seed &+ 0xa9e7)
        let ids = Set(netnsAgents.agents.withLock { $0.map(\.tenantID) })
        let loopback = controllers.filter { $0.index != Self.partitionedIndex(settings) }
        while !done.load(ordering: .relaxed) && !stopping.load(ordering: .relaxed) {
            for tenant in tenants.withLock({ $0 }) where ids.contains(tenant.id) && !tenant.allGroup.isEmpty {
                let up = loopback.filter(\.isUp)
                guard let controller = (up.isEmpty ? loopback : up).randomElement(using: &rng) else { continue }
                let rid = ledger.newRequestID()
                var body = ChaosWorkload.routeBody(tenant, requestID: rid, using: &rng)
                body["groups"] = [tenant.allGroup]
                body["enabled"] = true
                let (outcome, response) = await send(tenant, kind: .createRoute, controller: controller.index, method: "POST", path: "/api/routes",
                                                     body: ChaosWorkload.json(body), requestID: rid)
                learn(tenant.id, .createRoute, status: outcome.status, createdID: response.flatMap { Self.field("id", of: $0.body) })
                if outcome.isSuccess { acknowledged.add(1, ordering: .relaxed) }
            }
            await chaosSleep(.seconds(1))
        }
    }

    /// The namespaced agents at the end, once they hold their projected views (up to 20 s after convergence), judged.
    func netnsAgentChecks(_ convergence: ChaosConvergence) async -> [ChaosCheck] {
        guard let network = settings.cluster.agentPartitionNetwork, settings.cluster.agentPartitionUnavailable == nil else { return [] }
        let deadline = now + 20
        var check = ChaosChecks.namespacedAgentsConverged(netnsAgents.histories(), projected: convergence.projected, minimum: network.agents)
        while !check.passed && now < deadline {
            await chaosSleep(.milliseconds(200))
            netnsAgents.poll(now: now)
            check = ChaosChecks.namespacedAgentsConverged(netnsAgents.histories(), projected: convergence.projected, minimum: network.agents)
        }
        let exited = netnsAgents.agents.withLock { $0.enumerated().compactMap { i, a in a.exited.map { "namespaced agent \(i + 1) exited on its own (\(ChaosSpawn.describe($0))); log \(a.log)" } } }
        netnsAgents.final.withLock { $0 = netnsAgents.histories() }
        return [check, ChaosCheck(name: "no namespaced agent exited on its own", passed: exited.isEmpty, detail: "\(exited.count) exit(s)", problems: exited)]
    }

    /// What the namespaced agents did: views applied, those that came over HTTP (their fallback while NATS was not
    /// connected), NATS disconnects they noticed, connections the relays passed.
    func netnsAgentReport() -> [String] {
        guard settings.cluster.agentPartitionNetwork != nil, settings.cluster.agentPartitionUnavailable == nil else {
            return settings.cluster.agentPartitionUnavailable.map { ["  SKIPPED the agent partition: \($0)"] } ?? []
        }
        var http = 0
        var disconnects = 0
        for a in netnsAgents.agents.withLock({ $0 }) {
            let text = (try? String(contentsOfFile: a.log, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                if line.contains("source=http") { http += 1 }
                if line.hasSuffix("NATS disconnected") { disconnects += 1 }
            }
        }
        let applied = netnsAgents.final.withLock { $0 }.map(\.applied.count).reduce(0, +)
        let relayed = netnsAgents.relays.withLock { $0 }.map { $0.accepted.load(ordering: .relaxed) }.reduce(0, +)
        return ["  namespaced agents: \(netnsAgents.agents.withLock { $0.count }) processes, \(applied) view changes seen in their state folders, "
                + "\(http) view(s) applied from the HTTP fallback, \(disconnects) NATS disconnect(s) noticed, \(relayed) connection(s) relayed"]
    }
}
