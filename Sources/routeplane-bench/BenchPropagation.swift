// Over 500 lines: the propagation bench is two processes (controller pipeline and simulated agents) that speak a small
// line protocol to each other; both halves and the protocol stay in one file so they change together.
import CommandSupport
import ArgumentParser
import BenchKit
import ControlPlane
import Dispatch
import EventStore
import Foundation
import Logging
import ViewDistribution
import Projections
import RouteModel
import Synchronization
#if canImport(Glibc)
import Glibc
import NATSClient
#endif

/// `routeplane-bench propagation`: a route change committed → the view received and verified by every
/// simulated agent, vs raw libnats publish → receive of messages of the same size, in the same run.
///
/// The load generator is kept apart from what it measures: the simulated agents run in a **child process**
/// (this executable with the hidden `--agent-process-tenant`), as one NATS subscription per agent on its own
/// subject, spread over a few connections, each message handled by a plain libnats callback (no task, no stream)
/// that decodes the envelope, checks its SHA-256 digest and its Ed25519 signature as an agent does, and records a CLOCK_MONOTONIC
/// timestamp (system-wide, so comparable with the commit time taken in this process). The child's CPU is read
/// from /proc and printed per message; this process's CPU (the controller pipeline: append, projection, outbox,
/// relay) is printed apart. The raw libnats baseline is received by the same child process.
struct BenchPropagation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "propagation",
        abstract: "Route change committed → applied at N simulated agents (p50/p99/max) vs raw libnats publish → receive.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Simulated agents (peers that receive the changed route).") var agents = 1_000
    @Option(help: "Route changes to measure.") var changes = 10
    @Option(name: .customLong("nats-url"), help: "NATS URL (default: $ROUTEPLANE_NATS_URL).") var natsURL: String?
    @Option(help: "NATS connections the simulated agents share.") var connections = 4
    @Option(name: .customLong("relay-workers"), help: "Outbox relay workers (batch loops sharing the outbox with SKIP LOCKED; default: the relay's default).") var relayWorkers: Int?
    @Option(name: .customLong("relay-batch"), help: "Peers claimed per relay batch (default: the relay's default).") var relayBatch: Int?
    /// Internal: run as the simulated agents' process for this tenant (started by the bench itself).
    @Option(name: .customLong("agent-process-tenant"), help: .hidden) var agentProcessTenant: String?
    /// Internal: the view signing key the simulated agents pin.
    @Option(name: .customLong("agent-process-key"), help: .hidden) var agentProcessKey: String?
    @Flag(name: .customLong("skip-agent-signature-check"),
          help: "Simulated agents decode and check the digest but not the signature: separates the cost of verifying 10,000 views in one process (real agents each verify one) from the controller's signing.")
    var skipAgentSignatureCheck = false
    @Flag(help: "Also print where each change's time went: projection and relay stages (per-batch timestamps) and every pipeline process's CPU.")
    var stages = false

    func run() async throws {
        if let tenant = agentProcessTenant {
            guard let key = agentProcessKey else { throw ValidationError("--agent-process-key is required with --agent-process-tenant") }
            try await AgentProcess.run(tenant: tenant, agents: agents, connections: connections, natsURL: try natsServer(), key: key,
                                       verify: !skipAgentSignatureCheck)
            return
        }
        #if DEBUG
        print("note: debug build; use `swift build -c release` and .build/release/routeplane for representative figures")
        #endif
        let figures = try await measure(progress: { line in
            FileHandle.standardError.write(Data(("  … " + line + "\n").utf8))
        })
        for line in figures.table() { print(line) }
    }

    private func natsServer() throws -> String {
        guard let nats = natsURL ?? ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_URL"] else {
            throw ValidationError("no NATS: pass --nats-url or set ROUTEPLANE_NATS_URL (ops/services start writes it)")
        }
        return nats
    }

    /// The whole measurement: a throwaway database, the controller pipeline in this process, the simulated agents
    /// in a child process, `changes` route changes, then the raw libnats baseline on the same agents.
    func measure(progress: (@Sendable (String) -> Void)? = nil) async throws -> PropagationFigures {
        let nats = try natsServer()
        let server = try database.resolvedURL()
        let name = "routeplane_bench_prop_\(ProcessInfo.processInfo.processIdentifier)"
        progress?("creating database \(name)")
        let url = try await BenchDatabase.create(name: name, server: server)
        defer { BenchDatabase.drop(name: name, server: server) }
        var logger = Logger(label: "routeplane.bench.propagation")
        logger.logLevel = .error
        var relayConfiguration = OutboxRelay.Configuration(name: "bench-relay")
        if let relayWorkers { relayConfiguration.workers = max(1, relayWorkers) }
        if let relayBatch { relayConfiguration.machine.batchSize = max(1, relayBatch) }
        let stageLog = stages ? PropagationStages(database: name) : nil
        if let stageLog { relayConfiguration.onBatchTiming = { t in stageLog.relay.withLock { $0.append(t) } } }
        let store = EventStore(url: url, maxConnections: 8 + relayConfiguration.workers, logger: logger)
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        let signer = ViewSigner.ephemeral()
        let controller = ControlPlane(store: store, settings: ControlPlaneSettings(viewSigner: signer), logger: logger)

        // Tenant: `agents` client peers in one group, one routing peer, one route to the group.
        progress?("tenant with \(agents) peers")
        let tenant = try await controller.createTenant(name: "bench")
        let actor = Actor(id: "bench")
        let router = PeerID("router")
        let clients = (0..<agents).map { PeerID(AgentProcess.peerName($0)) }
        _ = try await controller.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
            var state = s.state
            var events: [RouteEvent] = []
            let commands: [Command] = [.enrollPeer(id: router, name: "router", os: "linux", meshIP: "100.127.255.254")]
                + clients.enumerated().map { i, p in .enrollPeer(id: p, name: p.rawValue, os: "linux", meshIP: "100.64.\(i / 250).\(i % 250 + 1)") }
                + [.createGroup(id: "clients", name: "clients", peers: clients),
                   .createRoute(id: "lan", RouteInput(networkID: "lan", network: "10.20.0.0/24", peer: router, metric: 100, groups: ["clients"]))]
            for command in commands {
                let produced = try decideOrThrow(command, state)
                for e in produced { state.apply(e) }
                events += produced
            }
            return events
        }

        // The simulated agents subscribe (in their own process) before the controller's pipeline starts.
        progress?("starting the simulated agents' process (\(agents) subscriptions on \(connections) connections)")
        let child = try AgentProcessLink.start(tenant: tenant, agents: agents, connections: connections, natsURL: nats, key: signer.publicKey,
                                               verify: !skipAgentSignatureCheck)
        defer { child.stop() }
        guard await child.waitReady(timeout: .seconds(120)) else {
            throw ValidationError("the simulated agents' process did not get ready within 120 s")
        }

        let publisherConnection = try await NATSConnection.connect(try BenchNATS.configuration(url: nats, name: "bench-relay"), logger: logger)
        let relay = OutboxRelay(store: store, connection: publisherConnection, signer: signer, configuration: relayConfiguration, logger: logger)
        _ = try await relay.ensureStream()
        var runnerConfiguration = ProjectionRunner.Configuration()
        if let stageLog { runnerConfiguration.onBatchTiming = { t in stageLog.projection.withLock { $0.append(t) } } }
        let runner = ProjectionRunner(store: store, configuration: runnerConfiguration, logger: logger)
        let pipeline = [Task { await runner.run() }, Task { await relay.run() }]
        defer { for t in pipeline { t.cancel() } }
        let head = try await store.version(tenant: tenant)
        progress?("initial views (version \(head)) to \(agents) agents")
        try await ProjectionCheckpoints(store: store).waitUntilProjected(tenant: tenant, sequence: head, timeout: .seconds(120))
        if await !child.waitForAll(.view, version: head, timeout: .seconds(120)) {
            progress?("only \(child.count(.view, version: head)) of \(agents) agents received the initial views within 120 s")
        }

        // Route changes: each one changes every agent's view (the metric of its only candidate).
        var committedAt: [Int64: UInt64] = [:]
        var wallNanos: UInt64 = 0
        let cpuBefore = ProcessCPU.now()
        let childCPUBefore = child.cpuSeconds()
        let otherCPUBefore = stageLog?.otherCPU()
        for k in 0..<changes {
            progress?("route change \(k + 1) of \(changes)")
            let start = MonotonicClock.nanoseconds()
            let result = try await controller.writer.write(tenant: tenant, actor: actor, requestID: "change-\(k)") { s in
                try decideOrThrow(.updateRoute(id: "lan", RouteInput(networkID: "lan", network: "10.20.0.0/24", peer: router, metric: 200 + k, groups: ["clients"])), s.state)
            }
            let committed = MonotonicClock.nanoseconds()
            guard let version = result.sequences?.upperBound else { continue }
            committedAt[version] = committed
            if await !child.waitForAll(.view, version: version, timeout: .seconds(60)) {
                progress?("change \(k): only \(child.count(.view, version: version)) of \(agents) agents received version \(version) within 60 s")
            }
            wallNanos += MonotonicClock.nanoseconds() - start
        }
        let cpu = ProcessCPU.now() - cpuBefore
        let childCPU = child.cpuSeconds().map { after in childCPUBefore.map { after - $0 } ?? after }
        let otherCPU = stageLog.flatMap { log in otherCPUBefore.map { before in
            let after = log.otherCPU()
            return PropagationStages.ProcessCPU(postgres: after.postgres - before.postgres, nats: after.nats - before.nats)
        } }

        // Baseline: the same number of messages of the same size, raw core-NATS publish → receive, one subject per
        // agent, received and hashed by the same agents' process.
        progress?("raw libnats baseline")
        let size = await child.averageViewBytes()
        var sentAt: [Int64: UInt64] = [:]
        let rawSubjects = clients.map { AgentProcess.rawSubject(tenant: tenant, peer: $0.rawValue) }
        for k in 0..<changes {
            let version = Int64(k + 1)
            var payload = (0..<8).map { UInt8(truncatingIfNeeded: version >> (56 - 8 * $0)) }
            payload += [UInt8](repeating: UInt8(ascii: "x"), count: max(0, size - 8))
            let sent = MonotonicClock.nanoseconds()
            for subject in rawSubjects { try publisherConnection.publish(subject, payload: payload) }
            try await publisherConnection.flush()
            sentAt[version] = sent
            if await !child.waitForAll(.raw, version: version, timeout: .seconds(30)) {
                progress?("baseline \(k): only \(child.count(.raw, version: version)) of \(agents) received within 30 s")
            }
        }

        let receipts = try await child.dump(timeout: .seconds(60))
        for t in pipeline { t.cancel() }
        await publisherConnection.close()
        await store.shutdown()

        func ms(_ from: UInt64, _ to: UInt64) -> Double { (Double(to) - Double(from)) / 1e6 }
        var latencies: [Double] = []
        var firstReceipts: [Double] = []
        for (version, committed) in committedAt.sorted(by: { $0.key < $1.key }) {
            let times = receipts.view[version] ?? []
            latencies += times.map { ms(committed, $0) }
            if let first = times.min() { firstReceipts.append(ms(committed, first)) }
        }
        if let stageLog, let otherCPU {
            let lines = stageLog.report(committedAt: committedAt, views: receipts.view,
                                        cpu: (cpu.user + cpu.system, childCPU, otherCPU), messages: latencies.count)
            for line in lines { print(line) }
        }
        var baseline: [Double] = []
        for (version, sent) in sentAt { baseline += (receipts.raw[version] ?? []).map { ms(sent, $0) } }
        let seconds = Double(wallNanos) / 1e9
        return PropagationFigures(
            agents: agents, changes: changes, latenciesMs: latencies, baselineMs: baseline, messageBytes: size,
            messagesPerSecond: Double(latencies.count) / max(seconds, 0.001), rejected: receipts.rejected,
            agentCPUSecondsPerMessage: childCPU.map { $0 / Double(max(latencies.count, 1)) },
            controllerCPUSecondsPerMessage: (cpu.user + cpu.system) / Double(max(latencies.count, 1)),
            agentConnections: connections, agentsInSeparateProcess: true, relayWorkers: relayConfiguration.workers,
            relayBatch: relayConfiguration.machine.batchSize, cores: ProcessInfo.processInfo.activeProcessorCount,
            changeWallSeconds: seconds, firstReceiptMs: firstReceipts)
    }
}

