/// Why a JSON text did not read: a syntax error (RFC 8259) or a value of the wrong type/shape.
/// `offset` is the byte position the reader was at.
struct JSONReadError: Error, Hashable, Sendable, CustomStringConvertible {
    let reason: String
    let offset: Int
    var description: String { "\(reason) at byte \(offset)" }
}

/// A key of an object member, as it was read: a slice of the input (the usual case) or, when
/// the key had escapes, its unescaped bytes. Compared byte for byte with field names.
struct JSONKey {
    let raw: UnsafeBufferPointer<UInt8>
    let unescaped: [UInt8]?

    @inline(__always)
    func `is`(_ name: StaticString) -> Bool {
        let n = name.utf8CodeUnitCount
        if let u = unescaped {
            guard u.count == n else { return false }
            return u.withUnsafeBufferPointer { Self.equal($0.baseAddress, name.utf8Start, n) }
        }
        guard raw.count == n else { return false }
        return Self.equal(raw.baseAddress, name.utf8Start, n)
    }

    @inline(__always)
    private static func equal(_ a: UnsafePointer<UInt8>?, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        guard let a else { return n == 0 }
        var i = 0
        while i < n {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }
}

/// A small, strict RFC 8259 reader over UTF-8 bytes: the decoding mirror of
/// `CanonicalJSONWriter`. It reads values in place (no intermediate tree): callers walk objects
/// with `beginObject`/`nextKey` and arrays with `beginArray`/`nextElement`, read typed scalars
/// with `readString`/`readInt`/`readBool`, and `skipValue` anything they do not know (skipping
/// still validates it). Strings are checked for valid UTF-8, control characters and escapes
/// (`\uXXXX` with surrogate pairs; a lone surrogate is an error); numbers follow the RFC grammar.
/// Nesting deeper than 512 is refused (as Foundation's `JSONDecoder` does), so hostile input
/// cannot exhaust the stack.
///
/// Where Foundation's decoder is more lenient than RFC 8259 (a trailing comma in an object, an
/// invalid value inside a member nobody asks for), this reader is strict; for valid JSON the two
/// agree (`Tests/RouteModelTests/JSONReaderTests.swift`).
struct JSONReader {
    let buf: UnsafeBufferPointer<UInt8>
    var pos: Int = 0
    var depth: Int = 0
    static let maxDepth = 512

    init(_ buf: UnsafeBufferPointer<UInt8>) { self.buf = buf }

    // MARK: - bytes

    /// The byte at `pos`, or 0 at the end (0 is never valid where a structural byte is expected,
    /// and a raw 0 inside a string is refused as a control character).
    @inline(__always)
    var peek: UInt8 { pos < buf.count ? buf[pos] : 0 }

    var atEnd: Bool { pos >= buf.count }

    func fail(_ reason: String) -> JSONReadError { JSONReadError(reason: reason, offset: pos) }

    @inline(__always)
    mutating func skipWhitespace() {
        var i = pos
        while i < buf.count {
            let c = buf[i]
            guard c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09 else { break }
            i += 1
        }
        pos = i
    }

    /// Skips a UTF-8 byte order mark at the start (Foundation's decoder accepts one).
    mutating func skipByteOrderMark() {
        if pos == 0, buf.count >= 3, buf[0] == 0xef, buf[1] == 0xbb, buf[2] == 0xbf { pos = 3 }
    }

    /// After the top-level value: only whitespace may follow.
    mutating func expectEnd() throws(JSONReadError) {
        skipWhitespace()
        guard atEnd else { throw fail("unexpected \(Self.show(peek)) after the JSON value") }
    }

    static func show(_ c: UInt8) -> String {
        if c >= 0x21 && c < 0x7f { return "'\(String(UnicodeScalar(c)))'" }
        return "byte 0x" + String(c, radix: 16)
    }

    /// What the value at `pos` is, for error messages.
    var valueKind: String {
        switch peek {
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "{"): return "an object"
        case UInt8(ascii: "["): return "an array"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return "a boolean"
        case UInt8(ascii: "n"): return "null"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return "a number"
        case 0 where atEnd: return "the end of the input"
        default: return Self.show(peek)
        }
    }

    func typeMismatch(_ expected: String) -> JSONReadError {
        fail("expected \(expected), found \(valueKind)")
    }

    // MARK: - objects and arrays

