import BenchKit

/// The `bench all --plot` figure: (1) the latency CDF of propagation at each agent count, with the raw
/// libnats baseline of the same run dashed; (2) per-change projection time against tenant size,
/// incremental vs full recompute, both axes log-10.
enum BenchPlot {
    static let width = 1000.0
    static let panelHeight = 640.0

    static let palette: [SVG.Color] = [SVG.Color(31, 119, 180), SVG.Color(214, 39, 40), SVG.Color(44, 160, 44), SVG.Color(148, 103, 189)]

    /// The SVG document.
    static func render(report: BenchReport) -> String {
        var svg = SVG(width: width, height: 2 * panelHeight + 40)
        propagationChart(report).draw(into: &svg, originX: 0, originY: 0, width: width, height: panelHeight)
        costChart(report).draw(into: &svg, originX: 0, originY: panelHeight, width: width, height: panelHeight)
        let footer = "routeplane-bench all\(report.quick ? " --quick" : "") " + String(report.startedAt.prefix(10)) + ": " + report.machine.oneLine
        for (i, line) in SVG.wrap(footer, maxWidth: width - 24, size: 10).prefix(2).enumerated() {
            svg.text(line, x: 12, y: 2 * panelHeight + 16 + Double(i) * 13, Chart.muted, size: 10)
        }
        return svg.render()
    }

    static func propagationChart(_ report: BenchReport) -> Chart {
        let runs = report.propagation.sorted { $0.agents < $1.agents }
        let all = runs.flatMap { $0.latenciesMs + $0.baselineMs }.filter { $0 > 0 && $0.isFinite }
        let lo = Ticks.pow10(Int(Ticks.log10(max(all.min() ?? 1, 0.01)).rounded(.down)))
        let hi = Ticks.pow10(Int(Ticks.log10(max(all.max() ?? 1_000, 1_000) * 1.01).rounded(.up)))
        var series: [Chart.Series] = []
        var notes: [String] = []
        for (i, run) in runs.enumerated() {
            let color = palette[i % palette.count]
            let agents = Figure.grouped(Double(run.agents))
            series.append(Chart.Series(name: "change committed -> view received, \(agents) agents", color: color,
                                       points: Statistics.cdf(run.latenciesMs, maxPoints: 600).map { ($0.x, $0.fraction) }, steps: true))
            series.append(Chart.Series(name: "raw libnats publish -> receive, \(agents) agents", color: color,
                                       points: Statistics.cdf(run.baselineMs, maxPoints: 600).map { ($0.x, $0.fraction) }, dashed: true, steps: true))
            let p99 = Summary(run.latenciesMs)?.p99, raw = Summary(run.baselineMs)?.p99
            notes.append("\(agents): p99 \(p99.map(Figure.ms) ?? "-") ms (raw \(raw.map(Figure.ms) ?? "-"))")
        }
        return Chart(
            title: "Propagation: route change committed -> view received by every agent (CDF)",
            subtitle: (notes.isEmpty ? "not measured in this run" : notes.joined(separator: ", ")) + "; target p99 < 1 s",
            x: Chart.Axis(label: "latency (ms, log scale)", scale: .log10, min: lo, max: hi),
            y: Chart.Axis(label: "fraction of (agent, change) views", min: 0, max: 1, ticks: [0, 0.25, 0.5, 0.75, 0.99]) { v in
                v == 0.99 ? "p99" : Ticks.trim(v)
            },
            series: series,
            markers: [Chart.VerticalMarker(x: 1_000, label: "1 s target", color: SVG.Color(120, 120, 120))],
            legend: .bottomRight)
    }

    static func costChart(_ report: BenchReport) -> Chart {
        let sizes = (report.projection?.sizes ?? []).sorted { $0.peers < $1.peers }
        let values = sizes.flatMap { [$0.incremental.msPerChange, $0.fullRecompute.msPerChange] }.filter { $0 > 0 }
        let lo = Ticks.pow10(Int(Ticks.log10(max((values.min() ?? 1) / 2, 0.001)).rounded(.down)))
        // Headroom above the highest point for the legend.
        let hi = Ticks.pow10(Int(Ticks.log10(max((values.max() ?? 10) * 8, 0.01)).rounded(.up)))
        let peersLo = Double(sizes.first?.peers ?? 100) / 2, peersHi = Double(sizes.last?.peers ?? 10_000) * 2
        let views = sizes.last.map { Figure.fixed($0.incremental.viewsPerChange, 0) } ?? "?"
        let incremental = Chart.Series(
            name: "incremental: recomputes the \(views) affected views", color: palette[0],
            points: sizes.map { (Double($0.peers), $0.incremental.msPerChange) }, markers: true,
            pointLabels: sizes.map { Figure.ms($0.incremental.msPerChange) + " ms" }, labelPlacement: .belowRight)
        let full = Chart.Series(
            name: "baseline: full recompute of every peer's view", color: palette[1],
            points: sizes.map { (Double($0.peers), $0.fullRecompute.msPerChange) }, dashed: true, markers: true,
            pointLabels: sizes.map { Figure.ms($0.fullRecompute.msPerChange) + " ms" }, labelPlacement: .aboveLeft)
        var subtitle = sizes.isEmpty ? "not measured in this run" : "one route change reaching 10 peers; time of one projection batch (transaction)"
        if let growth = report.projection?.growth { subtitle += "; 100 -> 10,000 peers: " + Figure.fixed(growth, 2) + "x (target <= 2x)" }
        return Chart(
            title: "Projection: cost per change vs tenant size",
            subtitle: subtitle,
            x: Chart.Axis(label: "peers in the tenant (log scale)", scale: .log10, min: peersLo, max: peersHi,
                          ticks: sizes.map { Double($0.peers) }),
            y: Chart.Axis(label: "ms per change (log scale)", scale: .log10, min: lo, max: hi),
            series: [incremental, full],
            legend: .topLeft)
    }
}
