import CommandSupport
import ArgumentParser
import BenchKit
import ControlPlane
import PostgresClient
import EventStore
import Foundation
import Logging
import Projections
import RouteModel

/// `routeplane-bench memory`: resident memory of a real controller (`routeplane serve`, a child process)
/// holding a 10,000-peer tenant — it projects every peer's view from event zero, publishes them all over
/// NATS, answers the tenant's API snapshot and `GET /api/agent/view` for every peer — and of one real agent
/// (`routeplane-agent --applier dry-run`, the lean executable, a child process) that enrolled with a setup key and applied its
/// view. Read from `/proc/PID/status` (VmRSS now, VmHWM peak). Baseline in the same run: the same
/// controller idle, before the tenant's events exist.
struct BenchMemory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Controller RSS with 10,000 peers' views loaded and one agent's RSS (targets < 200 MB and < 20 MB, MB = 10^6 bytes).")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Peers in the tenant.") var peers = 10_000
    @Option(name: .customLong("nats-url"), help: "NATS URL (default: $ROUTEPLANE_NATS_URL).") var natsURL: String?
    @Option(help: "Port of the controller child process (default: 19000 + pid % 1000).") var port: Int?
    @Option(help: "Parallel connections for the GET of every peer's view.") var parallel = 8
    @Option(help: "Profiling aid: start the controller under this command, split at spaces (e.g. \"heaptrack -o /tmp/serve\"); waits 20x longer; the memory figures are then the wrapper's.")
    var controllerPrefix: String?
    @Option(help: "Profiling aid: the controller's executable (default: this one), e.g. a copy without debug info for valgrind.")
    var controllerExecutable: String?
    @Option(help: "Then restart the agent with its controller and NATS unreachable for this many seconds and report its RSS growth (target < 1 MiB; e.g. 1800).")
    var soak: Double?

    static let controllerTargetBytes = PerformanceTargets.bytes(.controllerMemory)

    /// The lean agent executable of this build (`routeplane-agent`, next to this one), the one the agent figures are of.
    static func agentExecutable() throws -> String {
        let path = Executables.sibling("routeplane-agent")
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("no routeplane-agent next to routeplane-bench (\(path)): build every product (swift build -c release)")
        }
        return path
    }
    static let agentTargetBytes = PerformanceTargets.bytes(.agentMemory)

    func run() async throws {
        #if DEBUG
        print("note: debug build; use `swift build -c release` for representative figures")
        #endif
        let progress = BenchProgress()
        let figures = try await measure(progress: progress)
        progress.end()
        for line in figures.table() { print(line) }
    }

    func measure(progress: BenchProgress? = nil) async throws -> MemoryFigures {
        guard let nats = natsURL ?? ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_URL"] else {
            throw ValidationError("no NATS: pass --nats-url or set ROUTEPLANE_NATS_URL (ops/services start writes it)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else { throw ValidationError("curl not found (Debian package curl)") }
        let server = try database.resolvedURL()
        let pid = ProcessInfo.processInfo.processIdentifier
        let name = "routeplane_bench_mem_\(pid)"
        progress?.begin("memory: creating database \(name)")
        let url = try await BenchDatabase.create(name: name, server: server)
        defer { BenchDatabase.drop(name: name, server: server) }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-bench-memory-\(pid)-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var logger = Logger(label: "routeplane.bench.memory")
        logger.logLevel = .error
        let store = EventStore(url: url, maxConnections: 4, logger: logger)
        var children: [ChildProcess] = []
        do {
            let figures = try await measure(store: store, url: url, nats: nats, scratch: scratch, logger: logger, progress: progress) { children.append($0) }
            for child in children.reversed() { child.stop() }
            await store.shutdown()
            return figures
        } catch {
            for child in children.reversed() { child.stop() }
            await store.shutdown()
            throw error
        }
    }

    private func measure(store: EventStore, url: String, nats: String, scratch: URL, logger: Logger, progress: BenchProgress?,
                         started: (ChildProcess) -> Void) async throws -> MemoryFigures {
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        let controller = ControlPlane(store: store, logger: logger)
        let tenant = try await controller.createTenant(name: "bench-memory")
        let token = try await controller.createToken(tenant: tenant, name: "bench").token
        // The product executables next to this one: the controller (`routeplane serve`) and the lean agent measured.
        let executable = Executables.sibling("routeplane")
        let agentExecutable = try Self.agentExecutable()
        let port = self.port ?? 19_000 + Int(ProcessInfo.processInfo.processIdentifier % 1000)
        let base = "http://127.0.0.1:\(port)"

        // 1. The controller, idle: the baseline.
        progress?.begin("memory: starting the controller (routeplane serve on port \(port))")
        let prefix = (controllerPrefix ?? "").split(separator: " ").map(String.init)
        let slow = prefix.isEmpty ? 1 : 20
        // The tenant is larger than the default peer quota, and its agents enroll from loopback at once.
        let serveArguments = ["serve", "--port", String(port), "--database-url", url, "--nats-url", nats, "--log-level", "error",
                              "--quota-peers", String(max(peers * 2, 10_000)), "--enroll-source-burst", "1000000", "--enroll-key-burst", "1000000"]
        let serve = try ChildProcess.start(prefix.first.map { ChildProcess.which($0) } ?? controllerExecutable ?? executable,
                                           prefix.isEmpty ? serveArguments : Array(prefix.dropFirst()) + [controllerExecutable ?? executable] + serveArguments,
                                           log: scratch.appendingPathComponent("serve.log").path)
        started(serve)
        guard try await waitFor(timeout: .seconds(60 * slow), { try await Self.httpStatus(base + "/healthz") == 200 }) else {
            throw ValidationError("the controller did not answer /healthz within 60 s; its log: \(serve.logTail())")
        }
        try await Task.sleep(for: .seconds(1))
        let idle = try serve.memory()

        // 2. The tenant: `peers` peers, groups and routes as in `bench projection`, a credential per peer, a setup key.
        progress?.begin("memory: \(peers)-peer tenant (events, credentials)")
        var builder = BenchTenant(peers: peers)
        let events = builder.build()
        var version = try await store.version(tenant: tenant)
        var i = 0
        while i < events.count {
            let chunk = events[i..<min(i + 2_000, events.count)].map { e in
                let (type, json) = e.encode()
                return NewEvent(type: type, data: String(decoding: json, as: UTF8.self), metadata: EventMetadata(actor: "bench"))
            }
            version = try await store.append(tenant: tenant, expected: .exactly(version), events: chunk).upperBound
            i += 2_000
        }
        let secrets = builder.peerIDs.map { _ in Secrets.secret(prefix: "rpc_") }
        for start in stride(from: 0, to: secrets.count, by: 5_000) {
            let slice = start..<min(start + 5_000, secrets.count)
            let params: [String?] = [tenant, PostgresArray.literal(slice.map { Secrets.hash(secrets[$0]) }),
                                     PostgresArray.literal(slice.map { builder.peerIDs[$0].rawValue })]
            _ = try await store.pool.withSession { s in
                try s.query("INSERT INTO credentials (secret_hash, tenant_id, kind, subject_id) SELECT h, $1, 'peer', p FROM unnest($2::text[], $3::text[]) AS u(h, p)", params)
            }
        }
        let setupKey = Secrets.secret(prefix: "rps_")
        let keyID = SetupKeyID(Secrets.id())
        let autoGroups = Array(builder.clientGroups.prefix(2))
        let now = Int64(Date().timeIntervalSince1970)
        let written = try await controller.writer.write(tenant: tenant, actor: Actor(id: "bench"), requestID: "setup-key") { s in
            try decideOrThrow(AccessCommand.createSetupKey(id: keyID, name: "bench agent", type: .reusable, expiresIn: 86_400,
                                                           autoGroups: autoGroups, usageLimit: 0, now: now), s.state)
        } sideStatements: { _ in
            [CredentialStore.insert(secret: setupKey, tenant: tenant, kind: .setupKey, subject: keyID.rawValue)]
        }
        let head = written.snapshot.version

        // 3. The controller projects every view and the relay publishes them.
        progress?.begin("memory: the controller projects \(peers) views and publishes them", total: peers)
        let projectStart = ContinuousClock.now
        let projected = try await waitFor(timeout: .seconds(600 * slow)) {
            let rows = try await store.pool.withSession { s in
                try s.query("SELECT (SELECT count(*) FROM peer_views WHERE tenant_id = $1) AS views, (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS unsent, "
                            + "(SELECT seq FROM projection_checkpoints WHERE tenant_id = $1) AS checkpoint", [tenant])
            }
            let views = Int(rows.first?.int64("views") ?? 0)
            let unsent = Int(rows.first?.int64("unsent") ?? 1)
            let checkpoint = rows.first?.int64("checkpoint") ?? 0
            progress?.update(done: views)
            return checkpoint >= head && unsent == 0 && views >= peers
        }
        guard projected else { throw ValidationError("the controller did not project and publish \(peers) views within 600 s; its log: \(serve.logTail())") }
        let projectSeconds = projectionSeconds(ContinuousClock.now - projectStart)
        try await Task.sleep(for: .seconds(1))
        let afterProjection = try serve.memory()

        // 4. The API's snapshot of the tenant, then every peer's view through GET /api/agent/view.
        progress?.begin("memory: GET /api/peers and /api/routes (the tenant's API snapshot)")
        for path in ["/api/peers", "/api/routes", "/api/groups"] {
            let status = try await Self.httpStatus(base + path, token: token)
            guard status == 200 else { throw ValidationError("GET \(path) answered \(status)") }
        }
        let afterSnapshot = try serve.memory()
        progress?.begin("memory: GET /api/agent/view for \(peers) peers (curl, \(parallel) parallel)")
        let fetchStart = ContinuousClock.now
        let codes = try await Self.fetchViews(base: base, secrets: secrets, parallel: parallel, scratch: scratch, timeout: 600 * Double(slow))
        let fetchSeconds = projectionSeconds(ContinuousClock.now - fetchStart)
        let ok = codes[200] ?? 0
        try await Task.sleep(for: .seconds(1))
        let loaded = try serve.memory()

        // 5. One agent: enrolls with the setup key, receives its view over NATS, applies it (dry run).
        progress?.begin("memory: starting one agent (dry-run applier) and waiting until it applied its view")
        let stateDir = scratch.appendingPathComponent("agent").path
        let agent = try ChildProcess.start(agentExecutable, ["--controller", base, "--setup-key", setupKey, "--state-dir", stateDir,
                                                        "--applier", "dry-run", "--assume-candidates-up", "--name", "bench-agent", "--log-level", "warning"],
                                           log: scratch.appendingPathComponent("agent.log").path)
        started(agent)
        let agentStart = ContinuousClock.now
        var agentView: (peer: String, version: Int64, routes: Int)?
        let applied = try await waitFor(timeout: .seconds(90 * slow)) {
            guard agent.isRunning else { throw ValidationError("the agent exited: \(agent.logTail())") }
            let rows = try await store.pool.withSession { s in
                try s.query("""
                    SELECT s.peer_id, s.applied_version, v.version, json_array_length(v.body -> 'ha_sets') AS ha_sets
                      FROM peer_status s JOIN peer_views v USING (tenant_id, peer_id) WHERE s.tenant_id = $1
                    """, [tenant])
            }
            guard let row = rows.first, let peer = row.string("peer_id"), let appliedVersion = row.int64("applied_version"),
                  let viewVersion = row.int64("version"), appliedVersion >= viewVersion else { return false }
            agentView = (peer, viewVersion, row.int64("ha_sets").map(Int.init) ?? 0)
            return true
        }
        guard applied, let agentView else { throw ValidationError("the agent did not apply its view within 90 s; its log: \(agent.logTail())") }
        let agentSeconds = projectionSeconds(ContinuousClock.now - agentStart)
        try await Task.sleep(for: .seconds(2))
        let agentMemory = try agent.memory()
        let controllerAfter = try serve.memory()
        agent.stop()
        serve.stop()
        var soakFigures: SoakFigures?
        if let soak { soakFigures = try await runSoak(seconds: soak, executable: agentExecutable, stateDir: stateDir, scratch: scratch, progress: progress) }

        return MemoryFigures(
            peers: peers, groups: builder.groupCount, routes: builder.state.routes.count, events: events.count,
            controllerIdle: idle, controllerProjected: afterProjection, controllerSnapshot: afterSnapshot, controllerLoaded: loaded,
            controllerWithAgent: controllerAfter,
            viewsProjected: peers, projectSeconds: projectSeconds, viewsFetched: ok, viewFetchErrors: codes.filter { $0.key != 200 }.values.reduce(0, +),
            viewFetchSeconds: fetchSeconds,
            agent: agentMemory, agentViewVersion: agentView.version, agentViewRoutes: agentView.routes, agentApplySeconds: agentSeconds,
            controllerTargetBytes: Self.controllerTargetBytes, agentTargetBytes: Self.agentTargetBytes, soak: soakFigures)
    }

    /// Polls `condition` every 250 ms until it holds or `timeout` passes.
    private func waitFor(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(250))
        }
        return try await condition()
    }

    /// The status code of a GET with curl (0 when it could not connect), bounded to 10 s.
    static func httpStatus(_ url: String, token: String? = nil) async throws -> Int {
        var arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"]
        if let token { arguments += ["-H", "Authorization: Token \(token)"] }
        arguments.append(url)
        let curlArguments = arguments
        let output = try await runOffCooperativePool { try ChildProcess.output("/usr/bin/curl", curlArguments) }
        return Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// GET /api/agent/view once per peer with its own credential, `parallel` transfers at a time (one curl
    /// process: its own C client, so the load generator is not Swift code in the measured process).
    static func fetchViews(base: String, secrets: [String], parallel: Int, scratch: URL, timeout: Double) async throws -> [Int: Int] {
        let config = scratch.appendingPathComponent("views.curl")
        var text = ""
        text.reserveCapacity(secrets.count * 140)
        // Options hold per URL block (`next` starts the next one), so each block carries its own output and write-out.
        for (i, secret) in secrets.enumerated() {
            if i > 0 { text += "next\n" }
            text += "url = \"\(base)/api/agent/view\"\nheader = \"Authorization: Token \(secret)\"\noutput = \"/dev/null\"\nmax-time = 30\n"
                + "silent\nwrite-out = \"%{http_code}\\n\"\n"
        }
        try text.write(to: config, atomically: true, encoding: .utf8)
        let output = try await runOffCooperativePool {
            try ChildProcess.output("/usr/bin/curl", ["--parallel", "--parallel-max", String(parallel), "-K", config.path],
                                    timeout: timeout)
        }
        return HTTPStatusCounts.parse(output)
    }
}

