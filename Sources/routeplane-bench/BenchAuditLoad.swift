import AsyncHTTPClient
import CommandSupport
import ArgumentParser
import BenchKit
import ControlPlane
import HTTPAPI
import EventStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PostgresClient
import RouteModel
import Synchronization

/// `routeplane-bench audit-load`: does a tenant's audit search stall everyone else? A tenant with 1,000,000 events (made
/// in SQL, not measured), 16 clients running its worst-case search over and over (each waits `Retry-After` when told
/// to), while wrk measures another tenant's `GET /api/routes`; that p99 is compared with its p99 with no search running,
/// in the same run, on the same controller (the router of `routeplane serve` with its default database limits).
struct BenchAuditLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit-load",
        abstract: "Another tenant's GET /api/routes p99 while 16 worst-case audit searches run on a 1,000,000-event tenant, vs its unloaded p99.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Events of the searched tenant.") var events = 1_000_000
    @Option(help: "Concurrent search clients.") var searches = 16
    @Option(help: "Seconds of each measured phase.") var seconds = 10
    @Option(help: "wrk connections on GET /api/routes.") var connections = 2
    @Option(help: "PostgreSQL connections of the controller (as `serve --max-connections`).") var maxConnections = 16
    @Option(help: "Unloaded and loaded phases, in turn.") var rounds = 3
    @Option(help: "The controller's audit searches per tenant (default: serve's) — to see what the share buys.") var searchesPerTenant: Int?
    @Option(help: "The controller's audit searches in total (default: serve's).") var searchesTotal: Int?
    @Flag(help: "100,000 events and 4 s phases (a check, not the figure).") var quick = false

    func run() async throws {
        try await database.runMeasurement({ try await measure(progress: $0) }, lines: { $0.lines() })
    }

    func measure(progress: BenchProgress? = nil) async throws -> AuditLoadFigures {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            throw ValidationError("wrk not found: run ops/setup (Debian package wrk)")
        }
        let eventCount = quick ? min(events, 100_000) : events
        let phase = quick ? 4 : seconds
        let server = try database.resolvedURL()
        let name = "routeplane_bench_audit_\(ProcessInfo.processInfo.processIdentifier)"
        let url = try await BenchDatabase.create(name: name, server: server)
        defer { BenchDatabase.drop(name: name, server: server) }
        let store = EventStore(url: url, maxConnections: maxConnections)
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        var logger = Logger(label: "routeplane.bench.audit-load")
        logger.logLevel = .error
        var configuration = ControllerConfiguration()
        configuration.database.searches = searchesTotal ?? max(1, min(configuration.database.searches, maxConnections / 4))   // as `routeplane serve` sets it
        if let searchesPerTenant { configuration.database.searchesPerTenant = searchesPerTenant }
        let limits = configuration.database
        let controller = APIServer(configuration: configuration, store: store, logger: logger)
        let actor = Actor(id: "bench")

        // The measured tenant: 100 routes over 10 routing peers.
        progress?.begin("audit-load: tenants")
        let small = try await controller.controlPlane.createTenant(name: "routes")
        let smallToken = try await controller.controlPlane.createToken(tenant: small, name: "bench").token
        let peers = (0..<10).map { PeerID("p\($0)") }
        for (i, p) in peers.enumerated() {
            _ = try await controller.controlPlane.writer.write(tenant: small, actor: actor, requestID: "setup") { s in
                try decideOrThrow(.enrollPeer(id: p, name: "peer\(i)", os: "linux", meshIP: "100.64.0.\(i + 1)"), s.state)
            }
        }
        _ = try await controller.controlPlane.writer.write(tenant: small, actor: actor, requestID: "setup") { s in
            try decideOrThrow(.createGroup(id: GroupID("clients"), name: "clients", peers: peers), s.state)
        }
        for i in 0..<100 {
            _ = try await controller.controlPlane.writer.write(tenant: small, actor: actor, requestID: "setup") { s in
                try decideOrThrow(.createRoute(id: RouteID("r\(i)"), RouteInput(networkID: "n\(i)", network: "10.0.\(i).0/24",
                                                                                 peer: peers[i % peers.count], metric: 100, groups: [GroupID("clients")])), s.state)
            }
        }

        // The searched tenant: one real group rename, copied in SQL into `eventCount` renames. The oldest 90 % rename the
        // group to "legacy-<n>", the newest 10 % to "office-<n>": a search for "legacy" matches most of the history but
        // none of its newest 100,000 events (the worst page to find, newest first).
        let big = try await controller.controlPlane.createTenant(name: "history")
        let bigToken = try await controller.controlPlane.createToken(tenant: big, name: "bench").token
        _ = try await controller.controlPlane.writer.write(tenant: big, actor: actor, requestID: "setup") { s in
            try decideOrThrow(.createGroup(id: GroupID("g"), name: "first", peers: []), s.state)
        }
        _ = try await controller.controlPlane.writer.write(tenant: big, actor: actor, requestID: "setup") { s in
            try decideOrThrow(.updateGroup(id: GroupID("g"), name: "template", peers: []), s.state)
        }
        let template = try await store.version(tenant: big)
        let chunk = 100_000
        let chunks = (eventCount + chunk - 1) / chunk
        progress?.begin("audit-load: \(eventCount) events in SQL (not measured)", total: chunks)
        let generationStart = ContinuousClock.now
        let legacyUntil = eventCount - eventCount / 10
        for c in 0..<chunks {
            let from = c * chunk + 1, to = min(eventCount, (c + 1) * chunk)
            try await BenchRenameCopies.append(store, tenant: big, template: template, from: from, to: to,
                                               name: "CASE WHEN g <= \(legacyUntil) THEN 'legacy-' ELSE 'office-' END || g")
            progress?.update(done: c + 1)
        }
        let generationSeconds = Double((ContinuousClock.now - generationStart).components.seconds)
        progress?.begin("audit-load: VACUUM ANALYZE")
        _ = try await store.pool.withSession { s in try s.script("VACUUM ANALYZE events") }
        let indexed = try await store.pool.value(prepared: "SELECT count(*)::text FROM pg_indexes WHERE indexname = 'events_data_trgm'", []) == "1"

        let port = 18_500 + Int(ProcessInfo.processInfo.processIdentifier % 1000)
        let serverTask = Task { try await controller.run(host: "127.0.0.1", port: port, logger: logger) }
        defer { serverTask.cancel() }
        let base = "http://127.0.0.1:\(port)"
        try await Task.sleep(for: .milliseconds(500))

        // The candidate searches, each timed alone (after a warm-up that loads the tenant's state once); the slowest is
        // the load phase's search.
        // The controller folds a tenant's events once, on its first request; done here in-process (not measured), so no
        // search below waits for it.
        progress?.begin("audit-load: the controller loads the searched tenant's state once (\(eventCount) events, not measured)")
        _ = try await controller.controlPlane.cache.current(big)
        progress?.begin("audit-load: candidate searches, one at a time")
        var candidates: [AuditLoadFigures.Candidate] = []
        for text in ["legacy", "office", "legacy-1234", "egacy-99", "nothing-like-this"] {
            let query = try AuditQuery { ["search": text][$0] }
            let plan = try await controller.controlPlane.explainAudit(tenant: big, query)
            var samples: [Double] = []
            var statuses: [Int] = []
            for _ in 0..<3 {
                let start = ContinuousClock.now
                let status = try await AuditSearchClient.get(base + "/api/events/audit?search=\(text)", token: bigToken, timeout: .seconds(60)).status
                samples.append(milliseconds(ContinuousClock.now - start))
                statuses.append(status)
            }
            candidates.append(.init(search: text, medianMs: samples.sorted()[1], statuses: statuses,
                                    usesTrigramIndex: plan.contains("events_data_trgm"), plan: plan.split(separator: "\n").first.map(String.init) ?? ""))
        }
        let worst = candidates.max { $0.medianMs < $1.medianMs }!.search

        // Unloaded, then loaded, `rounds` times in turn (a shared machine's other work then weighs on both alike): the
        // same wrk run on the other tenant's routes; each kind's figure is the median of its rounds' p99s.
        var unloadedRounds: [WrkResult] = [], loadedRounds: [WrkResult] = []
        var outcome = AuditSearchClient.Outcome()
        for round in 1...max(1, rounds) {
            progress?.begin("audit-load: round \(round)/\(rounds): GET /api/routes alone, \(phase) s")
            unloadedRounds.append(try await wrkRoutes(base: base, token: smallToken, seconds: phase))
            progress?.begin("audit-load: round \(round)/\(rounds): GET /api/routes with \(searches) clients searching \"\(worst)\", \(phase) s")
            let driver = AuditSearchClient(url: base + "/api/events/audit?search=\(worst)", token: bigToken)
            let searchTask = Task { await driver.run(clients: searches) }
            try await Task.sleep(for: .milliseconds(500))               // the searches are under way
            loadedRounds.append(try await wrkRoutes(base: base, token: smallToken, seconds: phase))
            driver.stop()
            let o = await searchTask.value
            outcome.byStatus.merge(o.byStatus, uniquingKeysWith: +)
            outcome.completedMs += o.completedMs
        }
        serverTask.cancel()
        _ = try? await serverTask.value
        await store.shutdown()
        return AuditLoadFigures(events: eventCount, generationSeconds: generationSeconds, trigramIndex: indexed, searchClients: searches,
                                seconds: phase, connections: connections, limits: "statement_timeout \(limits.statementTimeout), search timeout \(limits.searchTimeout), "
                                    + "\(limits.searchesPerTenant) searches per tenant, \(limits.searches) per controller, pool \(maxConnections)",
                                candidates: candidates, worstSearch: worst, unloaded: unloadedRounds, loaded: loadedRounds, searchOutcome: outcome)
    }

    func wrkRoutes(base: String, token: String, seconds: Int) async throws -> WrkResult {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-audit-load-\(UUID().uuidString).lua")
        try "wrk.headers[\"Authorization\"] = \"Token \(token)\"\n".write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let arguments = ["-c", String(connections), "-t", "1", "-d", "\(seconds)s", "--latency", "-s", script.path, base + "/api/routes"]
        return WrkResult(try await runOffCooperativePool { try PgBench.run("/usr/bin/wrk", arguments) })
    }
}

