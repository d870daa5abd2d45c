import ArgumentParser
import AsyncHTTPClient
import BenchKit
import CommandSupport
import ControlPlane
import EventStore
import Foundation
import HTTPAPI
import Logging
import NIOCore
import NIOHTTP1
import PostgresClient
import RouteModel

/// `routeplane-bench history`: as-of reads of a tenant with 1,000,000 events at random past points, over HTTP
/// (`GET /api/groups/{id}?as_of=k` on the router of `routeplane serve`), served from the stored snapshots plus the events
/// after the nearest one; the same reads on a controller that folds every event from the first (no snapshots) are the
/// baseline of the same run. Every answer is checked: the group's name at k is known (the k-th rename).
struct BenchHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "As-of reads at random past points of a 1,000,000-event tenant: p99 with snapshots (target < 100 ms) vs folding from the first event.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Events of the tenant.") var events = 1_000_000
    @Option(help: "As-of reads measured with snapshots.") var reads = 300
    @Option(help: "As-of reads measured without snapshots (each folds up to every event).") var baselineReads = 5
    @Option(help: "A snapshot every this many events (as `serve --history-snapshot-interval`).") var snapshotInterval: Int64 = HistorySettings().snapshotInterval
    @Option var seed: UInt64 = 42
    @Flag(help: "100,000 events, 100 reads, 3 baseline reads (a check, not the figure).") var quick = false

    func run() async throws {
        try await database.runMeasurement({ try await measure(progress: $0) }, lines: { $0.lines() })
    }

    func measure(progress: BenchProgress? = nil) async throws -> HistoryFigures {
        let eventCount = quick ? min(events, 100_000) : events
        let readCount = quick ? min(reads, 100) : reads
        let baselineCount = quick ? min(baselineReads, 3) : baselineReads
        let server = try database.resolvedURL()
        let name = "routeplane_bench_history_\(ProcessInfo.processInfo.processIdentifier)"
        let url = try await BenchDatabase.create(name: name, server: server)
        defer { BenchDatabase.drop(name: name, server: server) }
        let store = EventStore(url: url, maxConnections: 8)
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        var logger = Logger(label: "routeplane.bench.history")
        logger.logLevel = .error
        var configuration = ControllerConfiguration()
        configuration.history = HistorySettings(snapshotInterval: snapshotInterval)
        let controller = APIServer(configuration: configuration, store: store, logger: logger)
        var baselineConfiguration = configuration
        baselineConfiguration.history = HistorySettings(useSnapshots: false)
        let baselineController = APIServer(configuration: baselineConfiguration, store: store, logger: logger)
        let actor = Actor(id: "bench")

        // A tenant of ordinary size (10 peers, a group, 100 routes), then `eventCount` renames of the group, copied in SQL
        // from one real rename (the last setup event, named "template"): "name-<n>" at the n-th copy. Every chunk copies
        // that event, not the newest rename (which, after the first chunk, no longer says "template").
        progress?.begin("history: tenant")
        let tenant = try await controller.controlPlane.createTenant(name: "history")
        let token = try await controller.controlPlane.createToken(tenant: tenant, name: "bench", scope: .readOnly).token
        let peers = (0..<10).map { PeerID("p\($0)") }
        for (i, p) in peers.enumerated() {
            _ = try await controller.controlPlane.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
                try decideOrThrow(.enrollPeer(id: p, name: "peer\(i)", os: "linux", meshIP: "100.64.0.\(i + 1)"), s.state)
            }
        }
        _ = try await controller.controlPlane.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
            try decideOrThrow(.createGroup(id: GroupID("g"), name: "clients", peers: peers), s.state)
        }
        for i in 0..<100 {
            _ = try await controller.controlPlane.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
                try decideOrThrow(.createRoute(id: RouteID("r\(i)"), RouteInput(networkID: "n\(i)", network: "10.0.\(i).0/24",
                                                                                 peer: peers[i % peers.count], metric: 100, groups: [GroupID("g")])), s.state)
            }
        }
        _ = try await controller.controlPlane.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
            try decideOrThrow(.updateGroup(id: GroupID("g"), name: "template", peers: peers), s.state)
        }
        let setupHead = try await store.version(tenant: tenant)
        let chunk = 100_000
        let chunks = (eventCount + chunk - 1) / chunk
        progress?.begin("history: \(eventCount) events in SQL (not measured)", total: chunks)
        for c in 0..<chunks {
            let from = c * chunk + 1, to = min(eventCount, (c + 1) * chunk)
            try await BenchRenameCopies.append(store, tenant: tenant, template: setupHead, from: from, to: to, name: "'name-' || g")
            progress?.update(done: c + 1)
        }
        _ = try await store.pool.withSession { s in try s.script("VACUUM ANALYZE events") }
        let head = try await store.version(tenant: tenant)
        /// The group's name as of `k`.
        func expected(_ k: Int64) -> String { k > setupHead ? "name-\(k - setupHead)" : (k == setupHead ? "template" : "clients") }

        let port = 18_700 + Int(ProcessInfo.processInfo.processIdentifier % 500)
        let serverTask = Task { try await controller.run(host: "127.0.0.1", port: port, logger: logger) }
        let baselineTask = Task { try await baselineController.run(host: "127.0.0.1", port: port + 1, logger: logger) }
        defer {
            serverTask.cancel()
            baselineTask.cancel()
        }
        try await Task.sleep(for: .milliseconds(500))

        // The snapshots are written by the first read that folds past each boundary: one read at the head writes them all
        // (timed, reported, not part of the measured reads).
        progress?.begin("history: first read at the head writes the snapshots (every \(snapshotInterval) events)")
        let buildStart = ContinuousClock.now
        let first = try await HistoryClient.group(port: port, token: token, asOf: head)
        let buildSeconds = milliseconds(ContinuousClock.now - buildStart) / 1000
        guard first.name == expected(head) else { throw ValidationError("as of \(head): got \(first.name), expected \(expected(head))") }
        let snapshotRows = try await store.pool.value(prepared: "SELECT count(*)::text FROM tenant_snapshots WHERE tenant_id = $1", [tenant]).flatMap { Int($0) } ?? 0
        let snapshotBytes = try await store.pool.value(prepared: "SELECT coalesce(avg(length(body)), 0)::bigint::text FROM tenant_snapshots WHERE tenant_id = $1", [tenant]).flatMap { Int($0) } ?? 0

        var rng = SplitMix64(seed: seed)
        func sample(_ n: Int) -> [Int64] { (0..<n).map { _ in Int64.random(in: 1...head, using: &rng) } }
        progress?.begin("history: \(readCount) as-of reads with snapshots", total: readCount)
        var withSnapshots: [Double] = []
        for (i, k) in sample(readCount).enumerated() {
            let start = ContinuousClock.now
            let reply = try await HistoryClient.group(port: port, token: token, asOf: k)
            withSnapshots.append(milliseconds(ContinuousClock.now - start))
            guard reply.name == expected(k), reply.asOf == k else {
                throw ValidationError("as of \(k): got \(reply.name) at \(reply.asOf), expected \(expected(k))")
            }
            progress?.update(done: i + 1)
        }
        progress?.begin("history: \(baselineCount) as-of reads folding from the first event (baseline)", total: baselineCount)
        var baseline: [Double] = []
        for (i, k) in sample(baselineCount).enumerated() {
            let start = ContinuousClock.now
            let reply = try await HistoryClient.group(port: port + 1, token: token, asOf: k)
            baseline.append(milliseconds(ContinuousClock.now - start))
            guard reply.name == expected(k) else { throw ValidationError("baseline as of \(k): got \(reply.name), expected \(expected(k))") }
            progress?.update(done: i + 1)
        }
        serverTask.cancel()
        baselineTask.cancel()
        _ = try? await serverTask.value
        _ = try? await baselineTask.value
        await store.shutdown()
        return HistoryFigures(events: Int(head), snapshotInterval: snapshotInterval, snapshotRows: snapshotRows, snapshotBytes: snapshotBytes,
                              snapshotBuildSeconds: buildSeconds, withSnapshotsMs: withSnapshots, withoutSnapshotsMs: baseline)
    }
}