/// Figures of one `bench memory` run.
struct MemoryFigures: Codable, Sendable {
    var peers: Int
    var groups: Int
    var routes: Int
    var events: Int
    /// The controller after start, before the tenant's events exist (same process, same run).
    var controllerIdle: ProcessMemory
    /// After projecting and publishing every view, the tenant's API snapshot, and a GET of every view.
    /// Stages before `controllerLoaded`: every view projected and published; then the API's snapshot (GET peers, routes, groups).
    var controllerProjected: ProcessMemory?
    var controllerSnapshot: ProcessMemory?
    var controllerLoaded: ProcessMemory
    /// Again, after the agent enrolled and received its view.
    var controllerWithAgent: ProcessMemory
    var viewsProjected: Int
    var projectSeconds: Double
    var viewsFetched: Int
    var viewFetchErrors: Int
    var viewFetchSeconds: Double
    var agent: ProcessMemory
    var agentViewVersion: Int64
    var agentViewRoutes: Int
    var agentApplySeconds: Double
    var controllerTargetBytes: Int
    var agentTargetBytes: Int
    /// `--soak`: the agent's growth with its controller and NATS unreachable.
    var soak: SoakFigures? = nil

    /// The controller's figure for the target: the larger of its resident set after loading and its peak (VmHWM).
    var controllerPeakBytes: Int { max(controllerWithAgent.hwmBytes, controllerLoaded.hwmBytes) }
    var controllerMet: Bool { controllerPeakBytes < controllerTargetBytes }
    var agentMet: Bool { agent.hwmBytes < agentTargetBytes }

