import CommandSupport
import ArgumentParser
import ProcessSpawn
import AsyncHTTPClient
import ControlPlane
import HTTPAPI
import Dispatch
import EventStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import RouteModel
import Synchronization

/// `routeplane-bench api`: requests/s and latency of the controller's API under wrk (a separate C
/// process, so the load generator is not what is measured), on loopback, bounded in time.
/// Baseline in the same run: `GET /api/openapi.json` (the HTTP stack and middleware, no database).
struct BenchAPI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "GET/POST/PUT /api/routes under wrk vs a no-database endpoint, in one run.")

    @OptionGroup var database: DatabaseOptions
    @Flag(help: "2 s per endpoint instead of 8.") var quick = false
    @Option(help: "Concurrent connections wrk keeps open.") var connections = 8
    @Option(help: "Routes in the tenant before the run.") var routes = 100
    @Option(help: "Profiling aid: only the endpoints whose label starts with this (e.g. PUT).") var only: String?
    @Option(help: "Profiling aid: seconds of wrk per endpoint (default 8, --quick 2).") var seconds: Int?
    @Flag(help: "Profiling aid: under `valgrind --tool=callgrind --instr-atstart=no`, count instructions only while wrk runs (callgrind_control -i on/off); prints the requests to divide by.")
    var callgrind = false

    func run() async throws {
        #if DEBUG
        print("note: debug build; use `swift build -c release` and .build/release/routeplane for representative figures")
        #endif
        let progress = BenchProgress()
        let figures = try await measure(progress: progress)
        progress.end()
        for line in figures.table() { print(line) }
    }

    /// The whole measurement: a throwaway database and tenant, the controller's router in this process, wrk per endpoint.
    func measure(progress: BenchProgress? = nil) async throws -> APIFigures {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            throw ValidationError("wrk not found: run ops/setup (Debian package wrk)")
        }
        let server = try database.resolvedURL()
        let name = "routeplane_bench_api_\(ProcessInfo.processInfo.processIdentifier)"
        let url = try await BenchDatabase.create(name: name, server: server)
        defer { BenchDatabase.drop(name: name, server: server) }
        let store = EventStore(url: url, maxConnections: 16)
        progress?.begin("api: tenant with \(routes) routes, 40 peers")
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        var logger = Logger(label: "routeplane.bench.api")
        logger.logLevel = .error
        var configuration = ControllerConfiguration()
        configuration.http.shutdownGrace = .seconds(1)
        let controller = APIServer(configuration: configuration, store: store, logger: logger)

        // A tenant with a group, 40 Linux routing peers and `routes` routes.
        let tenant = try await controller.controlPlane.createTenant(name: "bench")
        let token = try await controller.controlPlane.createToken(tenant: tenant, name: "bench").token
        let actor = Actor(id: "bench")
        let group = GroupID("clients")
        let peers = (0..<40).map { PeerID("p\($0)") }
        for (i, p) in peers.enumerated() {
            _ = try await controller.controlPlane.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
                try decideOrThrow(.enrollPeer(id: p, name: "peer\(i)", os: "linux", meshIP: "100.64.\(i / 250).\(i % 250 + 1)"), s.state)
            }
        }
        _ = try await controller.controlPlane.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
            try decideOrThrow(.createGroup(id: group, name: "clients", peers: peers), s.state)
        }
        for i in 0..<routes {
            _ = try await controller.controlPlane.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
                try decideOrThrow(.createRoute(id: RouteID("r\(i)"), RouteInput(networkID: "n\(i)", network: "10.\(i / 250).\(i % 250).0/24",
                                                                                 peer: peers[i % peers.count], metric: 100, groups: [group])), s.state)
            }
        }

        let port = 18_000 + Int(ProcessInfo.processInfo.processIdentifier % 1000)
        // Stopped gracefully at the end (as SIGTERM stops `routeplane serve`), in the shutdown phase.
        let (stopRequested, stopSignal) = AsyncStream<Void>.makeStream()
        let serverTask = Task { try await controller.run(host: "127.0.0.1", port: port, logger: logger, until: { for await _ in stopRequested {} }) }
        try await Task.sleep(for: .milliseconds(500))
        let base = "http://127.0.0.1:\(port)"
        let seconds = self.seconds ?? (quick ? 2 : 8)
        let scripts = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-wrk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scripts, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scripts) }

        // POST: a new route per request (distinct range and peer pairs, so no 409); PUT: route r0 with a
        // new metric per request (each one appends an event; no If-Match, so writers queue on the tenant).
        let post = """
            local n = 0
            request = function()
              n = n + 1
              local body = string.format('{"network_id":"w%d","network":"11.%d.%d.%d/32","peer":"p%d","metric":100,"masquerade":true,"groups":["clients"],"enabled":true}', n, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256, n % 40)
              return wrk.format("POST", "/api/routes", {["Authorization"] = "Token \(token)", ["Content-Type"] = "application/json"}, body)
            end
            """
        let put = """
            local n = 0
            request = function()
              n = n + 1
              local body = string.format('{"network_id":"n0","network":"10.0.0.0/24","peer":"p0","metric":%d,"masquerade":true,"groups":["clients"],"enabled":true}', 1 + n % 9000)
              return wrk.format("PUT", "/api/routes/r0", {["Authorization"] = "Token \(token)", ["Content-Type"] = "application/json"}, body)
            end
            """
        let auth = """
            wrk.headers["Authorization"] = "Token \(token)"
            """
        for (file, text) in [("post.lua", post), ("put.lua", put), ("auth.lua", auth)] {
            try text.write(to: scripts.appendingPathComponent(file), atomically: true, encoding: .utf8)
        }
        let endpoints: [(String, String, String?)] = [
            ("GET /api/openapi.json (baseline)", "/api/openapi.json", nil),
            ("GET /api/routes (\(routes) routes)", "/api/routes", "auth.lua"),
            ("GET /api/routes/{id}", "/api/routes/r1", "auth.lua"),
            // PUT on the tenant as set up (the target's figure: `first` PUT row), then POST, which grows the tenant by
            // thousands of routes, then PUT again on that grown tenant: a write's cost grows with the tenant's size
            // (it copies the tenant's state), and a PUT measured after the POSTs measured the POSTs' speed as well.
            ("PUT /api/routes/{id}", "/api/routes/r0", "put.lua"),
            ("POST /api/routes", "/api/routes", "post.lua"),
            ("PUT /api/routes/{id} after the POSTs", "/api/routes/r0", "put.lua"),
        ]
        var rows: [APIFigures.Row] = []
        progress?.begin("api: wrk -c \(connections) -d \(seconds)s per endpoint", total: endpoints.count)
        do {
            for (label, path, script) in endpoints where only.map({ label.hasPrefix($0) }) ?? true {
                if label.hasSuffix("after the POSTs") && !rows.contains(where: { $0.method == "POST" }) { continue }
                var arguments = ["-c", String(connections), "-t", "1", "-d", "\(seconds)s", "--latency"] + (callgrind ? ["--timeout", "60s"] : [])
                if let script { arguments += ["-s", scripts.appendingPathComponent(script).path] }
                arguments.append(base + path)
                let wrkArguments = arguments
                let output = callgrind ? try await Self.underCallgrind(wrk: wrkArguments, output: scripts.appendingPathComponent("wrk.txt").path, label: label)
                    : try await runOffCooperativePool { try PgBench.run("/usr/bin/wrk", wrkArguments) }
                let result = WrkResult(output)
                rows.append(APIFigures.Row(label: label, path: path, method: String(label.prefix { $0 != " " }), baseline: script == nil,
                                           requestsPerSecond: result.requestsPerSecond, p50Ms: result.p50, p99Ms: result.p99, non2xx: result.non2xx))
                progress?.update(done: rows.count)
            }
        } catch {
            serverTask.cancel()
            _ = try? await serverTask.value
            await store.shutdown()
            throw error
        }
        progress?.begin("api: shutdown with \(connections) clients sending requests")
        let shutdown = await ShutdownFigures.measure(base: base, token: token, clients: connections) {
            stopSignal.finish()
            _ = try? await serverTask.value
        }
        await store.shutdown()
        return APIFigures(connections: connections, seconds: seconds, routes: routes, peers: 40,
                          cores: ProcessInfo.processInfo.activeProcessorCount, rows: rows, shutdown: shutdown)
    }
}

