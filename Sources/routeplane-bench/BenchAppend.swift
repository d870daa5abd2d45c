import CommandSupport
import ArgumentParser
import BenchKit
import PostgresClient
import EventStore
import Foundation

/// `routeplane-bench append`: events/s through `EventStore.append`, single and batched, 1 and 4 writers,
/// next to pgbench running an equivalent plain INSERT into a table of the same shape on the same server,
/// in the same run.
struct BenchAppend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "append", abstract: "Append throughput vs pgbench plain INSERT.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Rounds per case; each round measures Routeplane then pgbench for 2 s each, so both see the same background load.") var rounds: Int = 3
    @Option(help: "Events per append in the batched cases.") var batch: Int = 100
    @Flag(help: "One round per case.") var quick = false
    @Option(help: "Profiling aid: only run Routeplane's single-event appends with this many writers for --profile-seconds, no baseline, no targets (e.g. under `perf record`).") var profileWriters: Int?
    @Option(help: "Seconds for --profile-writers.") var profileSeconds: Double = 10

    struct Case { let name: String; let writers: Int; let batch: Int }

    func run() async throws {
        if let writers = profileWriters {
            try await profile(writers: writers)
            return
        }
        let progress = BenchProgress()
        let figures = try await measure(progress: progress)
        progress.end()
        for line in figures.table() { print(line) }
    }

    /// Profiling aid: Routeplane's single-event appends only, no baseline.
    func profile(writers: Int) async throws {
        let serverURL = try database.resolvedURL()
        let benchDatabase = "routeplane_bench_append_\(UUID().uuidString.prefix(8).lowercased())"
        let url = try await BenchDatabase.create(name: benchDatabase, server: serverURL)
        defer { BenchDatabase.drop(name: benchDatabase, server: serverURL) }
        bootstrapLogging(level: database.logLevel)
        let store = EventStore(url: url)
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        let m = try await measureAppends(store: store, writers: writers, batch: 1, seconds: profileSeconds, runID: "profile")
        print(String(format: "profile: %d writer(s), %.0f ev/s, client CPU %.1f µs/append (user %.1f + sys %.1f), thread sleeps %.2f/append, preemptions %.2f/append",
                     writers, m.rate, m.cpuMicrosPerAppend, m.userMicrosPerAppend, m.sysMicrosPerAppend, m.sleepsPerAppend, m.preemptionsPerAppend))
        await store.shutdown()
    }

    /// The whole measurement in a fresh database: every case alternating Routeplane and pgbench round by round,
    /// then the diagnostics (round trips, the append function driven by pgbench).
    func measure(progress: BenchProgress? = nil) async throws -> AppendFigures {
        // A fresh database for the run, so the events table and pgbench's table both start empty
        // (a long-lived events table with millions of rows would make the comparison unfair).
        let serverURL = try database.resolvedURL()
        let benchDatabase = "routeplane_bench_append_\(UUID().uuidString.prefix(8).lowercased())"
        progress?.begin("append: creating database \(benchDatabase)")
        let url = try await BenchDatabase.create(name: benchDatabase, server: serverURL)
        defer { BenchDatabase.drop(name: benchDatabase, server: serverURL) }
        let rounds = quick ? 1 : max(1, self.rounds)
        let roundSeconds = 2.0
        bootstrapLogging(level: database.logLevel)
        let store = EventStore(url: url)  // the default pool (8): 4 writers plus the coalesced NOTIFY never wait for a connection
        do {
            let figures = try await measure(store: store, url: url, rounds: rounds, roundSeconds: roundSeconds, progress: progress)
            await store.shutdown()
            return figures
        } catch {
            await store.shutdown()
            throw error
        }
    }

    private func measure(store: EventStore, url: String, rounds: Int, roundSeconds: Double, progress: BenchProgress?) async throws -> AppendFigures {
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        let pgbench = try PgBench(url: url)
        try pgbench.prepareBaselineTable()
        let payload = Self.samplePayload
        let cases = [Case(name: "single, 1 writer", writers: 1, batch: 1), Case(name: "single, 4 writers", writers: 4, batch: 1),
                     Case(name: "batch \(batch), 1 writer", writers: 1, batch: batch), Case(name: "batch \(batch), 4 writers", writers: 4, batch: batch)]
        var results: [AppendFigures.Case] = []
        let runID = UUID().uuidString.prefix(8).lowercased()
        let steps = cases.count * rounds + rounds
        var step = 0
        progress?.begin("append: \(cases.count) cases × \(rounds) round(s) of 2 s + 2 s, then diagnostics", total: steps)
        for c in cases {
            var ours: [Double] = [], theirs: [Double] = [], cpuTotal = 0.0, sleepsTotal = 0.0
            for round in 0..<rounds {
                let m = try await measureAppends(store: store, writers: c.writers, batch: c.batch, seconds: roundSeconds,
                                                 runID: "\(runID)-\(c.writers)-\(c.batch)-\(round)")
                ours.append(m.rate)
                cpuTotal += m.cpuMicrosPerAppend
                sleepsTotal += m.sleepsPerAppend
                let writers = c.writers, batchSize = c.batch
                theirs.append(try await runOffCooperativePool { try pgbench.measure(writers: writers, batch: batchSize, seconds: roundSeconds, payload: payload) })
                step += 1
                progress?.update(done: step)
            }
            let mean = { (xs: [Double]) in xs.reduce(0, +) / Double(xs.count) }
            let ratio = mean(ours) / mean(theirs)
            let target = PerformanceTargets[c.batch == 1 ? .appendSingle : .appendBatch].target / 100
            results.append(AppendFigures.Case(
                name: c.name, writers: c.writers, batch: c.batch, eventsPerSecond: mean(ours), pgbenchRowsPerSecond: mean(theirs),
                ratio: ratio, target: target, met: ratio >= target, clientCPUMicrosPerAppend: cpuTotal / Double(rounds),
                threadSleepsPerAppend: sleepsTotal / Double(rounds), roundEventsPerSecond: ours, roundPgbenchRowsPerSecond: theirs))
        }
        // Where the time goes: the client's round trip alone, and the append function driven by pgbench itself.
        var oursTrip = 0.0, oursBlockingTrip = 0.0, theirsTrip = 0.0, functionRate = 0.0
        for _ in 0..<rounds {
            oursTrip += try await measureRoundTrips(store: store, seconds: roundSeconds, blocking: false)
            oursBlockingTrip += try await measureRoundTrips(store: store, seconds: roundSeconds, blocking: true)
            theirsTrip += try await runOffCooperativePool { try pgbench.measureScript("SELECT 1;\n", writers: 1, seconds: roundSeconds) }
            let script = "SELECT append_events('pgbench-fn-' || :client_id, -1, ARRAY[gen_random_uuid()], ARRAY['RouteUpdated'], ARRAY['\(payload.replacingOccurrences(of: "'", with: "''"))'::json], ARRAY['{\"actor\":\"bench\"}'::jsonb]);\n"
            functionRate += try await runOffCooperativePool { try pgbench.measureScript(script, writers: 1, seconds: roundSeconds) }
            step += 1
            progress?.update(done: step)
        }
        let r = Double(rounds)
        return AppendFigures(
            rounds: rounds, roundSeconds: roundSeconds, batch: batch, payloadBytes: payload.utf8.count, postgres: pgbench.serverVersion,
            cases: results,
            diagnostics: .init(selectOnePoolPerSecond: oursTrip / r, selectOneBlockingPerSecond: oursBlockingTrip / r,
                               selectOnePgbenchPerSecond: theirsTrip / r, appendFunctionByPgbenchPerSecond: functionRate / r))
    }

    struct AppendMeasurement {
        /// Events per second.
        var rate: Double
        /// CPU time of this whole process (all threads, user + system) per `append` call.
        var userMicrosPerAppend: Double
        var sysMicrosPerAppend: Double
        var cpuMicrosPerAppend: Double { userMicrosPerAppend + sysMicrosPerAppend }
        /// Times a thread of this process went to sleep, per `append` (each costs a wake-up to continue).
        var sleepsPerAppend: Double
        /// Times a thread of this process was preempted, per `append` (load on the machine, not our code).
        var preemptionsPerAppend: Double
    }

    func measureAppends(store: EventStore, writers: Int, batch: Int, seconds: Double, runID: String) async throws -> AppendMeasurement {
        let payload = Self.samplePayload
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let cpuBefore = ProcessCPU.now()
        let start = ContinuousClock.now
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for w in 0..<writers {
                group.addTask {
                    let tenant = "bench-\(runID)-w\(w)"
                    var version: Int64 = 0
                    var appended = 0
                    let metadata = EventMetadata(actor: "bench", requestID: runID)
                    while ContinuousClock.now < deadline {
                        let events = (0..<batch).map { _ in NewEvent(type: "RouteUpdated", data: payload, metadata: metadata) }
                        let seqs = try await store.append(tenant: tenant, expected: version == 0 ? .noEvents : .exactly(version), events: events)
                        version = seqs.upperBound
                        appended += batch
                    }
                    return appended
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - start
        let cpu = ProcessCPU.now() - cpuBefore
        let appends = Double(max(counts / batch, 1))
        return AppendMeasurement(rate: Double(counts) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18),
                                 userMicrosPerAppend: cpu.user * 1e6 / appends, sysMicrosPerAppend: cpu.system * 1e6 / appends,
                                 sleepsPerAppend: Double(cpu.voluntarySwitches) / appends, preemptionsPerAppend: Double(cpu.involuntarySwitches) / appends)
    }

    /// `SELECT 1` per second through the pool: the async non-blocking path (`query(prepared:)`, as `append`)
    /// or a blocking `withSession` on the connection's queue.
    func measureRoundTrips(store: EventStore, seconds: Double, blocking: Bool) async throws -> Double {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let start = ContinuousClock.now
        var n = 0
        while ContinuousClock.now < deadline {
            if blocking {
                _ = try await store.pool.withSession { try $0.query(prepared: "SELECT 1") }
            } else {
                _ = try await store.pool.query(prepared: "SELECT 1")
            }
            n += 1
        }
        let elapsed = ContinuousClock.now - start
        return Double(n) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    static let samplePayload = #"{"event_version":1,"route":{"id":"d2k7q9n1f0g3h5j6k8m0","network_id":"office-lan","description":"printers and the NAS","network":"10.20.0.0/16","network_type":"IPv4","peer_groups":["cq8h2r9k3l4m5n6p7q8r"],"metric":100,"masquerade":true,"groups":["cq8h2r9k3l4m5n6p7q9s","cq8h2r9k3l4m5n6p7q9t"],"enabled":true,"keep_route":false,"access_control_groups":[],"skip_auto_apply":false}}"#
}

/// Figures of one `bench append` run (for its table, `bench all`'s report and JSON).
struct AppendFigures: Codable, Sendable {
    struct Case: Codable, Sendable {
        var name: String
        var writers: Int
        var batch: Int
        /// Routeplane's events/s (mean over the rounds).
        var eventsPerSecond: Double
        /// pgbench's plain INSERT rows/s, same rounds.
        var pgbenchRowsPerSecond: Double
        var ratio: Double
        var target: Double
        var met: Bool
        var clientCPUMicrosPerAppend: Double
        var threadSleepsPerAppend: Double
        var roundEventsPerSecond: [Double]
        var roundPgbenchRowsPerSecond: [Double]
    }

    struct Diagnostics: Codable, Sendable {
        var selectOnePoolPerSecond: Double
        var selectOneBlockingPerSecond: Double
        var selectOnePgbenchPerSecond: Double
        var appendFunctionByPgbenchPerSecond: Double
    }

    var rounds: Int
    var roundSeconds: Double
    var batch: Int
    var payloadBytes: Int
    var postgres: String
    var cases: [Case]
    var diagnostics: Diagnostics

    var allMet: Bool { cases.allSatisfy(\.met) }

    /// The printed table (as `routeplane-bench append` has always printed it).
    func table() -> [String] {
        var lines: [String] = []
        lines.append("append benchmark: \(rounds) round(s) of 2 s + 2 s per case (Routeplane and pgbench alternate), event data \(payloadBytes) B, \(postgres)")
        lines.append("baseline: pgbench -M simple running a plain INSERT of the same row(s) (batch: a \(batch)-row VALUES list) into a table shaped like `events` (same columns, keys, indexes), same server")
        lines.append("note: Routeplane sends append_events as a statement prepared once per connection, through libpq's non-blocking API (no thread hop; see PostgresIOLoop); pgbench's simple mode parses each INSERT")
        lines.append("")
        lines.append(pad("case", 22) + pad("routeplane", 16) + pad("pgbench", 16) + pad("ratio", 8) + pad("target", 14) + "client CPU, thread sleeps per append")
        for c in cases {
            lines.append(pad(c.name, 22) + pad(String(format: "%.0f ev/s", c.eventsPerSecond), 16) + pad(String(format: "%.0f rows/s", c.pgbenchRowsPerSecond), 16)
                         + pad(String(format: "%.0f%%", c.ratio * 100), 8) + pad("≥\(Int(c.target * 100))% " + (c.met ? "met" : "NOT met"), 14)
                         + String(format: "%.0f µs, %.1f", c.clientCPUMicrosPerAppend, c.threadSleepsPerAppend))
        }
        let d = diagnostics
        lines.append("")
        lines.append("diagnostics (same server, 1 client, \(rounds) round(s) of 2 s each):")
        lines.append(pad("  SELECT 1 round trips", 40) + String(format: "routeplane pool %.0f/s, pgbench %.0f/s (%.0f%%)", d.selectOnePoolPerSecond,
                                                                d.selectOnePgbenchPerSecond, d.selectOnePoolPerSecond / d.selectOnePgbenchPerSecond * 100))
        lines.append(pad("", 40) + String(format: "(async non-blocking path, as append uses; withSession's blocking path on the connection's queue: %.0f/s)", d.selectOneBlockingPerSecond))
        lines.append(pad("  append_events called by pgbench", 40) + String(format: "%.0f/s: the SQL alone, without Routeplane's client", d.appendFunctionByPgbenchPerSecond))
        lines.append("")
        lines.append(allMet ? "all append targets met" : "some append targets NOT met")
        return lines
    }
}

/// CPU time used so far by this process (all threads), and how often its threads slept (voluntary context
/// switches: each is a wake-up later) or were preempted, from getrusage.
struct ProcessCPU {
    var user: Double
    var system: Double
    var voluntarySwitches = 0
    var involuntarySwitches = 0

    static func now() -> ProcessCPU {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return ProcessCPU(user: seconds(usage.ru_utime), system: seconds(usage.ru_stime),
                          voluntarySwitches: usage.ru_nvcsw, involuntarySwitches: usage.ru_nivcsw)
    }

    static func - (a: ProcessCPU, b: ProcessCPU) -> ProcessCPU {
        ProcessCPU(user: a.user - b.user, system: a.system - b.system,
                   voluntarySwitches: a.voluntarySwitches - b.voluntarySwitches, involuntarySwitches: a.involuntarySwitches - b.involuntarySwitches)
    }
}

/// A throwaway database on the benchmark's server.
enum BenchDatabase {
    /// `postgresql://user@host:port/db?…` with the database name replaced.
    static func url(_ base: String, database: String) -> String {
        guard let schemeEnd = base.range(of: "://") else { return base }
        let afterScheme = base[schemeEnd.upperBound...]
        guard let slash = afterScheme.firstIndex(of: "/") else { return base + "/" + database }
        let query = afterScheme[slash...].firstIndex(of: "?").map { String(afterScheme[$0...]) } ?? ""
        return String(base[..<slash]) + "/" + database + query
    }

    static func create(name: String, server: String) async throws -> String {
        let admin = EventStore(url: url(server, database: "postgres"), maxConnections: 1)
        defer { Task { await admin.shutdown() } }
        try await admin.pool.withSession { _ = try $0.query("CREATE DATABASE \(name)") }
        return url(server, database: name)
    }

    static func drop(name: String, server: String) {
        let psqlCandidates = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted().reversed().map { "/usr/lib/postgresql/\($0)/bin/psql" }
        guard let psql = psqlCandidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return }
        _ = try? PgBench.run(psql, ["-qc", "DROP DATABASE IF EXISTS \(name) WITH (FORCE)", url(server, database: "postgres")])
    }
}

