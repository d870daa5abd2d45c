import ArgumentParser
import BenchKit
import Foundation
import Glibc

/// `bench memory --soak SECONDS`: the agent that applied its view is restarted from its state folder with its controller
/// and NATS unreachable (ports where nothing listens: every connect is refused at once, so it retries as fast as its
/// back-off lets it — the reconnect storm), and its resident set is read every 10 s. The figure is the growth from the
/// first reading after a warm-up (a tenth of the soak, at most 60 s) to the last; target < 1 MiB.
struct SoakFigures: Codable, Sendable {
    var seconds: Double
    var warmUpSeconds: Double
    var samples: Int
    var first: ProcessMemory
    var last: ProcessMemory
    var maxRSSBytes: Int
    /// The agent's log meanwhile (at info): its lines, and its three most frequent messages with their counts.
    var logLines: Int
    var mostLogged: [String]
    static let targetGrowthBytes = 1 << 20

    var growthBytes: Int { last.rssBytes - first.rssBytes }
    var anonymousGrowthBytes: Int? { last.anonymousBytes.flatMap { l in first.anonymousBytes.map { l - $0 } } }
    var met: Bool { growthBytes < Self.targetGrowthBytes }

    func lines() -> [String] {
        func kib(_ b: Int) -> String { String(format: "%+.1f KiB", Double(b) / 1024) }
        return [
            "soak: the agent restarted from its state with its controller and NATS unreachable (connects refused) for "
                + String(format: "%.0f s", seconds) + "; \(samples) readings of /proc/PID/status every 10 s after a "
                + String(format: "%.0f s", warmUpSeconds) + " warm-up; its log: \(logLines) lines, most frequent: " + mostLogged.joined(separator: " | "),
            "  VmRSS " + Figure.megabytes(first.rssBytes) + " after the warm-up → " + Figure.megabytes(last.rssBytes) + " at the end ("
                + kib(growthBytes) + "; RssAnon " + (anonymousGrowthBytes.map(kib) ?? "-") + "), highest reading " + Figure.megabytes(maxRSSBytes)
                + "; threads \(first.threads) → \(last.threads)",
            "  target: growth < 1 MiB (1,048,576 bytes): " + (met ? "met" : "NOT met"),
        ]
    }
}

extension BenchMemory {
    /// A loopback port where nothing listens (bound once to learn a free number, then closed).
    static func closedLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw ValidationError("bind: \(String(cString: strerror(errno)))") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs the soak on the enrolled agent's state folder `stateDir`.
    func runSoak(seconds: Double, executable: String, stateDir: String, scratch: URL, progress: BenchProgress?) async throws -> SoakFigures {
        guard seconds >= 20 else { throw ValidationError("--soak must be at least 20 seconds") }
        let controllerPort = try Self.closedLoopbackPort()
        let natsPort = try Self.closedLoopbackPort()
        let log = scratch.appendingPathComponent("agent-soak.log").path
        progress?.begin("memory: soak, the agent with its controller and NATS unreachable for " + String(format: "%.0f s", seconds))
        let agent = try ChildProcess.start(executable, ["--controller", "http://127.0.0.1:\(controllerPort)", "--nats-url", "nats://127.0.0.1:\(natsPort)",
                                                        "--state-dir", stateDir, "--applier", "dry-run", "--assume-candidates-up", "--log-level", "info"],
                                           log: log)
        defer { agent.stop() }
        let warmUp = min(60, seconds / 10)
        let start = ContinuousClock.now
        try await Task.sleep(for: .seconds(warmUp))
        guard agent.isRunning else { throw ValidationError("the agent exited during the soak's warm-up: \(agent.logTail())") }
        let first = try agent.memory()
        var last = first
        var maxRSS = first.rssBytes
        var samples = 1
        let end = start + .seconds(seconds)
        while ContinuousClock.now < end {
            try await Task.sleep(for: min(.seconds(10), end - ContinuousClock.now))
            guard agent.isRunning else { throw ValidationError("the agent exited during the soak: \(agent.logTail())") }
            last = try agent.memory()
            maxRSS = max(maxRSS, last.rssBytes)
            samples += 1
        }
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        // What it logged, most frequent first, without the timestamp (the first word) and metadata after 90 characters.
        var counts: [String: Int] = [:]
        for line in lines { counts[String(line.split(separator: " ", maxSplits: 1).last?.prefix(90) ?? ""), default: 0] += 1 }
        let top = counts.sorted { $0.value > $1.value }.prefix(3).map { "\($0.value)× \($0.key)" }
        return SoakFigures(seconds: seconds, warmUpSeconds: warmUp, samples: samples, first: first, last: last, maxRSSBytes: maxRSS,
                           logLines: lines.count, mostLogged: top)
    }
}
