import Foundation
import Hummingbird
import NIOCore

/// A parsed JSON document. Request bodies are read into this first, then decoded into the handler's `Decodable` type
/// by `RequestBodyDecoder`, so every field is checked by name (a wrong type answers 400 naming the field, as a missing
/// one answers 422), and unknown fields are ignored as NetBird's handlers ignore them.
public enum JSONValue: Sendable, Hashable, Decodable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension Request {
    /// The body decoded as `T` (413 above the limit, 400 when it is not one JSON object or a field has the wrong type,
    /// 422 when a required field is missing; fields are checked in `T`'s declaration order).
    mutating func decodeBody<T: Decodable>(_ type: T.Type, limit: Int) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError(.payloadTooLarge, "request body is larger than \(limit) bytes")
        } catch {
            // The connection closed (or timed out, see `RequestDeadlines`) before the body was complete; during a
            // shutdown the middleware answers 503 instead.
            throw APIError(.badRequest, "the request body ended before it was complete")
        }
        return try RequestBodyDecoder.decode(T.self, from: Array(buffer.readableBytesView))
    }
}

/// Decodes a request body into a `Decodable` type with the checks and messages NetBird's clients expect:
/// `"<field> is required"` (422) for a missing or null required field, `"couldn't parse JSON request: field <field>
/// must be <a type>, got <type>"` (400) for a wrong type. Optional properties may be absent or null.
enum RequestBodyDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw APIError(.badRequest, "couldn't parse JSON request")
        }
        guard case .object = value else {
            throw APIError(.badRequest, "couldn't parse JSON request: the body must be a JSON object, got \(value.typeName)")
        }
        return try T(from: ValueDecoder(value: value, codingPath: []))
    }

    static func wrongType(_ field: String, _ expected: String, _ got: JSONValue) -> APIError {
        APIError(.badRequest, "couldn't parse JSON request: field \(field) must be \(expected), got \(got.typeName)", field: field)
    }

    /// One value as `T`, for the scalar types and string arrays request bodies use; other types decode themselves.
    static func value<T: Decodable>(_ type: T.Type, _ value: JSONValue, field: String, codingPath: [any CodingKey]) throws -> T {
        switch type {
        case is String.Type:
            guard case .string(let s) = value else { throw wrongType(field, "a string", value) }
            return s as! T
        case is Bool.Type:
            guard case .bool(let b) = value else { throw wrongType(field, "a boolean", value) }
            return b as! T
        case is Int64.Type:
            return try integer(value, field: field) as! T
        case is Int.Type:
            return Int(clamping: try integer(value, field: field)) as! T
        case is [String].Type:
            guard case .array(let items) = value else { throw wrongType(field, "an array of strings", value) }
            var out: [String] = []
            out.reserveCapacity(items.count)
            for item in items {
                guard case .string(let s) = item else { throw wrongType(field, "an array of strings", item) }
                out.append(s)
            }
            return out as! T
        case is JSONValue.Type:
            return value as! T
        default:
            return try T(from: ValueDecoder(value: value, codingPath: codingPath))
        }
    }

    static func integer(_ value: JSONValue, field: String) throws -> Int64 {
        switch value {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: return Int64(d)
        default: throw wrongType(field, "an integer", value)
        }
    }

    struct ValueDecoder: Decoder {
        let value: JSONValue
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        var field: String { codingPath.last?.stringValue ?? "body" }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard case .object(let fields) = value else { throw wrongType(field, "an object", value) }
            return KeyedDecodingContainer(Keyed(fields: fields, codingPath: codingPath))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case .array(let items) = value else { throw wrongType(field, "an array", value) }
            return Unkeyed(items: items, codingPath: codingPath)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(value: value, codingPath: codingPath) }
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let fields: [String: JSONValue]
        let codingPath: [any CodingKey]
        var allKeys: [Key] { fields.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { fields[key.stringValue] != nil }

        func decodeNil(forKey key: Key) throws -> Bool {
            if case .null? = fields[key.stringValue] { return true }
            return fields[key.stringValue] == nil
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            guard let value = fields[key.stringValue], value != .null else {
                throw APIError(.unprocessable, "\(key.stringValue) is required", field: key.stringValue)
            }
            return try RequestBodyDecoder.value(T.self, value, field: key.stringValue, codingPath: codingPath + [key])
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try ValueDecoder(value: fields[key.stringValue] ?? .null, codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try ValueDecoder(value: fields[key.stringValue] ?? .null, codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { ValueDecoder(value: .object(fields), codingPath: codingPath) }

        func superDecoder(forKey key: Key) throws -> any Decoder {
            ValueDecoder(value: fields[key.stringValue] ?? .null, codingPath: codingPath + [key])
        }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSONValue]
        let codingPath: [any CodingKey]
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }
        var currentIndex = 0
        var field: String { codingPath.last?.stringValue ?? "body" }

        init(items: [JSONValue], codingPath: [any CodingKey]) {
            self.items = items
            self.codingPath = codingPath
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            guard !isAtEnd else { throw APIError(.badRequest, "couldn't parse JSON request: field \(field) has too few elements", field: field) }
            defer { currentIndex += 1 }
            return try RequestBodyDecoder.value(T.self, items[currentIndex], field: field, codingPath: codingPath)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try ValueDecoder(value: try decode(JSONValue.self), codingPath: codingPath).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            try ValueDecoder(value: try decode(JSONValue.self), codingPath: codingPath).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder { ValueDecoder(value: try decode(JSONValue.self), codingPath: codingPath) }
    }

    struct Single: SingleValueDecodingContainer {
        let value: JSONValue
        let codingPath: [any CodingKey]

        func decodeNil() -> Bool { value == .null }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try RequestBodyDecoder.value(T.self, value, field: codingPath.last?.stringValue ?? "body", codingPath: codingPath)
        }
    }
}
