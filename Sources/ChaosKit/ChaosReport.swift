import Foundation

/// The faults a run injected and how they healed, as the shell counts them.
public struct ChaosFaultTally: Sendable {
    public var kills = 0
    /// Planned kills that could not be done (fewer than two controllers up for too long), one line each.
    public var skippedKills: [String] = []
    public var controllerRestarts = 0
    public var startFailures = 0
    public var crashes: [String] = []
    public var postgresRestarts = 0
    public var natsRestarts = 0
    public var lastHealed = 0.0
    public var serviceErrors: [String] = []
    /// When PostgreSQL answered again after its restart.
    public var postgresBack: Double?
    /// When NATS answered again, and every peer's view version at that moment.
    public var natsBack: (at: Double, versions: [ChaosViewKey: Int64])?
    /// From each PostgreSQL stop to its answering again (run seconds).
    public var postgresDown: [ClosedRange<Double>] = []
    /// Each controller kill's partition handover (ChaosHandover.swift).
    public var handovers: [ChaosHandoverSample] = []

    public init() {}
}

/// Where the run ended up after the last fault: projections at their heads, outbox sent, agents on their views.
public struct ChaosConvergence: Sendable {
    public var reached: Bool
    public var seconds: Double
    public var detail: String
    public var projected: [ChaosViewKey: ChaosProjectedView]
    public var histories: [ChaosAgentHistory]

    public init(reached: Bool, seconds: Double, detail: String, projected: [ChaosViewKey: ChaosProjectedView], histories: [ChaosAgentHistory]) {
        self.reached = reached
        self.seconds = seconds
        self.detail = detail
        self.projected = projected
        self.histories = histories
    }
}

/// What the run prints and writes: the request table and the summary. Pure text from the records.
public enum ChaosReport {
    /// Seconds since the start, as the run's lines begin (`   12.3 s`).
    public static func at(_ seconds: Double) -> String { String(format: "%7.1f s", seconds) }

    /// Every request of the run, one per line (tab-separated), by start time: for looking into a failure.
    public static func requestsTSV(_ records: [ChaosRequestRecord]) -> String {
        var text = "start\tend\trequest_id\ttenant\tkind\tcontroller\tif_match\tburst\tkilled\toutcome\n"
        for r in records.sorted(by: { $0.start < $1.start }) {
            let outcome: String = switch r.outcome {
            case .answered(let status, let sequence, let retryAfter, let message):
                "\(status)\(sequence.map { " seq=\($0)" } ?? "")\(retryAfter.map { " retry-after=\($0)" } ?? "") \(message ?? "")"
            case .notSent: "not sent"
            case .unknown(let reason, _): "unknown: \(reason)"
            }
            text += String(format: "%.3f\t%.3f\t", r.start, r.end)
                + "\(r.requestID)\t\(r.tenant)\t\(r.kind.rawValue)\t\(r.controller + 1)\t\(r.conditional)\t\(r.burst.map(String.init) ?? "")\t\(r.controllerKilledDuring)\t\(outcome)\n"
        }
        return text
    }

    /// The summary and the checks, as printed at the end of the run.
    public static func summary(settings: ChaosSettings, runID: String, records: [ChaosRequestRecord], faults f: ChaosFaultTally,
                               unknown: (total: Int, committed: Int), convergence: ChaosConvergence, reference: Double, agentRestarts: Int,
                               checks: [ChaosCheck]) -> [String] {
        let c = ChaosCounts.from(records)
        let bursts = Set(records.compactMap(\.burst)).count
        var lines: [String] = []
        func say(_ line: String) { lines.append(line) }
        say("")
        say("summary (seed \(settings.seed), run \(runID), \(Int(settings.duration)) s of faults):")
        say("  reproduce             ops/chaos --duration \(Int(settings.duration)) --seed \(settings.seed) (the same fault plan and workload choices; timing differs)")
        say("  writes sent           \(c.writes) (\(records.count(where: { $0.burst != nil })) in \(bursts) concurrent If-Match bursts)")
        say("  acknowledged (2xx)    \(c.acknowledged)")
        say("  conflicts             \(c.conflicts409 + c.preconditionFailed412) (409: \(c.conflicts409), 412: \(c.preconditionFailed412))")
        say("  503 with Retry-After  \(c.unavailable503) writes, \(c.reads503) reads")
        say("  other 4xx             \(c.otherClientErrors)")
        say("  refused (ctrl down)   \(c.notSent)")
        say("  unknown outcome       \(unknown.total) (connection broke: controller killed): \(unknown.committed) committed, \(unknown.total - unknown.committed) not")
        say("  reads                 \(c.reads)")
        say("  kills                 \(f.kills) controller kill -9, \(f.controllerRestarts) restarts (\(f.startFailures) start attempts exited early)")
        say("  service restarts      PostgreSQL \(f.postgresRestarts), NATS \(f.natsRestarts) (\(String(format: "%.0f", settings.outage)) s down each)")
        say("  agents                \(convergence.histories.count), \(convergence.histories.reduce(0) { $0 + $1.applied.count }) views applied, \(agentRestarts) agent restarts")
        if let back = f.postgresBack {
            let r = ChaosChecks.recovery(records, since: back)
            say("  PostgreSQL back       at \(at(back).trimmingCharacters(in: .whitespaces)): first write acknowledged "
                + (r.firstSuccess.map { String(format: "%.2f s", $0) } ?? "never") + " later; last 503 "
                + (r.last503.map { String(format: "%+.2f s", $0) } ?? "none"))
        }
        if let back = f.natsBack {
            let catchUp = ChaosChecks.catchUp(convergence.histories, targets: back.versions, since: back.at)
            say("  NATS back             at \(at(back.at).trimmingCharacters(in: .whitespaces)): every agent had its view of that moment "
                + (catchUp.map { String(format: "%.2f s", $0) } ?? "NEVER") + " later")
        }
        say(String(format: "  convergence           %@ %.2f s after the last fault (writes stopped and services healed at %.1f s)",
                   convergence.reached ? "every agent on its projected view" : "NOT reached;", convergence.seconds, reference))
        say("")
        say("checks:")
        for check in checks {
            say("  \(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)")
            for p in check.problems { say("         - \(p)") }
        }
        let failed = checks.filter { !$0.passed }.count
        say(failed == 0 ? "routeplane-chaos: PASSED" : "routeplane-chaos: FAILED (\(failed) check(s)); logs in \(settings.workDir)")
        return lines
    }
}
