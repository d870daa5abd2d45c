/// Why a JSON text did not read: a syntax error (RFC 8259) or a value of the wrong type/shape.
/// `offset` is the byte position the reader was at.
public struct JSONReadError: Error, Hashable, Sendable, CustomStringConvertible {
    public let reason: String
    public let offset: Int
    public init(reason: String, offset: Int) {
        self.reason = reason
        self.offset = offset
    }
    public var description: String { "\(reason) at byte \(offset)" }
}

/// A small, strict RFC 8259 reader over UTF-8 bytes: the one JSON reader of the hot paths (stored
/// events, view envelopes, JetStream acknowledgements); Codable reads everything else and is the
/// reference this reader is tested against. It reads values in place (no intermediate tree):
/// callers walk objects with `readObject` (or `beginObject`/`nextKey`) and arrays with
/// `readArray`, read typed scalars with `readString`/`readInt`/`readBool`, and `skipValue`
/// anything they do not know (skipping still validates it). Strings are checked for valid UTF-8,
/// control characters and escapes (`\uXXXX` with surrogate pairs; a lone surrogate is an error);
/// numbers follow the RFC grammar. Nesting deeper than `maxDepth` (512 unless told, as
/// Foundation's `JSONDecoder`) is refused, so hostile input cannot exhaust the stack.
///
/// Where Foundation's decoder is more lenient than RFC 8259 (a trailing comma in an object, an
/// invalid value inside a member nobody asks for), this reader is strict; for valid JSON the two
/// agree (`Tests/JSONKitTests`, `Tests/RouteModelTests/FastDecodingTests.swift`).
///
/// The hot methods are `@inlinable` so that decoders in other modules get them specialized and
/// inlined, as if the reader were their own.
public struct JSONReader {
    public let buf: UnsafeBufferPointer<UInt8>
    public var pos: Int = 0
    public var depth: Int = 0
    public let maxDepth: Int

    @inlinable
    public init(_ buf: UnsafeBufferPointer<UInt8>, maxDepth: Int = 512) {
        self.buf = buf
        self.maxDepth = maxDepth
    }

    // MARK: - bytes

    /// The byte at `pos`, or 0 at the end (0 is never valid where a structural byte is expected,
    /// and a raw 0 inside a string is refused as a control character).
    @inlinable @inline(__always)
    public var peek: UInt8 { pos < buf.count ? buf[pos] : 0 }

    @inlinable
    public var atEnd: Bool { pos >= buf.count }

    @inlinable
    public func fail(_ reason: String) -> JSONReadError { JSONReadError(reason: reason, offset: pos) }

    @inlinable @inline(__always)
    public mutating func skipWhitespace() {
        var i = pos
        while i < buf.count {
            let c = buf[i]
            guard c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09 else { break }
            i += 1
        }
        pos = i
    }

    /// Skips a UTF-8 byte order mark at the start (Foundation's decoder accepts one).
    @inlinable
    public mutating func skipByteOrderMark() {
        if pos == 0, buf.count >= 3, buf[0] == 0xef, buf[1] == 0xbb, buf[2] == 0xbf { pos = 3 }
    }

    /// After the top-level value: only whitespace may follow.
    @inlinable
    public mutating func expectEnd() throws(JSONReadError) {
        skipWhitespace()
        guard atEnd else { throw fail("unexpected \(Self.show(peek)) after the JSON value") }
    }

    @usableFromInline
    static func show(_ c: UInt8) -> String {
        if c >= 0x21 && c < 0x7f { return "'\(String(UnicodeScalar(c)))'" }
        return "byte 0x" + String(c, radix: 16)
    }

