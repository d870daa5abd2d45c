// The fault-injection run's shell: the run's state, its course (set up, faults and workload, convergence, checks,
// summary) and its setup. The rest of the shell is in files of its own: the workload's requests (ChaosRun+Workload),
// faults and controller processes (ChaosRun+Faults), the database reads (ChaosRun+Database), the checks
// (ChaosRun+Checks), shutdown and signals (ChaosRun+Signals); the pure parts are in ChaosKit.
import ChaosKit
import CommandSupport
import Dispatch
import PostgresClient
import EventStore
import Foundation
import RouteModel
import Logging
import ViewDistribution
import Synchronization

/// The shell of the run: processes, HTTP, the database; every decision on the records is `ChaosChecks`'.
final class ChaosRun: Sendable {
    let settings: ChaosSettings
    let start = ContinuousClock.now
    let http: ChaosHTTP.Client
    let ledger: ChaosLedger
    let controllers: [ChaosController]
    let agents: ChaosAgents
    let agentLog: ChaosAgentLog
    let tenants = Mutex<[ChaosTenant]>([])
    let store: EventStore
    /// Two connections for the partition handover's waits in pg_locks (ChaosRun+Handover), apart from `store`'s.
    let lockReader: ConnectionPool
    /// The faults injected so far and how they healed.
    let faults = Mutex(ChaosFaultTally())
    /// The replicated-service faults (failover, NATS server kill, partition) so far (ChaosRun+Cluster).
    let cluster = Mutex(ChaosClusterTally())
    let stopping = Atomic<Bool>(false)
    /// Requests whose outcome the client could not know, and how many of them committed (for the summary).
    let unknownCommitted = Mutex<(total: Int, committed: Int)>((0, 0))
    /// Workload writes sent with an Idempotency-Key and their retries (ChaosRun+Retries).
    let retries = ChaosRetryLedger()
    /// The `routeplane agent` processes in the partition's namespace (ChaosRun+AgentPartition).
    let netnsAgents = ChaosNetnsAgents()

    init(settings: ChaosSettings, http: ChaosHTTP.Client) throws {
        self.settings = settings
        self.http = ChaosHTTP.Client(http.http, timeout: http.timeout, hosts: Self.controllerHosts(settings))
        // Not from the seed: request ids must be new in every run, also a run repeating another's seed on the same database.
        var rng = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        ledger = ChaosLedger(runID: "ch" + String((0..<6).map { _ in letters.randomElement(using: &rng)! }))
        try FileManager.default.createDirectory(atPath: settings.workDir, withIntermediateDirectories: true)
        let pidFile = settings.workDir + "/pids"
        // One view signing key for every controller of the run (agents pin the key of the controller they enrolled at
        // and must accept the views every relay publishes), kept across controller restarts.
        let viewSigningSeed = ProcessInfo.processInfo.environment["ROUTEPLANE_VIEW_SIGNING_SEED"] ?? ViewSigner.ephemeral().seedBase64URL
        controllers = (0..<settings.controllers).map { i in
            let port = settings.basePort + i
            return ChaosController(index: i, port: port,
                                   arguments: Self.placed(i, settings: settings, [settings.binary, "serve", "--port", String(port), "--host", "127.0.0.1", "--nats-url", settings.natsURL,
                                               "--database-url", settings.databaseURL, "--max-connections", "8", "--log-level", "notice",
                                               // Every agent enrolls from loopback at once: the enrollment limits are not under test here.
                                               "--enroll-source-burst", "100000", "--enroll-key-burst", "100000",
                                               // A killed controller's keys free after 5 s (not 30): its writes' retries wait less.
                                               "--idempotency-lease-seconds", "5"]),
                                   // PGAPPNAME names its sessions in pg_locks' holders (the partition handover check, ChaosRun+Handover).
                                   environment: ["ROUTEPLANE_VIEW_SIGNING_SEED": viewSigningSeed, "PGAPPNAME": Self.applicationName(i)].merging(i == 0 ? settings.lostWriteEnvironment : [:]) { a, _ in a },
                                   log: settings.workDir + "/controller-\(i + 1).log", pidFile: pidFile)
        }
        agentLog = ChaosAgentLog(start: start)
        agents = ChaosAgents(log: agentLog)
        var logger = Logger(label: "routeplane.chaos")
        logger.logLevel = .critical
        store = EventStore(url: settings.databaseURL, maxConnections: 3, logger: logger, connectionRetries: 3)
        lockReader = ConnectionPool(url: settings.databaseURL, configuration: .init(maxConnections: 2), logger: logger)
        cluster.withLock { $0.partitionedController = Self.partitionedIndex(settings) }
    }

    var now: Double { chaosSeconds(ContinuousClock.now - start) }

    /// A line on standard output, written at once (not held in stdio's buffer when stdout is a pipe).
    func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    func at(_ seconds: Double) -> String { ChaosReport.at(seconds) }

    // MARK: - The run

