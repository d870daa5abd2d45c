import CommandSupport
import ArgumentParser
import BenchKit
import PostgresClient
import EventStore
import Foundation
import Projections
import RouteModel

/// `routeplane-bench projection`: the projection runner per change at growing tenant sizes, next to the
/// full-recompute baseline measured in the same run, then rebuild speed from event zero (next to reading
/// the same events without folding them). Works in a scratch database it creates and drops.
struct BenchProjection: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projection",
        abstract: "Projection time per change (incremental vs full recompute) at 100/1,000/10,000 peers, and rebuild events/s.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tenant sizes (peers), comma-separated.") var sizes = "100,1000,10000"
    @Option(help: "Measured changes per size and mode.") var changes = 40
    @Option(help: "Events generated for the rebuild measurement.") var rebuildEvents = 1_000_000
    @Option(help: "Events per tenant in the rebuild measurement.") var eventsPerTenant = 10_000
    @Flag(help: "Smaller run: 100,000 rebuild events, 15 changes per case.") var quick = false
    @Flag(help: "Keep the scratch database.") var keep = false
    @Option(help: "Run only one part: \"changes\" (per-change cases) or \"rebuild\" (rebuild events/s).") var only: String?

    func validate() throws {
        if let only, only != "changes" && only != "rebuild" {
            throw ValidationError("--only must be \"changes\" or \"rebuild\"")
        }
    }

    func run() async throws {
        #if DEBUG
        print("note: debug build; use `swift build -c release` for representative figures")
        #endif
        let progress = BenchProgress()
        let figures = try await measure(progress: progress)
        progress.end()
        for line in figures.table() { print(line) }
    }

    /// The whole measurement: per-change cases (unless `--only rebuild`), then the rebuild (unless `--only changes`),
    /// each in a scratch database of its own, so the rebuild reads exactly its 1,000,000 generated events (the
    /// per-change cases' tenants, one of them with 10,000 peers, would otherwise be rebuilt too).
    func measure(progress: BenchProgress? = nil) async throws -> ProjectionFigures {
        var figures = ProjectionFigures(database: "")
        var names: [String] = []
        if only != "rebuild" {
            figures.sizes = try await withScratchDatabase(progress: progress) { store, name in
                names.append(name)
                return try await benchChanges(store: store, progress: progress)
            }
        }
        if only != "changes" {
            figures.rebuild = try await withScratchDatabase(progress: progress) { store, name in
                names.append(name)
                return try await benchRebuild(store: store, progress: progress)
            }
        }
        figures.database = names.joined(separator: ", ")
        return figures
    }

    /// Creates a migrated scratch database, runs `body` on it, drops it (unless `--keep`), also on failure.
    private func withScratchDatabase<T>(progress: BenchProgress?, _ body: (EventStore, String) async throws -> T) async throws -> T {
        let base = try database.resolvedURL()
        bootstrapLogging(level: database.logLevel)
        let name = "routeplane_bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(10).lowercased()
        progress?.begin("projection: creating database \(name)")
        let admin = EventStore(url: base, maxConnections: 1)
        _ = try await admin.pool.withSession { try $0.query("CREATE DATABASE \(name)") }
        let store = EventStore(url: Self.url(base, database: name), maxConnections: 4)
        let result: Result<T, any Error>
        do {
            _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
            result = .success(try await body(store, name))
        } catch {
            result = .failure(error)
        }
        await store.shutdown()
        if !keep { _ = try? await admin.pool.withSession { try $0.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") } }
        await admin.shutdown()
        return try result.get()
    }

    static func url(_ base: String, database: String) -> String {
        // postgresql://user@host:port/db?params -> same with another db.
        guard let scheme = base.range(of: "://"), let slash = base[scheme.upperBound...].firstIndex(of: "/") else {
            return base.contains("://") ? base + "/" + database : base + " dbname=" + database
        }
        let rest = base[base.index(after: slash)...]
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        return String(base[...slash]) + database + query
    }

    // MARK: - Per change

    func benchChanges(store: EventStore, progress: BenchProgress?) async throws -> [ProjectionFigures.Size] {
        let sizeList = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let measured = quick ? min(changes, 15) : changes
        var results: [ProjectionFigures.Size] = []
        for size in sizeList {
            progress?.begin("projection: \(size)-peer tenant (events, first catch-up)")
            let tenant = "bench-\(size)"
            var builder = BenchTenant(peers: size)
            let events = builder.build()
            var version: Int64 = 0
            var i = 0
            while i < events.count {
                let chunk = events[i..<min(i + 2_000, events.count)].map { e in
                    let (type, json) = e.encode()
                    return NewEvent(type: type, data: String(decoding: json, as: UTF8.self), metadata: EventMetadata(actor: "bench"))
                }
                version = try await store.append(tenant: tenant, expected: version == 0 ? .noEvents : .exactly(version), events: chunk).upperBound
                i += 2_000
            }
            let incremental = ProjectionRunner(store: store, configuration: .init(batchSize: 5_000, mode: .incremental))
            try await incremental.catchUp(tenant: tenant)

            func measure(_ runner: ProjectionRunner, count: Int, label: String) async throws -> ProjectionFigures.Mode {
                var views = 0
                var times: [Double] = []
                progress?.begin("projection: \(size) peers, \(label)", total: count + 2)
                for k in 0..<(count + 2) {
                    let evs = builder.changeTenRoute()
                    version = try await store.append(tenant: tenant, expected: .exactly(version), events: evs.map { e in
                        let (type, json) = e.encode()
                        return NewEvent(type: type, data: String(decoding: json, as: UTF8.self), metadata: EventMetadata(actor: "bench"))
                    }).upperBound
                    let start = ContinuousClock.now
                    let outcome = try await runner.processBatch(tenant: tenant)
                    let ms = projectionSeconds(ContinuousClock.now - start) * 1000
                    guard case .advanced(let s) = outcome, s.lastSequence == version else {
                        throw ValidationError("runner did not project the change: \(outcome)")
                    }
                    if k >= 2 { // the first two warm up (and reload the cache after the other runner)
                        views += s.viewsComputed
                        times.append(ms)
                    }
                    progress?.update(done: k + 1)
                }
                let sorted = times.sorted()
                return ProjectionFigures.Mode(viewsPerChange: Double(views) / Double(count), msPerChange: times.reduce(0, +) / Double(times.count),
                                              p99Ms: sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))], samplesMs: times)
            }
            let inc = try await measure(incremental, count: measured, label: "incremental")
            let baseline = ProjectionRunner(store: store, configuration: .init(batchSize: 5_000, mode: .fullRecompute))
            let full = try await measure(baseline, count: size >= 10_000 ? max(5, measured / 3) : measured, label: "full recompute")
            results.append(ProjectionFigures.Size(peers: size, groups: builder.groupCount, routes: builder.state.routes.count, changes: measured,
                                                  incremental: inc, fullRecompute: full))
        }
        return results
    }

    // MARK: - Rebuild

    func benchRebuild(store: EventStore, progress: BenchProgress?) async throws -> ProjectionFigures.Rebuild {
        let total = quick ? min(rebuildEvents, 100_000) : rebuildEvents
        let perTenant = max(500, min(eventsPerTenant, total))
        let tenants = max(1, total / perTenant)
        progress?.begin("rebuild: generating \(tenants * perTenant) events (\(tenants) tenants x \(perTenant), not measured)", total: tenants)
        let genStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            var finished = 0
            for t in 0..<tenants {
                if running == 2 {
                    try await group.next()
                    running -= 1
                    finished += 1
                    progress?.update(done: finished)
                }
                running += 1
                group.addTask {
                    var gen = BenchTenant(peers: 200, groups: 20, routes: 100, seed: UInt64(t + 1))
                    var events = gen.build()
                    while events.count < perTenant { events += gen.randomChange() }
                    events.removeLast(events.count - perTenant)
                    try await Self.insert(store: store, tenant: "rebuild-\(t)", events: events)
                }
            }
            try await group.waitForAll()
        }
        let generateSeconds = projectionSeconds(ContinuousClock.now - genStart)
        progress?.begin("rebuild: VACUUM ANALYZE, then reading the events (baseline)")
        _ = try await store.pool.withSession { try $0.query("VACUUM ANALYZE events") }

        // Baseline: reading the same events in the same pages, without decoding or folding.
        let readStart = ContinuousClock.now
        var read = 0
        for t in 0..<tenants {
            var after: Int64 = 0
            while true {
                let params = ["rebuild-\(t)", String(after)]
                let rows = try await store.pool.withSession { s in
                    try s.query("SELECT seq, type, data FROM events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT 10000", params)
                }
                read += rows.count
                guard rows.count == 10_000, let last = rows.rows.last?[0].flatMap({ Int64($0) }) else { break }
                after = last
            }
        }
        let readSeconds = projectionSeconds(ContinuousClock.now - readStart)

        progress?.begin("rebuild: \(read) events")
        let report = try await ProjectionMaintenance(store: store).rebuild(progress: { p in
            progress?.update(done: Int(p.events), total: Int(p.totalEvents))
        })
        let seconds = projectionSeconds(report.elapsed)
        return ProjectionFigures.Rebuild(
            events: Int(report.events), tenants: report.tenants, benchTenants: report.tenants - tenants, generatedTenants: tenants,
            eventsPerTenant: perTenant, seconds: seconds, eventsPerSecond: Double(report.events) / seconds,
            readEvents: read, readSeconds: readSeconds, readEventsPerSecond: Double(read) / readSeconds,
            foldSeconds: projectionSeconds(report.foldTime), viewSeconds: projectionSeconds(report.viewTime),
            writeSeconds: projectionSeconds(report.writeTime), generateSeconds: generateSeconds)
    }

    static func insert(store: EventStore, tenant: String, events: [RouteEvent]) async throws {
        var i = 0
        while i < events.count {
            let chunk = Array(events[i..<min(i + 5_000, events.count)])
            let first = i + 1
            let seqs = (0..<chunk.count).map { String(first + $0) }
            let types = chunk.map(\.type)
            let data = chunk.map { String(decoding: $0.encode().json, as: UTF8.self) }
            let params: [String?] = [tenant, PostgresArray.literal(seqs), PostgresArray.literal(types), PostgresArray.literal(data)]
            _ = try await store.pool.withSession { s in
                try s.query("""
                    INSERT INTO events (event_id, tenant_id, seq, type, data, metadata)
                    SELECT gen_random_uuid(), $1, u.s, u.t, u.d, '{"actor":"bench"}' FROM unnest($2::bigint[], $3::text[], $4::json[]) AS u(s, t, d)
                    """, params)
            }
            i += chunk.count
        }
        _ = try await store.pool.withSession { s in
            try s.query("INSERT INTO tenant_heads (tenant_id, seq) VALUES ($1, $2)", [tenant, String(events.count)])
        }
    }
}