    func table() -> [String] {
        var lines: [String] = []
        lines.append("routeplane-bench memory: a real controller (routeplane serve) and agent (routeplane-agent --applier dry-run) as child processes; "
                     + "/proc/PID/status, MB = 10^6 bytes")
        lines.append("tenant: \(peers) peers, \(groups) groups, \(routes) routes (\(events) events); the controller projected and published \(viewsProjected) views in "
                     + String(format: "%.1f s", projectSeconds) + ", then served \(viewsFetched) GET /api/agent/view in " + String(format: "%.1f s", viewFetchSeconds)
                     + (viewFetchErrors > 0 ? " (\(viewFetchErrors) failed)" : ""))
        var t = TextTable(headers: ["process", "state", "VmRSS", "VmHWM (peak)", "RssAnon", "threads", "target", ""],
                          alignments: [.left, .left, .right, .right, .right, .right, .left, .left])
        func anon(_ m: ProcessMemory) -> String { m.anonymousBytes.map(Figure.megabytes) ?? "-" }
        t.add(["controller", "idle, before the tenant (baseline)", Figure.megabytes(controllerIdle.rssBytes), Figure.megabytes(controllerIdle.hwmBytes),
               anon(controllerIdle), "\(controllerIdle.threads)", "", ""])
        if let m = controllerProjected {
            t.add(["controller", "\(peers) peers' views projected and published", Figure.megabytes(m.rssBytes), Figure.megabytes(m.hwmBytes),
                   anon(m), "\(m.threads)", "", ""])
        }
        if let m = controllerSnapshot {
            t.add(["controller", "and the API's snapshot (GET peers, routes, groups)", Figure.megabytes(m.rssBytes), Figure.megabytes(m.hwmBytes),
                   anon(m), "\(m.threads)", "", ""])
        }
        t.add(["controller", "and every view served (GET /api/agent/view)", Figure.megabytes(controllerLoaded.rssBytes),
               Figure.megabytes(controllerLoaded.hwmBytes), anon(controllerLoaded), "\(controllerLoaded.threads)", "", ""])
        t.add(["controller", "and one agent enrolled", Figure.megabytes(controllerWithAgent.rssBytes), Figure.megabytes(controllerWithAgent.hwmBytes),
               anon(controllerWithAgent), "\(controllerWithAgent.threads)", "< " + Figure.megabytes(controllerTargetBytes), controllerMet ? "met" : "NOT met"])
        t.add(["agent", "view v\(agentViewVersion) applied (\(agentViewRoutes) HA sets)", Figure.megabytes(agent.rssBytes), Figure.megabytes(agent.hwmBytes),
               anon(agent), "\(agent.threads)", "< " + Figure.megabytes(agentTargetBytes), agentMet ? "met" : "NOT met"])
        lines += t.render()
        lines.append("  the controller's growth for the tenant: " + Figure.megabytes(controllerLoaded.rssBytes - controllerIdle.rssBytes) + " resident ("
                     + Figure.megabytes(controllerPeakBytes - controllerIdle.hwmBytes) + " at the peak); the agent applied its view "
                     + String(format: "%.1f s", agentApplySeconds) + " after start")
        lines.append("  where the resident memory is (/proc/PID/smaps, largest mappings; RssAnon = heap, stacks and other private anonymous memory, "
                     + "the rest is file-backed: the binary's and the libraries' pages):")
        lines.append("    controller: " + controllerWithAgent.mappingSummary)
        lines.append("    agent: " + agent.mappingSummary)
        if !controllerMet {
            lines.append("  target not met: controller peak " + Figure.megabytes(controllerPeakBytes) + " is "
                         + Figure.percent(Double(controllerPeakBytes) / Double(controllerTargetBytes) - 1) + " over " + Figure.megabytes(controllerTargetBytes))
        }
        if let soak { lines += soak.lines() }
        if !agentMet {
            lines.append("  target not met: agent peak " + Figure.megabytes(agent.hwmBytes) + " is "
                         + Figure.percent(Double(agent.hwmBytes) / Double(agentTargetBytes) - 1) + " over " + Figure.megabytes(agentTargetBytes))
        }
        return lines
    }
}

