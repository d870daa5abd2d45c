/// A value `JSONReader` reads on its own: what a `JSONField` holds.
public protocol JSONReadable {
    static func read(from r: inout JSONReader) throws(JSONReadError) -> Self
}

extension String: JSONReadable {
    @inlinable
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> String { try r.readString() }
}

extension Bool: JSONReadable {
    @inlinable
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> Bool { try r.readBool() }
}

/// As Foundation's decoder reads an `Int`: `readInt`.
extension Int: JSONReadable {
    @inlinable
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> Int { try r.readInt() }
}

/// As Foundation's decoder reads an `Int64`: `readInt`.
extension Int64: JSONReadable {
    @inlinable
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> Int64 { Int64(try r.readInt()) }
}

extension Array: JSONReadable where Element: JSONReadable {
    @inlinable
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> [Element] {
        try r.readArray { (r: inout JSONReader) throws(JSONReadError) in try Element.read(from: &r) }
    }
}

/// One member of an object shape, read the way Codable reads a keyed container: the first
/// occurrence of a key wins (later duplicates are skipped, still validated); `read` takes a
/// required member (null is a type error), `readNullable` an optional one (`decodeIfPresent`:
/// null leaves it absent).
///
///     var name = JSONField<String>()
///     try r.readObject { (key, r) throws(JSONReadError) -> Bool in
///         switch key {
///         case "name": try name.read(&r)
///         default: return false
///         }
///         return true
///     }
///     let value = try name.required("name", r)
public struct JSONField<Value: JSONReadable> {
    public var value: Value?
    /// The key was met (its first value is in `value`, or it was null).
    public var seen = false

    @inlinable
    public init() {}

    @inlinable @inline(__always)
    public mutating func read(_ r: inout JSONReader) throws(JSONReadError) {
        if seen { return try r.skipValue() }
        seen = true
        value = try Value.read(from: &r)
    }

    @inlinable @inline(__always)
    public mutating func readNullable(_ r: inout JSONReader) throws(JSONReadError) {
        if seen { return try r.skipValue() }
        seen = true
        if r.takeNull() { return }
        value = try Value.read(from: &r)
    }

    /// The value, or a "missing key" error at the reader's position (after the object).
    @inlinable
    public func required(_ key: String, _ r: JSONReader) throws(JSONReadError) -> Value {
        guard let value else { throw r.missing(key) }
        return value
    }
}