private func milliseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
}

/// `clients` loops, each sending the search again as soon as it is answered, or after `Retry-After` when told to wait.
final class AuditSearchClient: Sendable {
    struct Outcome: Sendable, Codable {
        var byStatus: [String: Int] = [:]
        var completedMs: [Double] = []
    }

    let url: String
    let token: String
    private let stopped = Atomic(false)

    init(url: String, token: String) {
        self.url = url
        self.token = token
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func run(clients: Int) async -> Outcome {
        await withTaskGroup(of: Outcome.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    var outcome = Outcome()
                    while !self.stopped.load(ordering: .relaxed) {
                        let start = ContinuousClock.now
                        guard let reply = try? await Self.get(self.url, token: self.token, timeout: .seconds(60)) else {
                            outcome.byStatus["error", default: 0] += 1
                            try? await Task.sleep(for: .milliseconds(100))
                            continue
                        }
                        outcome.byStatus[String(reply.status), default: 0] += 1
                        if reply.status == 200 { outcome.completedMs.append(milliseconds(ContinuousClock.now - start)) }
                        if let wait = reply.retryAfter { try? await Task.sleep(for: .seconds(wait)) }
                    }
                    return outcome
                }
            }
            var total = Outcome()
            for await o in group {
                total.byStatus.merge(o.byStatus, uniquingKeysWith: +)
                total.completedMs += o.completedMs
            }
            return total
        }
    }

    static func get(_ url: String, token: String, timeout: TimeAmount) async throws -> (status: Int, retryAfter: Int?) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Token \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        _ = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), response.headers.first(name: "Retry-After").flatMap(Int.init))
    }
}