/// Resident memory of a process, from /proc/PID/status.
struct ProcessMemory: Codable, Sendable {
    var rssBytes: Int
    var hwmBytes: Int
    /// Anonymous (heap, stacks) and file-backed (the binary's and libraries' pages) parts of VmRSS.
    var anonymousBytes: Int?
    var fileBytes: Int?
    var threads: Int
    /// Where the resident set is: the largest mappings (binary, libraries, heap, anonymous), from /proc/PID/smaps.
    var largestMappings: [Mapping] = []

    struct Mapping: Codable, Sendable {
        var name: String
        var bytes: Int
    }

    /// `heap 20.1 MiB, routeplane 6.0 MiB, …`
    var mappingSummary: String {
        largestMappings.prefix(6).map { m in
            let short = m.name.hasPrefix("/") ? String(m.name.split(separator: "/").last ?? "") : m.name
            return short + " " + Figure.megabytes(m.bytes)
        }.joined(separator: ", ")
    }
}

/// A child process of the benchmark (this executable in another role, or a tool), with its output in a log file.
/// Stopped with SIGTERM, then SIGKILL after 10 s; never outlives the bench (`stop()` on every path).
final class ChildProcess: Sendable {
    let process: Process
    let logPath: String

    private init(process: Process, logPath: String) {
        self.process = process
        self.logPath = logPath
    }