/// Figures of one `bench projection` run (for its table, `bench all`'s report, JSON and plot).
struct ProjectionFigures: Codable, Sendable {
    struct Mode: Codable, Sendable {
        var viewsPerChange: Double
        var msPerChange: Double
        var p99Ms: Double
        var samplesMs: [Double]
    }

    struct Size: Codable, Sendable {
        var peers: Int
        var groups: Int
        var routes: Int
        var changes: Int
        var incremental: Mode
        var fullRecompute: Mode
    }

    struct Rebuild: Codable, Sendable {
        var events: Int
        var tenants: Int
        var benchTenants: Int
        var generatedTenants: Int
        var eventsPerTenant: Int
        var seconds: Double
        var eventsPerSecond: Double
        var readEvents: Int
        var readSeconds: Double
        var readEventsPerSecond: Double
        var foldSeconds: Double
        var viewSeconds: Double
        var writeSeconds: Double
        var generateSeconds: Double
    }

    var database: String
    var sizes: [Size] = []
    var rebuild: Rebuild?

    /// Incremental ms per change at the largest tenant over that at the smallest (target ≤ 2 from 100 to 10,000).
    var growth: Double? {
        guard let small = sizes.first(where: { $0.peers == 100 }), let large = sizes.first(where: { $0.peers == 10_000 }) else { return nil }
        return large.incremental.msPerChange / small.incremental.msPerChange
    }