/// Figures of one `bench audit-load` run.
struct AuditLoadFigures: Sendable {
    struct Candidate: Codable, Sendable {
        var search: String
        var medianMs: Double
        var statuses: [Int]
        var usesTrigramIndex: Bool
        var plan: String
    }

    var events: Int
    var generationSeconds: Double
    var trigramIndex: Bool
    var searchClients: Int
    var seconds: Int
    var connections: Int
    var limits: String
    var candidates: [Candidate]
    var worstSearch: String
    var unloaded: [WrkResult]
    var loaded: [WrkResult]
    var searchOutcome: AuditSearchClient.Outcome

    var unloadedP99: Double { Statistics.percentile(unloaded.map(\.p99), 0.5) ?? 0 }
    var loadedP99: Double { Statistics.percentile(loaded.map(\.p99), 0.5) ?? 0 }
    var ratio: Double { unloadedP99 > 0 ? loadedP99 / unloadedP99 : .infinity }

    func lines() -> [String] {
        var out: [String] = []
        out.append("routeplane-bench audit-load: \(events) events in the searched tenant (made in \(Int(generationSeconds)) s), trigram index: \(trigramIndex ? "yes" : "no (pg_trgm unavailable)")")
        out.append("limits: \(limits)")
        out.append("searches alone (median of 3, ms; plan's top node):")
        for c in candidates {
            out.append("  \"\(c.search)\": " + String(format: "%.1f", c.medianMs) + " ms, statuses \(c.statuses.map(String.init).joined(separator: ",")), "
                       + "index \(c.usesTrigramIndex ? "yes" : "no"): \(c.plan.trimmingCharacters(in: .whitespaces))")
        }
        let statuses = searchOutcome.byStatus.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        let completed = searchOutcome.completedMs.sorted()
        let searchP50 = Statistics.percentile(sorted: completed, 0.5).map { String(format: "%.0f", $0) } ?? "-"
        out.append("load: \(searchClients) clients searching \"\(worstSearch)\" (each waits Retry-After when told): \(statuses); answered searches p50 \(searchP50) ms")
        out.append("GET /api/routes of another tenant, wrk -c \(connections) -t 1 -d \(seconds)s per phase, \(unloaded.count) rounds in turn:")
        for (n, (u, l)) in zip(unloaded, loaded).enumerated() {
            out.append("  round \(n + 1): unloaded p99 " + String(format: "%.2f", u.p99) + " ms (p50 " + String(format: "%.2f", u.p50) + ", "
                       + String(format: "%.0f", u.requestsPerSecond) + " req/s, non-2xx \(u.non2xx)); loaded p99 " + String(format: "%.2f", l.p99)
                       + " ms (p50 " + String(format: "%.2f", l.p50) + ", " + String(format: "%.0f", l.requestsPerSecond) + " req/s, non-2xx \(l.non2xx))")
        }
        out.append("  median p99: unloaded " + String(format: "%.2f", unloadedP99) + " ms, loaded " + String(format: "%.2f", loadedP99)
                   + " ms; ratio " + String(format: "%.2f", ratio) + "× (target ≤ 2×): " + (ratio <= 2 ? "met" : "NOT met"))
        out.append("short form: audit-load events=\(events) p99_unloaded_ms=" + String(format: "%.2f", unloadedP99) + " p99_loaded_ms="
                   + String(format: "%.2f", loadedP99) + " ratio=" + String(format: "%.2f", ratio) + " \(ratio <= 2 ? "ok" : "FAIL")")
        return out
    }
}
