/// A plain-text table: columns padded to their widest cell, two spaces apart; numbers right-aligned
/// when asked. Widths count Unicode characters (`String.count`), which is right for the ASCII, `≥`,
/// `→` and `µ` the benchmarks print.
public struct TextTable: Sendable, Equatable {
    public enum Alignment: Sendable, Equatable { case left, right }

    public var headers: [String]
    public var alignments: [Alignment]
    public var rows: [[String]] = []

    public init(headers: [String], alignments: [Alignment]? = nil) {
        self.headers = headers
        self.alignments = alignments ?? headers.map { _ in .left }
    }

    public mutating func add(_ cells: [String]) { rows.append(cells) }

    /// The lines of the table: header, a rule, the rows. Short rows are padded with empty cells;
    /// extra cells are kept (as an unaligned tail).
    public func render(separator: String = "  ") -> [String] {
        let columns = max(headers.count, rows.map(\.count).max() ?? 0)
        var widths = [Int](repeating: 0, count: columns)
        for line in [headers] + rows {
            for (i, cell) in line.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func format(_ cells: [String]) -> String {
            var out: [String] = []
            for i in 0..<columns {
                let cell = i < cells.count ? cells[i] : ""
                let padding = String(repeating: " ", count: widths[i] - cell.count)
                let aligned = (i < alignments.count ? alignments[i] : .left) == .right ? padding + cell : cell + padding
                out.append(aligned)
            }
            // No trailing spaces.
            var line = out.joined(separator: separator)
            while line.last == " " { line.removeLast() }
            return line
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: separator)
        return [format(headers), rule] + rows.map(format)
    }
}

/// A progress line for a terminal: `[#####·····]  45%  label  12/30  8 s`. Pure: the caller writes it.
public enum ProgressLine {
    public static func render(label: String, done: Int, total: Int?, elapsedSeconds: Double, width: Int = 24) -> String {
        let seconds = elapsedSeconds < 10 ? String(format1(elapsedSeconds)) + " s" : "\(Int(elapsedSeconds.rounded())) s"
        guard let total, total > 0 else {
            // Unknown total: a spinner-like position from the elapsed time.
            let position = Int(elapsedSeconds * 8) % max(width, 1)
            var cells = [Character](repeating: " ", count: width)
            cells[position] = "#"
            return "[" + String(cells) + "]       " + label + (done > 0 ? "  \(done)" : "") + "  " + seconds
        }
        let fraction = min(1, max(0, Double(done) / Double(total)))
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let percent = String(Int((fraction * 100).rounded(.down)))
        return "[" + bar + "] " + String(repeating: " ", count: 3 - min(3, percent.count)) + percent + "%  " + label + "  \(done)/\(total)  " + seconds
    }

    static func format1(_ x: Double) -> String {
        let tenths = Int((x * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

/// Human formatting of benchmark figures (no Foundation: the same text on every platform).
public enum Figure {
    /// `1234567.8` → `"1,234,568"`.
    public static func grouped(_ x: Double) -> String {
        guard x.isFinite else { return "-" }
        let n = Int(x.rounded())
        let digits = String(abs(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// A value with `digits` decimals (rounded half away from zero).
    public static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(x) * scale).rounded()
        let whole = Int(scaled / scale)
        var text = "\(whole)"
        if digits > 0 {
            let fraction = Int(scaled - Double(whole) * scale)
            let f = String(fraction)
            text += "." + String(repeating: "0", count: digits - f.count) + f
        }
        return (x < 0 && scaled != 0 ? "-" : "") + text
    }

    /// Milliseconds with sensible precision: `0.042` → `"0.042"`, `7.31` → `"7.3"`, `1565.2` → `"1,565"`.
    public static func ms(_ x: Double) -> String {
        guard x.isFinite else { return "-" }
        if x >= 100 { return grouped(x) }
        if x >= 10 { return fixed(x, 1) }
        if x >= 1 { return fixed(x, 2) }
        return fixed(x, 3)
    }

    /// Bytes as MiB (2^20, the unit of /proc's "kB" ×1024) with one decimal.
    public static func mebibytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 1) + " MiB" }

    /// `0.947` → `"95%"`.
    public static func percent(_ ratio: Double) -> String { ratio.isFinite ? fixed(ratio * 100, 0) + "%" : "-" }
}