extension BenchAPI {
    /// wrk with callgrind's instrumentation on only while it runs, then a dump (valgrind 3.19 may not survive this
    /// process's exit). Spawned with posix_spawn: Foundation's `Process` fails under valgrind (EBADF closing its fds).
    static func underCallgrind(wrk: [String], output: String, label: String) async throws -> String {
        let pid = String(ProcessInfo.processInfo.processIdentifier)
        func run(_ arguments: [String], stdout: ProcessSpawn.Stream = .null) async throws {
            let child = try ProcessSpawn.start(arguments, stdout: stdout)
            _ = try await runOffCooperativePool { ProcessSpawn.waitBlocking(child) }
        }
        try await run(["/usr/bin/callgrind_control", "-i", "on", pid])
        try await run(["/usr/bin/wrk"] + wrk, stdout: .file(output, append: false))
        try await run(["/usr/bin/callgrind_control", "-i", "off", pid])
        try await run(["/usr/bin/callgrind_control", "-d", pid])
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        print("callgrind: \(label): \(WrkResult(text).requests) requests while instrumented (the dump's instructions / this = per request)")
        return text
    }
}

/// Figures of one `bench api` run.
struct APIFigures: Codable, Sendable {
    struct Row: Codable, Sendable {
        var label: String
        var path: String
        var method: String
        var baseline: Bool
        var requestsPerSecond: Double
        var p50Ms: Double
        var p99Ms: Double
        var non2xx: Int
    }

