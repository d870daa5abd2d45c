import CommandSupport
import ArgumentParser
import AsyncHTTPClient
import BenchKit
import ControlPlane
import EventStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import RouteModel


/// `routeplane-bench scaleout`: writes/s through 1 controller and through 3 controllers on the same
/// database, in the same run, and where the CPU time goes (controllers, PostgreSQL backends, the rest).
///
/// The controllers are real `routeplane serve` child processes (each with its own pool and projection
/// runner; with NATS when ROUTEPLANE_NATS_URL is set, so the relay runs too). wrk (a separate C process)
/// PUTs route updates spread over several tenants, with the same total number of connections in both
/// phases: one wrk with `connections` against the single controller, then one wrk per controller with a
/// third of them each.
struct BenchScaleOut: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaleout",
        abstract: "Writes/s with 1 controller vs 3 controllers on one database (same run), with a CPU breakdown.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Seconds of load per phase.") var seconds = 10
    @Option(help: "Tenants the writes are spread over.") var tenants = 6
    @Option(help: "HTTP connections in total (split over the controllers).") var connections = 12
    @Option(help: "Controllers in the second phase.") var controllers = 3
    @Option(help: "First port for the controllers.") var basePort = 18_600
    @Flag(help: "Also measure 3 controllers with tenant affinity (controller i writes only tenants t % 3 == i): no cross-controller contention.")
    var affinity = false

    /// Routes per tenant, updated round-robin (the tenants keep their size, so every write costs the same).
    static let routesPerTenant = 100

    func run() async throws {
        #if DEBUG
        print("note: debug build; use `swift build -c release` and .build/release/routeplane for representative figures")
        #endif
        for line in try await measure().lines() { print(line) }
    }

    func measure(progress: BenchProgress? = nil) async throws -> ScaleOutFigures {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            throw ValidationError("wrk not found: run ops/setup (Debian package wrk)")
        }
        let server = try database.resolvedURL()
        let name = "routeplane_bench_scale_\(ProcessInfo.processInfo.processIdentifier)"
        let url = try await BenchDatabase.create(name: name, server: server)
        defer { BenchDatabase.drop(name: name, server: server) }
        var logger = Logger(label: "routeplane.bench.scaleout")
        logger.logLevel = .error
        let store = EventStore(url: url, maxConnections: 4, logger: logger)
        _ = try await Migrator(store: store).migrate(try Migrator.load(directory: Migrator.defaultDirectory()))
        let setup = ControlPlane(store: store, logger: logger)

        // Tenants with 10 Linux routing peers in one distribution group each.
        var tokens: [String] = []
        for t in 0..<tenants {
            let tenant = try await setup.createTenant(name: "bench-\(t)")
            tokens.append(try await setup.createToken(tenant: tenant, name: "bench").token)
            let peers = (0..<10).map { PeerID("p\($0)") }
            _ = try await setup.writer.write(tenant: tenant, actor: Actor(id: "bench"), requestID: "setup") { s in
                var state = s.state
                var events: [RouteEvent] = []
                let commands: [Command] = peers.enumerated().map { i, p in .enrollPeer(id: p, name: "peer\(i)", os: "linux", meshIP: "100.64.0.\(i + 1)") }
                    + [.createGroup(id: "clients", name: "clients", peers: peers)]
                    + (0..<Self.routesPerTenant).map { r in
                        .createRoute(id: RouteID("r\(r)"), RouteInput(networkID: "n\(r)", network: "10.\(r / 250).\(r % 250).0/24",
                                                                    peer: peers[r % peers.count], metric: 100, groups: ["clients"]))
                    }
                for command in commands {
                    let produced = try decideOrThrow(command, state)
                    for e in produced { state.apply(e) }
                    events += produced
                }
                return events
            }
        }
        await store.shutdown()

        let executable = Executables.sibling("routeplane")
        let scripts = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-scaleout-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scripts, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scripts) }
        let nats = ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_URL"]
        var figures = ScaleOutFigures(tenants: tenants, routesPerTenant: Self.routesPerTenant, connections: connections, seconds: seconds,
                                      cores: ProcessInfo.processInfo.activeProcessorCount, relay: nats != nil, phases: [])
        let phases: [(count: Int, affinity: Bool)] = [(1, false), (controllers, false)] + (affinity ? [(controllers, true)] : [])
        for (phase, (count, withAffinity)) in phases.enumerated() {
            let ports = (0..<count).map { basePort + 10 * phase + $0 }
            var children: [Process] = []
            defer { for c in children where c.isRunning { c.terminate() } ; for c in children { c.waitUntilExit() } }
            for port in ports {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                var arguments = ["serve", "--port", String(port), "--no-migrate", "--database-url", url, "--max-connections", "8"]
                if let nats { arguments += ["--nats-url", nats] }
                process.arguments = arguments
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                children.append(process)
            }
            for port in ports { try await Self.waitForHealth(port: port) }
            progress?.begin("scaleout: \(count) controller(s)\(withAffinity ? " with tenant affinity" : ""), \(seconds) s of PUTs")

            // One wrk per controller, each updating routes round-robin over the tenants (writers of different controllers
            // hit the same tenants: that is the contention several controllers see).
            let perController = max(1, connections / count)
            var wrks: [(Process, Pipe)] = []
            let cpuBefore = CPUSample.take(controllers: children.map(\.processIdentifier), databaseName: name)
            for (i, port) in ports.enumerated() {
                let mine = withAffinity ? tokens.enumerated().filter { $0.offset % count == i }.map(\.element) : tokens
                let tokenList = mine.map { "\"\($0)\"" }.joined(separator: ",")
                let script = scripts.appendingPathComponent("put-\(phase)-\(i).lua")
                try """
                    local tokens = {\(tokenList)}
                    local n = \(i * 1_000_000)
                    request = function()
                      n = n + 1
                      local r = math.floor(n / #tokens) % \(Self.routesPerTenant)
                      local body = string.format('{"network_id":"n%d","network":"10.%d.%d.0/24","peer":"p%d","metric":%d,"masquerade":true,"groups":["clients"],"enabled":true}', r, math.floor(r / 250), r % 250, r % 10, 1 + n % 9000)
                      return wrk.format("PUT", "/api/routes/r" .. r, {["Authorization"] = "Token " .. tokens[n % #tokens + 1], ["Content-Type"] = "application/json"}, body)
                    end
                    """.write(to: script, atomically: true, encoding: .utf8)
                let wrk = Process()
                wrk.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
                wrk.arguments = ["-c", String(perController), "-t", "1", "-d", "\(seconds)s", "--latency", "-s", script.path, "http://127.0.0.1:\(port)/api/routes"]
                let pipe = Pipe()
                wrk.standardOutput = pipe
                wrk.standardError = FileHandle.nullDevice
                try wrk.run()
                wrks.append((wrk, pipe))
            }
            var outputs: [WrkResult] = []
            for (wrk, pipe) in wrks {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                wrk.waitUntilExit()
                outputs.append(WrkResult(String(decoding: data, as: UTF8.self)))
            }
            let cpu = CPUSample.take(controllers: children.map(\.processIdentifier), databaseName: name) - cpuBefore
            let writes = outputs.map(\.requestsPerSecond).reduce(0, +)
            let p50 = outputs.map(\.p50).max() ?? 0
            let p99 = outputs.map(\.p99).max() ?? 0
            let errors = outputs.map(\.non2xx).reduce(0, +)
            figures.phases.append(.init(controllers: count, affinity: withAffinity, writesPerSecond: writes, p50Ms: p50, p99Ms: p99, non2xx: errors,
                                        cpuControllers: cpu.controllers, cpuPostgres: cpu.postgres, cpuOther: cpu.other))
        }
        return figures
    }

    static func waitForHealth(port: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            // The process-wide shared client (nothing to shut down).
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/healthz"), timeout: .seconds(2)),
               response.status == .ok { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("controller on port \(port) did not answer /healthz within 30 s")
    }
}

