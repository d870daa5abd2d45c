import ArgumentParser
import ControllerAPI
import EventStore
import Foundation
import Logging
import Messaging
import Projections
import RouteModel
import Synchronization

/// `routeplane bench propagation`: a route change committed → the view received and verified by every
/// simulated agent, vs raw libnats publish → receive of messages of the same size, in the same run.
///
/// The simulated agents are NATS subscriptions (one per agent, on its own subject, spread over a few
/// connections) in this process; each message is decoded and its SHA-256 digest checked, as an agent
/// does. What they cost is measured and printed (CPU per received message), so the load generator is
/// seen, not hidden: agents only record a timestamp per message, everything else is the controller's
/// work (append, projection, outbox, relay, JetStream).
struct BenchPropagation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "propagation",
        abstract: "Route change committed → applied at N simulated agents (p50/p99/max) vs raw libnats publish → receive.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Simulated agents (peers that receive the changed route).") var agents = 1_000
    @Option(help: "Route changes to measure.") var changes = 10
    @Option(name: .customLong("nats-url"), help: "NATS URL (default: $ROUTEPLANE_NATS_URL).") var natsURL: String?
    @Option(help: "NATS connections the simulated agents share.") var connections = 4

    func run() async throws {
        #if DEBUG
        print("note: debug build; use `swift build -c release` and .build/release/routeplane for representative figures")
        #endif
        guard let nats = natsURL ?? ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_URL"] else {
            throw ValidationError("no NATS: pass --nats-url or set ROUTEPLANE_NATS_URL (ops/services start writes it)")
        }
        let server = try database.resolvedURL()
        let name = "routeplane_bench_prop_\(ProcessInfo.processInfo.processIdentifier)"
        let url = try await BenchDatabase.create(name: name, server: server)
        defer { BenchDatabase.drop(name: name, server: server) }
        var logger = Logger(label: "routeplane.bench.propagation")
        logger.logLevel = .error
        let store = EventStore(url: url, maxConnections: 8, logger: logger)
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        let controller = Controller(configuration: .init(), store: store, logger: logger)

        // Tenant: `agents` client peers in one group, one routing peer, one route to the group.
        let tenant = try await controller.createTenant(name: "bench")
        let actor = Actor(id: "bench")
        let router = PeerID("router")
        let clients = (0..<agents).map { PeerID(String(format: "a%05d", $0)) }
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

        // The simulated agents subscribe before the controller's pipeline starts.
        let natsConnections = try await (0..<connections).asyncMap { i in
            var c = NATSConfiguration(url: nats, name: "bench-agents-\(i)")
            c.failIfUnreachable = true
            return try await NATSConnection.connect(c, logger: logger)
        }
        let received = ReceiptLog(capacity: agents * (changes + 2))
        var consumers: [Task<Void, Never>] = []
        for (i, peer) in clients.enumerated() {
            let subscription = try natsConnections[i % connections].subscribe(try ViewSubjects.subject(tenant: tenant, peer: peer.rawValue))
            let peerID = peer.rawValue
            consumers.append(Task {
                for await message in subscription.messages {
                    let now = ContinuousClock.now
                    if let envelope = try? ViewEnvelope.decode(message.payload, expectedTenant: tenant, expectedPeer: peerID) {
                        received.record(version: envelope.version, at: now, bytes: message.payload.count)
                    } else {
                        received.reject()
                    }
                }
            })
        }
        let publisherConnection = try await NATSConnection.connect({ var c = NATSConfiguration(url: nats, name: "bench-relay"); c.failIfUnreachable = true; return c }(), logger: logger)
        let relay = OutboxRelay(store: store, connection: publisherConnection, configuration: .init(name: "bench-relay"), logger: logger)
        _ = try await relay.ensureStream()
        let runner = ProjectionRunner(store: store, logger: logger)
        let pipeline = [Task { await runner.run() }, Task { await relay.run() }]
        let head = try await store.version(tenant: tenant)
        try await ProjectionCheckpoints(store: store).waitUntilProjected(tenant: tenant, sequence: head, timeout: .seconds(120))
        _ = await received.waitForAll(version: head, count: agents, timeout: .seconds(120))

        print("routeplane bench propagation: \(agents) simulated agents (NATS subscriptions on \(connections) connections), \(changes) route changes, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        // Route changes: each one changes every agent's view (the metric of its only candidate).
        var latencies: [Duration] = []
        var changeWalls: [Duration] = []
        let cpuBefore = ProcessCPU.now()
        for k in 0..<changes {
            let start = ContinuousClock.now
            let result = try await controller.writer.write(tenant: tenant, actor: actor, requestID: "change-\(k)") { s in
                try decideOrThrow(.updateRoute(id: "lan", RouteInput(networkID: "lan", network: "10.20.0.0/24", peer: router, metric: 200 + k, groups: ["clients"])), s.state)
            }
            let committed = ContinuousClock.now
            guard let version = result.sequences?.upperBound else { continue }
            let times = await received.waitForAll(version: version, count: agents, timeout: .seconds(60))
            if times.count < agents { print("  change \(k): only \(times.count) of \(agents) agents received version \(version) within 60 s") }
            latencies += times.map { $0 - committed }
            changeWalls.append(ContinuousClock.now - start)
        }
        let cpu = ProcessCPU.now() - cpuBefore
        let totalMessages = latencies.count
        let wall = changeWalls.reduce(Duration.zero, +)

        // Baseline: the same number of messages of the same size, raw core-NATS publish → receive on the same subjects.
        let size = received.averageSize
        var baseline: [Duration] = []
        let raw = ReceiptLog(capacity: agents * changes)
        var rawConsumers: [Task<Void, Never>] = []
        for (i, peer) in clients.enumerated() {
            let subscription = try natsConnections[i % connections].subscribe("routeplane-bench.\(tenant).\(peer.rawValue).raw")
            rawConsumers.append(Task {
                for await message in subscription.messages {
                    let now = ContinuousClock.now
                    let version = message.payload.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
                    // The agent's own work on a view: its digest over the payload.
                    _ = SHA256Digest.hash(message.payload)
                    raw.record(version: version, at: now, bytes: message.payload.count)
                }
            })
        }
        for connection in natsConnections { try await connection.flush() }
        for k in 0..<changes {
            let version = Int64(1_000_000 + k)
            var payload = (0..<8).map { UInt8(truncatingIfNeeded: version >> (56 - 8 * $0)) }
            payload += [UInt8](repeating: UInt8(ascii: "x"), count: max(0, size - 8))
            let sent = ContinuousClock.now
            for peer in clients { try publisherConnection.publish("routeplane-bench.\(tenant).\(peer.rawValue).raw", payload: payload) }
            try await publisherConnection.flush()
            let times = await raw.waitForAll(version: version, count: agents, timeout: .seconds(30))
            baseline += times.map { $0 - sent }
        }

        func ms(_ d: Duration) -> String { String(format: "%.1f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15) }
        func percentile(_ xs: [Duration], _ p: Double) -> Duration {
            guard !xs.isEmpty else { return .zero }
            let sorted = xs.sorted()
            return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
        }
        print(pad("path", 46) + pad("p50 ms", 9) + pad("p99 ms", 9) + pad("max ms", 9) + "messages")
        print(pad("change committed → view received (\(agents) agents)", 46) + pad(ms(percentile(latencies, 0.5)), 9) + pad(ms(percentile(latencies, 0.99)), 9)
              + pad(ms(latencies.max() ?? .zero), 9) + "\(totalMessages)")
        print(pad("raw libnats publish → receive (\(size) B)", 46) + pad(ms(percentile(baseline, 0.5)), 9) + pad(ms(percentile(baseline, 0.99)), 9)
              + pad(ms(baseline.max() ?? .zero), 9) + "\(baseline.count)")
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        print(String(format: "  views delivered: %.0f messages/s over the changes (wall %.2f s); rejected messages: %d", Double(totalMessages) / max(seconds, 0.001), seconds, received.rejected))
        print(String(format: "  this process's CPU during the changes (controller pipeline + simulated agents): %.2f s user+sys for %d messages", cpu.user + cpu.system, totalMessages))
        print("  target (issue 7: 1,000 agents, issue 10: 10,000 agents, on 2 cores): p99 < 1 s; here \(agents) agents → \(percentile(latencies, 0.99) < .seconds(1) ? "met" : "NOT met")")

        for t in consumers + rawConsumers { t.cancel() }
        for t in pipeline { t.cancel() }
        for c in natsConnections { await c.close() }
        await publisherConnection.close()
        await store.shutdown()
    }
}

/// Receive timestamps by version, shared by the subscriber tasks.
final class ReceiptLog: Sendable {
    private struct State {
        var byVersion: [Int64: [ContinuousClock.Instant]] = [:]
        var bytes = 0
        var count = 0
        var rejected = 0
    }
    private let state = Mutex(State())

    init(capacity: Int) {}

    func record(version: Int64, at instant: ContinuousClock.Instant, bytes: Int) {
        state.withLock {
            $0.byVersion[version, default: []].append(instant)
            $0.bytes += bytes
            $0.count += 1
        }
    }

    func reject() { state.withLock { $0.rejected += 1 } }
    var rejected: Int { state.withLock { $0.rejected } }
    var averageSize: Int { state.withLock { $0.count == 0 ? 0 : $0.bytes / $0.count } }

    /// The receive times of `version` once `count` arrived (or what arrived by the timeout).
    func waitForAll(version: Int64, count: Int, timeout: Duration) async -> [ContinuousClock.Instant] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let times = state.withLock { $0.byVersion[version] ?? [] }
            if times.count >= count || ContinuousClock.now >= deadline { return times }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