/// Runs pgbench against the same server for a baseline.
struct PgBench {
    let url: String
    let binary: String
    let serverVersion: String

    init(url: String) throws {
        self.url = url
        let candidates = [ProcessInfo.processInfo.environment["ROUTEPLANE_PG_BIN"].map { $0 + "/pgbench" }]
            + ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted().reversed().map { "/usr/lib/postgresql/\($0)/bin/pgbench" }
        guard let found = candidates.compactMap({ $0 }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ValidationError("pgbench not found (Debian's postgresql package has it under /usr/lib/postgresql/*/bin); run ops/setup")
        }
        binary = found
        let psql = (found as NSString).deletingLastPathComponent + "/psql"
        serverVersion = (try? Self.run(psql, ["-Atqc", "SHOW server_version", url]).trimmingCharacters(in: .whitespacesAndNewlines)).map { "PostgreSQL \($0)" } ?? "PostgreSQL"
    }

    /// A table shaped like `events`; rows accumulate across rounds as events do, so both sides see growing indexes.
    func prepareBaselineTable() throws {
        let psql = (binary as NSString).deletingLastPathComponent + "/psql"
        _ = try Self.run(psql, ["-v", "ON_ERROR_STOP=1", "-qc", """
            DROP TABLE IF EXISTS bench_baseline_events;
            DROP SEQUENCE IF EXISTS bench_baseline_seq;
            CREATE SEQUENCE bench_baseline_seq;
            CREATE TABLE bench_baseline_events (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING INDEXES);
            """, url])
    }

