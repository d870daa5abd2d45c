import HTTPTypes
import ControlPlane
import EventStore
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

extension APIError {
    /// Maps any error of the layers below to what the client gets; nil for unexpected ones (500).
    static func from(_ error: any Error) -> APIError? {
        switch error {
        case let e as APIError: return e
        case let e as ControlPlaneError: return APIError(e)
        case let e as ValidationError: return APIError(e)
        case let e as EventStoreError:
            if e.isUnavailable { return APIError(.unavailable, "the database is unavailable, retry shortly", retryAfter: 2) }
            if case .conflict = e { return APIError(.conflict, "the tenant changed concurrently; retry the request") }
            return nil
        default: return nil
        }
    }

    /// The control plane's refusal as an HTTP status and body.
    init(_ error: ControlPlaneError) {
        switch error {
        case .validation: self.init(.unprocessable, error.message, field: error.field)
        case .notFound(_, _, let retryAfter): self.init(.notFound, error.message, field: error.field, retryAfter: retryAfter)
        case .conflict: self.init(.conflict, error.message, field: error.field)
        case .versionMismatch: self.init(.preconditionFailed, error.message, field: error.field)
        case .forbidden: self.init(.forbidden, error.message, field: error.field)
        case .corrupt: self.init(.internalError, error.message)
        }
    }
}