extension PropagationFigures {
    /// The printed table.
    func table() -> [String] {
        func percentile(_ xs: [Double], _ p: Double) -> Double {
            guard !xs.isEmpty else { return 0 }
            let sorted = xs.sorted()
            return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
        }
        func ms(_ x: Double) -> String { String(format: "%.1f", x) }
        var lines: [String] = []
        lines.append("routeplane-bench propagation: \(agents) simulated agents (NATS subscriptions on \(agentConnections ?? 0) connections, in a separate process), "
                     + "\(changes) route changes, relay: \(relayWorkers ?? 1) workers × \(relayBatch ?? 0) peers per batch, \(cores ?? ProcessInfo.processInfo.activeProcessorCount) cores")
        lines.append(pad("path", 46) + pad("p50 ms", 9) + pad("p99 ms", 9) + pad("max ms", 9) + "messages")
        lines.append(pad("change committed → view received (\(agents) agents)", 46) + pad(ms(percentile(latenciesMs, 0.5)), 9)
                     + pad(ms(percentile(latenciesMs, 0.99)), 9) + pad(ms(latenciesMs.max() ?? 0), 9) + "\(latenciesMs.count)")
        lines.append(pad("raw libnats publish → receive (\(messageBytes) B)", 46) + pad(ms(percentile(baselineMs, 0.5)), 9)
                     + pad(ms(percentile(baselineMs, 0.99)), 9) + pad(ms(baselineMs.max() ?? 0), 9) + "\(baselineMs.count)")
        let expected = agents * changes
        if latenciesMs.count < expected { lines.append("  MISSING: \(expected - latenciesMs.count) of \(expected) (agent, change) views not received") }
        lines.append(String(format: "  views delivered: %.0f messages/s over the changes (wall %.2f s); rejected messages: %d",
                            messagesPerSecond, changeWallSeconds ?? 0, rejected))
        if let first = firstReceiptMs, !first.isEmpty {
            lines.append("  first agent received after (per change, ms): " + first.map { String(format: "%.0f", $0) }.joined(separator: ", ")
                         + " (projection + first relay batch)")
        }
        if let controller = controllerCPUSecondsPerMessage {
            lines.append(String(format: "  controller process CPU (append, projection, outbox, relay): %.1f µs per view message", controller * 1e6))
        }
        if let agent = agentCPUSecondsPerMessage {
            lines.append(String(format: "  simulated agents' process CPU (receive, decode, SHA-256 and signature check, timestamp): %.1f µs per view message", agent * 1e6))
        }
        let p99 = percentile(latenciesMs, 0.99)
        let all = PerformanceTargets[.propagation], large = PerformanceTargets[.propagationLarge], raw = PerformanceTargets[.propagationVsRaw]
        lines.append("  target (on 2 cores): p99 < \(Figure.grouped(all.target)) ms; here \(agents) agents → "
                     + (all.met(p99) && latenciesMs.count >= expected ? "met" : "NOT met"))
        if agents >= 10_000 {
            let rawP99 = percentile(baselineMs, 0.99)
            lines.append("  targets at 10,000 agents: p99 < \(Figure.grouped(large.target)) ms → " + (large.met(p99) && latenciesMs.count >= expected ? "met" : "NOT met")
                         + "; ≤ \(Figure.grouped(raw.target))x the raw libnats p99 (" + Figure.fixed(p99 / max(rawP99, 1e-9), 1) + "x) → "
                         + (raw.met(p99 / max(rawP99, 1e-9)) && latenciesMs.count >= expected ? "met" : "NOT met"))
        }
        return lines
    }
}

