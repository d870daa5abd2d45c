/// A key of an object member, as it was read: a slice of the input (the usual case) or, when
/// the key had escapes, its unescaped bytes. Compared byte for byte with field names, also as a
/// `switch` pattern: `case "network_id":`.
public struct JSONKey {
    public let raw: UnsafeBufferPointer<UInt8>
    public let unescaped: [UInt8]?

    @inlinable
    public init(raw: UnsafeBufferPointer<UInt8>, unescaped: [UInt8]?) {
        self.raw = raw
        self.unescaped = unescaped
    }

    @inlinable @inline(__always)
    public func `is`(_ name: StaticString) -> Bool {
        let n = name.utf8CodeUnitCount
        if let u = unescaped {
            guard u.count == n else { return false }
            return u.withUnsafeBufferPointer { Self.equal($0.baseAddress, name.utf8Start, n) }
        }
        guard raw.count == n else { return false }
        return Self.equal(raw.baseAddress, name.utf8Start, n)
    }

    @inlinable @inline(__always)
    public static func ~= (name: StaticString, key: JSONKey) -> Bool { key.is(name) }

    /// The key as a string (escapes resolved).
    public var string: String {
        if let unescaped { return String(decoding: unescaped, as: UTF8.self) }
        return String(decoding: raw, as: UTF8.self)
    }

    @inlinable @inline(__always)
    static func equal(_ a: UnsafePointer<UInt8>?, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        guard let a else { return n == 0 }
        var i = 0
        while i < n {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }
}

extension JSONReader {
    /// Reads a string value.
    @inlinable @inline(__always)
    public mutating func readString() throws(JSONReadError) -> String {
        guard peek == UInt8(ascii: "\"") else { throw typeMismatch("a string") }
        let (start, end, escaped) = try scanString()
        let body = UnsafeBufferPointer(rebasing: buf[start..<end])
        if !escaped { return String(decoding: body, as: UTF8.self) }  // validated: no repair happens
        return String(decoding: Self.unescape(body), as: UTF8.self)
    }

    @inlinable
    public mutating func readStrings() throws(JSONReadError) -> [String] {
        try readArray { (r: inout JSONReader) throws(JSONReadError) in try r.readString() }
    }

    @inlinable @inline(__always)
    mutating func readKey() throws(JSONReadError) -> JSONKey {
        let (start, end, escaped) = try scanString()
        let body = UnsafeBufferPointer(rebasing: buf[start..<end])
        return JSONKey(raw: body, unescaped: escaped ? Self.unescape(body) : nil)
    }

    /// Validates the string at `pos` (which is at its opening quote) and moves past it.
    /// Returns the body's bounds (without quotes) and whether it contains escapes.
    @inlinable @inline(__always)
    public mutating func scanString() throws(JSONReadError) -> (start: Int, end: Int, escaped: Bool) {
        pos += 1
        let start = pos
        var escaped = false
        let n = buf.count
        while true {
            // Fast loop over plain ASCII (a local index: `pos` lives in memory).
            var i = pos
            while i < n {
                let c = buf[i]
                if c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c >= 0x80 { break }
                i += 1
            }
            pos = i
            guard pos < n else { throw fail("unterminated string") }
            let c = buf[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return (start, pos - 1, escaped)
            }
            if c == UInt8(ascii: "\\") {
                escaped = true
                try scanEscape()
            } else if c < 0x20 {
                throw fail("unescaped control character 0x\(String(c, radix: 16)) in string")
            } else {
                try scanUTF8Sequence()
            }
        }
    }

