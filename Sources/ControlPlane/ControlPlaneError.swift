import RouteModel

/// Why the write path refused something, in domain terms (no HTTP): the HTTP API maps each case to a status and body
/// in one place. Messages name the field at fault and the rule, lower-case like NetBird's; they reach clients as is.
///
/// A command that breaks a domain rule throws RouteModel's `ValidationError` (its kind says which rule), and the event
/// store's `EventStoreError` (unavailable database, concurrent append) passes through unchanged; both are domain errors too.
public enum ControlPlaneError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A value breaks a rule (HTTP 422).
    case validation(field: String, message: String)
    /// The object, tenant or credential does not exist (404). `retryAfter`: seconds, when it will exist soon.
    case notFound(field: String, message: String, retryAfter: Int? = nil)
    /// Taken, or in use by another object (409).
    case conflict(field: String, message: String)
    /// The object moved on since the version the caller saw (412).
    case versionMismatch(object: ObjectRef, current: Int64?, expected: Int64)
    /// The caller may not do this (403).
    case forbidden(field: String, message: String)
    /// Too many requests of this kind from this caller (429); `retryAfter` seconds.
    case rateLimited(field: String, message: String, retryAfter: Int)
    /// A stored event does not decode, or the state contradicts itself: the operator must look (500).
    case corrupt(String)

    public var message: String {
        switch self {
        case .validation(_, let m), .notFound(_, let m, _), .conflict(_, let m), .forbidden(_, let m), .corrupt(let m): m
        case .rateLimited(_, let m, _): m
        case .versionMismatch(let object, let current, let expected):
            "precondition failed: \(object) is at version \(current.map(String.init) ?? "none"), If-Match gave \(expected)"
        }
    }

    /// The field (or request part) at fault.
    public var field: String? {
        switch self {
        case .validation(let f, _), .notFound(let f, _, _), .conflict(let f, _), .forbidden(let f, _): f
        case .rateLimited(let f, _, _): f
        case .versionMismatch: "If-Match"
        case .corrupt: nil
        }
    }

    public var description: String { message }

    static func notFound(_ what: String, _ id: String, field: String) -> ControlPlaneError {
        .notFound(field: field, message: "\(what) \(id) not found")
    }
}