    /// Rows per second for `writers` clients each inserting `batch` rows per statement.
    func measure(writers: Int, batch: Int, seconds: Double, payload: String) throws -> Double {
        let escaped = payload.replacingOccurrences(of: "'", with: "''")
        let script: String
        if batch == 1 {
            script = "INSERT INTO bench_baseline_events (event_id, tenant_id, seq, type, data, metadata) VALUES (gen_random_uuid(), 'pgbench-' || :client_id, nextval('bench_baseline_seq'), 'RouteUpdated', '\(escaped)', '{\"actor\":\"bench\"}');\n"
        } else {
            // One statement carrying `batch` rows, each with its own literals, as a client inserting a batch sends them.
            let row = "(gen_random_uuid(), 'pgbench-' || :client_id, nextval('bench_baseline_seq'), 'RouteUpdated', '\(escaped)', '{\"actor\":\"bench\"}')"
            script = "INSERT INTO bench_baseline_events (event_id, tenant_id, seq, type, data, metadata) VALUES " + Array(repeating: row, count: batch).joined(separator: ", ") + ";\n"
        }
        return try measureScript(script, writers: writers, seconds: seconds) * Double(batch)
    }

    /// Transactions per second of pgbench running `script`.
    func measureScript(_ script: String, writers: Int, seconds: Double) throws -> Double {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-pgbench-\(UUID().uuidString).sql")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let output = try Self.run(binary, ["-n", "-M", "simple", "-c", String(writers), "-j", String(writers), "-T", String(max(1, Int(seconds.rounded()))),
                                           "-f", file.path, url])
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
              let tps = Double(line.dropFirst(6).prefix { $0 != " " }) else {
            throw ValidationError("could not read pgbench's tps from its output:\n\(output)")
        }
        return tps
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        // pgbench -T stops on SIGALRM. Dispatch's threads block signals and a spawned child inherits the
        // calling thread's mask, so unblock SIGALRM on this thread while spawning, then restore the mask.
        var alarm = sigset_t(), previous = sigset_t()
        sigemptyset(&alarm)
        sigaddset(&alarm, SIGALRM)
        pthread_sigmask(SIG_UNBLOCK, &alarm, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(executable) \(arguments.dropLast().joined(separator: " ")) failed (\(process.terminationStatus)):\n\(text)")
        }
        return text
    }
}