    static func ownExecutable() throws -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        guard let path = Bundle.main.executablePath else { throw ValidationError("cannot find this executable's path") }
        return path
    }

    static func start(_ executable: String, _ arguments: [String], log: String) throws -> ChildProcess {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: log) else { throw ValidationError("cannot write \(log)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? handle.close()
        return ChildProcess(process: process, logPath: log)
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func memory() throws -> ProcessMemory {
        guard let status = Self.readProcFile("/proc/\(pid)/status"),
              let rss = ProcStatus.bytes("VmRSS", in: status), let hwm = ProcStatus.bytes("VmHWM", in: status) else {
            throw ValidationError("cannot read /proc/\(pid)/status (process gone?): \(logTail())")
        }
        let smaps = Self.readProcFile("/proc/\(pid)/smaps") ?? ""
        return ProcessMemory(rssBytes: rss, hwmBytes: hwm, anonymousBytes: ProcStatus.bytes("RssAnon", in: status),
                             fileBytes: ProcStatus.bytes("RssFile", in: status), threads: ProcStatus.bytes("Threads", in: status) ?? 0,
                             largestMappings: Smaps.residentByMapping(smaps).prefix(10).map { ProcessMemory.Mapping(name: $0.name, bytes: $0.bytes) })
    }

    /// A /proc file to its end (they report size 0, so size-based readers stop early).
    /// An executable's path from PATH (or the name itself when it has a slash or is not found).
    static func which(_ name: String) -> String {
        guard !name.contains("/") else { return name }
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return name
    }

    static func readProcFile(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }

    /// SIGTERM, up to 10 s for a graceful exit, then SIGKILL. Safe to call twice.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<100 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        for _ in 0..<50 where process.isRunning { usleep(100_000) }
    }

    func logTail(_ bytes: Int = 2_000) -> String {
        guard let data = FileManager.default.contents(atPath: logPath) else { return "(no log)" }
        return String(decoding: data.suffix(bytes), as: UTF8.self)
    }

    /// Runs a tool to completion (killed after `timeout` seconds) and returns its standard output.
    static func output(_ executable: String, _ arguments: [String], timeout: Double = 30) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return String(decoding: data, as: UTF8.self)
    }
}
