import JSONKit

extension JSONValue {
    /// Parses a request body with the byte-level `JSONReader` (RFC 8259; strings validated as UTF-8; nesting at most
    /// 512; nothing after the value). Foundation's `JSONDecoder` building the same tree through `Decodable` was ~195,000
    /// instructions of a PUT /api/routes' ~1.35 million (callgrind, `routeplane-bench api --only PUT --callgrind`).
    /// Numbers read as Foundation's decoder read them into this enum: an integer that fits in Int64 is `.int`, as is a
    /// number with a fraction or exponent whose value is an integer that fits exactly (`1.0`, `1e2`); any other number
    /// is `.double`. A key given twice keeps its last value. Unlike Foundation's decoder, a trailing comma (`[1,]`) is refused,
    /// as RFC 8259 and NetBird's Go handlers refuse it.
    static func parse(_ bytes: [UInt8]) throws(JSONReadError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buf) throws(JSONReadError) -> JSONValue in
            var reader = JSONReader(buf)
            reader.skipByteOrderMark()
            reader.skipWhitespace()
            let value = try read(&reader)
            try reader.expectEnd()
            return value
        }
    }

    private static func read(_ r: inout JSONReader) throws(JSONReadError) -> JSONValue {
        r.skipWhitespace()
        switch r.peek {
        case UInt8(ascii: "{"):
            var members: [String: JSONValue] = [:]
            try r.readObject { (key: JSONKey, r: inout JSONReader) throws(JSONReadError) -> Bool in
                members[key.string] = try read(&r)
                return true
            }
            return .object(members)
        case UInt8(ascii: "["):
            return .array(try r.readArray { (r: inout JSONReader) throws(JSONReadError) -> JSONValue in try read(&r) })
        case UInt8(ascii: "\""):
            return .string(try r.readString())
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return .bool(try r.readBool())
        case UInt8(ascii: "n"):
            guard r.takeNull() else { throw r.fail("expected a value") }
            return .null
        default:
            let start = r.pos
            let integral = try r.scanNumber()
            let text = String(decoding: UnsafeBufferPointer(rebasing: r.buf[start..<r.pos]), as: UTF8.self)
            if integral, let i = Int64(text) { return .int(i) }
            guard let d = Double(text), d.isFinite else { throw JSONReadError(reason: "number \(text) is out of range", offset: start) }
            if !integral, let i = Int64(exactly: d) { return .int(i) }
            return .double(d)
        }
    }
}