    var connections: Int
    var seconds: Int
    var routes: Int
    var peers: Int
    var cores: Int
    var rows: [Row]
    /// The shutdown phase (absent in figures written before it existed).
    var shutdown: ShutdownFigures?

    /// The printed table (as `routeplane-bench api` has always printed it).
    func table() -> [String] {
        var lines: [String] = []
        lines.append("routeplane-bench api: wrk -c \(connections) -t 1 -d \(seconds)s on loopback, \(cores) cores, tenant with \(routes) routes, \(peers) peers")
        lines.append(pad("endpoint", 34) + pad("requests/s", 12) + pad("p50 ms", 9) + pad("p99 ms", 9) + "non-2xx")
        for r in rows {
            lines.append(pad(r.label, 34) + pad(String(format: "%.0f", r.requestsPerSecond), 12) + pad(String(format: "%.2f", r.p50Ms), 9)
                         + pad(String(format: "%.2f", r.p99Ms), 9) + String(r.non2xx))
        }
        if let baseline = rows.first(where: \.baseline)?.requestsPerSecond, baseline > 0 {
            for r in rows where !r.baseline {
                lines.append("  \(r.label): \(String(format: "%.0f%%", 100 * r.requestsPerSecond / baseline)) of the baseline's requests/s")
            }
        }
        if let s = shutdown {
            lines.append("shutdown (server stopped under \(s.clients) clients' GET/PUT /api/routes): \(s.answered) answered before it, "
                         + "then 2xx \(s.okDuring), 503 \(s.unavailable) (all with Retry-After: \(s.unavailable == s.unavailableWithRetryAfter)), "
                         + "500 \(s.internalErrors), other \(s.otherStatuses), cut without an answer \(s.cut)")
        }
        return lines
    }
}

/// The shutdown phase of `bench api`: `clients` loops send GET and PUT /api/routes; after a second the server is stopped
/// gracefully (as by SIGTERM; requests in flight get a 1 s grace, then 503); every answer is counted by status (500 must
/// stay 0) until the loops see the connection refused.
struct ShutdownFigures: Codable, Sendable {
    var clients: Int
    /// Answers before the stop began.
    var answered = 0
    /// Answers after it began.
    var okDuring = 0
    var unavailable = 0
    var unavailableWithRetryAfter = 0
    var internalErrors = 0
    var otherStatuses = 0
    /// Requests in flight whose connection closed without an answer.
    var cut = 0

