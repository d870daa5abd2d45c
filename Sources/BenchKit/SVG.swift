/// A small SVG writer: lines, polylines, rectangles and text, written as an SVG 1.1 document (text, no
/// encoder). Text is set in a monospace font so its width can be estimated for layout (0.6 em per
/// character, as in DejaVu Sans Mono, Menlo and Consolas). Pure.
public struct SVG: Sendable {
    /// An sRGB color, written as `#rrggbb`.
    public struct Color: Sendable, Equatable {
        public var r: UInt8, g: UInt8, b: UInt8
        public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
            self.r = r
            self.g = g
            self.b = b
        }

        public var hex: String {
            let digits = Array("0123456789abcdef")
            return "#" + String([r, g, b].flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
        }

        public static let white = Color(255, 255, 255)
    }

    public enum Anchor: String, Sendable { case start, middle, end }

    public let width: Double
    public let height: Double
    /// The drawing's elements in painting order, one per line.
    public private(set) var elements: [String] = []

    public init(width: Double, height: Double, background: Color = .white) {
        self.width = width
        self.height = height
        rect(x: 0, y: 0, width: width, height: height, fill: background)
    }

    public mutating func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ color: Color, thickness: Double = 1,
                              dash: (on: Double, off: Double)? = nil) {
        elements.append("<line x1=\"\(Self.number(x0))\" y1=\"\(Self.number(y0))\" x2=\"\(Self.number(x1))\" y2=\"\(Self.number(y1))\""
            + Self.stroke(color, thickness, dash) + "/>")
    }

    public mutating func polyline(_ points: [(x: Double, y: Double)], _ color: Color, thickness: Double = 1,
                                  dash: (on: Double, off: Double)? = nil) {
        guard !points.isEmpty else { return }
        let list = points.map { Self.number($0.x) + "," + Self.number($0.y) }.joined(separator: " ")
        elements.append("<polyline points=\"\(list)\" fill=\"none\"" + Self.stroke(color, thickness, dash) + " stroke-linejoin=\"round\"/>")
    }

    /// A rectangle, filled and/or outlined (no fill when `fill` is nil).
    public mutating func rect(x: Double, y: Double, width w: Double, height h: Double, fill: Color? = nil, stroke: Color? = nil) {
        var element = "<rect x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" width=\"\(Self.number(w))\" height=\"\(Self.number(h))\""
        element += " fill=\"\(fill?.hex ?? "none")\""
        if let stroke { element += Self.stroke(stroke, 1, nil) }
        elements.append(element + "/>")
    }

    /// Text whose baseline starts (or is centred, or ends, by `anchor`) at (x, y); `vertical` turns it a
    /// quarter counter-clockwise about that point, to read from bottom to top.
    public mutating func text(_ text: String, x: Double, y: Double, _ color: Color, size: Double, anchor: Anchor = .start,
                              vertical: Bool = false) {
        var element = "<text x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" fill=\"\(color.hex)\" font-size=\"\(Self.number(size))\""
        if anchor != .start { element += " text-anchor=\"\(anchor.rawValue)\"" }
        if vertical { element += " transform=\"rotate(-90 \(Self.number(x)) \(Self.number(y)))\"" }
        elements.append(element + ">" + Self.escape(text) + "</text>")
    }

    /// The whole document.
    public func render() -> String {
        let w = Self.number(width), h = Self.number(height)
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\""
            + " font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\">\n"
            + elements.map { $0 + "\n" }.joined() + "</svg>\n"
    }

    // MARK: Text measures

    /// The estimated advance of `text` at `size` (monospace: 0.6 em per character).
    public static func textWidth(_ text: String, size: Double) -> Double { Double(text.count) * 0.6 * size }

    /// Splits `text` at spaces into lines of at most `maxWidth` (a longer word stays whole on its own line).
    public static func wrap(_ text: String, maxWidth: Double, size: Double) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false).map(String.init) {
            let candidate = current.isEmpty ? word : current + " " + word
            if !current.isEmpty && textWidth(candidate, size: size) > maxWidth {
                lines.append(current)
                current = word
            } else {
                current = candidate
            }
        }
        lines.append(current)
        return lines
    }

    // MARK: Writing

    /// XML character data and attribute values: `&`, `<`, `>`, `"` and `'` as entities.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            // Control characters other than tab and newline are not allowed in XML 1.0.
            case "\u{0}"..."\u{8}", "\u{B}", "\u{C}", "\u{E}"..."\u{1F}": out += "?"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A coordinate with at most two decimals and no trailing zeros (`12`, `3.5`, `-0.25`).
    public static func number(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        var text = Figure.fixed(v, 2)
        while text.last == "0" && text.contains(".") { text.removeLast() }
        if text.last == "." { text.removeLast() }
        return text == "-0" ? "0" : text
    }

    private static func stroke(_ color: Color, _ thickness: Double, _ dash: (on: Double, off: Double)?) -> String {
        var attributes = " stroke=\"\(color.hex)\" stroke-width=\"\(number(thickness))\""
        if let dash { attributes += " stroke-dasharray=\"\(number(dash.on)) \(number(dash.off))\"" }
        return attributes
    }
}
