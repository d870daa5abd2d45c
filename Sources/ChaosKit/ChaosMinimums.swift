import Foundation

// A check over no work passes vacuously: every check of the run states the work it covered and a minimum below which
// it fails. The minimums, the bound on requests that were never sent, and the check that every planned fault happened.

/// The least work a run must have covered for its checks to mean something, and the bounds on requests never sent.
/// Stated in the output next to each figure.
public struct ChaosMinimums: Sendable, Equatable {
    public init(acknowledgedWrites: Int, failedWrites: Int, bursts: Int, requests: Int, kills: Int, agents: Int, appliedViews: Int,
                maxUnsentWhileUp: Int, maxUnsentShare: Double) {
        self.acknowledgedWrites = acknowledgedWrites
        self.failedWrites = failedWrites
        self.bursts = bursts
        self.requests = requests
        self.kills = kills
        self.agents = agents
        self.appliedViews = appliedViews
        self.maxUnsentWhileUp = maxUnsentWhileUp
        self.maxUnsentShare = maxUnsentShare
    }

    public var acknowledgedWrites: Int
    /// Writes answered with an error (409/412 of the bursts at least) or refused.
    public var failedWrites: Int
    /// Concurrent If-Match bursts.
    public var bursts: Int
    public var requests: Int
    /// Controller kills actually done (each planned kill must happen as well).
    public var kills: Int
    /// Every simulated agent of the run is checked.
    public var agents: Int
    public var appliedViews: Int
    /// Requests that never reached a controller that was up all along (a connect that was refused or timed out
    /// against a running controller): at most this many.
    public var maxUnsentWhileUp: Int
    /// Requests never sent (mostly refused by a killed controller): at most this share of all requests.
    public var maxUnsentShare: Double

    /// One line for the start of the run.
    public var summary: String {
        "minimums: \(acknowledgedWrites) acknowledged writes, \(failedWrites) failed writes, \(bursts) If-Match bursts, \(requests) requests, "
            + "\(kills) controller kills (and every planned one), \(agents) agents, \(appliedViews) applied views; never sent: at most "
            + String(format: "%.0f %%", maxUnsentShare * 100) + ", at most \(maxUnsentWhileUp) to a controller that was up"
    }

    /// The minimums of a run, from its settings. A short debug run (30 s) acknowledged 1,316 writes in 7 kills on
    /// this machine; the minimums are several times lower, so a loaded machine passes while an idle run fails:
    /// 5 acknowledged writes and 1 If-Match burst per second of faults, a kill per two mean intervals after the first
    /// 6 s (at least 3), every agent, an applied view per agent.
    public static func forRun(_ s: ChaosSettings) -> ChaosMinimums {
        let agents = s.tenants * s.agentsPerTenant
        return ChaosMinimums(
            acknowledgedWrites: max(50, Int(s.duration * 5)), failedWrites: max(5, Int(s.duration / 2)), bursts: max(5, Int(s.duration / 2)),
            requests: max(100, Int(s.duration * 10)), kills: max(3, Int((s.duration - 6) / (s.killEvery * 2))), agents: agents,
            appliedViews: agents, maxUnsentWhileUp: 3, maxUnsentShare: 0.4)
    }
}

extension ChaosChecks {
    /// `check` with the work it covered stated (`minimum M`), failed when the work is below the minimum.
    public static func covered(_ check: ChaosCheck, work: Int, minimum: Int, of what: String) -> ChaosCheck {
        var c = check
        c.detail += " (minimum \(minimum))"
        if work < minimum {
            c.passed = false
            c.problems.insert("only \(work) \(what), below the minimum of \(minimum): the check covered too little to mean anything", at: 0)
        }
        return c
    }

    /// Requests that never reached a controller: counted, and bounded. Refused by a killed controller is expected (up
    /// to `maxUnsentShare` of all requests); never sent to a controller that was up all along (refused, or the connect
    /// timed out) is at most `maxUnsentWhileUp`.
    public static func unsent(_ records: [ChaosRequestRecord], minimums m: ChaosMinimums) -> ChaosCheck {
        let unsent = records.filter { $0.outcome == .notSent }
        let whileUp = unsent.filter { !$0.controllerKilledDuring }
        let share = records.isEmpty ? 0 : Double(unsent.count) / Double(records.count)
        var problems: [String] = []
        if whileUp.count > m.maxUnsentWhileUp {
            problems.append("\(whileUp.count) requests never reached a controller that was up (at most \(m.maxUnsentWhileUp))")
        }
        if share > m.maxUnsentShare {
            problems.append(String(format: "%.1f %% of the requests were never sent (at most %.0f %%)", share * 100, m.maxUnsentShare * 100))
        }
        problems += whileUp.prefix(maxProblems - problems.count).map { "\($0.requestID) (\($0.kind.rawValue)): not sent to controller \($0.controller + 1), which was up" }
        return ChaosCheck(name: "requests never sent: counted and bounded", passed: whileUp.count <= m.maxUnsentWhileUp && share <= m.maxUnsentShare,
                          detail: String(format: "%d of %d requests never sent (%.1f %%, at most %.0f %%), %d of them to a controller that was up (at most %d)",
                                         unsent.count, records.count, share * 100, m.maxUnsentShare * 100, whileUp.count, m.maxUnsentWhileUp),
                          problems: Array(problems.prefix(maxProblems)))
    }

    /// Every planned fault was injected and healed: each planned kill done (none skipped), at least the minimum of kills,
    /// every killed controller restarted, PostgreSQL and NATS restarted once each.
    public static func faultsInjected(_ f: ChaosFaultTally, plannedKills: Int, minimums m: ChaosMinimums) -> ChaosCheck {
        var problems = f.serviceErrors
        if f.kills < plannedKills { problems.append("\(plannedKills - f.kills) of \(plannedKills) planned controller kills were not done") }
        problems += f.skippedKills
        if f.kills < m.kills { problems.append("only \(f.kills) controller kills, below the minimum of \(m.kills)") }
        if f.controllerRestarts < f.kills { problems.append("\(f.kills - f.controllerRestarts) killed controllers were not restarted") }
        if f.postgresRestarts != 1 { problems.append("PostgreSQL restarted \(f.postgresRestarts) times, planned once") }
        if f.natsRestarts != 1 { problems.append("NATS restarted \(f.natsRestarts) times, planned once") }
        return ChaosCheck(name: "every fault was injected and healed", passed: problems.isEmpty,
                          detail: "\(f.kills) of \(plannedKills) planned controller kills (minimum \(m.kills)), \(f.controllerRestarts) restarts; "
                            + "PostgreSQL restarts \(f.postgresRestarts), NATS restarts \(f.natsRestarts)",
                          problems: Array(problems.prefix(maxProblems)))
    }
}