    func run() async throws -> Bool {
        let s = settings
        say("routeplane-chaos: seed \(s.seed), run id \(ledger.runID), \(Int(s.duration)) s of faults, \(s.controllers) controllers "
            + "(ports \(s.basePort)–\(s.basePort + s.controllers - 1)), \(s.tenants) tenants × \(s.agentsPerTenant) agents, \(s.workers) clients")
        say("  work folder \(s.workDir) (controller logs, agent state); binary \(s.binary)")
        installSignalHandlers()
        // The whole run is bounded (setup, faults, convergence, checks), by a thread of its own.
        let finished = Atomic<Bool>(false)
        defer { finished.store(true, ordering: .relaxed) }
        let bound = s.duration + s.convergenceTimeout + 300
        Thread { [self] in
            Thread.sleep(forTimeInterval: bound)
            if finished.load(ordering: .relaxed) { return }
            say("routeplane-chaos: FAILED — the run exceeded its time bound (\(Int(bound)) s); killing the controllers")
            killEverything()
            exit(3)
        }.start()

        do {
            try await setUp()
        } catch {
            say("routeplane-chaos: FAILED during setup: \(error)")
            _ = await shutDown()
            return false
        }
        let chaosStart = now
        let crashWatch = Task { await self.watchCrashes() }
        defer { crashWatch.cancel() }
        let plan = ChaosPlan.make(duration: s.duration, controllers: s.controllers, agents: await agents.count,
                                  killEvery: (s.killEvery * 0.6)...(s.killEvery * 1.4), downFor: 0.5...2.5, outageHold: s.outage,
                                  agentRestartEvery: s.agentRestartEvery, seed: s.seed)
        say("\(at(chaosStart))  faults and workload start: \(plan.kills) controller kills planned, PostgreSQL at \(Int(s.duration * 0.35)) s, "
            + "NATS at \(Int(s.duration * 0.6)) s (+\(Int(s.duration * 0.35)) / +\(Int(s.duration * 0.6)) s from here)")
        say("\(at(now))  \(ChaosMinimums.forRun(s).summary)")
        let clusterPlan = ChaosClusterPlan.make(duration: s.duration, settings: s.cluster)
        say("\(at(now))  replicated services: " + ChaosClusterFault.allCases.map { "\(clusterPlan.count($0)) \($0.rawValue)" }.joined(separator: ", ")
            + " planned; \(ChaosClusterMinimums.forRun(duration: s.duration, settings: s.cluster).summary)")
        if let why = s.cluster.partitionUnavailable { say("\(at(now))  SKIPPED: the partition does not run: \(why)") }
        if let why = s.cluster.agentPartitionUnavailable { say("\(at(now))  SKIPPED: the agent partition does not run: \(why)") }
        await withTaskGroup(of: Void.self) { group in
            for w in 0..<s.workers {
                group.addTask { await self.worker(w, until: chaosStart + s.duration) }
            }
            group.addTask { await self.execute(plan, from: chaosStart) }
            group.addTask { await self.executeCluster(clusterPlan, from: chaosStart) }
            await group.waitForAll()
        }
        let records = ledger.all
        _ = FileManager.default.createFile(atPath: s.workDir + "/requests.tsv", contents: Data(ChaosReport.requestsTSV(records).utf8))
        let lastWrite = records.map(\.end).max() ?? now
        let reference = max(lastWrite, faults.withLock { $0.lastHealed })
        say("\(at(now))  workload stopped (\(records.filter { $0.kind.isWrite }.count) writes); last fault healed at \(at(faults.withLock { $0.lastHealed }).trimmingCharacters(in: .whitespaces)); waiting for convergence")

        let convergence = await waitForConvergence(reference: reference)
        var checks = await check(records: records, convergence: convergence, plannedKills: plan.kills)
        checks += await clusterChecks(records: records, convergence: convergence)
        let agentRestarts = await agents.restarts
        checks.append(await shutDown())
        let summary = ChaosReport.summary(settings: s, runID: ledger.runID, records: records, faults: faults.withLock { $0 }, unknown: unknownCommitted.withLock { $0 },
                                          convergence: convergence, reference: reference, agentRestarts: agentRestarts, checks: checks)
        for line in clusterReport(records: records, convergence: convergence) + summary { say(line) }
        return checks.allSatisfy(\.passed)
    }

    // MARK: - Setup

