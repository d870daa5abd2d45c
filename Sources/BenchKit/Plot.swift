import Foundation

/// Line charts written as SVG: axes with linear or log-10 scales, grid, tick labels, series (solid or
/// dashed, optionally as CDF steps, with point markers and labels), vertical markers and a legend.
/// Pure layout; `SVG` writes the elements.
public struct Chart {
    public enum Scale: Sendable, Equatable { case linear, log10 }

    public struct Axis {
        public var label: String
        public var scale: Scale
        public var min: Double
        public var max: Double
        /// Tick positions; nil = chosen from the range (1-2-5 steps, or powers of ten on a log scale).
        public var ticks: [Double]?
        public var format: (Double) -> String

        public init(label: String, scale: Scale = .linear, min: Double, max: Double, ticks: [Double]? = nil,
                    format: @escaping (Double) -> String = { Ticks.label($0) }) {
            self.label = label
            self.scale = scale
            self.min = min
            self.max = max
            self.ticks = ticks
            self.format = format
        }

        /// Position of `v` in the axis range, 0 at `min` and 1 at `max` (values outside are clamped;
        /// on a log scale, values ≤ 0 go to `min`).
        public func fraction(_ v: Double) -> Double {
            let t: (Double) -> Double = scale == .log10 ? { $0 > 0 ? Ticks.log10($0) : -Double.infinity } : { $0 }
            let lo = t(min), hi = t(max)
            guard hi > lo else { return 0 }
            let f = (t(v) - lo) / (hi - lo)
            return f.isNaN ? 0 : Swift.min(1, Swift.max(0, f))
        }

        public var tickValues: [Double] {
            ticks ?? (scale == .log10 ? Ticks.log(min: min, max: max) : Ticks.linear(min: min, max: max))
        }
    }

    public struct Series {
        public var name: String
        public var color: SVG.Color
        public var points: [(x: Double, y: Double)]
        public var dashed: Bool
        /// Draw as an empirical CDF: horizontal then vertical steps between points.
        public var steps: Bool
        public var markers: Bool
        /// A label per point, drawn next to it (empty strings skip).
        public var pointLabels: [String]
        /// Where labels go relative to their points (flipped left/right at the plot's edges).
        public var labelPlacement: LabelPlacement

        public init(name: String, color: SVG.Color, points: [(x: Double, y: Double)], dashed: Bool = false, steps: Bool = false,
                    markers: Bool = false, pointLabels: [String] = [], labelPlacement: LabelPlacement = .aboveRight) {
            self.name = name
            self.color = color
            self.points = points
            self.dashed = dashed
            self.steps = steps
            self.markers = markers
            self.pointLabels = pointLabels
            self.labelPlacement = labelPlacement
        }
    }

    public enum LabelPlacement: Sendable { case aboveRight, aboveLeft, belowRight }

    public struct VerticalMarker {
        public var x: Double
        public var label: String
        public var color: SVG.Color
        public init(x: Double, label: String, color: SVG.Color) {
            self.x = x
            self.label = label
            self.color = color
        }
    }

    public enum LegendPosition: Sendable { case topLeft, bottomRight, topRight }

    /// A rectangle in the drawing's coordinates (y grows downwards).
    public struct Box: Sendable, Equatable {
        public var left: Double, top: Double, width: Double, height: Double
        public var right: Double { left + width }
        public var bottom: Double { top + height }
    }

    public static let ink = SVG.Color(30, 30, 30)
    public static let muted = SVG.Color(90, 90, 90)
    public static let grid = SVG.Color(225, 225, 225)

    public var title: String
    public var subtitle: String
    public var x: Axis
    public var y: Axis
    public var series: [Series]
    public var markers: [VerticalMarker]
    public var legend: LegendPosition
    public var fontSize: Double

    public init(title: String, subtitle: String = "", x: Axis, y: Axis, series: [Series], markers: [VerticalMarker] = [],
                legend: LegendPosition = .topLeft, fontSize: Double = 14) {
        self.title = title
        self.subtitle = subtitle
        self.x = x
        self.y = y
        self.series = series
        self.markers = markers
        self.legend = legend
        self.fontSize = fontSize
    }

    private var lineHeight: Double { fontSize * 1.4 }
    private var pad: Double { fontSize * 0.75 }

    /// Title and subtitle lines, wrapped to the panel's width.
    public func headingLines(width: Double) -> (title: [String], subtitle: [String]) {
        let available = width - 2 * pad
        return (SVG.wrap(title, maxWidth: available, size: fontSize),
                subtitle.isEmpty ? [] : SVG.wrap(subtitle, maxWidth: available, size: fontSize))
    }

