import BenchKit
import RouteModel
import Testing

@Suite struct StatisticsTests {
    @Test func nearestRankPercentiles() {
        let values = (1...100).map(Double.init).shuffled()
        #expect(Statistics.percentile(values, 0.5) == 50)
        #expect(Statistics.percentile(values, 0.99) == 99)
        #expect(Statistics.percentile(values, 1) == 100)
        #expect(Statistics.percentile(values, 0) == 1)
        #expect(Statistics.percentile([], 0.5) == nil)
        #expect(Statistics.percentile([7], 0.99) == 7)
        // 10 samples: p99 is the largest (rank ceil(9.9) = 10), p50 the 5th.
        let ten = (1...10).map(Double.init)
        #expect(Statistics.percentile(ten, 0.99) == 10)
        #expect(Statistics.percentile(ten, 0.5) == 5)
    }

    @Test func summary() throws {
        let s = try #require(Summary([4, 1, 3, 2, .nan]))
        #expect(s.count == 4)
        #expect(s.p50 == 2)
        #expect(s.max == 4)
        #expect(s.mean == 2.5)
        #expect(Summary([]) == nil)
    }

    @Test func cdfIsMonotoneAndEndsAtOne() {
        var rng = SplitMix(seed: 7)
        let values = (0..<10_000).map { _ in Double(rng.next() % 1000) / 10 }
        let points = Statistics.cdf(values, maxPoints: 200)
        #expect(points.count <= 201)
        #expect(points.count > 50)
        #expect(points.last?.fraction == 1)
        #expect(points.last?.x == values.max())
        #expect(points.first?.x == values.min())
        for (a, b) in zip(points, points.dropFirst()) {
            #expect(a.x < b.x)
            #expect(a.fraction < b.fraction)
        }
    }

    @Test func cdfCollapsesTies() {
        let points = Statistics.cdf([1, 1, 1, 2, 2, 3])
        #expect(points == [CDFPoint(x: 1, fraction: 0.5), CDFPoint(x: 2, fraction: 5.0 / 6), CDFPoint(x: 3, fraction: 1)])
        #expect(Statistics.cdf([]) == [])
        #expect(Statistics.cdf([5]) == [CDFPoint(x: 5, fraction: 1)])
    }

    @Test func targets() {
        let low = TargetCheck(name: "ratio", value: 0.63, direction: .atLeast, target: 0.70, unit: "")
        #expect(!low.met)
        #expect(abs(low.shortfall - 0.1) < 1e-9)
        let p99 = TargetCheck(name: "p99", value: 1565, direction: .below, target: 1000, unit: "ms")
        #expect(!p99.met)
        #expect(abs(p99.shortfall - 0.565) < 1e-9)
        #expect(TargetCheck(name: "rss", value: 250, direction: .below, target: 300, unit: "MiB").met)
        #expect(TargetCheck(name: "growth", value: 2, direction: .atMost, target: 2, unit: "x").met)
        #expect(!TargetCheck(name: "growth", value: 2, direction: .below, target: 2, unit: "x").met)
    }
}

/// A seeded generator for test data.
typealias SplitMix = SplitMix64
