import Foundation

/// A parsed JSON document. Request bodies are read into this first so every field can be checked
/// by name (a wrong type answers 400 naming the field, as a missing one answers 422), and unknown
/// fields are ignored as NetBird's handlers ignore them.
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

/// The fields of a JSON object request body, read with the checks NetBird's clients expect.
struct JSONBody {
    let fields: [String: JSONValue]

    /// Parses `bytes` as one JSON object; 400 "couldn't parse JSON request" (NetBird's text) otherwise.
    init(bytes: [UInt8]) throws(APIError) {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw APIError(.badRequest, "couldn't parse JSON request")
        }
        guard case .object(let fields) = value else {
            throw APIError(.badRequest, "couldn't parse JSON request: the body must be a JSON object, got \(value.typeName)")
        }
        self.fields = fields
    }

    init(fields: [String: JSONValue]) { self.fields = fields }

    private func present(_ key: String) -> JSONValue? {
        switch fields[key] {
        case nil, .null?: nil
        case let v?: v
        }
    }

    private func wrongType(_ key: String, _ expected: String, _ got: JSONValue) -> APIError {
        APIError(.badRequest, "couldn't parse JSON request: field \(key) must be \(expected), got \(got.typeName)", field: key)
    }

    private func missing(_ key: String) -> APIError {
        APIError(.unprocessable, "\(key) is required", field: key)
    }

    func string(_ key: String) throws(APIError) -> String? {
        guard let v = present(key) else { return nil }
        guard case .string(let s) = v else { throw wrongType(key, "a string", v) }
        return s
    }

    func requiredString(_ key: String) throws(APIError) -> String {
        guard let s = try string(key) else { throw missing(key) }
        return s
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        guard let v = present(key) else { return nil }
        guard case .bool(let b) = v else { throw wrongType(key, "a boolean", v) }
        return b
    }

    func requiredBool(_ key: String) throws(APIError) -> Bool {
        guard let b = try bool(key) else { throw missing(key) }
        return b
    }

    func int(_ key: String) throws(APIError) -> Int64? {
        guard let v = present(key) else { return nil }
        switch v {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: return Int64(d)
        default: throw wrongType(key, "an integer", v)
        }
    }

    func requiredInt(_ key: String) throws(APIError) -> Int64 {
        guard let i = try int(key) else { throw missing(key) }
        return i
    }

    func strings(_ key: String) throws(APIError) -> [String]? {
        guard let v = present(key) else { return nil }
        guard case .array(let items) = v else { throw wrongType(key, "an array of strings", v) }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard case .string(let s) = item else { throw wrongType(key, "an array of strings", item) }
            out.append(s)
        }
        return out
    }

    func requiredStrings(_ key: String) throws(APIError) -> [String] {
        guard let s = try strings(key) else { throw missing(key) }
        return s
    }
}