    /// The plot area inside a panel whose top-left corner is (0, 0).
    public func plotArea(width: Double, height: Double) -> Box {
        let heading = headingLines(width: width)
        let titleBlock = pad / 2 + lineHeight * Double(heading.title.count + heading.subtitle.count)
        let yLabels = y.tickValues.map { SVG.textWidth(y.format($0), size: fontSize) }.max() ?? 0
        let left = pad + fontSize + pad + yLabels + pad
        let top = titleBlock + pad
        let bottom = pad + fontSize + pad + fontSize + pad
        let right = 2 * fontSize
        return Box(left: left, top: top, width: max(10, width - left - right), height: max(10, height - top - bottom))
    }

    /// Where a data point lands in a panel whose top-left corner is (0, 0).
    public func position(x vx: Double, y vy: Double, width: Double, height: Double) -> (x: Double, y: Double) {
        let area = plotArea(width: width, height: height)
        return (area.left + x.fraction(vx) * area.width, area.bottom - y.fraction(vy) * area.height)
    }

    /// Draws the chart into the panel whose top-left corner is (originX, originY).
    public func draw(into svg: inout SVG, originX: Double, originY: Double, width: Double, height: Double) {
        let f = fontSize
        let ink = Self.ink, muted = Self.muted, grid = Self.grid
        var area = plotArea(width: width, height: height)
        area.left += originX
        area.top += originY
        let left = area.left, top = area.top, w = area.width, h = area.height
        // Baselines: text whose box starts at `y`, and text centred on `y`.
        func below(_ y: Double) -> Double { y + 0.8 * f }
        func centred(_ y: Double) -> Double { y + 0.35 * f }

        // Title and subtitle, wrapped.
        let heading = headingLines(width: width)
        for (i, line) in (heading.title + heading.subtitle).enumerated() {
            svg.text(line, x: originX + pad, y: below(originY + pad / 2 + Double(i) * lineHeight), i < heading.title.count ? ink : muted, size: f)
        }
        func px(_ v: Double) -> Double { left + x.fraction(v) * w }
        func py(_ v: Double) -> Double { top + h - y.fraction(v) * h }

        // Grid and ticks.
        for t in x.tickValues where t >= x.min && t <= x.max {
            let p = px(t)
            svg.line(p, top, p, top + h, grid)
            svg.line(p, top + h, p, top + h + pad / 2, ink)
            svg.text(x.format(t), x: p, y: below(top + h + pad), ink, size: f, anchor: .middle)
        }
        if x.scale == .log10 { minorLogTicks(&svg, axis: x) { v in (px(v), top + h, px(v), top + h + pad / 3) } }
        for t in y.tickValues where t >= y.min && t <= y.max {
            let p = py(t)
            svg.line(left, p, left + w, p, grid)
            svg.line(left - pad / 2, p, left, p, ink)
            svg.text(y.format(t), x: left - pad, y: centred(p), ink, size: f, anchor: .end)
        }
        if y.scale == .log10 { minorLogTicks(&svg, axis: y) { v in (left - pad / 3, py(v), left, py(v)) } }
        svg.rect(x: left, y: top, width: w, height: h, stroke: ink)

        // Axis labels.
        svg.text(x.label, x: left + w / 2, y: below(top + h + pad + f + pad), ink, size: f, anchor: .middle)
        svg.text(y.label, x: below(originX + pad), y: top + h / 2, ink, size: f, anchor: .middle, vertical: true)

        // Vertical markers.
        for m in markers where m.x >= x.min && m.x <= x.max {
            let p = px(m.x)
            svg.line(p, top, p, top + h, m.color, thickness: f / 8, dash: (f / 2, f / 2))
            let labelWidth = SVG.textWidth(m.label, size: f)
            svg.rect(x: p - labelWidth - f / 2, y: top + f / 4, width: labelWidth + f / 3, height: f * 1.2, fill: .white)
            svg.text(m.label, x: p - f / 3, y: below(top + f / 2), m.color, size: f, anchor: .end)
        }

        // Series.
        for series in self.series where !series.points.isEmpty {
            var path: [(x: Double, y: Double)] = []
            for (i, point) in series.points.enumerated() {
                let p = (x: px(point.x), y: py(point.y))
                if series.steps, let last = path.last { path.append((p.x, last.y)) }
                if series.steps && i == 0 { path.append((p.x, py(y.min))) }
                path.append(p)
            }
            svg.polyline(path, series.color, thickness: f / 6, dash: series.dashed ? (f * 0.75, f / 2) : nil)
            for (i, point) in series.points.enumerated() {
                let p = (x: px(point.x), y: py(point.y))
                if series.markers { svg.rect(x: p.x - f * 0.4, y: p.y - f * 0.4, width: f * 0.8, height: f * 0.8, fill: series.color) }
                if i < series.pointLabels.count, !series.pointLabels[i].isEmpty {
                    let label = series.pointLabels[i]
                    let lw = SVG.textWidth(label, size: f)
                    let right = p.x + f * 0.75, leftOf = p.x - f * 0.75 - lw
                    let lx: Double
                    if series.labelPlacement == .aboveLeft {
                        lx = leftOf >= left ? leftOf : right
                    } else {
                        lx = right + lw < left + w ? right : leftOf
                    }
                    let baseline = series.labelPlacement == .belowRight ? below(p.y + f * 0.6) : p.y - f * 0.4
                    svg.text(label, x: lx, y: baseline, series.color, size: f)
                }
            }
        }

        // Legend.
        let entries = series.filter { !$0.name.isEmpty && !$0.points.isEmpty }
        guard !entries.isEmpty else { return }
        let entryHeight = lineHeight
        let swatch = 2 * f
        let legendWidth = pad + swatch + pad + (entries.map { SVG.textWidth($0.name, size: f) }.max() ?? 0) + pad
        let legendHeight = Double(entries.count) * entryHeight + pad
        let lx: Double, ly: Double
        switch legend {
        case .topLeft: (lx, ly) = (left + pad, top + pad)
        case .topRight: (lx, ly) = (left + w - legendWidth - pad, top + pad)
        case .bottomRight: (lx, ly) = (left + w - legendWidth - pad, top + h - legendHeight - pad)
        }
        svg.rect(x: lx, y: ly, width: legendWidth, height: legendHeight, fill: .white, stroke: grid)
        for (i, e) in entries.enumerated() {
            let rowY = ly + pad / 2 + Double(i) * entryHeight + entryHeight / 2
            svg.line(lx + pad, rowY, lx + pad + swatch, rowY, e.color, thickness: f / 6, dash: e.dashed ? (f * 0.75, f / 2) : nil)
            if e.markers { svg.rect(x: lx + pad + swatch / 2 - f * 0.4, y: rowY - f * 0.4, width: f * 0.8, height: f * 0.8, fill: e.color) }
            svg.text(e.name, x: lx + pad + swatch + pad, y: centred(rowY), ink, size: f)
        }
    }