    static func measure(base: String, token: String, clients: Int, stop: @escaping @Sendable () async -> Void) async -> ShutdownFigures {
        let stopping = StopFlag()
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let put = #"{"network_id":"n0","network":"10.0.0.0/24","peer":"p0","metric":7,"masquerade":true,"groups":["clients"],"enabled":true}"#
        let figures = await withTaskGroup(of: ShutdownFigures.self) { group in
            for i in 0..<clients {
                group.addTask {
                    var f = ShutdownFigures(clients: clients)
                    var n = 0
                    while true {
                        n += 1
                        var request = HTTPClientRequest(url: base + (i % 2 == 0 ? "/api/routes" : "/api/routes/r0"))
                        request.headers.add(name: "Authorization", value: "Token \(token)")
                        if i % 2 == 1 {
                            request.method = .PUT
                            request.headers.add(name: "Content-Type", value: "application/json")
                            request.body = .bytes(ByteBuffer(string: put.replacingOccurrences(of: "\"metric\":7", with: "\"metric\":\(1 + n % 9000)")))
                        }
                        let during = stopping.isSet
                        do {
                            let response = try await client.execute(request, timeout: .seconds(10))
                            _ = try? await response.body.collect(upTo: 1 << 22)
                            let status = Int(response.status.code)
                            if !during && !stopping.isSet { f.answered += 1; continue }
                            switch status {
                            case 200..<300: f.okDuring += 1
                            case 503:
                                f.unavailable += 1
                                if response.headers.first(name: "Retry-After") != nil { f.unavailableWithRetryAfter += 1 }
                            case 500: f.internalErrors += 1
                            default: f.otherStatuses += 1
                            }
                        } catch {
                            guard stopping.isSet else { continue }
                            // Refused: the listener is gone, the stop is over for this client. Anything else was cut.
                            if "\(error)".localizedCaseInsensitiveContains("refused") { return f }
                            f.cut += 1
                            if stopping.isDone { return f }
                        }
                    }
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(1))
                stopping.set()
                await stop()
                stopping.done()
                return ShutdownFigures(clients: clients)
            }
            var total = ShutdownFigures(clients: clients)
            for await f in group {
                total.answered += f.answered
                total.okDuring += f.okDuring
                total.unavailable += f.unavailable
                total.unavailableWithRetryAfter += f.unavailableWithRetryAfter
                total.internalErrors += f.internalErrors
                total.otherStatuses += f.otherStatuses
                total.cut += f.cut
            }
            return total
        }
        try? await client.shutdown()
        return figures
    }
}

/// Set once when the shutdown phase stops the server, and once more when the server has stopped.
final class StopFlag: Sendable {
    private let state = Mutex((set: false, done: false))
    var isSet: Bool { state.withLock { $0.set } }
    var isDone: Bool { state.withLock { $0.done } }
    func set() { state.withLock { $0.set = true } }
    func done() { state.withLock { $0.done = true } }
}

/// The figures wrk prints with --latency.
struct WrkResult {
    var requestsPerSecond = 0.0
    var p50 = 0.0
    var p99 = 0.0
    var non2xx = 0
    /// Requests completed (`N requests in …`).
    var requests = 0

    init(_ output: String) {
        for line in output.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if parts.count > 2, parts[1] == "requests", parts[2] == "in", let n = Int(parts[0]) { requests = n }
            if parts.first == "Requests/sec:", parts.count > 1 { requestsPerSecond = Double(parts[1]) ?? 0 }
            if parts.first == "50%", parts.count > 1 { p50 = Self.milliseconds(String(parts[1])) }
            if parts.first == "99%", parts.count > 1 { p99 = Self.milliseconds(String(parts[1])) }
            if line.contains("Non-2xx or 3xx responses:"), let n = parts.last.flatMap({ Int($0) }) { non2xx = n }
        }
    }

    static func milliseconds(_ text: String) -> Double {
        for (suffix, factor) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where text.hasSuffix(suffix) {
            return (Double(text.dropLast(suffix.count)) ?? 0) * factor
        }
        return Double(text) ?? 0
    }
}

/// Runs blocking work (a child process) on a plain thread, not on the cooperative pool the server needs.
func runOffCooperativePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