private func milliseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
}

/// `GET /api/groups/g?as_of=k`: the group's name and the sequence the controller answered from.
enum HistoryClient {
    static func group(port: Int, token: String, asOf k: Int64) async throws -> (name: String, asOf: Int64) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/groups/g?as_of=\(k)")
        request.headers.add(name: "Authorization", value: "Token \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(600))
        let body = try await response.body.collect(upTo: 16 << 20)
        guard response.status.code == 200 else {
            throw ValidationError("as of \(k): \(response.status.code) \(String(buffer: body))")
        }
        let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let asOf = response.headers.first(name: "Routeplane-As-Of-Sequence").flatMap { Int64($0) } ?? -1
        return (object?["name"] as? String ?? "", asOf)
    }
}

/// Figures of one `bench history` run.
struct HistoryFigures: Codable, Sendable {
    var events: Int
    var snapshotInterval: Int64
    var snapshotRows: Int
    /// Average stored size of one snapshot.
    var snapshotBytes: Int
    /// The first read at the head, which folds every event and writes every snapshot.
    var snapshotBuildSeconds: Double
    var withSnapshotsMs: [Double]
    var withoutSnapshotsMs: [Double]

    var withSnapshots: Summary? { Summary(withSnapshotsMs) }
    var withoutSnapshots: Summary? { Summary(withoutSnapshotsMs) }

    func lines() -> [String] {
        var t = TextTable(headers: ["as-of reads (HTTP)", "reads", "p50 ms", "p99 ms", "max ms"], alignments: [.left, .right, .right, .right, .right])
        for (label, xs) in [("with snapshots (every \(snapshotInterval) events)", withSnapshotsMs), ("folding from event 1 (baseline)", withoutSnapshotsMs)] {
            let s = Summary(xs)
            t.add([label, String(xs.count), s.map { Figure.fixed($0.p50, 1) } ?? "-", s.map { Figure.fixed($0.p99, 1) } ?? "-",
                   s.map { Figure.fixed($0.max, 1) } ?? "-"])
        }
        var out = ["tenant of \(Figure.grouped(Double(events))) events; \(snapshotRows) snapshots stored, \(snapshotBytes / 1024) KiB each on average, "
                   + "written by one read at the head in \(Figure.fixed(snapshotBuildSeconds, 1)) s"]
        out += t.render()
        if let w = withSnapshots, let b = withoutSnapshots, w.p99 > 0 {
            out.append("p99 with snapshots \(Figure.fixed(w.p99, 1)) ms (target < 100 ms); \(Figure.fixed(b.p50 / max(w.p50, 0.001), 0))x faster at the median than folding from event 1")
        }
        return out
    }
}