    /// What the value at `pos` is, for error messages.
    public var valueKind: String {
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

    public func typeMismatch(_ expected: String) -> JSONReadError {
        fail("expected \(expected), found \(valueKind)")
    }

    /// The error for a required member that is absent (or, for a decoder that treats it so, null).
    public func missing(_ key: String) -> JSONReadError { fail("missing key \"\(key)\"") }

    // MARK: - objects and arrays

    @inlinable
    public mutating func beginObject() throws(JSONReadError) {
        guard peek == UInt8(ascii: "{") else { throw typeMismatch("an object") }
        try enter()
    }

    @inlinable
    public mutating func beginArray() throws(JSONReadError) {
        guard peek == UInt8(ascii: "[") else { throw typeMismatch("an array") }
        try enter()
    }

    @inlinable @inline(__always)
    mutating func enter() throws(JSONReadError) {
        depth += 1
        if depth > maxDepth { throw fail("nesting deeper than \(maxDepth)") }
        pos += 1
    }

    /// The next member's key (the reader is then at its value, whitespace skipped), or nil at
    /// the closing brace. `first` starts true for each object.
    @inlinable @inline(__always)
    public mutating func nextKey(_ first: inout Bool) throws(JSONReadError) -> JSONKey? {
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

    /// True when another element follows (the reader is then at it), false at the closing bracket.
    @inlinable @inline(__always)
    public mutating func nextElement(_ first: inout Bool) throws(JSONReadError) -> Bool {
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

    /// Reads an object, handing each member's key to `member` with the reader at its value;
    /// `member` reads the value and returns true, or returns false (without moving) for a key it
    /// does not take, which is then skipped (validated).
    @inlinable
    public mutating func readObject(_ member: (JSONKey, inout JSONReader) throws(JSONReadError) -> Bool) throws(JSONReadError) {
        try beginObject()
        var first = true
        while let key = try nextKey(&first) {
            if try !member(key, &self) { try skipValue() }
        }
    }

    /// Reads an object into its members' keys (unescaped) and the byte ranges of their values,
    /// in order, validating everything: for callers that check a whole shape (duplicates, unknown
    /// keys) before reading values, or keep a value's bytes as they are.
    public mutating func readMembers() throws(JSONReadError) -> [(key: String, value: Range<Int>)] {
        var members: [(key: String, value: Range<Int>)] = []
        try readObject { (key: JSONKey, r: inout JSONReader) throws(JSONReadError) -> Bool in
            let start = r.pos
            try r.skipValue()
            members.append((key.string, start..<r.pos))
            return true
        }
        return members
    }

    /// Reads an array whose elements `element` reads.
    @inlinable @inline(__always)
    public mutating func readArray<T>(_ element: (inout JSONReader) throws(JSONReadError) -> T) throws(JSONReadError) -> [T] {
        try beginArray()
        var out: [T] = []
        var first = true
        while try nextElement(&first) {
            if out.isEmpty { out.reserveCapacity(4) }
            out.append(try element(&self))
        }
        return out
    }

    /// Runs `body` with the reader at `offset` (a value recorded earlier), then comes back.
    @inlinable
    public mutating func at<T>(_ offset: Int, _ body: (inout JSONReader) throws(JSONReadError) -> T) throws(JSONReadError) -> T {
        let (savedPos, savedDepth) = (pos, depth)
        pos = offset
        let value = try body(&self)
        pos = savedPos
        depth = savedDepth
        return value
    }

    // MARK: - scalars

    /// Consumes `null` if it is next.
    @inlinable @inline(__always)
    public mutating func takeNull() -> Bool {
        if pos + 4 <= buf.count, buf[pos] == UInt8(ascii: "n"), buf[pos + 1] == UInt8(ascii: "u"),
           buf[pos + 2] == UInt8(ascii: "l"), buf[pos + 3] == UInt8(ascii: "l") {
            pos += 4
            return true
        }
        return false
    }

    /// `nil` for `null`, else what `read` reads (Codable's `decodeIfPresent` for a present key).
    @inlinable @inline(__always)
    public mutating func readOptional<T>(_ read: (inout JSONReader) throws(JSONReadError) -> T) throws(JSONReadError) -> T? {
        if takeNull() { return nil }
        return try read(&self)
    }

    @inlinable
    public mutating func readBool() throws(JSONReadError) -> Bool {
        if literal("true") { return true }
        if literal("false") { return false }
        throw typeMismatch("a boolean")
    }

    @inlinable @inline(__always)
    mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard pos + n <= buf.count else { return false }
        let w = word.utf8Start
        for i in 0..<n where buf[pos + i] != w[i] { return false }
        pos += n
        return true
    }

    /// An integer as Foundation's decoder reads one into `Int`: a plain integer literal that fits,
    /// or a number with fraction/exponent whose value is integral and fits (`1.0`, `1e2`).
    @inlinable
    public mutating func readInt() throws(JSONReadError) -> Int {
        let start = pos
        if try readIntegerDigits() { return try integerValue(from: start) }
        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
        guard let d = Double(text), let value = Int(exactly: d) else {
            throw JSONReadError(reason: "number \(text) is not an integer that fits in Int", offset: start)
        }
        return value
    }

    /// A plain integer literal (no fraction, no exponent) that fits in `Int`: for formats that
    /// spell their integers one way only (view envelopes, JetStream acknowledgements).
    @inlinable
    public mutating func readIntegerLiteral() throws(JSONReadError) -> Int {
        let start = pos
        guard try readIntegerDigits() else { throw JSONReadError(reason: "expected an integer without fraction or exponent", offset: start) }
        return try integerValue(from: start)
    }

    /// Validates the number at `pos`; true when it has no fraction and no exponent.
    @inlinable @inline(__always)
    mutating func readIntegerDigits() throws(JSONReadError) -> Bool {
        let c = peek
        guard c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) else {
            throw typeMismatch("an integer")
        }
        return try scanNumber()
    }

    /// The value of the integer literal `start..<pos`, or an error if it does not fit in `Int`.
    @inlinable
    func integerValue(from start: Int) throws(JSONReadError) -> Int {
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

    /// Validates a number (RFC 8259 grammar); true when it has no fraction and no exponent.
    @inlinable
    public mutating func scanNumber() throws(JSONReadError) -> Bool {
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
            guard Self.isDigit(peek) else { throw fail("expected a digit after '.' in number") }
            skipDigits()
            integral = false
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            guard Self.isDigit(peek) else { throw fail("expected a digit in exponent") }
            skipDigits()
            integral = false
        }
        return integral
    }

    @inlinable @inline(__always)
    static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    @inlinable @inline(__always)
    mutating func skipDigits() {
        while pos < buf.count && Self.isDigit(buf[pos]) { pos += 1 }
    }

    // MARK: - skipping

    /// Moves past one value of any kind, validating it.
    @inlinable
    public mutating func skipValue() throws(JSONReadError) {
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

extension JSONReader {
    /// Reads the one JSON text in `bytes` (a whole message, or a value's range of one) with `body`,
    /// which reads its value: only whitespace may follow. No byte order mark is accepted.
    @inlinable
    public static func read<T>(_ bytes: ArraySlice<UInt8>, maxDepth: Int = 512,
                               _ body: (inout JSONReader) throws(JSONReadError) -> T) throws(JSONReadError) -> T {
        try bytes.withUnsafeBufferPointer { (buf: UnsafeBufferPointer<UInt8>) throws(JSONReadError) -> T in
            var r = JSONReader(buf, maxDepth: maxDepth)
            r.skipWhitespace()
            let value = try body(&r)
            try r.expectEnd()
            return value
        }
    }

    /// The members of the one JSON object in `bytes` (see `readMembers`); value ranges index `bytes`.
    public static func members(of bytes: [UInt8], maxDepth: Int = 512) throws(JSONReadError) -> [(key: String, value: Range<Int>)] {
        try read(bytes[...], maxDepth: maxDepth) { (r: inout JSONReader) throws(JSONReadError) in try r.readMembers() }
    }
}
