/// Every performance target `routeplane-bench all` checks, as data in one place: the parts print their own
/// "met / NOT met" from here, the summary builds its `TargetCheck`s from here, and `all --check` fails the run on
/// any of them. Memory is in MB = 10^6 bytes, as the targets are written (200 MB is 190.7 MiB).
public struct PerformanceTarget: Sendable, Equatable, Codable {
    public enum ID: String, CaseIterable, Sendable, Codable {
        case appendSingle = "append-single"
        case appendBatch = "append-batch"
        case projectionGrowth = "projection-growth"
        case projectionFewerViews = "projection-fewer-views"
        case rebuild
        case propagation = "propagation-p99"
        case propagationLarge = "propagation-p99-10000"
        case propagationVsRaw = "propagation-vs-libnats-10000"
        case apiPut = "api-put"
        case controllerMemory = "controller-memory"
        case agentMemory = "agent-memory"
        case asOfRead = "as-of-read"
        case scaleOutWrites = "scale-out-writes"
        case scaleOutCPU = "scale-out-cpu-per-write"
    }

    public var id: ID
    /// The `bench all` part that measures it.
    public var part: String
    public var name: String
    public var direction: TargetCheck.Direction
    public var target: Double
    public var unit: String
    /// When the part checks it only at a size (e.g. "1,000,000 events"): what a smaller run leaves unchecked.
    public var onlyAt: String?

    /// This target's check of `value`, named `name` when given (e.g. with the run's size in it).
    public func check(_ value: Double, name: String? = nil) -> TargetCheck {
        TargetCheck(name: name ?? self.name, value: value, direction: direction, target: target, unit: unit)
    }

    public func met(_ value: Double) -> Bool { check(value).met }
}

public enum PerformanceTargets {
    /// 1 MB, the unit of the memory targets.
    public static let megabyte = 1_000_000

    public static let all: [PerformanceTarget] = [
        .init(id: .appendSingle, part: "append", name: "append, single event, vs pgbench plain INSERT", direction: .atLeast, target: 70, unit: "%"),
        .init(id: .appendBatch, part: "append", name: "append, batches of 100, vs pgbench plain INSERT", direction: .atLeast, target: 50, unit: "%"),
        .init(id: .projectionGrowth, part: "projection", name: "projection ms/change 10,000 vs 100 peers", direction: .atMost, target: 2, unit: "x"),
        .init(id: .projectionFewerViews, part: "projection", name: "projection views vs full recompute (10,000 peers)", direction: .atLeast,
              target: 50, unit: "x fewer"),
        .init(id: .rebuild, part: "projection", name: "rebuild", direction: .atLeast, target: 100_000, unit: "events/s", onlyAt: "1,000,000 events"),
        .init(id: .propagation, part: "propagation", name: "propagation p99", direction: .below, target: 1_000, unit: "ms"),
        .init(id: .propagationLarge, part: "propagation", name: "propagation p99, 10,000 agents", direction: .below, target: 500, unit: "ms",
              onlyAt: "10,000 agents"),
        .init(id: .propagationVsRaw, part: "propagation", name: "propagation p99 vs raw libnats p99, 10,000 agents", direction: .atMost, target: 8,
              unit: "x", onlyAt: "10,000 agents"),
        .init(id: .apiPut, part: "api", name: "API PUT one route, 8 connections", direction: .atLeast, target: 1_000, unit: "req/s"),
        .init(id: .controllerMemory, part: "memory", name: "controller RSS peak, 10,000 peers' views", direction: .below, target: 200, unit: "MB"),
        .init(id: .agentMemory, part: "memory", name: "agent RSS peak", direction: .below, target: 20, unit: "MB"),
        .init(id: .asOfRead, part: "history", name: "as-of read p99", direction: .below, target: 100, unit: "ms", onlyAt: "1,000,000 events"),
        .init(id: .scaleOutWrites, part: "scaleout", name: "3 controllers' writes/s vs 1's (one database)", direction: .atLeast, target: 0.9, unit: "x"),
        .init(id: .scaleOutCPU, part: "scaleout", name: "3 controllers' CPU per write vs 1's", direction: .atMost, target: 1.15, unit: "x"),
    ]

    public static subscript(_ id: PerformanceTarget.ID) -> PerformanceTarget {
        // Every ID has exactly one entry (a unit test holds it).
        all.first { $0.id == id }!
    }

    /// A memory target in bytes (MB = 10^6).
    public static func bytes(_ id: PerformanceTarget.ID) -> Int { Int(self[id].target) * megabyte }

    /// The verdict of `all --check`: the run fails when a part failed, when a check is not met, or when a part
    /// that ran produced no check for one of its targets that its size covers (a figure that went missing must not
    /// pass silently). `unchecked` lists the targets that the run's sizes did not cover (e.g. `--quick`'s rebuild).
    public struct Verdict: Sendable, Equatable, Codable {
        public var failures: [String]
        public var unchecked: [String]
        public var passed: Bool { failures.isEmpty }
    }

    /// `checks` carry the IDs they were made for; `skipped` are the targets a part ran below the size they need.
    public static func verdict(partsRun: [String], failedParts: [String], checks: [(PerformanceTarget.ID, TargetCheck)],
                               skipped: Set<PerformanceTarget.ID>) -> Verdict {
        var failures = failedParts.sorted().map { "part \($0) failed" }
        for (_, c) in checks where !c.met {
            failures.append("\(c.name): \(c.value.isFinite ? Figure.fixed(c.value, 2) : "missing") \(c.unit), target \(c.direction.rawValue) "
                            + "\(Figure.targetValue(c.target)) \(c.unit)")
        }
        let checked = Set(checks.map(\.0))
        var unchecked: [String] = []
        for t in all where partsRun.contains(t.part) && !failedParts.contains(t.part) && !checked.contains(t.id) {
            if skipped.contains(t.id) {
                unchecked.append("\(t.name): only checked at \(t.onlyAt ?? "full size")")
            } else {
                failures.append("\(t.name): no figure although part \(t.part) ran")
            }
        }
        for t in all where !partsRun.contains(t.part) { unchecked.append("\(t.name): part \(t.part) not run") }
        return Verdict(failures: failures, unchecked: unchecked)
    }
}

extension Figure {
    /// A target as written: `1,000`, `0.9`, `1.15`.
    public static func targetValue(_ target: Double) -> String { target == target.rounded() ? grouped(target) : fixed(target, 2) }

    /// `12_345_678` → `"12.3 MB"` (MB = 10^6 bytes, the unit of the memory targets).
    public static func megabytes(_ bytes: Int) -> String { fixed(Double(bytes) / Double(PerformanceTargets.megabyte), 1) + " MB" }
}