    /// One escape sequence at `pos` (at the backslash).
    @usableFromInline
    mutating func scanEscape() throws(JSONReadError) {
        pos += 1
        guard pos < buf.count else { throw fail("unterminated string") }
        switch buf[pos] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            pos += 1
        case UInt8(ascii: "u"):
            pos += 1
            let unit = try hex4()
            if unit >= 0xdc00 && unit <= 0xdfff { throw fail("lone low surrogate \\u\(String(unit, radix: 16)) in string") }
            if unit >= 0xd800 && unit <= 0xdbff {
                guard pos + 1 < buf.count, buf[pos] == UInt8(ascii: "\\"), buf[pos + 1] == UInt8(ascii: "u") else {
                    throw fail("high surrogate \\u\(String(unit, radix: 16)) not followed by a low surrogate")
                }
                pos += 2
                let low = try hex4()
                guard low >= 0xdc00 && low <= 0xdfff else {
                    throw fail("high surrogate \\u\(String(unit, radix: 16)) not followed by a low surrogate")
                }
            }
        default:
            throw fail("invalid escape \\\(String(UnicodeScalar(buf[pos])))")
        }
    }

    private mutating func hex4() throws(JSONReadError) -> UInt32 {
        guard pos + 4 <= buf.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let d = Self.hexValue(buf[pos]) else { throw fail("invalid hex digit in \\u escape") }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// One well-formed multi-byte UTF-8 sequence at `pos` (Unicode Table 3-7: no overlongs, no
    /// surrogates, nothing over U+10FFFF).
    @usableFromInline
    mutating func scanUTF8Sequence() throws(JSONReadError) {
        let b0 = buf[pos]
        let n = buf.count
        @inline(__always) func cont(_ i: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xbf) -> Bool {
            i < n && buf[i] >= lo && buf[i] <= hi
        }
        switch b0 {
        case 0xc2...0xdf:
            guard cont(pos + 1) else { break }
            pos += 2; return
        case 0xe0:
            guard cont(pos + 1, 0xa0), cont(pos + 2) else { break }
            pos += 3; return
        case 0xe1...0xec, 0xee...0xef:
            guard cont(pos + 1), cont(pos + 2) else { break }
            pos += 3; return
        case 0xed:
            guard cont(pos + 1, 0x80, 0x9f), cont(pos + 2) else { break }
            pos += 3; return
        case 0xf0:
            guard cont(pos + 1, 0x90), cont(pos + 2), cont(pos + 3) else { break }
            pos += 4; return
        case 0xf1...0xf3:
            guard cont(pos + 1), cont(pos + 2), cont(pos + 3) else { break }
            pos += 4; return
        case 0xf4:
            guard cont(pos + 1, 0x80, 0x8f), cont(pos + 2), cont(pos + 3) else { break }
            pos += 4; return
        default:
            break
        }
        throw fail("invalid UTF-8 in string")
    }

    /// The bytes of a validated string body with its escapes resolved.
    @usableFromInline
    static func unescape(_ body: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count)
        var i = 0
        func hex(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 { v = v << 4 | hexValue(body[at + k])! }
            return v
        }
        while i < body.count {
            let c = body[i]
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                i += 1
                continue
            }
            let e = body[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex(i)
                i += 4
                if scalar >= 0xd800 && scalar <= 0xdbff {
                    let low = hex(i + 2)
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                }
                appendUTF8(scalar, to: &out)
            default: out.append(e)  // " \ /
            }
        }
        return out
    }

    static func appendUTF8(_ s: UInt32, to out: inout [UInt8]) {
        switch s {
        case 0..<0x80:
            out.append(UInt8(s))
        case 0x80..<0x800:
            out.append(UInt8(0xc0 | (s >> 6)))
            out.append(UInt8(0x80 | (s & 0x3f)))
        case 0x800..<0x10000:
            out.append(UInt8(0xe0 | (s >> 12)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3f)))
            out.append(UInt8(0x80 | (s & 0x3f)))
        default:
            out.append(UInt8(0xf0 | (s >> 18)))
            out.append(UInt8(0x80 | ((s >> 12) & 0x3f)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3f)))
            out.append(UInt8(0x80 | (s & 0x3f)))
        }
    }
}
