import CommandSupport
import ArgumentParser
import BenchKit
import Foundation
import Logging

/// `routeplane-bench all`: every part of the suite in one run, each next to its same-run baseline, then a
/// summary of the targets; `--json` writes every figure with the machine and versions, `--plot` draws the
/// propagation latency CDF and the per-change cost against tenant size.
struct BenchAll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "The whole suite: append, projection, propagation (1,000 and 10,000 agents), api, memory, history; a target summary, --json and --plot.",
        discussion: """
            Full: append 3 rounds per case; projection 40 changes per size at 100/1,000/10,000 peers and a rebuild of 1,000,000 events; \
            propagation 10 changes at 1,000 agents and 5 at 10,000; api 8 s per endpoint; memory at 10,000 peers; history: 300 as-of reads of a 1,000,000-event tenant.
            --quick: append 1 round; projection 15 changes per size and a rebuild of 100,000 events; propagation 3 changes at 1,000 \
            agents and 2 at 10,000; api 2 s per endpoint; memory at 10,000 peers; history: 100 as-of reads of a 100,000-event tenant.
            """)

    static let allParts = ["append", "projection", "propagation", "api", "memory", "history", "export", "scaleout"]

    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Smaller sizes (see above): under 5 minutes on 2 cores.") var quick = false
    @Option(help: "Write every figure, the core count and the versions of PostgreSQL, NATS, libnats and Swift to this JSON file.") var json: String?
    @Option(help: "Draw the propagation latency CDF and the per-change cost vs tenant size into this SVG file.") var plot: String?
    @Option(name: .customLong("nats-url"), help: "NATS URL (default: $ROUTEPLANE_NATS_URL).") var natsURL: String?
    @Option(help: "Parts to run, comma-separated (default: all of \(allParts.joined(separator: ","))).") var parts = allParts.joined(separator: ",")
    @Option(help: "Simulated agents of the propagation runs, comma-separated.") var agents = "1000,10000"
    @Flag(help: "Exit 1 when a target (PerformanceTargets) is not met or a part that ran gave no figure for one; targets the run's sizes do not cover are listed, not failed.")
    var check = false

    func validate() throws {
        let unknown = partList.filter { !Self.allParts.contains($0) }
        if !unknown.isEmpty { throw ValidationError("unknown part(s): \(unknown.joined(separator: ", ")); parts are \(Self.allParts.joined(separator: ", "))") }
        if agentCounts.isEmpty { throw ValidationError("--agents needs at least one number") }
    }

    var partList: [String] { parts.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
    var agentCounts: [Int] { agents.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    /// Changes measured per propagation run.
    func propagationChanges(agents: Int) -> Int {
        if quick { return agents >= 10_000 ? 2 : 3 }
        return agents >= 10_000 ? 5 : 10
    }

    func run() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let progress = BenchProgress()
        let nats = natsURL ?? ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_URL"]
        let databaseURL = try? database.resolvedURL()
        bootstrapLogging(level: database.logLevel)

        progress.begin("versions: PostgreSQL, NATS, libnats, Swift")
        let machine = await MachineInfo.collect(databaseURL: databaseURL, natsURL: nats)
        progress.end()
        var report = BenchReport(command: (["routeplane"] + CommandLine.arguments.dropFirst()).joined(separator: " "), quick: quick,
                                 startedAt: ISO8601DateFormatter().string(from: Date()), machine: machine)
        print("routeplane-bench all\(quick ? " --quick" : ""): \(partList.joined(separator: ", "))")
        print("machine: \(machine.oneLine)")
        if let load = MachineInfo.loadAverage() {
            print("1-minute load average at the start: \(Figure.fixed(load, 1)) (figures are noisy when other work competes for the \(machine.cores) cores)")
        }
        #if DEBUG
        print("note: debug build; use `swift build -c release` for representative figures")
        #endif

        var common: [String] = ["--log-level", database.logLevel.rawValue]
        if let url = database.databaseURL { common += ["--database-url", url] }
        let natsArguments = nats.map { ["--nats-url", $0] } ?? []

        for part in partList {
            print("")
            print("== \(part) " + String(repeating: "=", count: max(3, 60 - part.count)))
            let partStart = clock.now
            do {
                switch part {
                case "append":
                    report.sizes[part] = quick ? "1 round of 2 s + 2 s per case" : "3 rounds of 2 s + 2 s per case"
                    let figures = try await BenchAppend.parse(common + (quick ? ["--quick"] : [])).measure(progress: progress)
                    progress.end()
                    report.append = figures
                    for line in figures.table() { print(line) }
                case "projection":
                    report.sizes[part] = quick ? "100/1,000/10,000 peers, 15 changes each; rebuild of 100,000 events"
                        : "100/1,000/10,000 peers, 40 changes each; rebuild of 1,000,000 events"
                    let figures = try await BenchProjection.parse(common + (quick ? ["--quick"] : [])).measure(progress: progress)
                    progress.end()
                    report.projection = figures
                    for line in figures.table() { print(line) }
                case "propagation":
                    report.sizes[part] = agentCounts.map { "\($0) agents × \(propagationChanges(agents: $0)) changes" }.joined(separator: ", ")
                    for (i, count) in agentCounts.enumerated() {
                        if i > 0 { print("") }
                        let runStart = clock.now
                        do {
                            let command = try BenchPropagation.parse(common + natsArguments + ["--agents", String(count), "--changes", String(propagationChanges(agents: count))])
                            let figures = try await command.measure(progress: progress.reporter)
                            progress.end()
                            report.propagation.append(figures)
                            report.propagationSummary.append(.init(agents: figures.agents, changes: figures.changes, latencyMs: Summary(figures.latenciesMs),
                                                                   baselineMs: Summary(figures.baselineMs),
                                                                   missing: max(0, figures.agents * figures.changes - figures.latenciesMs.count)))
                            for line in figures.table() { print(line) }
                        } catch {
                            progress.end()
                            print("propagation with \(count) agents FAILED: \(error)")
                            report.errors["propagation-\(count)"] = "\(error)"
                        }
                        report.partSeconds["propagation-\(count)"] = seconds(clock.now - runStart)
                    }
                case "api":
                    report.sizes[part] = quick ? "wrk -c 8, 2 s per endpoint" : "wrk -c 8, 8 s per endpoint"
                    let figures = try await BenchAPI.parse(common + (quick ? ["--quick"] : [])).measure(progress: progress)
                    progress.end()
                    report.api = figures
                    for line in figures.table() { print(line) }
                case "memory":
                    report.sizes[part] = "10,000 peers"
                    let figures = try await BenchMemory.parse(common + natsArguments).measure(progress: progress)
                    progress.end()
                    report.memory = figures
                    for line in figures.table() { print(line) }
                case "history":
                    report.sizes[part] = quick ? "100,000 events, 100 as-of reads" : "1,000,000 events, 300 as-of reads"
                    let figures = try await BenchHistory.parse(common + (quick ? ["--quick"] : [])).measure(progress: progress)
                    progress.end()
                    report.history = figures
                    for line in figures.lines() { print(line) }
                case "export":
                    report.sizes[part] = quick ? "audit export of 10,000 and 100,000 events" : "audit export of 100,000 and 1,000,000 events"
                    let figures = try await BenchExport.parse(common + (quick ? ["--quick"] : [])).measure(progress: progress)
                    progress.end()
                    for line in figures.table() { print(line) }
                case "scaleout":
                    report.sizes[part] = quick ? "1 and 3 controllers, 4 s each" : "1 and 3 controllers and 3 with tenant affinity, 8 s each"
                    let figures = try await BenchScaleOut.parse(common + ["--seconds", quick ? "4" : "8"] + (quick ? [] : ["--affinity"]))
                        .measure(progress: progress)
                    progress.end()
                    report.scaleout = figures
                    for line in figures.lines() { print(line) }
                default:
                    break
                }
            } catch {
                progress.end()
                print("\(part) FAILED: \(error)")
                report.errors[part] = "\(error)"
            }
            let elapsed = seconds(clock.now - partStart)
            report.partSeconds[part] = elapsed
            let load = MachineInfo.loadAverage()
            report.partLoadAverage[part] = load
            print("(\(part): \(Figure.fixed(elapsed, 0)) s; 1-minute load average \(load.map { Figure.fixed($0, 1) } ?? "?") on \(machine.cores) cores)")
        }

        report.totalSeconds = seconds(clock.now - start)
        report.computeTargets(partsRun: partList)
        print("")
        print("== summary " + String(repeating: "=", count: 53))
        for line in report.targetTable() { print(line) }
        if let r = report.projection?.rebuild, r.events < 1_000_000 {
            print("(rebuild target not checked: it is for 1,000,000 events, this run rebuilt \(Figure.grouped(Double(r.events))))")
        }
        let timing = report.partSeconds.sorted { $0.key < $1.key }.filter { !$0.key.hasPrefix("propagation-") || partList.contains("propagation") }
            .map { "\($0.key) \(Figure.fixed($0.value, 0)) s" }.joined(separator: ", ")
        print("total \(Figure.fixed(report.totalSeconds, 0)) s (\(Figure.fixed(report.totalSeconds / 60, 1)) min): \(timing)")
        if !report.errors.isEmpty { print("FAILED parts: \(report.errors.keys.sorted().joined(separator: ", "))") }

        if let json {
            try report.jsonData().write(to: URL(fileURLWithPath: json))
            print("wrote \(json)")
        }
        if let plot {
            let svg = BenchPlot.render(report: report)
            try Data(svg.utf8).write(to: URL(fileURLWithPath: plot))
            print("wrote \(plot) (\(svg.utf8.count / 1024) KiB)")
        }
        if check, let verdict = report.verdict {
            for line in verdict.unchecked { print("not checked: \(line)") }
            for line in verdict.failures { print("CHECK FAILED: \(line)") }
            print(verdict.passed ? "check: every target this run covers is met" : "check: \(verdict.failures.count) failure(s); exit 1")
            if !verdict.passed { throw ExitCode(1) }
        }
        if !report.errors.isEmpty { throw ExitCode(1) }
    }

    private func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}