    func setUp() async throws {
        let s = settings
        let t0 = now
        for c in controllers { try c.start() }
        for c in controllers { try await bringUp(c, initial: true) }
        say("\(at(now))  \(s.controllers) controllers up (\(String(format: "%.1f", now - t0)) s)")

        let logs = s.workDir + "/admin.log"
        var created: [ChaosTenant] = []
        for i in 0..<s.tenants {
            let id = try await admin(["tenants", "create", "chaos \(ledger.runID) \(i)"], log: logs)
            let token = try await admin(["tokens", "create", "--tenant", id, "--name", "chaos"], log: logs)
            created.append(ChaosTenant(id: id, token: token, index: i))
        }
        // The setup key's auto group holds every peer, so every agent has a view from its enrollment on.
        var keys: [String] = []
        for i in created.indices {
            let all = try await setupCreate(created[i], path: "/api/groups", body: ["name": "all-\(i)"])
            created[i].allGroup = all
            let key = try await setupCreate(created[i], path: "/api/setup-keys",
                                            body: ["name": "chaos", "type": "reusable", "expires_in": 86400, "auto_groups": [all]], field: "key")
            keys.append(key)
        }
        // Agents enroll at (and fall back to) the controllers on loopback: the partitioned one has no NATS to tell them.
        let urls = controllers.filter { $0.index != Self.partitionedIndex(s) }.map { "http://127.0.0.1:\($0.port)" }
        var indices: [(tenant: Int, agent: Int)] = []
        for (t, tenant) in created.enumerated() {
            for a in 0..<s.agentsPerTenant {
                let index = await agents.add(tenantIndex: t, tenantID: tenant.id, name: "t\(t)-agent-\(a)",
                                             folder: (s.agentStateDir ?? s.workDir + "/agents") + "/t\(t)-a\(a)", controller: urls[(t + a) % urls.count], setupKey: keys[t])
                indices.append((t, index))
            }
        }
        // Enroll over HTTP, a few at a time, in a fixed order per tenant (the first peers become the routing peers).
        let agents = self.agents
        let order = indices.map(\.agent)
        let peers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            var next = 0
            var out: [Int: String] = [:]
            for _ in 0..<min(8, order.count) {
                let i = next
                next += 1
                group.addTask { (i, try await agents.enroll(order[i], controllers: urls)) }
            }
            while let (i, peer) = try await group.next() {
                out[i] = peer
                if next < order.count {
                    let j = next
                    next += 1
                    group.addTask { (j, try await agents.enroll(order[j], controllers: urls)) }
                }
            }
            return out
        }
        for (i, entry) in indices.enumerated() {
            guard let peer = peers[i] else { continue }
            created[entry.tenant].peers.append(peer)
            created[entry.tenant].peerNames[peer] = "t\(entry.tenant)-agent-\(entry.agent % s.agentsPerTenant)"
        }
        for entry in indices { await agents.start(entry.agent) }
        say("\(at(now))  \(indices.count) agents enrolled over HTTP and following their views (dry-run appliers)")

        // Distribution groups with random members, and a few routes.
        var rng = ChaosRandom(seed: settings.seed &+ 17)
        for i in created.indices {
            for g in 0..<3 {
                var body = ChaosWorkload.groupBody(created[i], prefix: "g\(g)", requestID: ledger.newRequestID(), using: &rng)
                body["name"] = "g\(g)-\(i)"
                created[i].groups.append(try await setupCreate(created[i], path: "/api/groups", body: body))
            }
            for _ in 0..<4 {
                let tenant = created[i]
                created[i].routes.append(try await setupCreate(tenant, path: "/api/routes") {
                    ChaosWorkload.routeBody(tenant, requestID: ledger.newRequestID(), using: &rng)
                })
            }
        }
        tenants.withLock { $0 = created }
        try await startNetnsAgents(created, setupKeys: keys)
        say("\(at(now))  tenants ready: \(created.map { "\($0.id) (\($0.peers.count) peers, \($0.groups.count + 1) groups, \($0.routes.count) routes)" }.joined(separator: ", "))")
    }

    /// `routeplane <arguments>` against the database; its standard output, trimmed.
    func admin(_ arguments: [String], log: String) async throws -> String {
        let out = settings.workDir + "/admin-\(UUID().uuidString.prefix(8)).out"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let status = try await ChaosSpawn.run([settings.binary] + arguments + ["--database-url", settings.databaseURL], log: out, errorLog: log,
                                              timeout: .seconds(60))
        let text = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard ChaosSpawn.exitedCleanly(status), !text.isEmpty else {
            throw ChaosSpawn.Failure(description: "routeplane \(arguments.joined(separator: " ")) failed (\(ChaosSpawn.describe(status))); see \(log)")
        }
        return text
    }

    /// A setup POST, retried on other controllers until it is answered 2xx; returns the answer's `field`.
    func setupCreate(_ tenant: ChaosTenant, path: String, body: [String: any Sendable], field: String = "id") async throws -> String {
        try await setupCreate(tenant, path: path, field: field) { body }
    }

    /// As above, with a new body for each attempt (a random route may collide with an existing one: 409).
    func setupCreate(_ tenant: ChaosTenant, path: String, field: String = "id", makeBody: () -> [String: any Sendable]) async throws -> String {
        var last = ""
        for attempt in 0..<12 {
            let (outcome, response) = await send(tenant, kind: .setup, controller: attempt % controllers.count, method: "POST", path: path,
                                                  body: ChaosWorkload.json(makeBody()))
            if outcome.isSuccess, let value = response.flatMap({ Self.field(field, of: $0.body) }) { return value }
            last = "\(outcome)"
            await chaosSleep(.milliseconds(300))
        }
        throw ChaosSpawn.Failure(description: "setup POST \(path) for tenant \(tenant.id) kept failing: \(last)")
    }
}
