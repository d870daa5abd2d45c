/// JSON string literals (RFC 8259), written the one way the project writes them: `"` and `\` escaped, the short
/// escapes `\b \f \n \r \t`, every other control character as `\u00XX` (lower-case hex), everything else — including
/// non-ASCII UTF-8 — as is. Canonical route views are hashed and signed, so this output is part of their identity:
/// never change it without a new view format.
public enum JSONString {
    /// Appends `s` as a JSON string literal (with its quotes) to `out`.
    public static func append(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            // Fast path: nothing to escape.
            if !utf8.contains(where: needsEscape) {
                out.append(contentsOf: utf8)
            } else {
                for c in utf8 { appendEscaped(c, to: &out) }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `s` as a JSON string literal (with its quotes).
    public static func quoted(_ s: String) -> String {
        if !s.utf8.contains(where: needsEscape) { return "\"" + s + "\"" }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 8)
        append(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    static func needsEscape(_ c: UInt8) -> Bool { c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    @inline(__always)
    static func appendEscaped(_ c: UInt8, to out: inout [UInt8]) {
        switch c {
        case UInt8(ascii: "\""): out += [0x5c, 0x22]
        case UInt8(ascii: "\\"): out += [0x5c, 0x5c]
        case 0x08: out += [0x5c, UInt8(ascii: "b")]
        case 0x0c: out += [0x5c, UInt8(ascii: "f")]
        case 0x0a: out += [0x5c, UInt8(ascii: "n")]
        case 0x0d: out += [0x5c, UInt8(ascii: "r")]
        case 0x09: out += [0x5c, UInt8(ascii: "t")]
        case 0..<0x20: out += [0x5c, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0x0f)]]
        default: out.append(c)
        }
    }
}