    /// How many times fewer views than the full recompute at 10,000 peers (target ≥ 50).
    var fewerViews: Double? {
        guard let large = sizes.first(where: { $0.peers == 10_000 }) else { return nil }
        return large.fullRecompute.viewsPerChange / max(large.incremental.viewsPerChange, 1)
    }

    /// The printed table (as `routeplane-bench projection` has always printed it).
    func table() -> [String] {
        var lines = ["projection benchmark (scratch database\(database.contains(",") ? "s" : "") \(database))", ""]
        if !sizes.isEmpty {
            lines.append("per change: update the metric of a route distributed to a group of 10 peers; time = one runner batch")
            lines.append("(one transaction: lock, checkpoint, read the event, fold, views, write views + outbox + read models, commit)")
            lines.append(pad("peers", 8) + pad("groups", 8) + pad("routes", 8) + pad("incr. views", 13) + pad("incr. ms", 10) + pad("incr. p99", 11)
                         + pad("full views", 12) + pad("full ms", 10) + pad("views ratio", 13) + "time ratio")
            for r in sizes {
                let inc = r.incremental, full = r.fullRecompute
                lines.append(pad("\(r.peers)", 8) + pad("\(r.groups)", 8) + pad("\(r.routes)", 8)
                             + pad(String(format: "%.1f", inc.viewsPerChange), 13) + pad(String(format: "%.3f", inc.msPerChange), 10)
                             + pad(String(format: "%.3f", inc.p99Ms), 11)
                             + pad(String(format: "%.0f", full.viewsPerChange), 12) + pad(String(format: "%.3f", full.msPerChange), 10)
                             + pad(String(format: "%.0fx fewer", full.viewsPerChange / max(inc.viewsPerChange, 1)), 13)
                             + String(format: "%.1fx faster", full.msPerChange / max(inc.msPerChange, 1e-9)))
            }
            if let growth, let fewer = fewerViews {
                let g = PerformanceTargets[.projectionGrowth], f = PerformanceTargets[.projectionFewerViews]
                lines.append(String(format: "target: incremental ms/change at 10,000 peers ≤ %.0fx that at 100: %.2fx — %@", g.target, growth, g.met(growth) ? "met" : "NOT met"))
                lines.append(String(format: "target: ≥ %.0fx fewer views than the baseline at 10,000 peers: %.0fx — %@", f.target, fewer, f.met(fewer) ? "met" : "NOT met"))
            }
        }
        if let r = rebuild {
            if !sizes.isEmpty { lines.append("") }
            lines.append("rebuild: generating \(r.generatedTenants * r.eventsPerTenant) events (\(r.generatedTenants) tenants x \(r.eventsPerTenant): 200 peers, 20 groups, 100 routes, "
                         + "then route updates, membership changes, renames)…")
            lines.append(String(format: "  generated and inserted in %.1f s (not measured)", r.generateSeconds))
            lines.append(String(format: "read only (baseline, same pages): %d events in %.2f s = %.0f events/s", r.readEvents, r.readSeconds, r.readEventsPerSecond))
            lines.append(String(format: "rebuild (read + decode + fold + views + swap): %d events, %d tenants (%d from the per-change cases) in %.2f s = %.0f events/s "
                                + "(%.0f%% of read-only speed; fold phase %.2f s)",
                                r.events, r.tenants, r.benchTenants, r.seconds, r.eventsPerSecond, r.eventsPerSecond / r.readEventsPerSecond * 100, r.foldSeconds))
            lines.append(String(format: "  phases: read+decode+fold %.2f s, views+read models %.2f s, swap SQL %.2f s", r.foldSeconds, r.viewSeconds, r.writeSeconds))
            let t = PerformanceTargets[.rebuild]
            if r.events >= 1_000_000 {
                lines.append("target: rebuild ≥ \(Figure.grouped(t.target)) events/s: " + (t.met(r.eventsPerSecond) ? "met" : "NOT met"))
            } else {
                lines.append("target: rebuild ≥ \(Figure.grouped(t.target)) events/s is for 1,000,000 events (this run: \(r.events)); not checked")
            }
        }
        return lines
    }
}