/// CPU seconds (user+system) used so far by the controllers, by the PostgreSQL processes serving the bench
/// database, and by everything else on the machine (wrk, other processes), read from /proc.
struct CPUSample {
    var controllers = 0.0
    var postgres = 0.0
    var other = 0.0

    static func take(controllers pids: [Int32], databaseName: String) -> CPUSample {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        func cpu(_ pid: Int32) -> Double {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = text.lastIndex(of: ")") else { return 0 }
            let fields = text[text.index(after: close)...].split(separator: " ")
            // After "pid (comm)": state is field 0, utime field 11, stime field 12.
            guard fields.count > 12 else { return 0 }
            return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticks
        }
        var sample = CPUSample()
        sample.controllers = pids.map(cpu).reduce(0, +)
        // Backends show their database in the process title: "postgres: user db 127.0.0.1(port) …".
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in all {
            guard let pid = Int32(entry), let cmd = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { continue }
            if cmd.hasPrefix("postgres:") && cmd.contains(" \(databaseName) ") { sample.postgres += cpu(pid) }
        }
        if let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = stat.split(separator: "\n").first {
            let values = line.split(separator: " ").dropFirst().compactMap { Double($0) }
            // user nice system (idle iowait) irq softirq steal: busy time of the whole machine.
            if values.count >= 8 {
                let busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
                sample.other = busy / ticks - sample.controllers - sample.postgres
            }
        }
        return sample
    }

