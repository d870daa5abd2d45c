import Foundation
import Projections
import Synchronization
import ViewDistribution
#if canImport(Glibc)
import Glibc
#endif

/// `bench propagation --stages`: where the wall time between a change's commit and its last receive goes.
/// The projection runner and the relay report CLOCK_MONOTONIC timestamps per batch (their `onBatchTiming` hooks);
/// the simulated agents' receive times are on the same clock. Per change it prints the projection's stages
/// (wake-up, apply, write, commit), the relay's (first claim after the projection's commit, per-stage sums over
/// its batches: claim, build+sign, publish→last ack, mark+commit) and the receive spread; and the CPU of every
/// process in the pipeline over the changes (this process, the agents' process, the PostgreSQL backends of the
/// bench's database, the machine's nats-server processes), read from /proc.
final class PropagationStages: Sendable {
    let projection = Mutex<[ProjectionBatchTiming]>([])
    let relay = Mutex<[RelayBatchTiming]>([])
    let database: String

    init(database: String) {
        self.database = database
    }

    /// CPU seconds (user + system) of the pipeline's other processes: PostgreSQL backends of our database (by
    /// their process title) and every nats-server process on the machine (the bench's is one of them; a test's
    /// private server would be counted too).
    struct ProcessCPU: Sendable {
        var postgres: Double
        var nats: Double
    }

    func otherCPU() -> ProcessCPU {
        var cpu = ProcessCPU(postgres: 0, nats: 0)
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return cpu }
        for pid in entries where pid.allSatisfy(\.isNumber) {
            guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            let cmdline = String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            let isBackend = cmdline.hasPrefix("postgres: ") && cmdline.contains(" \(database) ")
            let isNATS = cmdline.contains("nats-server")
            guard isBackend || isNATS,
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            if isBackend { cpu.postgres += (user + system) / ticks } else { cpu.nats += (user + system) / ticks }
        }
        return cpu
    }

    /// One block per change, then the means. `committedAt`: version → commit time; `views`: version → receive times.
    func report(committedAt: [Int64: UInt64], views: [Int64: [UInt64]], cpu: (controller: Double, agents: Double?, other: ProcessCPU),
                messages: Int) -> [String] {
        let projection = self.projection.withLock { $0 }
        let relay = self.relay.withLock { $0 }.sorted { $0.began < $1.began }
        func ms(_ a: UInt64, _ b: UInt64) -> Double { (Double(b) - Double(a)) / 1e6 }
        var lines = ["stages (ms after the change's commit, CLOCK_MONOTONIC; sums over the change's relay batches):"]
        var sums: [String: Double] = [:]
        let versions = committedAt.keys.sorted()
        for (k, version) in versions.enumerated() {
            guard let committed = committedAt[version],
                  let batch = projection.first(where: { $0.lastSequence == version }) else {
                lines.append("  v\(version): no projection batch reported"); continue
            }
            let end = k + 1 < versions.count ? committedAt[versions[k + 1]] ?? .max : .max
            let batches = relay.filter { $0.began >= batch.committed && $0.began < end && $0.messages > 0 }
            let times = (views[version] ?? []).sorted()
            var row: [(String, Double)] = [
                ("wake→projection", ms(committed, batch.began)),
                ("apply", ms(batch.began, batch.applied)),
                ("write", ms(batch.applied, batch.written)),
                ("commit", ms(batch.written, batch.committed)),
            ]
            if let first = batches.first {
                row += [("NOTIFY→1st claim", ms(batch.committed, first.began)),
                        ("1st batch claim", ms(first.began, first.claimed)),
                        ("1st batch sign", ms(first.claimed, first.signed)),
                        ("1st batch acks", ms(first.signed, first.acknowledged)),
                        ("1st batch commit", ms(first.acknowledged, first.committed))]
            }
            row += [("first receive", times.first.map { ms(committed, $0) } ?? .nan),
                    ("relay batches", Double(batches.count)),
                    ("Σ claim", batches.reduce(0) { $0 + ms($1.began, $1.claimed) }),
                    ("Σ sign", batches.reduce(0) { $0 + ms($1.claimed, $1.signed) }),
                    ("Σ acks", batches.reduce(0) { $0 + ms($1.signed, $1.acknowledged) }),
                    ("Σ mark+commit", batches.reduce(0) { $0 + ms($1.acknowledged, $1.committed) }),
                    ("last ack", batches.map(\.acknowledged).max().map { ms(committed, $0) } ?? .nan),
                    ("last relay commit", batches.map(\.committed).max().map { ms(committed, $0) } ?? .nan),
                    ("p50 receive", times.isEmpty ? .nan : ms(committed, times[times.count / 2])),
                    ("p99 receive", times.isEmpty ? .nan : ms(committed, times[min(times.count - 1, times.count * 99 / 100)])),
                    ("last receive", times.last.map { ms(committed, $0) } ?? .nan)]
            lines.append("  v\(version) (\(batch.viewsChanged) views): " + row.map { "\($0.0) " + String(format: "%.1f", $0.1) }.joined(separator: ", "))
            for (name, value) in row { sums[name, default: 0] += value }
        }
        if !versions.isEmpty {
            let order = ["wake→projection", "apply", "write", "commit", "NOTIFY→1st claim", "1st batch claim", "1st batch sign", "1st batch acks",
                         "1st batch commit", "first receive", "relay batches", "Σ claim", "Σ sign", "Σ acks", "Σ mark+commit", "last ack",
                         "last relay commit", "p50 receive", "p99 receive", "last receive"]
            lines.append("  mean: " + order.compactMap { name in sums[name].map { "\(name) " + String(format: "%.1f", $0 / Double(versions.count)) } }
                .joined(separator: ", "))
        }
        let per = { (seconds: Double) in String(format: "%.1f µs", seconds * 1e6 / Double(max(messages, 1))) }
        lines.append("  CPU per view message over the changes: controller process \(per(cpu.controller)), agents' process "
                     + (cpu.agents.map(per) ?? "?") + ", PostgreSQL backends of the bench database \(per(cpu.other.postgres)), "
                     + "nats-server processes \(per(cpu.other.nats)) (also counts anything else using them)")
        // The floor no schedule can beat: the pipeline's CPU per change spread over every core.
        if let agents = cpu.agents, !versions.isEmpty {
            let perChange = (cpu.controller + agents + cpu.other.postgres + cpu.other.nats) / Double(versions.count)
            let cores = ProcessInfo.processInfo.activeProcessorCount
            lines.append(String(format: "  pipeline CPU per change: %.2f s; on %d cores no schedule delivers the last view before %.0f ms",
                                perChange, cores, perChange / Double(max(cores, 1)) * 1000))
        }
        return lines
    }
}