/// A benchmark tenant built through `decide`: Linux routing peers (1 in 50), routing-peer groups, a group
/// of exactly ten clients with one route distributed to it, client groups (each client in two), and HA
/// route pairs distributed to one or two client groups. Groups = peers / 20, routes = peers / 5 by default.
struct BenchTenant {
    let peerCount: Int
    let groupCount: Int
    let routeCount: Int
    var rng: BenchRNG
    var state = TenantState()
    var peerIDs: [PeerID] = []
    var routerGroups: [GroupID] = []
    var clientGroups: [GroupID] = []
    let tenRoute: RouteID = "route-ten"
    var toggles = 0

    init(peers: Int, groups: Int? = nil, routes: Int? = nil, seed: UInt64 = 42) {
        peerCount = max(peers, 20)
        groupCount = max(groups ?? peers / 20, 5)
        routeCount = max(routes ?? peers / 5, 4)
        rng = BenchRNG(seed: seed)
    }

    mutating func run(_ c: Command) -> [RouteEvent] {
        guard case .success(let evs) = decide(c, state) else { return [] }
        for e in evs { state.apply(e) }
        return evs
    }

    mutating func build() -> [RouteEvent] {
        var out: [RouteEvent] = []
        let routers = max(4, peerCount / 50)
        let routerGroupCount = max(2, groupCount / 10)
        let oses = ["linux", "windows", "darwin", "linux", "ios", "android"]
        for i in 0..<peerCount {
            let id = PeerID("peer-\(i)")
            peerIDs.append(id)
            let v = UInt32(0x6440_0000) + UInt32(i + 1)
            out += run(.enrollPeer(id: id, name: "host-\(i)", os: i < routers ? "linux" : oses[Int(rng.next() % 6)],
                                   meshIP: "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"))
        }
        for g in 0..<routerGroupCount {
            let id = GroupID("routers-\(g)")
            routerGroups.append(id)
            out += run(.createGroup(id: id, name: "routers \(g)", peers: stride(from: g, to: routers, by: routerGroupCount).map { peerIDs[$0] }))
        }
        let clients = Array(peerIDs[routers...])
        out += run(.createGroup(id: "ten", name: "ten clients", peers: Array(clients.prefix(10))))
        let clientGroupCount = max(1, groupCount - routerGroupCount - 1)
        var members = [[PeerID]](repeating: [], count: clientGroupCount)
        for p in clients.dropFirst(10) { for _ in 0..<2 { members[Int(rng.next() % UInt64(clientGroupCount))].append(p) } }
        for g in 0..<clientGroupCount {
            let id = GroupID("clients-\(g)")
            clientGroups.append(id)
            out += run(.createGroup(id: id, name: "clients \(g)", peers: members[g]))
        }
        for i in 0..<routeCount {
            let k = i / 2
            let direct = i % 2 == 0
            let network = "10.\((k >> 8) & 0xff).\(k & 0xff).0/24"
            let groups: [GroupID] = i == 0 ? ["ten"] : (0..<(1 + Int(rng.next() % 2))).map { _ in clientGroups[Int(rng.next() % UInt64(clientGroups.count))] }
            let input = RouteInput(networkID: "net-\(k)", description: "route \(i)", network: network,
                                   peer: direct ? peerIDs[k % routers] : nil, peerGroups: direct ? nil : [routerGroups[(k + 1) % routerGroups.count]],
                                   metric: 100 + Int(rng.next() % 400), masquerade: rng.next() % 4 != 0, groups: groups)
            out += run(.createRoute(id: i == 0 ? tenRoute : RouteID("route-\(i)"), input))
        }
        return out
    }

