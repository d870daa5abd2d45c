/// A palette canvas for plots: pixels, rectangles, thick and dashed lines, and text in a 5×7 bitmap
/// font with a descender row (5×8 cells, scaled by whole pixels). Pure; `png()` encodes it.
public struct Canvas: Sendable {
    public let width: Int
    public let height: Int
    public private(set) var palette: [PNG.RGB]
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, background: PNG.RGB = PNG.RGB(255, 255, 255)) {
        self.width = width
        self.height = height
        palette = [background]
        pixels = [UInt8](repeating: 0, count: width * height)
    }

    /// The palette index of a color, adding it when new (the palette holds at most 256).
    public mutating func color(_ rgb: PNG.RGB) -> UInt8 {
        if let i = palette.firstIndex(of: rgb) { return UInt8(i) }
        precondition(palette.count < 256, "palette full")
        palette.append(rgb)
        return UInt8(palette.count - 1)
    }

    public subscript(x: Int, y: Int) -> PNG.RGB {
        palette[Int(pixels[y * width + x])]
    }

    public mutating func set(_ x: Int, _ y: Int, _ c: UInt8) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        pixels[y * width + x] = c
    }

    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ c: UInt8) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 { for xx in x0..<x1 { pixels[yy * width + xx] = c } }
    }

    /// The outline of a rectangle, `thickness` pixels inward.
    public mutating func frame(x: Int, y: Int, width w: Int, height h: Int, _ c: UInt8, thickness: Int = 1) {
        fill(x: x, y: y, width: w, height: thickness, c)
        fill(x: x, y: y + h - thickness, width: w, height: thickness, c)
        fill(x: x, y: y, width: thickness, height: h, c)
        fill(x: x + w - thickness, y: y, width: thickness, height: h, c)
    }

    /// A line from (x0, y0) to (x1, y1) (Bresenham), `thickness` pixels wide; `dash` = (on, off) pixel
    /// counts along the line for a dashed one. `phase` continues a dash pattern across joined segments
    /// and is returned advanced.
    @discardableResult
    public mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: UInt8, thickness: Int = 1,
                              dash: (on: Int, off: Int)? = nil, phase: Int = 0) -> Int {
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        var x = x0, y = y0
        var step = phase
        let lo = -(thickness - 1) / 2, hi = thickness / 2
        // Bounded: a line visits at most max(dx, -dy) + 1 pixels.
        for _ in 0...(max(dx, -dy) + 1) {
            let on = dash.map { step % ($0.on + $0.off) < $0.on } ?? true
            if on {
                for oy in lo...hi { for ox in lo...hi { set(x + ox, y + oy, c) } }
            }
            step += 1
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
        return step
    }

    /// A polyline through `points`, dash pattern continued across segments.
    public mutating func polyline(_ points: [(x: Int, y: Int)], _ c: UInt8, thickness: Int = 1, dash: (on: Int, off: Int)? = nil) {
        guard points.count > 1 else {
            if let p = points.first { fill(x: p.x - thickness / 2, y: p.y - thickness / 2, width: thickness, height: thickness, c) }
            return
        }
        var phase = 0
        for k in 1..<points.count {
            phase = line(points[k - 1].x, points[k - 1].y, points[k].x, points[k].y, c, thickness: thickness, dash: dash, phase: phase)
        }
    }

    // MARK: Text

    /// Width in pixels of `text` at `scale` (6 columns per character: 5 + 1 space, minus the last space).
    public static func textWidth(_ text: String, scale: Int = 1) -> Int {
        let n = text.unicodeScalars.count
        return n == 0 ? 0 : (n * 6 - 1) * scale
    }

    /// Height of a line of text: 7 rows above the baseline and one descender row.
    public static func textHeight(scale: Int = 1) -> Int { 8 * scale }

    /// `text` broken at spaces into lines no wider than `maxWidth` pixels (a word longer than that keeps its own line).
    public static func wrap(_ text: String, maxWidth: Int, scale: Int = 1) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            let candidate = current.isEmpty ? String(word) : current + " " + word
            if textWidth(candidate, scale: scale) <= maxWidth || current.isEmpty {
                current = candidate
            } else {
                lines.append(current)
                current = String(word)
            }
        }
        if !current.isEmpty || lines.isEmpty { lines.append(current) }
        return lines
    }

    /// Draws `text` with its top-left corner at (x, y). Characters outside ASCII 32–126 draw as `?`,
    /// except `µ` (drawn as `u`).
    public mutating func text(_ text: String, x: Int, y: Int, _ c: UInt8, scale: Int = 1) {
        var cx = x
        for scalar in text.unicodeScalars {
            let columns = Font5x7.glyph(scalar)
            for (col, bits) in columns.enumerated() {
                for row in 0..<8 where bits & (1 << row) != 0 {
                    fill(x: cx + col * scale, y: y + row * scale, width: scale, height: scale, c)
                }
            }
            cx += 6 * scale
        }
    }

    /// Text turned 90° counter-clockwise (reads bottom to top), its bottom-left corner at (x, y + width).
    /// (x, y) is the top-left of the rotated text's bounding box.
    public mutating func verticalText(_ text: String, x: Int, y: Int, _ c: UInt8, scale: Int = 1) {
        let length = Self.textWidth(text, scale: scale)
        var offset = 0
        for scalar in text.unicodeScalars {
            let columns = Font5x7.glyph(scalar)
            for (col, bits) in columns.enumerated() {
                for row in 0..<8 where bits & (1 << row) != 0 {
                    // Unrotated (u, v) = (offset + col, row) → rotated (v, length - 1 - u).
                    fill(x: x + row * scale, y: y + length - (offset + col + 1) * scale, width: scale, height: scale, c)
                }
            }
            offset += 6
        }
    }

    public func png(mode: Deflate.Mode = .fixedHuffman) -> [UInt8] {
        PNG.encode(width: width, height: height, palette: palette, pixels: pixels, mode: mode)
    }
}

