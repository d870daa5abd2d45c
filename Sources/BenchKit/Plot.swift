import Foundation

/// Line charts drawn onto a `Canvas`: axes with linear or log-10 scales, grid, tick labels, series
/// (solid or dashed, optionally as CDF steps, with point markers and labels), vertical markers and
/// a legend. Pure layout and rasterizing.
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
        public var color: PNG.RGB
        public var points: [(x: Double, y: Double)]
        public var dashed: Bool
        /// Draw as an empirical CDF: horizontal then vertical steps between points.
        public var steps: Bool
        public var markers: Bool
        /// A label per point, drawn next to it (empty strings skip).
        public var pointLabels: [String]
        /// Where labels go relative to their points (flipped left/right at the plot's edges).
        public var labelPlacement: LabelPlacement

        public init(name: String, color: PNG.RGB, points: [(x: Double, y: Double)], dashed: Bool = false, steps: Bool = false,
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
        public var color: PNG.RGB
        public init(x: Double, label: String, color: PNG.RGB) {
            self.x = x
            self.label = label
            self.color = color
        }
    }

    public enum LegendPosition: Sendable { case topLeft, bottomRight, topRight }

    public var title: String
    public var subtitle: String
    public var x: Axis
    public var y: Axis
    public var series: [Series]
    public var markers: [VerticalMarker]
    public var legend: LegendPosition
    public var textScale: Int

    public init(title: String, subtitle: String = "", x: Axis, y: Axis, series: [Series], markers: [VerticalMarker] = [],
                legend: LegendPosition = .topLeft, textScale: Int = 2) {
        self.title = title
        self.subtitle = subtitle
        self.x = x
        self.y = y
        self.series = series
        self.markers = markers
        self.legend = legend
        self.textScale = textScale
    }

    /// Title and subtitle lines, wrapped to the panel's width.
    public func headingLines(width: Int) -> (title: [String], subtitle: [String]) {
        let available = width - 2 * 6 * textScale
        return (Canvas.wrap(title, maxWidth: available, scale: textScale),
                subtitle.isEmpty ? [] : Canvas.wrap(subtitle, maxWidth: available, scale: textScale))
    }

    /// The plot area inside a panel of the given size: left, top, width, height.
    public func plotArea(width: Int, height: Int) -> (left: Int, top: Int, width: Int, height: Int) {
        let s = textScale
        let lineHeight = Canvas.textHeight(scale: s) + 4 * s
        let heading = headingLines(width: width)
        let titleBlock = lineHeight * (heading.title.count + heading.subtitle.count) + 4 * s
        let yLabels = y.tickValues.map { Canvas.textWidth(y.format($0), scale: s) }.max() ?? 0
        let left = 6 * s + Canvas.textHeight(scale: s) + 6 * s + yLabels + 6 * s
        let bottom = 6 * s + Canvas.textHeight(scale: s) + 8 * s + Canvas.textHeight(scale: s) + 6 * s
        let right = 14 * s
        return (left, titleBlock + 6 * s, max(10, width - left - right), max(10, height - titleBlock - 6 * s - bottom))
    }

    /// Draws the chart into the panel whose top-left corner is (originX, originY).
    public func draw(into canvas: inout Canvas, originX: Int, originY: Int, width: Int, height: Int) {
        let s = textScale
        let ink = canvas.color(PNG.RGB(30, 30, 30))
        let grid = canvas.color(PNG.RGB(225, 225, 225))
        let muted = canvas.color(PNG.RGB(90, 90, 90))
        let area = plotArea(width: width, height: height)
        let left = originX + area.left, top = originY + area.top, w = area.width, h = area.height

        // Title and subtitle, wrapped.
        let heading = headingLines(width: width)
        let lineHeight = Canvas.textHeight(scale: s) + 4 * s
        for (i, line) in (heading.title + heading.subtitle).enumerated() {
            canvas.text(line, x: originX + 6 * s, y: originY + 4 * s + i * lineHeight, i < heading.title.count ? ink : muted, scale: s)
        }
        func px(_ v: Double) -> Int { left + Int((x.fraction(v) * Double(w - 1)).rounded()) }
        func py(_ v: Double) -> Int { top + h - 1 - Int((y.fraction(v) * Double(h - 1)).rounded()) }

        // Grid and ticks.
        for t in x.tickValues where t >= x.min && t <= x.max {
            let p = px(t)
            canvas.line(p, top, p, top + h - 1, grid)
            canvas.line(p, top + h, p, top + h + 3 * s, ink)
            let label = x.format(t)
            canvas.text(label, x: p - Canvas.textWidth(label, scale: s) / 2, y: top + h + 6 * s, ink, scale: s)
        }
        if x.scale == .log10 { minorLogTicks(&canvas, axis: x, ink: ink) { v in (px(v), top + h, px(v), top + h + 2 * s - 1) } }
        for t in y.tickValues where t >= y.min && t <= y.max {
            let p = py(t)
            canvas.line(left, p, left + w - 1, p, grid)
            canvas.line(left - 3 * s, p, left - 1, p, ink)
            let label = y.format(t)
            canvas.text(label, x: left - 6 * s - Canvas.textWidth(label, scale: s), y: p - Canvas.textHeight(scale: s) / 2, ink, scale: s)
        }
        if y.scale == .log10 { minorLogTicks(&canvas, axis: y, ink: ink) { v in (left - 2 * s, py(v), left - 1, py(v)) } }
        canvas.frame(x: left - 1, y: top - 1, width: w + 2, height: h + 2, ink, thickness: 1)

        // Axis labels.
        let xLabelWidth = Canvas.textWidth(x.label, scale: s)
        canvas.text(x.label, x: left + (w - xLabelWidth) / 2, y: top + h + 6 * s + Canvas.textHeight(scale: s) + 8 * s, ink, scale: s)
        let yLabelLength = Canvas.textWidth(y.label, scale: s)
        canvas.verticalText(y.label, x: originX + 6 * s, y: top + max(0, (h - yLabelLength) / 2), ink, scale: s)

        // Vertical markers.
        for m in markers where m.x >= x.min && m.x <= x.max {
            let c = canvas.color(m.color)
            let p = px(m.x)
            canvas.line(p, top, p, top + h - 1, c, thickness: s, dash: (4 * s, 4 * s))
            let labelWidth = Canvas.textWidth(m.label, scale: s)
            let background = canvas.color(PNG.RGB(255, 255, 255))
            canvas.fill(x: p - labelWidth - 6 * s, y: top + 2 * s, width: labelWidth + 4 * s, height: Canvas.textHeight(scale: s) + 4 * s, background)
            canvas.text(m.label, x: p - labelWidth - 4 * s, y: top + 4 * s, c, scale: s)
        }

        // Series.
        for series in self.series where !series.points.isEmpty {
            let c = canvas.color(series.color)
            var path: [(x: Int, y: Int)] = []
            for (i, point) in series.points.enumerated() {
                let p = (x: px(point.x), y: py(point.y))
                if series.steps, let last = path.last { path.append((p.x, last.y)) }
                if series.steps && i == 0 { path.append((p.x, py(y.min))) }
                path.append(p)
            }
            canvas.polyline(path, c, thickness: s + 1, dash: series.dashed ? (6 * s, 4 * s) : nil)
            for (i, point) in series.points.enumerated() {
                let p = (x: px(point.x), y: py(point.y))
                if series.markers { canvas.fill(x: p.x - 3 * s, y: p.y - 3 * s, width: 6 * s + 1, height: 6 * s + 1, c) }
                if i < series.pointLabels.count, !series.pointLabels[i].isEmpty {
                    let label = series.pointLabels[i]
                    let lw = Canvas.textWidth(label, scale: s)
                    let right = p.x + 6 * s, leftOf = p.x - 6 * s - lw
                    let lx: Int
                    if series.labelPlacement == .aboveLeft {
                        lx = leftOf >= left ? leftOf : right
                    } else {
                        lx = right + lw < left + w ? right : leftOf
                    }
                    let ly = series.labelPlacement == .belowRight ? p.y + 5 * s : p.y - Canvas.textHeight(scale: s) - 3 * s
                    canvas.text(label, x: lx, y: ly, c, scale: s)
                }
            }
        }

        // Legend.
        let entries = series.filter { !$0.name.isEmpty && !$0.points.isEmpty }
        guard !entries.isEmpty else { return }
        let entryHeight = Canvas.textHeight(scale: s) + 5 * s
        let swatch = 18 * s
        let legendWidth = 8 * s + swatch + 6 * s + (entries.map { Canvas.textWidth($0.name, scale: s) }.max() ?? 0) + 8 * s
        let legendHeight = entries.count * entryHeight + 6 * s
        let lx: Int, ly: Int
        switch legend {
        case .topLeft: (lx, ly) = (left + 8 * s, top + 8 * s)
        case .topRight: (lx, ly) = (left + w - legendWidth - 8 * s, top + 8 * s)
        case .bottomRight: (lx, ly) = (left + w - legendWidth - 8 * s, top + h - legendHeight - 8 * s)
        }
        let white = canvas.color(PNG.RGB(255, 255, 255))
        canvas.fill(x: lx, y: ly, width: legendWidth, height: legendHeight, white)
        canvas.frame(x: lx, y: ly, width: legendWidth, height: legendHeight, grid)
        for (i, e) in entries.enumerated() {
            let c = canvas.color(e.color)
            let rowY = ly + 4 * s + i * entryHeight + Canvas.textHeight(scale: s) / 2
            canvas.line(lx + 8 * s, rowY, lx + 8 * s + swatch, rowY, c, thickness: s + 1, dash: e.dashed ? (6 * s, 4 * s) : nil)
            if e.markers { canvas.fill(x: lx + 8 * s + swatch / 2 - 3 * s, y: rowY - 3 * s, width: 6 * s + 1, height: 6 * s + 1, c) }
            canvas.text(e.name, x: lx + 8 * s + swatch + 6 * s, y: rowY - Canvas.textHeight(scale: s) / 2, ink, scale: s)
        }
    }

    private func minorLogTicks(_ canvas: inout Canvas, axis: Axis, ink: UInt8, _ segment: (Double) -> (Int, Int, Int, Int)) {
        guard axis.min > 0, axis.max > axis.min else { return }
        var decade = Ticks.pow10(Int(Ticks.log10(axis.min).rounded(.down)))
        var guardCount = 0
        while decade <= axis.max && guardCount < 40 {
            for m in 2...9 {
                let v = decade * Double(m)
                if v >= axis.min && v <= axis.max {
                    let (x0, y0, x1, y1) = segment(v)
                    canvas.line(x0, y0, x1, y1, ink)
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
