import HTTPTypes
import RouteModel

/// An error answered to the client in NetBird's shape: `{"message": …, "code": …}` with its status.
/// Messages name the field at fault and the rule, lower-case like NetBird's.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Status: Int, Sendable {
        case badRequest = 400
        case unauthorized = 401
        case forbidden = 403
        case notFound = 404
        case methodNotAllowed = 405
        case conflict = 409
        case preconditionFailed = 412
        case payloadTooLarge = 413
        case unsupportedMediaType = 415
        case unprocessable = 422
        case preconditionRequired = 428
        case internalError = 500
        case unavailable = 503
    }

    public var status: Status
    public var message: String
    /// The request field at fault, when there is one (also in the body as `field`).
    public var field: String?
    /// Seconds, for 503 answers.
    public var retryAfter: Int?

    public init(_ status: Status, _ message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    public init(_ error: ValidationError) {
        let status: Status = switch error.kind {
        case .invalidArgument: .unprocessable
        case .alreadyExists: .conflict
        case .notFound: .notFound
        case .preconditionFailed: .preconditionFailed
        case .permissionDenied: .forbidden
        }
        self.init(status, error.message, field: error.field)
    }

    public var description: String { "\(status.rawValue) \(message)" }

    static func notFound(_ what: String, _ id: String, field: String) -> APIError {
        APIError(.notFound, "\(what) \(id) not found", field: field)
    }
}