    static func - (a: CPUSample, b: CPUSample) -> CPUSample {
        CPUSample(controllers: a.controllers - b.controllers, postgres: a.postgres - b.postgres, other: a.other - b.other)
    }
}

/// What `scaleout` measured: one row per phase (1 controller, N controllers, N with tenant affinity).
struct ScaleOutFigures: Codable, Sendable {
    struct Phase: Codable, Sendable {
        var controllers: Int
        var affinity: Bool
        var writesPerSecond: Double
        var p50Ms: Double
        var p99Ms: Double
        var non2xx: Int
        var cpuControllers: Double
        var cpuPostgres: Double
        var cpuOther: Double
    }

    var tenants: Int
    var routesPerTenant: Int
    var connections: Int
    var seconds: Int
    var cores: Int
    var relay: Bool
    var phases: [Phase]

    /// Controller plus PostgreSQL CPU seconds per write in `phase` (answers other than 2xx count as no writes).
    func cpuPerWrite(_ phase: Phase) -> Double {
        let writes = phase.non2xx > 0 ? 0 : phase.writesPerSecond * Double(seconds)
        return writes > 0 ? (phase.cpuControllers + phase.cpuPostgres) / writes : .infinity
    }

    var single: Phase? { phases.first { $0.controllers == 1 } }
    var several: Phase? { phases.first { $0.controllers > 1 && !$0.affinity } }

    /// Writes/s of several controllers over one's (the scale-out target), answers other than 2xx counting as none.
    var writesRatio: Double? {
        guard let one = single, let many = several, one.writesPerSecond > 0 else { return nil }
        return many.non2xx > 0 ? 0 : many.writesPerSecond / one.writesPerSecond
    }

    /// CPU per write of several controllers over one's.
    var cpuPerWriteRatio: Double? {
        guard let one = single, let many = several else { return nil }
        let base = cpuPerWrite(one)
        return base.isFinite && base > 0 ? cpuPerWrite(many) / base : .infinity
    }

    func lines() -> [String] {
        var lines = ["routeplane-bench scaleout: PUT /api/routes/{id} (unconditional, a new metric each) over \(tenants) tenants of \(routesPerTenant) routes and 10 peers, "
                     + "\(connections) connections in total, \(seconds) s per phase, \(cores) cores, NATS relay \(relay ? "on" : "off")"]
        lines.append(pad("controllers", 13) + pad("writes/s", 10) + pad("p50 ms", 9) + pad("p99 ms", 9) + pad("non-2xx", 9)
                     + pad("CPU s: controllers", 20) + pad("postgres", 10) + pad("other", 8) + "CPU ms per write (ctl / pg)")
        for p in phases {
            let total = max(p.writesPerSecond * Double(seconds), 1)
            lines.append(pad(p.affinity ? "\(p.controllers) (affinity)" : String(p.controllers), 13) + pad(String(format: "%.0f", p.writesPerSecond), 10)
                         + pad(String(format: "%.1f", p.p50Ms), 9) + pad(String(format: "%.1f", p.p99Ms), 9) + pad(String(p.non2xx), 9)
                         + pad(String(format: "%.1f", p.cpuControllers), 20) + pad(String(format: "%.1f", p.cpuPostgres), 10) + pad(String(format: "%.1f", p.cpuOther), 8)
                         + String(format: "%.2f / %.2f", 1000 * p.cpuControllers / total, 1000 * p.cpuPostgres / total))
        }
        if let ratio = writesRatio, let many = several {
            lines.append(String(format: "  %d controllers: %.2f× the writes/s of 1 (same database, same run; target ≥ %.2f×), controller + PostgreSQL CPU per write %.2f× of 1's (target ≤ %.2f×). "
                                + "The machine has %d cores; the CPU columns say who used them.", many.controllers, ratio, PerformanceTargets[.scaleOutWrites].target,
                                cpuPerWriteRatio ?? .infinity, PerformanceTargets[.scaleOutCPU].target, cores))
        }
        if let one = single, let affine = phases.first(where: \.affinity), one.writesPerSecond > 0 {
            lines.append(String(format: "  %d controllers with tenant affinity: %.2f× the writes/s of 1 (the difference to the row above is cross-controller contention on a tenant).",
                                affine.controllers, affine.writesPerSecond / one.writesPerSecond))
        }
        return lines
    }
}