/// The classic 5×7 LCD font, ASCII 32–126: five column bytes per character, bit 0 at the top; g, j, p, q
/// and y use bit 7, a descender row below the baseline (row 6).
public enum Font5x7 {
    static let data: [UInt8] = [
        0x00, 0x00, 0x00, 0x00, 0x00, /* ' ' */ 0x00, 0x00, 0x5F, 0x00, 0x00, /* ! */ 0x00, 0x07, 0x00, 0x07, 0x00, /* " */
        0x14, 0x7F, 0x14, 0x7F, 0x14, /* # */ 0x24, 0x2A, 0x7F, 0x2A, 0x12, /* $ */ 0x23, 0x13, 0x08, 0x64, 0x62, /* % */
        0x36, 0x49, 0x55, 0x22, 0x50, /* & */ 0x00, 0x05, 0x03, 0x00, 0x00, /* ' */ 0x00, 0x1C, 0x22, 0x41, 0x00, /* ( */
        0x00, 0x41, 0x22, 0x1C, 0x00, /* ) */ 0x14, 0x08, 0x3E, 0x08, 0x14, /* * */ 0x08, 0x08, 0x3E, 0x08, 0x08, /* + */
        0x00, 0x50, 0x30, 0x00, 0x00, /* , */ 0x08, 0x08, 0x08, 0x08, 0x08, /* - */ 0x00, 0x60, 0x60, 0x00, 0x00, /* . */
        0x20, 0x10, 0x08, 0x04, 0x02, /* / */ 0x3E, 0x51, 0x49, 0x45, 0x3E, /* 0 */ 0x00, 0x42, 0x7F, 0x40, 0x00, /* 1 */
        0x42, 0x61, 0x51, 0x49, 0x46, /* 2 */ 0x21, 0x41, 0x45, 0x4B, 0x31, /* 3 */ 0x18, 0x14, 0x12, 0x7F, 0x10, /* 4 */
        0x27, 0x45, 0x45, 0x45, 0x39, /* 5 */ 0x3C, 0x4A, 0x49, 0x49, 0x30, /* 6 */ 0x01, 0x71, 0x09, 0x05, 0x03, /* 7 */
        0x36, 0x49, 0x49, 0x49, 0x36, /* 8 */ 0x06, 0x49, 0x49, 0x29, 0x1E, /* 9 */ 0x00, 0x36, 0x36, 0x00, 0x00, /* : */
        0x00, 0x56, 0x36, 0x00, 0x00, /* ; */ 0x08, 0x14, 0x22, 0x41, 0x00, /* < */ 0x14, 0x14, 0x14, 0x14, 0x14, /* = */
        0x00, 0x41, 0x22, 0x14, 0x08, /* > */ 0x02, 0x01, 0x51, 0x09, 0x06, /* ? */ 0x32, 0x49, 0x79, 0x41, 0x3E, /* @ */
        0x7E, 0x11, 0x11, 0x11, 0x7E, /* A */ 0x7F, 0x49, 0x49, 0x49, 0x36, /* B */ 0x3E, 0x41, 0x41, 0x41, 0x22, /* C */
        0x7F, 0x41, 0x41, 0x22, 0x1C, /* D */ 0x7F, 0x49, 0x49, 0x49, 0x41, /* E */ 0x7F, 0x09, 0x09, 0x09, 0x01, /* F */
        0x3E, 0x41, 0x49, 0x49, 0x7A, /* G */ 0x7F, 0x08, 0x08, 0x08, 0x7F, /* H */ 0x00, 0x41, 0x7F, 0x41, 0x00, /* I */
        0x20, 0x40, 0x41, 0x3F, 0x01, /* J */ 0x7F, 0x08, 0x14, 0x22, 0x41, /* K */ 0x7F, 0x40, 0x40, 0x40, 0x40, /* L */
        0x7F, 0x02, 0x0C, 0x02, 0x7F, /* M */ 0x7F, 0x04, 0x08, 0x10, 0x7F, /* N */ 0x3E, 0x41, 0x41, 0x41, 0x3E, /* O */
        0x7F, 0x09, 0x09, 0x09, 0x06, /* P */ 0x3E, 0x41, 0x51, 0x21, 0x5E, /* Q */ 0x7F, 0x09, 0x19, 0x29, 0x46, /* R */
        0x46, 0x49, 0x49, 0x49, 0x31, /* S */ 0x01, 0x01, 0x7F, 0x01, 0x01, /* T */ 0x3F, 0x40, 0x40, 0x40, 0x3F, /* U */
        0x1F, 0x20, 0x40, 0x20, 0x1F, /* V */ 0x3F, 0x40, 0x38, 0x40, 0x3F, /* W */ 0x63, 0x14, 0x08, 0x14, 0x63, /* X */
        0x07, 0x08, 0x70, 0x08, 0x07, /* Y */ 0x61, 0x51, 0x49, 0x45, 0x43, /* Z */ 0x00, 0x7F, 0x41, 0x41, 0x00, /* [ */
        0x02, 0x04, 0x08, 0x10, 0x20, /* \ */ 0x00, 0x41, 0x41, 0x7F, 0x00, /* ] */ 0x04, 0x02, 0x01, 0x02, 0x04, /* ^ */
        0x40, 0x40, 0x40, 0x40, 0x40, /* _ */ 0x00, 0x01, 0x02, 0x04, 0x00, /* ` */ 0x20, 0x54, 0x54, 0x54, 0x78, /* a */
        0x7F, 0x48, 0x44, 0x44, 0x38, /* b */ 0x38, 0x44, 0x44, 0x44, 0x20, /* c */ 0x38, 0x44, 0x44, 0x48, 0x7F, /* d */
        0x38, 0x54, 0x54, 0x54, 0x18, /* e */ 0x08, 0x7E, 0x09, 0x01, 0x02, /* f */ 0x18, 0xA4, 0xA4, 0xA4, 0x7C, /* g */
        0x7F, 0x08, 0x04, 0x04, 0x78, /* h */ 0x00, 0x44, 0x7D, 0x40, 0x00, /* i */ 0x40, 0x80, 0x80, 0x7D, 0x00, /* j */
        0x7F, 0x10, 0x28, 0x44, 0x00, /* k */ 0x00, 0x41, 0x7F, 0x40, 0x00, /* l */ 0x7C, 0x04, 0x18, 0x04, 0x78, /* m */
        0x7C, 0x08, 0x04, 0x04, 0x78, /* n */ 0x38, 0x44, 0x44, 0x44, 0x38, /* o */ 0xFC, 0x24, 0x24, 0x24, 0x18, /* p */
        0x18, 0x24, 0x24, 0x24, 0xFC, /* q */ 0x7C, 0x08, 0x04, 0x04, 0x08, /* r */ 0x48, 0x54, 0x54, 0x54, 0x20, /* s */
        0x04, 0x3F, 0x44, 0x40, 0x20, /* t */ 0x3C, 0x40, 0x40, 0x20, 0x7C, /* u */ 0x1C, 0x20, 0x40, 0x20, 0x1C, /* v */
        0x3C, 0x40, 0x30, 0x40, 0x3C, /* w */ 0x44, 0x28, 0x10, 0x28, 0x44, /* x */ 0x1C, 0xA0, 0xA0, 0xA0, 0x7C, /* y */
        0x44, 0x64, 0x54, 0x4C, 0x44, /* z */ 0x00, 0x08, 0x36, 0x41, 0x00, /* { */ 0x00, 0x00, 0x7F, 0x00, 0x00, /* | */
        0x00, 0x41, 0x36, 0x08, 0x00, /* } */ 0x08, 0x04, 0x08, 0x10, 0x08, /* ~ */
    ]

    /// The five column bytes of a character.
    public static func glyph(_ scalar: Unicode.Scalar) -> ArraySlice<UInt8> {
        var v = Int(scalar.value)
        if scalar == "µ" { v = Int(UInt8(ascii: "u")) }
        if v < 32 || v > 126 { v = Int(UInt8(ascii: "?")) }
        let start = (v - 32) * 5
        return data[start..<start + 5]
    }
}