    private func minorLogTicks(_ svg: inout SVG, axis: Axis, _ segment: (Double) -> (Double, Double, Double, Double)) {
        guard axis.min > 0, axis.max > axis.min else { return }
        var decade = Ticks.pow10(Int(Ticks.log10(axis.min).rounded(.down)))
        var guardCount = 0
        while decade <= axis.max && guardCount < 40 {
            for m in 2...9 {
                let v = decade * Double(m)
                if v >= axis.min && v <= axis.max {
                    let (x0, y0, x1, y1) = segment(v)
                    svg.line(x0, y0, x1, y1, Self.ink)
                }
            }
            decade *= 10
            guardCount += 1
        }
    }
}

/// Tick positions and labels.
public enum Ticks {
    /// About `count` ticks at a 1, 2 or 5 × 10^k step, inside [min, max].
    public static func linear(min: Double, max: Double, count: Int = 5) -> [Double] {
        guard max > min, count > 0 else { return [min] }
        let raw = (max - min) / Double(count)
        let magnitude = pow10(Int(log10(raw).rounded(.down)))
        let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= raw * 0.999 } ?? 10 * magnitude
        var ticks: [Double] = []
        var k = (min / step - 1e-9).rounded(.up)
        while k * step <= max + step * 1e-9 && ticks.count < 100 {
            // Multiplying (not adding) keeps 0.6 from becoming 0.6000000000000001.
            let v = step >= 1 ? k * step : k / (1 / step).rounded()
            ticks.append(v == 0 ? 0 : v)
            k += 1
        }
        return ticks
    }

    /// Powers of ten inside [min, max] (min > 0).
    public static func log(min: Double, max: Double) -> [Double] {
        guard min > 0, max > min else { return [] }
        var ticks: [Double] = []
        var e = Int(log10(min).rounded(.down)) - 1
        while pow10(e) <= max * (1 + 1e-9) && ticks.count < 40 {
            if pow10(e) >= min * (1 - 1e-9) { ticks.append(pow10(e)) }
            e += 1
        }
        return ticks
    }

    /// Short labels: 0.5, 2, 1000 → "1k", 10000 → "10k", 1e6 → "1M".
    public static func label(_ v: Double) -> String {
        if v != 0 && abs(v) >= 1_000_000 { return trim(v / 1_000_000) + "M" }
        if v != 0 && abs(v) >= 1_000 { return trim(v / 1_000) + "k" }
        return trim(v)
    }

    /// A number without a trailing ".0", up to 3 decimals.
    public static func trim(_ v: Double) -> String {
        var text = Figure.fixed(v, 3)
        if text.contains(".") {
            while text.last == "0" { text.removeLast() }
            if text.last == "." { text.removeLast() }
        }
        return text
    }

    public static func log10(_ x: Double) -> Double { Foundation.log10(x) }

    public static func pow10(_ e: Int) -> Double {
        var v = 1.0
        if e >= 0 { for _ in 0..<e { v *= 10 } } else { for _ in 0..<(-e) { v /= 10 } }
        return v
    }
}