/// CLOCK_MONOTONIC in nanoseconds: system-wide on Linux, so the bench and the agents' process compare timestamps.
enum MonotonicClock {
    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

// MARK: - The simulated agents' process

/// The child side: subscribes every agent's view subject and its raw baseline subject, records receive times,
/// and talks to the bench over stdin/stdout, one line each:
/// out `ready` (all subscribed and flushed) · out `done view|raw <version>` (all agents have it) ·
/// in `dump` → out `view|raw <version> <ns> <ns> …`, `rejected <n>`, `bytes <total> <count>`, `end` · stdin EOF → exit.
enum AgentProcess {
    enum Kind: String, Sendable { case view, raw }

    static func peerName(_ i: Int) -> String { String(format: "a%05d", i) }
    static func rawSubject(tenant: String, peer: String) -> String { "routeplane-bench.\(tenant).\(peer).raw" }

    /// Receive times, by kind and version.
    final class Log: Sendable {
        struct State {
            var times: [Kind: [Int64: [UInt64]]] = [.view: [:], .raw: [:]]
            /// Newest version each agent has, per kind: an agent ignores a version it has (a redelivery).
            var newest: [Kind: [Int64]]
            var rejected = 0
            var duplicates = 0
            var viewBytes = 0
            var viewMessages = 0
        }
        let state: Mutex<State>
        let expected: Int
        init(expected: Int) {
            self.expected = expected
            state = Mutex(State(newest: [.view: Array(repeating: 0, count: expected), .raw: Array(repeating: 0, count: expected)]))
        }