    static func input(_ r: Route, metric: Int) -> RouteInput {
        RouteInput(networkID: r.networkID, description: r.description, network: r.destination.network?.description,
                   domains: r.destination.domains, peer: r.routingPeers.peer, peerGroups: r.routingPeers.peerGroups,
                   metric: metric, masquerade: r.masquerade, groups: r.groups, enabled: r.enabled,
                   keepRoute: r.keepRoute, accessControlGroups: r.accessControlGroups, skipAutoApply: r.skipAutoApply)
    }

    /// Toggles the metric of the route distributed to the ten-client group.
    mutating func changeTenRoute() -> [RouteEvent] {
        guard let r = state.route(tenRoute) else { return [] }
        toggles += 1
        return run(.updateRoute(id: tenRoute, Self.input(r, metric: toggles % 2 == 0 ? r.metric - 1 : r.metric + 1)))
    }

    /// A random everyday change: 80% a route update, 15% a membership change, 5% a rename.
    mutating func randomChange() -> [RouteEvent] {
        let roll = rng.next() % 100
        if roll < 80 {
            let id: RouteID = { let i = Int(rng.next() % UInt64(routeCount)); return i == 0 ? tenRoute : RouteID("route-\(i)") }()
            guard let r = state.route(id) else { return [] }
            return run(.updateRoute(id: id, Self.input(r, metric: 100 + Int(rng.next() % 900))))
        } else if roll < 95 {
            let g = clientGroups[Int(rng.next() % UInt64(clientGroups.count))]
            let p = peerIDs[Int(rng.next() % UInt64(peerIDs.count))]
            return state.groups(of: p).contains(g) ? run(.removeGroupPeers(id: g, peers: [p])) : run(.addGroupPeers(id: g, peers: [p]))
        } else {
            let p = peerIDs[Int(rng.next() % UInt64(peerIDs.count))]
            return run(.renamePeer(id: p, name: "renamed-\(rng.next() % 1000)"))
        }
    }
}

/// The benchmarks' seeded generator (same seed, same tenant).
typealias BenchRNG = SplitMix64
