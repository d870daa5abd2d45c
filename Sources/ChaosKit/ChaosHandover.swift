import Foundation

// Partition handover after a controller kill: the tenants' projection and relay work is split into partitions held
// through PostgreSQL advisory locks (docs/ARCHITECTURE.md, "Scale-out"). When a controller is killed with -9, PostgreSQL
// frees its locks as the socket closes, and the surviving controllers must lock every one of its partitions within a
// bound (2 s). The run reads `pg_locks` around each kill; these are the pure parts: the samples and the check.

/// One controller kill and how long its partitions stayed without an owner.
public struct ChaosHandoverSample: Sendable, Equatable {
    /// When the kill was sent (run seconds) and which controller (index).
    public var killedAt: Double
    public var controller: Int
    /// Projection and relay partitions the killed controller held just before the kill.
    public var projectionPartitions: Int
    public var relayPartitions: Int
    /// Seconds from the kill until every partition was locked again by a controller that was alive (none by the killed
    /// one's sessions); nil when it did not happen within the measurement's limit.
    public var seconds: Double?
    /// Why this kill tells nothing about the handover (PostgreSQL unreachable, the killed controller held nothing);
    /// nil when it was measured.
    public var notMeasured: String?
    /// What the last reads of pg_locks saw, for a handover over the bound or never done (the check prints it).
    public var detail = ""

    public init(killedAt: Double, controller: Int, projectionPartitions: Int = 0, relayPartitions: Int = 0, seconds: Double? = nil,
                notMeasured: String? = nil) {
        self.killedAt = killedAt
        self.controller = controller
        self.projectionPartitions = projectionPartitions
        self.relayPartitions = relayPartitions
        self.seconds = seconds
        self.notMeasured = notMeasured
    }
}

extension ChaosChecks {
    /// The handover bound the issue sets: a killed owner's partitions are owned again within 2 s.
    public static let handoverBound = 2.0
    /// Seconds around a PostgreSQL failover or outage, or a controller partition, in which a kill's handover is not
    /// judged: every controller is reconnecting then (back-off), or the cut-off controller's sessions still hold locks.
    public static let handoverQuietMargin = 10.0

    /// Each controller kill's partition handover within `bound` seconds, except those that overlap another kill or a
    /// PostgreSQL fault (`disturbed`: windows of run seconds) or could not be measured; at least `minimum` judged, so a
    /// run that measured nothing fails.
    public static func handovers(_ samples: [ChaosHandoverSample], disturbed: [ClosedRange<Double>], bound: Double = handoverBound,
                                 minimum: Int = 1) -> ChaosCheck {
        var problems: [String] = []
        var judged: [Double] = []
        var skipped: [String: Int] = [:]
        let kills = samples.map(\.killedAt)
        for s in samples {
            let label = "controller \(s.controller + 1) killed at \(ChaosReport.at(s.killedAt).trimmingCharacters(in: .whitespaces))"
            if let reason = s.notMeasured {
                skipped[reason, default: 0] += 1
                continue
            }
            let end = s.killedAt + (s.seconds ?? bound)
            if kills.contains(where: { $0 > s.killedAt && $0 <= end }) {
                skipped["another kill before the handover ended", default: 0] += 1
                continue
            }
            if disturbed.contains(where: { $0.overlaps(s.killedAt...end) }) {
                skipped["a PostgreSQL fault or a partition nearby", default: 0] += 1
                continue
            }
            guard let seconds = s.seconds else {
                problems.append("\(label): its \(s.projectionPartitions) projection and \(s.relayPartitions) relay partition(s) were not all owned again within the measurement's limit"
                                + (s.detail.isEmpty ? "" : " (\(s.detail))"))
                continue
            }
            judged.append(seconds)
            if seconds > bound {
                problems.append("\(label): its partitions were owned again after \(String(format: "%.2f", seconds)) s, over the bound of \(String(format: "%.0f", bound)) s"
                                + (s.detail.isEmpty ? "" : " (\(s.detail))"))
            }
        }
        if judged.count < minimum {
            problems.append("\(judged.count) handover(s) measured, below the minimum of \(minimum)")
        }
        let sorted = judged.sorted()
        let figures = sorted.isEmpty ? "none"
            : String(format: "median %.2f s, worst %.2f s", sorted[sorted.count / 2], sorted[sorted.count - 1])
        let notJudged = skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        return ChaosCheck(name: "a killed controller's partitions owned again within \(String(format: "%.0f", bound)) s", passed: problems.isEmpty,
                          detail: "\(judged.count) handover(s) measured (minimum \(minimum)): \(figures)"
                            + (notJudged.isEmpty ? "" : "; not judged: \(notJudged)"),
                          problems: Array(problems.prefix(maxProblems)))
    }

    /// The windows in which a handover is not judged: each PostgreSQL failover (from the kill to `margin` after the
    /// promotion), each controller partition (from the cut to `margin` after the heal) and each PostgreSQL outage.
    public static func handoverDisturbances(_ tally: ChaosClusterTally, postgresDown: [ClosedRange<Double>],
                                            margin: Double = handoverQuietMargin) -> [ClosedRange<Double>] {
        var windows = postgresDown.map { $0.lowerBound...($0.upperBound + margin) }
        for e in tally.done(.failover) { windows.append(((e.killStarted ?? e.at) - 0.5)...(e.at + margin)) }
        for e in tally.done(.partition) { windows.append((e.at - 0.5)...((e.healed ?? .infinity) + margin)) }
        return windows
    }
}
