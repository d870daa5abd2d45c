import BenchKit
import ViewDistribution
import PostgresClient
import EventStore
import Foundation
import NATSClient

/// Everything `routeplane-bench all` measured, as `--json` writes it.
struct BenchReport: Codable, Sendable {
    var command: String
    var quick: Bool
    var startedAt: String
    var totalSeconds: Double = 0
    var machine: MachineInfo
    /// What each part ran with (sizes, rounds, changes), in words.
    var sizes: [String: String] = [:]
    var partSeconds: [String: Double] = [:]
    /// The machine's 1-minute load average at the end of each part (2 cores: above 2 means others' work competed).
    var partLoadAverage: [String: Double] = [:]
    var errors: [String: String] = [:]
    var append: AppendFigures?
    var projection: ProjectionFigures?
    var propagation: [PropagationFigures] = []
    var propagationSummary: [PropagationSummary] = []
    var api: APIFigures?
    var memory: MemoryFigures?
    var history: HistoryFigures?
    var scaleout: ScaleOutFigures?
    var targets: [TargetCheck] = []
    /// What `all --check` decides (failures and the targets this run did not cover).
    var verdict: PerformanceTargets.Verdict?

    struct PropagationSummary: Codable, Sendable {
        var agents: Int
        var changes: Int
        var latencyMs: Summary?
        var baselineMs: Summary?
        var missing: Int
    }

    /// Every target of `PerformanceTargets` that the measured parts can check, and the verdict of `all --check`.
    mutating func computeTargets(partsRun: [String] = []) {
        var checks: [(PerformanceTarget.ID, TargetCheck)] = []
        var skipped: Set<PerformanceTarget.ID> = []
        func add(_ id: PerformanceTarget.ID, _ value: Double, name: String? = nil) { checks.append((id, PerformanceTargets[id].check(value, name: name))) }
        for c in append?.cases ?? [] {
            add(c.batch == 1 ? .appendSingle : .appendBatch, c.ratio * 100, name: "append \(c.name) vs pgbench")
        }
        if let p = projection {
            if let growth = p.growth { add(.projectionGrowth, growth) }
            if let fewer = p.fewerViews { add(.projectionFewerViews, fewer) }
            // The target is for 1,000,000 events; --quick's smaller rebuild is dominated by the per-change tenants' views.
            if let r = p.rebuild, r.events >= 1_000_000 {
                add(.rebuild, r.eventsPerSecond, name: "rebuild of \(Figure.grouped(Double(r.events))) events")
            } else {
                skipped.insert(.rebuild)
            }
        }
        for s in propagationSummary {
            // Missing views count as infinitely late.
            let p99 = s.missing > 0 ? Double.infinity : (s.latencyMs?.p99 ?? .infinity)
            add(.propagation, p99, name: "propagation p99, \(Figure.grouped(Double(s.agents))) agents")
            if s.agents >= 10_000 {
                add(.propagationLarge, p99, name: "propagation p99, \(Figure.grouped(Double(s.agents))) agents")
                let raw = s.baselineMs?.p99 ?? .nan
                add(.propagationVsRaw, raw > 0 ? p99 / raw : .infinity)
            }
        }
        if !propagationSummary.contains(where: { $0.agents >= 10_000 }) { skipped.formUnion([.propagationLarge, .propagationVsRaw]) }
        // Answers other than 2xx count as no throughput at all.
        if let put = api?.rows.first(where: { $0.method == "PUT" && !$0.baseline }) { add(.apiPut, put.non2xx > 0 ? 0 : put.requestsPerSecond) }
        if let m = memory {
            add(.controllerMemory, Double(m.controllerPeakBytes) / Double(PerformanceTargets.megabyte),
                name: "controller RSS peak, \(Figure.grouped(Double(m.peers))) peers' views")
            add(.agentMemory, Double(m.agent.hwmBytes) / Double(PerformanceTargets.megabyte))
        }
        if let h = history {
            if h.events >= 1_000_000, let w = h.withSnapshots {
                add(.asOfRead, w.p99, name: "as-of read p99, \(Figure.grouped(Double(h.events))) events")
            } else {
                skipped.insert(.asOfRead)
            }
        }
        if let s = scaleout {
            add(.scaleOutWrites, s.writesRatio ?? .nan)
            add(.scaleOutCPU, s.cpuPerWriteRatio ?? .infinity)
        }
        targets = checks.map(\.1)
        verdict = PerformanceTargets.verdict(partsRun: partsRun, failedParts: errors.keys.map { $0.hasPrefix("propagation-") ? "propagation" : $0 },
                                             checks: checks, skipped: skipped)
    }

