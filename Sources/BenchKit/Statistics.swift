/// Order statistics of benchmark samples: percentiles, summaries and CDF points. Pure values, no I/O.
public enum Statistics {
    /// The nearest-rank percentile of ascending `sorted` values: the smallest value with at least
    /// `p` of the samples at or below it (`p` in 0...1). Empty input gives nil.
    public static func percentile(sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let clamped = min(max(p, 0), 1)
        let rank = Int((Double(sorted.count) * clamped).rounded(.up))
        return sorted[min(sorted.count - 1, max(rank - 1, 0))]
    }

    /// Nearest-rank percentile of unsorted values.
    public static func percentile(_ values: [Double], _ p: Double) -> Double? {
        percentile(sorted: values.sorted(), p)
    }

    /// The empirical CDF of `values` as at most `maxPoints` (x, fraction ≤ x) steps, x ascending,
    /// always including the minimum and the maximum (fraction 1). Ties collapse to their highest fraction.
    public static func cdf(_ values: [Double], maxPoints: Int = 400) -> [CDFPoint] {
        let sorted = values.filter { $0.isFinite }.sorted()
        guard !sorted.isEmpty else { return [] }
        let n = sorted.count
        var points: [CDFPoint] = []
        points.reserveCapacity(min(n, maxPoints) + 1)
        // Sample evenly in rank; keep the last point of each run of equal x.
        let step = max(1, n / max(maxPoints - 1, 1))
        var i = 0
        while i < n {
            var j = i
            while j + 1 < n && sorted[j + 1] == sorted[i] { j += 1 }
            let point = CDFPoint(x: sorted[j], fraction: Double(j + 1) / Double(n))
            if let last = points.last, last.x == point.x { points[points.count - 1] = point } else { points.append(point) }
            i = max(j + 1, i + step)
            if i >= n && j < n - 1 { i = n - 1 }
        }
        if points.last?.fraction != 1 { points.append(CDFPoint(x: sorted[n - 1], fraction: 1)) }
        return points
    }
}

public struct CDFPoint: Sendable, Equatable, Codable {
    public var x: Double
    public var fraction: Double
    public init(x: Double, fraction: Double) {
        self.x = x
        self.fraction = fraction
    }
}

/// p50 / p90 / p99 / max / mean of a sample, in the sample's unit.
public struct Summary: Sendable, Equatable, Codable {
    public var count: Int
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double
    public var mean: Double

    public init(count: Int, p50: Double, p90: Double, p99: Double, max: Double, mean: Double) {
        self.count = count
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
        self.mean = mean
    }

    /// nil for an empty sample.
    public init?(_ values: [Double]) {
        let sorted = values.filter { $0.isFinite }.sorted()
        guard let p50 = Statistics.percentile(sorted: sorted, 0.5), let p90 = Statistics.percentile(sorted: sorted, 0.9),
              let p99 = Statistics.percentile(sorted: sorted, 0.99), let last = sorted.last else { return nil }
        self.init(count: sorted.count, p50: p50, p90: p90, p99: p99, max: last, mean: sorted.reduce(0, +) / Double(sorted.count))
    }
}

/// A target and whether a figure meets it, with how far off it is (for the summary and the JSON report).
public struct TargetCheck: Sendable, Equatable, Codable {
    public enum Direction: String, Sendable, Codable { case atLeast = "≥", below = "<", atMost = "≤" }

    public var name: String
    public var value: Double
    public var target: Double
    public var direction: Direction
    public var unit: String

    public init(name: String, value: Double, direction: Direction, target: Double, unit: String) {
        self.name = name
        self.value = value
        self.target = target
        self.direction = direction
        self.unit = unit
    }

    public var met: Bool {
        switch direction {
        case .atLeast: value >= target
        case .below: value < target
        case .atMost: value <= target
        }
    }

    /// How far the value is from the target, as a factor of the target: 0.2 = 20 % short (or over, for an upper bound).
    public var shortfall: Double {
        guard !met, target != 0 else { return 0 }
        switch direction {
        case .atLeast: return (target - value) / target
        case .below, .atMost: return (value - target) / target
        }
    }
}
