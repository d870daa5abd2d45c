/// A refused command, as a value the API returns as-is: which field, which rule, what kind.
///
/// Messages are lower-case and NetBird-style ("group id g1 not found"); `kind` maps to the HTTP
/// status NetBird uses for the same situation (`shared/management/http/util`).
public struct ValidationError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, Codable {
        /// The request is malformed or breaks a rule (422).
        case invalidArgument = "invalid_argument"
        /// The id or unique value is taken, or the object is still in use (409).
        case alreadyExists = "already_exists"
        /// The object the command targets does not exist (404).
        case notFound = "not_found"
        /// The request is well-formed but the current state of another object forbids it (412),
        /// e.g. a non-Linux peer named as routing peer.
        case preconditionFailed = "precondition_failed"
        /// The caller may not do this (403), e.g. an invalid or used-up setup key.
        case permissionDenied = "permission_denied"
        /// Refused as NetBird refuses it with a plain 400 (`util.WriteErrorResponse`): deleting a group that is
        /// still linked to a route or a setup key, or the built-in "All" group.
        case badRequest = "bad_request"

        public var httpStatus: Int {
            switch self {
            case .invalidArgument: return 422
            case .alreadyExists: return 409
            case .notFound: return 404
            case .preconditionFailed: return 412
            case .permissionDenied: return 403
            case .badRequest: return 400
            }
        }
    }

    public let kind: Kind
    /// The request field at fault, snake_case as in the API (`network_id`, `peer_groups`), or the
    /// path parameter (`route_id`, `group_id`, `peer_id`).
    public let field: String
    public let message: String

    public init(_ kind: Kind, field: String, _ message: String) {
        self.kind = kind
        self.field = field
        self.message = message
    }

    public var httpStatus: Int { kind.httpStatus }
    public var description: String { "\(field): \(message)" }

    static func invalid(_ field: String, _ message: String) -> ValidationError {
        ValidationError(.invalidArgument, field: field, message)
    }
    static func conflict(_ field: String, _ message: String) -> ValidationError {
        ValidationError(.alreadyExists, field: field, message)
    }
    static func notFound(_ field: String, _ message: String) -> ValidationError {
        ValidationError(.notFound, field: field, message)
    }
    static func precondition(_ field: String, _ message: String) -> ValidationError {
        ValidationError(.preconditionFailed, field: field, message)
    }
    static func badRequest(_ field: String, _ message: String) -> ValidationError {
        ValidationError(.badRequest, field: field, message)
    }
}

/// Limits Routeplane applies. NetBird's own values where it has one.
public enum Limits {
    /// NetBird `route.MaxNetIDChar`, counted in Unicode scalars.
    public static let networkIDMaxScalars = 40
    public static let metricRange = 1...9999
    /// Routeplane's limit: NetBird has none. 1,000 characters (Unicode scalars) is plenty for a
    /// human note and keeps events and API bodies bounded.
    public static let descriptionMaxScalars = 1000
    /// NetBird: at most 32 domains per route.
    public static let maxDomains = 32
    /// Routeplane's limit for group and peer names (NetBird has none); DNS-label friendly names
    /// are far shorter, this only bounds abuse.
    public static let nameMaxScalars = 255
}
