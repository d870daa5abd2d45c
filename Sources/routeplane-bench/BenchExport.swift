import ArgumentParser
import BenchKit
import CommandSupport
import ControlPlane
import EventStore
import Foundation
import Logging
import PostgresClient
import RouteModel

/// `routeplane-bench export`: the audit export of a long history — its rate, and the exporter's peak resident set at two
/// sizes (it must not grow with the number of events). The exporter is the product's `routeplane history export` (the
/// API's export reads the same batches), run as its own process with stdout to /dev/null; it reports its entries, time and
/// VmHWM on stderr (`--stats`). The log is one real group rename copied in SQL (not measured), grown from the smaller size
/// to the larger in place, so both runs read the same tenant.
struct BenchExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "routeplane history export of 100,000 and 1,000,000 events: entries per second and the exporter's peak RSS at each size.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Log sizes in events, comma-separated, ascending.") var sizes = "100000,1000000"
    @Option(help: "ndjson or csv.") var format = "ndjson"
    @Flag(help: "10,000 and 100,000 events (a check, not the figure).") var quick = false

    func run() async throws {
        try await database.runMeasurement({ try await measure(progress: $0) }, lines: { $0.table() })
    }

    var sizeList: [Int] {
        quick ? [10_000, 100_000] : sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.sorted()
    }

    func measure(progress: BenchProgress? = nil) async throws -> ExportFigures {
        let sizes = sizeList
        guard let largest = sizes.last, largest > 0 else { throw ValidationError("--sizes needs at least one positive number") }
        let server = try database.resolvedURL()
        let name = "routeplane_bench_export_\(ProcessInfo.processInfo.processIdentifier)"
        let url = try await BenchDatabase.create(name: name, server: server)
        defer { BenchDatabase.drop(name: name, server: server) }
        let store = EventStore(url: url, maxConnections: 2)
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        let controlPlane = ControlPlane(store: store)
        let tenant = try await controlPlane.createTenant(name: "history")
        let actor = Actor(id: "bench")
        _ = try await controlPlane.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
            try decideOrThrow(.createGroup(id: GroupID("g"), name: "first", peers: []), s.state)
        }
        _ = try await controlPlane.writer.write(tenant: tenant, actor: actor, requestID: "setup") { s in
            try decideOrThrow(.updateGroup(id: GroupID("g"), name: "template", peers: []), s.state)
        }
        var figures = ExportFigures(format: format)
        var written = try await controlPlane.cache.current(tenant).version
        let template = written
        let executable = Executables.sibling("routeplane")
        for size in sizes {
            progress?.begin("export: \(size) events in SQL (not measured)")
            while written < Int64(size) {
                let chunk = min(Int64(100_000), Int64(size) - written)
                try await BenchRenameCopies.append(store, tenant: tenant, template: template, from: Int(written) + 1,
                                                   to: Int(written + chunk), name: "'name-' || g")
                written += chunk
            }
            progress?.begin("export: routeplane history export of \(size) events")
            let run = try Self.export(executable, database: url, tenant: tenant, format: format)
            figures.runs.append(.init(events: Int(written), entries: run.entries, seconds: run.seconds, peakRSSBytes: run.peakRSS))
        }
        await store.shutdown()
        return figures
    }

    /// Runs the exporter to completion (stdout discarded) and reads its `--stats` line.
    static func export(_ executable: String, database: String, tenant: String, format: String) throws -> (entries: Int, seconds: Double, peakRSS: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["history", "export", "--database-url", database, "--tenant", tenant, "--format", format, "--stats", "--log-level", "error"]
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = text.split(separator: "\n").last(where: { $0.hasPrefix("export:") }) else {
            throw ValidationError("routeplane history export failed (\(process.terminationStatus)): \(text.suffix(2_000))")
        }
        var values: [String: String] = [:]
        for pair in line.split(separator: " ").dropFirst() {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { values[String(kv[0])] = String(kv[1]) }
        }
        return (Int(values["entries"] ?? "") ?? 0, Double(values["seconds"] ?? "") ?? 0, Int(values["peak_rss_bytes"] ?? "") ?? 0)
    }
}

struct ExportFigures: Sendable, Codable {
    struct Run: Sendable, Codable {
        var events: Int
        var entries: Int
        var seconds: Double
        var peakRSSBytes: Int
        var entriesPerSecond: Double { seconds > 0 ? Double(entries) / seconds : 0 }
    }
    var format: String
    var runs: [Run] = []

    /// Largest run's peak RSS over the smallest's: ~1 when memory does not grow with the log.
    var rssGrowth: Double? {
        guard let first = runs.first, let last = runs.last, first.peakRSSBytes > 0, runs.count > 1 else { return nil }
        return Double(last.peakRSSBytes) / Double(first.peakRSSBytes)
    }

    func table() -> [String] {
        var t = TextTable(headers: ["events", "entries", "seconds", "entries/s", "peak RSS (VmHWM)"], alignments: [.right, .right, .right, .right, .right])
        for r in runs {
            t.add([Figure.grouped(Double(r.events)), Figure.grouped(Double(r.entries)), Figure.fixed(r.seconds, 2),
                   Figure.grouped(r.entriesPerSecond.rounded()), "\(Figure.fixed(Double(r.peakRSSBytes) / 1_048_576, 1)) MiB"])
        }
        var lines = ["routeplane history export --format \(format) (its own process, stdout to /dev/null):"] + t.render()
        if let growth = rssGrowth {
            lines.append("peak RSS at \(Figure.grouped(Double(runs.last!.events))) events / at \(Figure.grouped(Double(runs.first!.events))): "
                         + "\(Figure.fixed(growth, 2))x (target: does not grow with the number of events, ≤ 1.25x)")
        }
        return lines
    }
}