        func record(_ kind: Kind, agent: Int, version: Int64, at time: UInt64, bytes: Int) {
            let complete = state.withLock { s -> Bool in
                guard version > s.newest[kind]![agent] else {
                    s.duplicates += 1
                    return false
                }
                s.newest[kind]![agent] = version
                s.times[kind, default: [:]][version, default: []].append(time)
                if kind == .view {
                    s.viewBytes += bytes
                    s.viewMessages += 1
                }
                return s.times[kind]?[version]?.count == expected
            }
            if complete { Output.line("done \(kind.rawValue) \(version)") }
        }

        func reject() { state.withLock { $0.rejected += 1 } }
    }

    /// Lines to stdout, whole and unbuffered (written from libnats's delivery thread and the main task).
    enum Output {
        static let lock = Mutex(())
        static func line(_ text: String) {
            lock.withLock { _ in
                var bytes = Array((text + "\n").utf8)
                var offset = 0
                while offset < bytes.count {
                    let n = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress! + offset, $0.count - offset) }
                    if n <= 0 { return }
                    offset += n
                }
                bytes.removeAll()
            }
        }
    }

    static func run(tenant: String, agents: Int, connections: Int, natsURL: String, key: String, verify: Bool = true) async throws {
        let verifier = try ViewVerifier(pinnedKey: key)
        var logger = Logger(label: "routeplane.bench.agents")
        logger.logLevel = .error
        let log = Log(expected: agents)
        let natsConnections = try await (0..<max(connections, 1)).asyncMap { i in
            try await NATSConnection.connect(try BenchNATS.configuration(url: natsURL, name: "bench-agents-\(i)"), logger: logger)
        }
        var subscriptions: [NATSCallbackSubscription] = []
        subscriptions.reserveCapacity(2 * agents)
        for i in 0..<agents {
            let peer = peerName(i)
            let connection = natsConnections[i % natsConnections.count]
            subscriptions.append(try connection.subscribe(try ViewSubjects.subject(tenant: tenant, peer: peer)) { _, payload in
                let now = MonotonicClock.nanoseconds()
                // What an agent does with a view before applying it: parse, check recipient, SHA-256 digest and signature.
                if let envelope = try? ViewEnvelope.decode(payload, expectedTenant: tenant, expectedPeer: peer), !verify || (try? verifier.verify(envelope)) != nil {
                    log.record(.view, agent: i, version: envelope.version, at: now, bytes: payload.count)
                } else {
                    log.reject()
                }
            })
            subscriptions.append(try connection.subscribe(rawSubject(tenant: tenant, peer: peer)) { _, payload in
                let now = MonotonicClock.nanoseconds()
                guard payload.count >= 8 else { return log.reject() }
                let version = payload.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
                _ = SHA256Digest.hash(payload)
                log.record(.raw, agent: i, version: version, at: now, bytes: payload.count)
            })
        }
        for c in natsConnections { try await c.flush(timeout: .seconds(30)) }
        Output.line("ready")
        while let command = await readLine() {
            guard command == "dump" else { continue }
            let s = log.state.withLock { $0 }
            for kind in [Kind.view, .raw] {
                for (version, times) in (s.times[kind] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    Output.line("\(kind.rawValue) \(version) " + times.map(String.init).joined(separator: " "))
                }
            }
            Output.line("rejected \(s.rejected)")
            Output.line("duplicates \(s.duplicates)")
            Output.line("bytes \(s.viewBytes) \(s.viewMessages)")
            Output.line("end")
        }
        for s in subscriptions { s.unsubscribe() }
        for c in natsConnections { await c.close() }
    }

    /// One stdin line, read off the cooperative pool; nil at EOF.
    static func readLine() async -> String? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: Swift.readLine()) }
        }
    }
}

