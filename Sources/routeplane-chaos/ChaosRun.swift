// Over 500 lines, not yet split: the fault-injection run's orchestration (processes, HTTP workload, faults, checks,
// printing) in one file; splitting it by job is part of the open restructuring (ChaosModel.swift holds its pure parts).
import CommandSupport
import Dispatch
import EventStore
import Foundation
import RouteModel
import Logging
import Messaging
import Synchronization

/// The requests of the run, in the order they ended.
final class ChaosLedger: Sendable {
    private let records = Mutex<[ChaosRequestRecord]>([])
    private let counters = Mutex<(request: Int, burst: Int, writes: Int)>((0, 0, 0))
    let runID: String

    init(runID: String) { self.runID = runID }

    func newRequestID() -> String { "\(runID)-\(counters.withLock { $0.request += 1; return $0.request })" }
    func newBurst() -> Int { counters.withLock { $0.burst += 1; return $0.burst } }
    func add(_ record: ChaosRequestRecord) {
        records.withLock { $0.append(record) }
        if record.kind.isWrite { counters.withLock { $0.writes += 1 } }
    }
    var all: [ChaosRequestRecord] { records.withLock { $0 } }
    var writes: Int { counters.withLock { $0.writes } }
}

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
    private struct FaultState {
        var kills = 0
        var controllerRestarts = 0
        var startFailures = 0
        var crashes: [String] = []
        var postgresRestarts = 0
        var natsRestarts = 0
        var lastHealed = 0.0
        var serviceErrors: [String] = []
        /// When PostgreSQL answered again after its restart.
        var postgresBack: Double?
        /// When NATS answered again, and every peer's view version at that moment.
        var natsBack: (at: Double, versions: [ChaosViewKey: Int64])?
    }
    private let faults = Mutex(FaultState())
    private let stopping = Atomic<Bool>(false)

    init(settings: ChaosSettings, http: ChaosHTTP.Client) throws {
        self.settings = settings
        self.http = http
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
                                   arguments: [settings.binary, "serve", "--port", String(port), "--host", "127.0.0.1", "--nats-url", settings.natsURL,
                                               "--database-url", settings.databaseURL, "--max-connections", "8", "--log-level", "notice"],
                                   environment: ["ROUTEPLANE_VIEW_SIGNING_SEED": viewSigningSeed],
                                   log: settings.workDir + "/controller-\(i + 1).log", pidFile: pidFile)
        }
        agentLog = ChaosAgentLog(start: start)
        agents = ChaosAgents(log: agentLog)
        var logger = Logger(label: "routeplane.chaos")
        logger.logLevel = .critical
        store = EventStore(url: settings.databaseURL, maxConnections: 3, logger: logger, connectionRetries: 3)
    }

    var now: Double { chaosSeconds(ContinuousClock.now - start) }

    /// A line on standard output, written at once (not held in stdio's buffer when stdout is a pipe).
    func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    func at(_ seconds: Double) -> String { String(format: "%7.1f s", seconds) }

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
        await withTaskGroup(of: Void.self) { group in
            for w in 0..<s.workers {
                group.addTask { await self.worker(w, until: chaosStart + s.duration) }
            }
            group.addTask { await self.execute(plan, from: chaosStart) }
            await group.waitForAll()
        }
        let records = ledger.all
        writeRecords(records)
        let lastWrite = records.map(\.end).max() ?? now
        let reference = max(lastWrite, faults.withLock { $0.lastHealed })
        say("\(at(now))  workload stopped (\(records.filter { $0.kind.isWrite }.count) writes); last fault healed at \(at(faults.withLock { $0.lastHealed }).trimmingCharacters(in: .whitespaces)); waiting for convergence")

        let convergence = await waitForConvergence(reference: reference)
        var checks = await check(records: records, convergence: convergence)
        let agentRestarts = await agents.restarts
        checks.append(await shutDown())
        printSummary(records: records, convergence: convergence, reference: reference, agentRestarts: agentRestarts, checks: checks)
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
        let urls = controllers.map { "http://127.0.0.1:\($0.port)" }
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

    // MARK: - Requests

    /// One request through controller `controller`, recorded in the ledger.
    @discardableResult
    func send(_ tenant: ChaosTenant, kind: ChaosRequestKind, controller: Int, method: String, path: String, body: [UInt8]? = nil,
              ifMatch: String? = nil, burst: Int? = nil, requestID: String? = nil) async -> (ChaosOutcome, ChaosHTTP.Response?) {
        let c = controllers[controller]
        let rid = requestID ?? ledger.newRequestID()
        var headers = [("Authorization", "Token \(tenant.token)"), ("X-Request-Id", rid)]
        if let ifMatch { headers.append(("If-Match", ifMatch)) }
        let generation = c.generation
        let wasUp = c.isUp
        let started = now
        let result = await http.send(ChaosHTTP.Request(method: method, path: path, headers: headers, body: body), port: c.port)
        let killed = !wasUp || c.generation != generation || !c.isUp
        let outcome: ChaosOutcome
        switch result {
        case .answered(let r):
            outcome = .answered(status: r.status, sequence: r.header("X-Routeplane-Sequence").flatMap { Int64($0) },
                                retryAfter: r.header("Retry-After"), message: r.status >= 400 ? Self.field("message", of: r.body) : nil)
        case .notSent: outcome = .notSent
        case .broken(let why): outcome = .unknown(reason: why, timedOut: false)
        case .timedOut: outcome = .unknown(reason: "no answer within the deadline", timedOut: true)
        }
        ledger.add(ChaosRequestRecord(requestID: rid, tenant: tenant.id, kind: kind, controller: controller, conditional: ifMatch != nil,
                                      burst: burst, outcome: outcome, controllerKilledDuring: killed, start: started, end: now))
        return (outcome, result.response)
    }

    static func field(_ name: String, of body: [UInt8]) -> String? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else { return nil }
        return object[name] as? String
    }

    // MARK: - Workload

    func worker(_ w: Int, until deadline: Double) async {
        var rng = ChaosRandom(seed: settings.seed &* 31 &+ UInt64(w) &+ 1)
        while now < deadline && ledger.writes < settings.maxWrites && !stopping.load(ordering: .relaxed) {
            let snapshot = tenants.withLock { $0 }
            guard let tenant = snapshot.randomElement(using: &rng) else { return }
            let operation = ChaosWorkload.next(tenant, using: &rng)
            await perform(operation, on: tenant, using: &rng)
            if settings.pauseMs > 0 { await chaosSleep(.milliseconds(Int.random(in: 0...settings.pauseMs, using: &rng))) }
        }
    }

    func randomController(_ rng: inout ChaosRandom) -> Int { Int.random(in: 0..<controllers.count, using: &rng) }

    /// GET an object for its ETag (nil when it is gone or the read failed; a 404 is learned).
    func etag(_ tenant: ChaosTenant, path: String, operation: ChaosOperation, using rng: inout ChaosRandom) async -> String? {
        let (outcome, response) = await send(tenant, kind: .read, controller: randomController(&rng), method: "GET", path: path)
        if outcome.status == 404 { learn(tenant.id, operation, status: 404, createdID: nil) }
        guard outcome.status == 200 else { return nil }
        return response?.header("ETag")
    }

    func learn(_ tenantID: String, _ operation: ChaosOperation, status: Int?, createdID: String?) {
        tenants.withLock { all in
            guard let i = all.firstIndex(where: { $0.id == tenantID }) else { return }
            ChaosWorkload.learn(&all[i], operation: operation, status: status, createdID: createdID)
        }
    }

    func perform(_ operation: ChaosOperation, on tenant: ChaosTenant, using rng: inout ChaosRandom) async {
        switch operation {
        case .createRoute:
            let rid = ledger.newRequestID()
            let body = ChaosWorkload.routeBody(tenant, requestID: rid, using: &rng)
            let (outcome, response) = await send(tenant, kind: .createRoute, controller: randomController(&rng), method: "POST", path: "/api/routes",
                                                 body: ChaosWorkload.json(body), requestID: rid)
            learn(tenant.id, operation, status: outcome.status, createdID: response.flatMap { Self.field("id", of: $0.body) })

        case .updateRoute(let id, let conditional):
            var tag: String?
            if conditional {
                tag = await etag(tenant, path: "/api/routes/\(id)", operation: operation, using: &rng)
                if tag == nil { return }
            }
            let rid = ledger.newRequestID()
            let body = ChaosWorkload.routeBody(tenant, requestID: rid, using: &rng)
            let (outcome, _) = await send(tenant, kind: .updateRoute, controller: randomController(&rng), method: "PUT", path: "/api/routes/\(id)",
                                          body: ChaosWorkload.json(body), ifMatch: tag, requestID: rid)
            learn(tenant.id, operation, status: outcome.status, createdID: nil)

        case .conflictBurst(let id, let count):
            guard let tag = await etag(tenant, path: "/api/routes/\(id)", operation: operation, using: &rng) else { return }
            let burst = ledger.newBurst()
            let first = randomController(&rng)
            let requests: [(String, [UInt8], Int)] = (0..<count).map { k in
                let rid = ledger.newRequestID()
                return (rid, ChaosWorkload.json(ChaosWorkload.routeBody(tenant, requestID: rid, using: &rng)), (first + k) % controllers.count)
            }
            await withTaskGroup(of: Void.self) { group in
                for (rid, body, controller) in requests {
                    group.addTask {
                        let (outcome, _) = await self.send(tenant, kind: .updateRoute, controller: controller, method: "PUT", path: "/api/routes/\(id)",
                                                           body: body, ifMatch: tag, burst: burst, requestID: rid)
                        self.learn(tenant.id, operation, status: outcome.status, createdID: nil)
                    }
                }
            }

        case .deleteRoute(let id, let conditional):
            var tag: String?
            if conditional {
                tag = await etag(tenant, path: "/api/routes/\(id)", operation: operation, using: &rng)
                if tag == nil { return }
            }
            let (outcome, _) = await send(tenant, kind: .deleteRoute, controller: randomController(&rng), method: "DELETE", path: "/api/routes/\(id)",
                                          ifMatch: tag)
            learn(tenant.id, operation, status: outcome.status, createdID: nil)

        case .createGroup:
            let rid = ledger.newRequestID()
            let body = ChaosWorkload.groupBody(tenant, prefix: "x", requestID: rid, using: &rng)
            let (outcome, response) = await send(tenant, kind: .createGroup, controller: randomController(&rng), method: "POST", path: "/api/groups",
                                                 body: ChaosWorkload.json(body), requestID: rid)
            learn(tenant.id, operation, status: outcome.status, createdID: response.flatMap { Self.field("id", of: $0.body) })

        case .updateGroup(let id, let conditional):
            var tag: String?
            if conditional {
                tag = await etag(tenant, path: "/api/groups/\(id)", operation: operation, using: &rng)
                if tag == nil { return }
            }
            let rid = ledger.newRequestID()
            let body = ChaosWorkload.groupBody(tenant, prefix: "g", requestID: rid, using: &rng)
            await send(tenant, kind: .updateGroup, controller: randomController(&rng), method: "PUT", path: "/api/groups/\(id)",
                       body: ChaosWorkload.json(body), ifMatch: tag, requestID: rid)

        case .groupBurst(let id, let count):
            let first = randomController(&rng)
            let requests: [(String, [UInt8], Int)] = (0..<count).map { k in
                let rid = ledger.newRequestID()
                return (rid, ChaosWorkload.json(ChaosWorkload.groupBody(tenant, prefix: "g", requestID: rid, using: &rng)), (first + k) % controllers.count)
            }
            await withTaskGroup(of: Void.self) { group in
                for (rid, body, controller) in requests {
                    group.addTask {
                        await self.send(tenant, kind: .updateGroup, controller: controller, method: "PUT", path: "/api/groups/\(id)", body: body, requestID: rid)
                    }
                }
            }

        case .deleteGroup(let id):
            let (outcome, _) = await send(tenant, kind: .deleteGroup, controller: randomController(&rng), method: "DELETE", path: "/api/groups/\(id)")
            learn(tenant.id, operation, status: outcome.status, createdID: nil)

        case .drainPeer(let id, let draining):
            let rid = ledger.newRequestID()
            await send(tenant, kind: .updatePeer, controller: randomController(&rng), method: "PUT", path: "/api/peers/\(id)",
                       body: ChaosWorkload.json(ChaosWorkload.peerBody(tenant, peer: id, draining: draining, requestID: rid)), requestID: rid)
        }
    }

    // MARK: - Faults

    func execute(_ plan: ChaosPlan, from chaosStart: Double) async {
        await withTaskGroup(of: Void.self) { group in
            for step in plan.steps {
                let wait = chaosStart + step.at - now
                if wait > 0 { await chaosSleep(.milliseconds(Int(wait * 1000))) }
                switch step.fault {
                case .killController(let index, let downFor):
                    // The planned one, or another if it is not up; never the last one up.
                    let up = controllers.filter(\.isUp)
                    guard up.count >= 2 else { continue }
                    let victim = controllers[index].isUp ? controllers[index] : up[Int(step.at * 1000) % up.count]
                    await victim.kill9()
                    faults.withLock { $0.kills += 1 }
                    say("\(at(now))  kill -9 controller \(victim.index + 1) (port \(victim.port)); restart in \(String(format: "%.1f", downFor)) s")
                    group.addTask {
                        await chaosSleep(.milliseconds(Int(downFor * 1000)))
                        do {
                            try victim.start()
                            try await self.bringUp(victim, initial: false)
                            self.faults.withLock { $0.controllerRestarts += 1; $0.lastHealed = max($0.lastHealed, self.now) }
                        } catch {
                            self.faults.withLock { $0.serviceErrors.append("controller \(victim.index + 1) did not come back: \(error)") }
                        }
                    }
                case .postgresOutage(let hold):
                    group.addTask { await self.outage("postgres", name: "PostgreSQL", hold: hold) }
                case .natsOutage(let hold):
                    group.addTask { await self.outage("nats", name: "NATS", hold: hold) }
                case .restartAgent(let index):
                    group.addTask { await self.agents.restart(index) }
                }
            }
        }
    }

    /// `ops/services stop <service>`, `hold` seconds down, `ops/services start <service>`.
    func outage(_ service: String, name: String, hold: Double) async {
        let log = settings.workDir + "/services.log"
        say("\(at(now))  stop \(name) (ops/services stop \(service)); \(String(format: "%.0f", hold)) s down")
        do {
            let stopped = try await ChaosSpawn.run(["/bin/bash", settings.servicesScript, "stop", service], log: log, timeout: .seconds(60))
            if !ChaosSpawn.exitedCleanly(stopped) { throw ChaosSpawn.Failure(description: "ops/services stop \(service): \(ChaosSpawn.describe(stopped))") }
            await chaosSleep(.milliseconds(Int(hold * 1000)))
            var started = try await ChaosSpawn.run(["/bin/bash", settings.servicesScript, "start", service], log: log, timeout: .seconds(90))
            for _ in 0..<2 where !ChaosSpawn.exitedCleanly(started) {
                say("\(at(now))  ops/services start \(service) failed (\(ChaosSpawn.describe(started))); trying again (see \(log))")
                await chaosSleep(.seconds(1))
                started = try await ChaosSpawn.run(["/bin/bash", settings.servicesScript, "start", service], log: log, timeout: .seconds(90))
            }
            if !ChaosSpawn.exitedCleanly(started) { throw ChaosSpawn.Failure(description: "ops/services start \(service): \(ChaosSpawn.describe(started))") }
            say("\(at(now))  \(name) up again")
            let back = now
            if service == "postgres" { faults.withLock { $0.postgresBack = back } }
            if service == "nats", let versions = try? await viewVersions() { faults.withLock { $0.natsBack = (back, versions) } }
            faults.withLock {
                if service == "postgres" { $0.postgresRestarts += 1 } else { $0.natsRestarts += 1 }
                $0.lastHealed = max($0.lastHealed, now)
            }
        } catch {
            say("\(at(now))  \(name) restart failed: \(error) (see \(log))")
            faults.withLock { $0.serviceErrors.append("\(name): \(error)") }
        }
    }

    /// Every peer's projected view version now.
    func viewVersions() async throws -> [ChaosViewKey: Int64] {
        let ids = PostgresArray.literal(tenants.withLock { $0.map(\.id) })
        let rows = try await store.pool.withSession { s in
            try s.query("SELECT tenant_id, peer_id, version FROM peer_views WHERE tenant_id = ANY($1::text[])", [ids])
        }
        var out: [ChaosViewKey: Int64] = [:]
        for r in rows.rows {
            if let t = r[0], let p = r[1], let v = r[2].flatMap({ Int64($0) }) { out[ChaosViewKey(tenant: t, peer: p)] = v }
        }
        return out
    }

    /// Waits until `controller` answers /healthz 200; a process that exits while starting (e.g. its migrations could
    /// not reach the database) is started again, every second, for up to 90 s.
    func bringUp(_ controller: ChaosController, initial: Bool) async throws {
        let deadline = now + 90
        while now < deadline {
            if let status = controller.ended() {
                faults.withLock { $0.startFailures += 1 }
                say("\(at(now))  controller \(controller.index + 1) exited while starting (\(ChaosSpawn.describe(status))); starting it again")
                await chaosSleep(.seconds(1))
                try controller.start()
                continue
            }
            let r = await http.send(ChaosHTTP.Request(method: "GET", path: "/healthz"), port: controller.port, timeout: .seconds(2))
            if r.response?.status == 200 {
                controller.markUp()
                return
            }
            await chaosSleep(.milliseconds(100))
        }
        throw ChaosSpawn.Failure(description: "controller \(controller.index + 1) not healthy within 90 s (log \(controller.log))")
    }

    /// A controller that exits on its own while up is a crash: recorded (a failed check) and started again.
    func watchCrashes() async {
        while !Task.isCancelled && !stopping.load(ordering: .relaxed) {
            for c in controllers {
                if let status = c.crashed() {
                    let line = "controller \(c.index + 1) exited on its own at \(at(now)) (\(ChaosSpawn.describe(status))); log \(c.log)"
                    say("\(at(now))  CRASH: " + line)
                    faults.withLock { $0.crashes.append(line) }
                    do {
                        try c.start()
                        try await bringUp(c, initial: false)
                    } catch {
                        faults.withLock { $0.serviceErrors.append("controller \(c.index + 1) did not come back after a crash: \(error)") }
                    }
                }
            }
            await chaosSleep(.milliseconds(250))
        }
    }

    /// Every request of the run, one per line (tab-separated), in the work folder: for looking into a failure.
    func writeRecords(_ records: [ChaosRequestRecord]) {
        var text = "start\tend\trequest_id\ttenant\tkind\tcontroller\tif_match\tburst\tkilled\toutcome\n"
        for r in records.sorted(by: { $0.start < $1.start }) {
            let outcome: String = switch r.outcome {
            case .answered(let status, let sequence, let retryAfter, let message):
                "\(status)\(sequence.map { " seq=\($0)" } ?? "")\(retryAfter.map { " retry-after=\($0)" } ?? "") \(message ?? "")"
            case .notSent: "not sent"
            case .unknown(let reason, _): "unknown: \(reason)"
            }
            text += String(format: "%.3f\t%.3f\t", r.start, r.end)
                + "\(r.requestID)\t\(r.tenant)\t\(r.kind.rawValue)\t\(r.controller + 1)\t\(r.conditional)\t\(r.burst.map(String.init) ?? "")\t\(r.controllerKilledDuring)\t\(outcome)\n"
        }
        FileManager.default.createFile(atPath: settings.workDir + "/requests.tsv", contents: Data(text.utf8))
    }

    // MARK: - Convergence and checks

    struct Convergence: Sendable {
        var reached: Bool
        var seconds: Double
        var detail: String
        var projected: [ChaosViewKey: ChaosProjectedView]
        var histories: [ChaosAgentHistory]
    }

    /// Polls until every tenant is projected up to its head, the outbox is sent, and every agent holds its projected view.
    func waitForConvergence(reference: Double) async -> Convergence {
        let ids = tenants.withLock { $0.map(\.id) }
        let array = PostgresArray.literal(ids)
        let deadline = now + settings.convergenceTimeout
        var detail = "not checked"
        var projected: [ChaosViewKey: ChaosProjectedView] = [:]
        var histories: [ChaosAgentHistory] = []
        while true {
            do {
                let heads = try await store.pool.withSession { s in
                    try s.query("""
                        SELECT h.tenant_id, h.seq, coalesce(c.seq, 0),
                               (SELECT count(*) FROM outbox o WHERE o.tenant_id = h.tenant_id AND o.sent_at IS NULL)
                          FROM tenant_heads h LEFT JOIN projection_checkpoints c USING (tenant_id)
                         WHERE h.tenant_id = ANY($1::text[])
                        """, [array])
                }
                let views = try await store.pool.withSession { s in
                    try s.query("SELECT tenant_id, peer_id, version, digest FROM peer_views WHERE tenant_id = ANY($1::text[])", [array])
                }
                projected = [:]
                for r in views.rows {
                    guard let t = r[0], let p = r[1], let v = r[2].flatMap({ Int64($0) }), let d = r[3] else { continue }
                    projected[ChaosViewKey(tenant: t, peer: p)] = ChaosProjectedView(version: v, digest: d)
                }
                histories = await agents.histories()
                let behind = heads.rows.filter { $0[1] != $0[2] }.count
                let unsent = heads.rows.compactMap { $0[3].flatMap { Int($0) } }.reduce(0, +)
                let mismatched = ChaosChecks.agentsMatchProjection(histories, projected: projected)
                detail = "\(behind) tenant(s) not projected to their head, \(unsent) unsent outbox row(s), "
                    + "\(histories.count - countMismatches(histories, projected)) of \(histories.count) agents on their projected view"
                if behind == 0 && unsent == 0 && mismatched.passed {
                    let seconds = ChaosChecks.convergenceTime(histories, reference: reference)
                    say("\(at(now))  converged: \(detail)")
                    return Convergence(reached: true, seconds: seconds, detail: detail, projected: projected, histories: histories)
                }
            } catch {
                detail = "database error: \(error)"
            }
            if now >= deadline {
                say("\(at(now))  NOT converged within \(Int(settings.convergenceTimeout)) s: \(detail)")
                return Convergence(reached: false, seconds: now - reference, detail: detail, projected: projected, histories: histories)
            }
            await chaosSleep(.milliseconds(250))
        }
    }

    func countMismatches(_ histories: [ChaosAgentHistory], _ projected: [ChaosViewKey: ChaosProjectedView]) -> Int {
        histories.filter { a in
            projected[ChaosViewKey(tenant: a.tenant, peer: a.peer)] != a.finalDigest.map { ChaosProjectedView(version: a.finalVersion, digest: $0) }
        }.count
    }

    /// The log entries of this run's request ids.
    func loggedWrites() async throws -> [String: ChaosLoggedWrite] {
        let pattern = ledger.runID + "-%"
        let rows = try await store.pool.withSession { s in
            try s.query("""
                SELECT metadata->>'request_id', tenant_id, count(*), count(DISTINCT tx_id), min(seq), max(seq)
                  FROM events WHERE metadata->>'request_id' LIKE $1 GROUP BY 1, 2
                """, [pattern])
        }
        var out: [String: ChaosLoggedWrite] = [:]
        for r in rows.rows {
            guard let rid = r[0], let tenant = r[1], let n = r[2].flatMap({ Int($0) }), let tx = r[3].flatMap({ Int($0) }),
                  let lo = r[4].flatMap({ Int64($0) }), let hi = r[5].flatMap({ Int64($0) }) else { continue }
            if var existing = out[rid] {
                existing.tenants.insert(tenant)
                existing.events += n
                existing.transactions += tx
                existing.minSequence = min(existing.minSequence, lo)
                existing.maxSequence = max(existing.maxSequence, hi)
                out[rid] = existing
            } else {
                out[rid] = ChaosLoggedWrite(tenants: [tenant], events: n, transactions: tx, minSequence: lo, maxSequence: hi)
            }
        }
        return out
    }

    /// Every view an agent applied was produced by the projection: an outbox row with its peer, version and digest.
    func appliedViewsWerePublished(_ histories: [ChaosAgentHistory]) async throws -> ChaosCheck {
        var missing: [String] = []
        var checked = 0
        for (tenant, agents) in Dictionary(grouping: histories, by: \.tenant) {
            var peers: [String] = [], versions: [String] = [], digests: [String] = []
            for a in agents {
                for v in a.applied {
                    peers.append(a.peer)
                    versions.append(String(v.version))
                    digests.append(v.digest)
                }
            }
            checked += peers.count
            var offset = 0
            while offset < peers.count {
                let end = min(offset + 20_000, peers.count)
                let p = PostgresArray.literal(Array(peers[offset..<end]))
                let v = PostgresArray.literal(Array(versions[offset..<end]))
                let d = PostgresArray.literal(Array(digests[offset..<end]))
                let rows = try await store.pool.withSession { s in
                    try s.query("""
                        SELECT a.p, a.v, a.d FROM unnest($2::text[], $3::bigint[], $4::text[]) AS a(p, v, d)
                          LEFT JOIN outbox o ON o.tenant_id = $1 AND o.peer_id = a.p AND o.version = a.v
                         WHERE o.id IS NULL OR o.digest <> a.d LIMIT 20
                        """, [tenant, p, v, d])
                }
                missing += rows.rows.map { "\(tenant)/\($0[0] ?? "?") v\($0[1] ?? "?") \(($0[2] ?? "").prefix(12)) is in no outbox row" }
                offset = end
            }
        }
        return ChaosCheck(name: "agents applied only views the projection produced (outbox rows)", passed: missing.isEmpty,
                          detail: "\(checked) applied views", problems: Array(missing.prefix(ChaosChecks.maxProblems)))
    }

    /// `routeplane projections verify` (all tenants): stored views and read models equal a rebuild.
    func verifyProjections() async -> ChaosCheck {
        let out = settings.workDir + "/verify.out"
        do {
            let status = try await ChaosSpawn.run([settings.binary, "projections", "verify", "--database-url", settings.databaseURL], log: out,
                                                  timeout: .seconds(300))
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            let lines = text.split(separator: "\n").map(String.init)
            let summary = lines.last(where: { $0.hasPrefix("verify:") }) ?? lines.last ?? "(no output)"
            return ChaosCheck(name: "routeplane projections verify: stored views equal a rebuild, every tenant",
                              passed: ChaosSpawn.exitedCleanly(status), detail: summary,
                              problems: ChaosSpawn.exitedCleanly(status) ? [] : Array(lines.filter { !$0.hasPrefix("ok") }.prefix(ChaosChecks.maxProblems)))
        } catch {
            return ChaosCheck(name: "routeplane projections verify", passed: false, detail: "\(error)")
        }
    }

    func check(records: [ChaosRequestRecord], convergence: Convergence) async -> [ChaosCheck] {
        var checks: [ChaosCheck] = []
        let logged: [String: ChaosLoggedWrite]
        do {
            logged = try await loggedWrites()
        } catch {
            return [ChaosCheck(name: "read the event log", passed: false, detail: "\(error)")]
        }
        checks.append(ChaosChecks.acknowledgedWrites(records, logged: logged))
        checks.append(ChaosChecks.failedWrites(records, logged: logged))
        let unknown = ChaosChecks.unknownOutcomes(records, logged: logged)
        unknownCommitted.withLock { $0 = (unknown.total, unknown.committed) }
        checks.append(unknown.check)
        checks.append(ChaosChecks.conditionalBursts(records, logged: logged))
        checks.append(ChaosChecks.answers(records))
        checks.append(await verifyProjections())
        checks.append(ChaosCheck(name: "converged: projections at head, outbox sent, agents on their views", passed: convergence.reached,
                                 detail: convergence.detail))
        checks.append(ChaosChecks.agentsMatchProjection(convergence.histories, projected: convergence.projected))
        checks.append(ChaosChecks.agentsNeverWentBack(convergence.histories))
        do {
            checks.append(try await appliedViewsWerePublished(convergence.histories))
        } catch {
            checks.append(ChaosCheck(name: "agents applied only views the projection produced", passed: false, detail: "\(error)"))
        }
        let f = faults.withLock { $0 }
        checks.append(ChaosCheck(name: "no controller exited on its own", passed: f.crashes.isEmpty,
                                 detail: "\(f.crashes.count) crash(es)", problems: f.crashes))
        checks.append(ChaosCheck(name: "every fault was injected and healed", passed: f.serviceErrors.isEmpty && f.postgresRestarts == 1 && f.natsRestarts == 1,
                                 detail: "PostgreSQL restarts \(f.postgresRestarts), NATS restarts \(f.natsRestarts)", problems: f.serviceErrors))
        return checks
    }

    let unknownCommitted = Mutex<(total: Int, committed: Int)>((0, 0))

    func printSummary(records: [ChaosRequestRecord], convergence: Convergence, reference: Double, agentRestarts: Int, checks: [ChaosCheck]) {
        let c = ChaosCounts.from(records)
        let f = faults.withLock { $0 }
        let unknown = unknownCommitted.withLock { $0 }
        let bursts = Set(records.compactMap(\.burst)).count
        say("")
        say("summary (seed \(settings.seed), run \(ledger.runID), \(Int(settings.duration)) s of faults):")
        say("  writes sent           \(c.writes) (\(records.count(where: { $0.burst != nil })) in \(bursts) concurrent If-Match bursts)")
        say("  acknowledged (2xx)    \(c.acknowledged)")
        say("  conflicts             \(c.conflicts409 + c.preconditionFailed412) (409: \(c.conflicts409), 412: \(c.preconditionFailed412))")
        say("  503 with Retry-After  \(c.unavailable503) writes, \(c.reads503) reads")
        say("  other 4xx             \(c.otherClientErrors)")
        say("  refused (ctrl down)   \(c.notSent)")
        say("  unknown outcome       \(unknown.total) (connection broke: controller killed): \(unknown.committed) committed, \(unknown.total - unknown.committed) not")
        say("  reads                 \(c.reads)")
        say("  kills                 \(f.kills) controller kill -9, \(f.controllerRestarts) restarts (\(f.startFailures) start attempts exited early)")
        say("  service restarts      PostgreSQL \(f.postgresRestarts), NATS \(f.natsRestarts) (\(String(format: "%.0f", settings.outage)) s down each)")
        say("  agents                \(convergence.histories.count), \(convergence.histories.reduce(0) { $0 + $1.applied.count }) views applied, \(agentRestarts) agent restarts")
        if let back = f.postgresBack {
            let r = ChaosChecks.recovery(records, since: back)
            say("  PostgreSQL back       at \(at(back).trimmingCharacters(in: .whitespaces)): first write acknowledged "
                + (r.firstSuccess.map { String(format: "%.2f s", $0) } ?? "never") + " later; last 503 "
                + (r.last503.map { String(format: "%+.2f s", $0) } ?? "none"))
        }
        if let back = f.natsBack {
            let catchUp = ChaosChecks.catchUp(convergence.histories, targets: back.versions, since: back.at)
            say("  NATS back             at \(at(back.at).trimmingCharacters(in: .whitespaces)): every agent had its view of that moment "
                + (catchUp.map { String(format: "%.2f s", $0) } ?? "NEVER") + " later")
        }
        say(String(format: "  convergence           %@ %.2f s after the last fault (writes stopped and services healed at %.1f s)",
                   convergence.reached ? "every agent on its projected view" : "NOT reached;", convergence.seconds, reference))
        say("")
        say("checks:")
        for check in checks {
            say("  \(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)")
            for p in check.problems { say("         - \(p)") }
        }
        let failed = checks.filter { !$0.passed }.count
        say(failed == 0 ? "routeplane-chaos: PASSED" : "routeplane-chaos: FAILED (\(failed) check(s)); logs in \(settings.workDir)")
    }

    // MARK: - Shutdown

    /// Stops the agents, then every controller with SIGTERM (graceful shutdown must exit 0).
    func shutDown() async -> ChaosCheck {
        stopping.store(true, ordering: .relaxed)
        await agents.stopAll()
        var statuses: [String] = []
        var clean = true
        for c in controllers {
            if let status = await c.stop(timeout: .seconds(20)) {
                statuses.append("\(c.index + 1): \(ChaosSpawn.describe(status))")
                if !ChaosSpawn.exitedCleanly(status) { clean = false }
            }
        }
        await store.shutdown()
        if let folder = settings.agentStateDir { try? FileManager.default.removeItem(atPath: folder) }
        return ChaosCheck(name: "controllers stop gracefully on SIGTERM (exit 0)", passed: clean, detail: statuses.joined(separator: ", "))
    }

    // MARK: - Signals

    func killEverything() {
        for c in controllers { c.killNow() }
        if let folder = settings.agentStateDir { try? FileManager.default.removeItem(atPath: folder) }
    }

    func installSignalHandlers() {
        for s in [SIGINT, SIGTERM] {
            signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler {
                self.say("routeplane-chaos: interrupted; killing the controllers")
                self.killEverything()
                exit(130)
            }
            source.resume()
            chaosSignalSources.append(source)
        }
    }
}

/// The signal sources must live as long as the process. Written only by `installSignalHandlers`, once, from the run's
/// single setup path before any other task exists; never read: `nonisolated(unsafe)` is safe for that.
nonisolated(unsafe) private var chaosSignalSources: [any DispatchSourceSignal] = []