    mutating func beginObject() throws(JSONReadError) {
        guard peek == UInt8(ascii: "{") else { throw typeMismatch("an object") }
        depth += 1
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth)") }
        pos += 1
    }

    /// The next member's key (the reader is then at its value, whitespace skipped), or nil at
    /// the closing brace. `first` starts true for each object.
    @inline(__always)
    mutating func nextKey(_ first: inout Bool) throws(JSONReadError) -> JSONKey? {
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            pos += 1
            depth -= 1
            return nil
        }
        if first {
            first = false
        } else {
            guard peek == UInt8(ascii: ",") else { throw fail("expected ',' or '}' in object, found \(valueKind)") }
            pos += 1
            skipWhitespace()
        }
        // After a comma a key must follow: `{"a":1,}` is refused here.
        guard peek == UInt8(ascii: "\"") else { throw fail("expected a string key, found \(valueKind)") }
        let key = try readKey()
        skipWhitespace()
        guard peek == UInt8(ascii: ":") else { throw fail("expected ':' after key, found \(valueKind)") }
        pos += 1
        skipWhitespace()
        return key
    }

    mutating func beginArray() throws(JSONReadError) {
        guard peek == UInt8(ascii: "[") else { throw typeMismatch("an array") }
        depth += 1
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth)") }
        pos += 1
    }

    /// True when another element follows (the reader is then at it), false at the closing bracket.
    @inline(__always)
    mutating func nextElement(_ first: inout Bool) throws(JSONReadError) -> Bool {
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
            pos += 1
            depth -= 1
            return false
        }
        if first {
            first = false
        } else {
            guard peek == UInt8(ascii: ",") else { throw fail("expected ',' or ']' in array, found \(valueKind)") }
            pos += 1
            skipWhitespace()
            // After a comma a value must follow: `[1,]` is refused here.
            if peek == UInt8(ascii: "]") { throw fail("trailing comma in array") }
        }
        return true
    }

    /// Reads an array whose elements `element` reads.
    @inline(__always)
    mutating func readArray<T>(_ element: (inout JSONReader) throws(JSONReadError) -> T) throws(JSONReadError) -> [T] {
        try beginArray()
        var out: [T] = []
        var first = true
        while try nextElement(&first) {
            if out.isEmpty { out.reserveCapacity(4) }
            out.append(try element(&self))
        }
        return out
    }

    /// Reads an object with `F`'s fields; members `F` does not take are skipped (validated).
    mutating func readObject<F: JSONObjectFields>(_: F.Type) throws(JSONReadError) -> F.Value {
        try beginObject()
        var fields = F()
        var first = true
        while let key = try nextKey(&first) {
            if try !fields.read(key, &self) { try skipValue() }
        }
        return try fields.finish(&self)
    }

    /// Runs `body` with the reader at `offset` (a value recorded earlier), then comes back.
    mutating func at<T>(_ offset: Int, _ body: (inout JSONReader) throws(JSONReadError) -> T) throws(JSONReadError) -> T {
        let (savedPos, savedDepth) = (pos, depth)
        pos = offset
        let value = try body(&self)
        pos = savedPos
        depth = savedDepth
        return value
    }

    // MARK: - scalars

    /// Consumes `null` if it is next.
    @inline(__always)
    mutating func takeNull() -> Bool {
        if pos + 4 <= buf.count, buf[pos] == UInt8(ascii: "n"), buf[pos + 1] == UInt8(ascii: "u"),
           buf[pos + 2] == UInt8(ascii: "l"), buf[pos + 3] == UInt8(ascii: "l") {
            pos += 4
            return true
        }
        return false
    }

    /// `nil` for `null`, else what `read` reads (Codable's `decodeIfPresent` for a present key).
    @inline(__always)
    mutating func readOptional<T>(_ read: (inout JSONReader) throws(JSONReadError) -> T) throws(JSONReadError) -> T? {
        if takeNull() { return nil }
        return try read(&self)
    }

    mutating func readBool() throws(JSONReadError) -> Bool {
        if literal("true") { return true }
        if literal("false") { return false }
        throw typeMismatch("a boolean")
    }

    @inline(__always)
    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard pos + n <= buf.count else { return false }
        let w = word.utf8Start
        for i in 0..<n where buf[pos + i] != w[i] { return false }
        pos += n
        return true
    }

    /// An integer as Foundation's decoder reads one into `Int`: a plain integer literal that fits,
    /// or a number with fraction/exponent whose value is integral and fits (`1.0`, `1e2`).
    mutating func readInt() throws(JSONReadError) -> Int {
        let c = peek
        guard c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) else {
            throw typeMismatch("an integer")
        }
        let start = pos
        let integral = try scanNumber()
        if integral {
            // Accumulate negatively so Int.min fits.
            var i = start
            let negative = buf[i] == UInt8(ascii: "-")
            if negative { i += 1 }
            var value = 0
            while i < pos {
                let d = Int(buf[i] &- UInt8(ascii: "0"))
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.subtractingReportingOverflow(d)
                if o1 || o2 { throw JSONReadError(reason: "number does not fit in Int", offset: start) }
                value = s
                i += 1
            }
            if negative { return value }
            guard value != .min else { throw JSONReadError(reason: "number does not fit in Int", offset: start) }
            return -value
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
        guard let d = Double(text), let value = Int(exactly: d) else {
            throw JSONReadError(reason: "number \(text) is not an integer that fits in Int", offset: start)
        }
        return value
    }

    /// Validates a number (RFC 8259 grammar); true when it has no fraction and no exponent.
    mutating func scanNumber() throws(JSONReadError) -> Bool {
        if peek == UInt8(ascii: "-") { pos += 1 }
        if peek == UInt8(ascii: "0") {
            pos += 1
        } else if peek >= UInt8(ascii: "1") && peek <= UInt8(ascii: "9") {
            pos += 1
            skipDigits()
        } else {
            throw fail("expected a digit in number")
        }
        var integral = true
        if peek == UInt8(ascii: ".") {
            pos += 1
            guard isDigit(peek) else { throw fail("expected a digit after '.' in number") }
            skipDigits()
            integral = false
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            guard isDigit(peek) else { throw fail("expected a digit in exponent") }
            skipDigits()
            integral = false
        }
        return integral
    }

    @inline(__always) private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    @inline(__always)
    private mutating func skipDigits() {
        while pos < buf.count && isDigit(buf[pos]) { pos += 1 }
    }

    // MARK: - strings

    /// Reads a string value.
    @inline(__always)
    mutating func readString() throws(JSONReadError) -> String {
        guard peek == UInt8(ascii: "\"") else { throw typeMismatch("a string") }
        let (start, end, escaped) = try scanString()
        let body = UnsafeBufferPointer(rebasing: buf[start..<end])
        if !escaped { return String(decoding: body, as: UTF8.self) }  // validated: no repair happens
        return String(decoding: Self.unescape(body), as: UTF8.self)
    }

    mutating func readStrings() throws(JSONReadError) -> [String] {
        try readArray { (r: inout JSONReader) throws(JSONReadError) in try r.readString() }
    }

    @inline(__always)
    private mutating func readKey() throws(JSONReadError) -> JSONKey {
        let (start, end, escaped) = try scanString()
        let body = UnsafeBufferPointer(rebasing: buf[start..<end])
        return JSONKey(raw: body, unescaped: escaped ? Self.unescape(body) : nil)
    }

    /// Validates the string at `pos` (which is at its opening quote) and moves past it.
    /// Returns the body's bounds (without quotes) and whether it contains escapes.
    @inline(__always)
    mutating func scanString() throws(JSONReadError) -> (start: Int, end: Int, escaped: Bool) {
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
    private mutating func scanEscape() throws(JSONReadError) {
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
    private mutating func scanUTF8Sequence() throws(JSONReadError) {
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

    // MARK: - skipping

    /// Moves past one value of any kind, validating it.
    mutating func skipValue() throws(JSONReadError) {
        switch peek {
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "{"):
            try beginObject()
            var first = true
            while try nextKey(&first) != nil { try skipValue() }
        case UInt8(ascii: "["):
            try beginArray()
            var first = true
            while try nextElement(&first) { try skipValue() }
        case UInt8(ascii: "t"):
            guard literal("true") else { throw fail("invalid literal") }
        case UInt8(ascii: "f"):
            guard literal("false") else { throw fail("invalid literal") }
        case UInt8(ascii: "n"):
            guard takeNull() else { throw fail("invalid literal") }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try scanNumber()
        default:
            throw fail(atEnd ? "unexpected end of input" : "expected a value, found \(valueKind)")
        }
    }
}

/// The fields of one JSON object shape, filled member by member (in any order), then checked
/// and assembled. The first occurrence of a duplicated key wins (as with Foundation's decoder).
protocol JSONObjectFields {
    associatedtype Value
    init()
    /// Reads the value of `key` when it is one of this shape's keys and returns true; returns
    /// false (without moving) for a key it does not take, which the caller then skips.
    mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool
    /// The value, or an error naming a missing required key (the reader is past the object).
    func finish(_ r: inout JSONReader) throws(JSONReadError) -> Value
}

/// Bookkeeping for `JSONObjectFields`: which keys were seen (first one wins).
struct SeenKeys {
    var bits: UInt32 = 0
    /// True the first time `bit` is asked for; false for a duplicate key.
    @inline(__always)
    mutating func first(_ bit: Int) -> Bool {
        let m: UInt32 = 1 << UInt32(bit)
        if bits & m != 0 { return false }
        bits |= m
        return true
    }
}