/// The bench's side of the agents' process: starts it, follows its stdout on a reader thread, answers waits.
final class AgentProcessLink: Sendable {
    struct Receipts: Sendable {
        var view: [Int64: [UInt64]] = [:]
        var raw: [Int64: [UInt64]] = [:]
        var rejected = 0
        var duplicates = 0
        var viewBytes = 0
        var viewMessages = 0
    }
    private struct State {
        var ready = false
        var exited = false
        var done: Set<String> = []
        var dump = Receipts()
        var dumpComplete = false
    }
    private let state = Mutex(State())
    private let process: Process
    private let input: FileHandle
    let agents: Int

    private init(process: Process, input: FileHandle, agents: Int) {
        self.process = process
        self.input = input
        self.agents = agents
    }

    static func start(tenant: String, agents: Int, connections: Int, natsURL: String, key: String, verify: Bool = true) throws -> AgentProcessLink {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["propagation", "--agent-process-tenant", tenant, "--agents", String(agents),
                             "--connections", String(connections), "--nats-url", natsURL, "--agent-process-key", key]
            + (verify ? [] : ["--skip-agent-signature-check"])
        let stdout = Pipe(), stdin = Pipe()
        process.standardOutput = stdout
        process.standardInput = stdin
        try process.run()
        let link = AgentProcessLink(process: process, input: stdin.fileHandleForWriting, agents: agents)
        let reader = stdout.fileHandleForReading
        let thread = Thread { link.follow(reader) }
        thread.name = "bench-agents-stdout"
        thread.start()
        return link
    }