    func targetTable() -> [String] {
        var t = TextTable(headers: ["check", "figure", "target", "", "off by"], alignments: [.left, .right, .left, .left, .right])
        for c in targets {
            let value = c.value.isFinite ? (c.value >= 1_000 ? Figure.grouped(c.value) : Figure.fixed(c.value, c.value < 10 ? 2 : 0)) : "missing"
            t.add([c.name, value + " " + c.unit, c.direction.rawValue + " " + Figure.targetValue(c.target) + " " + c.unit, c.met ? "met" : "NOT met",
                   c.met ? "" : (c.shortfall.isFinite ? Figure.percent(c.shortfall) : "-")])
        }
        return t.render()
    }

    func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }
}

/// The machine and the versions of everything measured.
struct MachineInfo: Codable, Sendable {
    var cores: Int
    var memoryBytes: Int?
    var kernel: String
    var postgresql: String?
    var natsServer: String?
    var libnats: String
    var swiftCompiler: String
    var swiftToolchain: String?
    var build: String

    var oneLine: String {
        "\(cores) cores, \(memoryBytes.map { Figure.fixed(Double($0) / 1_073_741_824, 1) + " GiB" } ?? "? GiB"), Linux \(kernel); "
            + "PostgreSQL \(postgresql ?? "?"), nats-server \(natsServer ?? "?"), libnats \(libnats); \(swiftToolchain ?? swiftCompiler), \(build) build"
    }

    static func collect(databaseURL: String?, natsURL: String?) async -> MachineInfo {
        var info = MachineInfo(cores: ProcessInfo.processInfo.activeProcessorCount, memoryBytes: nil, kernel: kernelRelease(),
                               postgresql: nil, natsServer: nil, libnats: NATSConnection.libraryVersion,
                               swiftCompiler: compilerVersion, swiftToolchain: nil, build: buildConfiguration)
        if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) { info.memoryBytes = ProcStatus.bytes("MemTotal", in: meminfo) }
        if let databaseURL {
            let store = EventStore(url: BenchDatabase.url(databaseURL, database: "postgres"), maxConnections: 1)
            info.postgresql = try? await store.pool.withSession { try $0.query("SHOW server_version").first?.string("server_version") }
            await store.shutdown()
        }
        if let natsURL { info.natsServer = natsServerVersion(url: natsURL) }
        if info.natsServer == nil, let output = try? ChildProcess.output("/usr/bin/env", ["nats-server", "--version"], timeout: 10) {
            info.natsServer = output.split(separator: " ").last.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        if let output = try? ChildProcess.output("/usr/bin/env", ["swift", "--version"], timeout: 20),
           let first = output.split(separator: "\n").first(where: { $0.contains("Swift version") }) {
            info.swiftToolchain = first.trimmingCharacters(in: .whitespaces)
        }
        return info
    }

    /// The 1-minute load average (/proc/loadavg), or nil.
    static func loadAverage() -> Double? {
        guard let text = ChildProcess.readProcFile("/proc/loadavg"), let first = text.split(separator: " ").first else { return nil }
        return Double(first)
    }

    static var buildConfiguration: String {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }

    static var compilerVersion: String {
        #if compiler(>=6.4)
        "Swift compiler ≥ 6.4"
        #elseif compiler(>=6.3)
        "Swift compiler 6.3"
        #elseif compiler(>=6.2)
        "Swift compiler 6.2"
        #elseif compiler(>=6.1)
        "Swift compiler 6.1"
        #else
        "Swift compiler 6.0"
        #endif
    }

    static func kernelRelease() -> String {
        var name = utsname()
        guard uname(&name) == 0 else { return "?" }
        return withUnsafeBytes(of: &name.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// The `version` of the server's INFO greeting: connect over TCP (loopback, 2 s bound), read the first line.
    static func natsServerVersion(url: String) -> String? {
        guard let hostPort = url.split(separator: "/").last, let colon = hostPort.lastIndex(of: ":"),
              let port = UInt16(hostPort[hostPort.index(after: colon)...]) else { return nil }
        var host = String(hostPort[..<colon])
        if let at = host.lastIndex(of: "@") { host = String(host[host.index(after: at)...]) }
        if host == "localhost" { host = "127.0.0.1" }
        #if os(Linux)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var received = 0
        // Bounded: at most 8 reads, each bounded by the 2 s receive timeout.
        for _ in 0..<8 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + received, 4096 - received, 0) }
            if n <= 0 { break }
            received += n
            if buffer[..<received].contains(UInt8(ascii: "\n")) || received >= 4096 { break }
        }
        return NATSInfo.version(fromInfo: String(decoding: buffer[..<received], as: UTF8.self))
    }
}