    /// The reader thread: splits stdout into lines until EOF.
    private func follow(_ handle: FileHandle) {
        var pending: [UInt8] = []
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            pending += chunk
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                handleLine(pending[start..<newline])
                start = newline + 1
            }
            pending.removeFirst(start)
        }
        state.withLock { $0.exited = true }
    }

    private func handleLine(_ bytes: ArraySlice<UInt8>) {
        let line = String(decoding: bytes, as: UTF8.self)
        let fields = line.split(separator: " ")
        guard let head = fields.first else { return }
        state.withLock { s in
            switch head {
            case "ready": s.ready = true
            case "done" where fields.count == 3: s.done.insert("\(fields[1]) \(fields[2])")
            case "view", "raw":
                guard fields.count >= 2, let version = Int64(fields[1]) else { return }
                let times = fields.dropFirst(2).compactMap { UInt64($0) }
                if head == "view" { s.dump.view[version] = times } else { s.dump.raw[version] = times }
            case "rejected": s.dump.rejected = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
            case "duplicates": s.dump.duplicates = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
            case "bytes":
                s.dump.viewBytes = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
                s.dump.viewMessages = fields.count > 2 ? Int(fields[2]) ?? 0 : 0
            case "end": s.dumpComplete = true
            default: break
            }
        }
    }

    private func poll(timeout: Duration, _ condition: (State) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (met, exited) = state.withLock { (condition($0), $0.exited) }
            if met { return true }
            if exited || ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    func waitReady(timeout: Duration) async -> Bool { await poll(timeout: timeout) { $0.ready } }

    /// True once every agent received `version` (of views, or of the raw baseline).
    func waitForAll(_ kind: AgentProcess.Kind, version: Int64, timeout: Duration) async -> Bool {
        let key = "\(kind.rawValue) \(version)"
        return await poll(timeout: timeout) { $0.done.contains(key) }
    }

    /// How many agents have `version` (after a timed-out wait; asks the child for a dump).
    func count(_ kind: AgentProcess.Kind, version: Int64) -> Int {
        state.withLock { $0.done.contains("\(kind.rawValue) \(version)") } ? agents : 0
    }

    func averageViewBytes() async -> Int {
        // The receipts are only dumped at the end: the size is taken from a dump now, cheaply repeated later.
        guard let receipts = try? await dump(timeout: .seconds(30)) else { return 0 }
        return receipts.viewMessages == 0 ? 0 : receipts.viewBytes / receipts.viewMessages
    }

    func dump(timeout: Duration) async throws -> Receipts {
        state.withLock {
            $0.dumpComplete = false
            $0.dump = Receipts()
        }
        try input.write(contentsOf: Data("dump\n".utf8))
        guard await poll(timeout: timeout, { $0.dumpComplete }) else {
            throw ValidationError("the simulated agents' process did not report its receipts")
        }
        return state.withLock { $0.dump }
    }

    /// User + system CPU seconds of the agents' process so far (from /proc/<pid>/stat).
    func cpuSeconds() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Ends the child: stdin EOF, then SIGTERM if it has not exited within 5 s.
    func stop() {
        try? input.close()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
