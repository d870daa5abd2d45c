import Foundation
import PostgresClient
import ControlPlane
import EventStore
import HTTPTypes
import Hummingbird
import Logging
import RouteModel

/// An error answered to the client in NetBird's shape: `{"message": …, "code": …, "field": …}` with its status.
/// Messages name the field at fault and the rule, lower-case like NetBird's. Handlers throw it only for what is HTTP's
/// own (headers, path, body syntax); the layers below throw domain errors, mapped here (`from`), the one place where
/// errors become statuses and bodies.
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
        case tooManyRequests = 429
        case internalError = 500
        case unavailable = 503
    }

    public var status: Status
    public var message: String
    /// The request field at fault, when there is one (also in the body as `field`).
    public var field: String?
    /// Seconds, for 503 and 429 answers.
    public var retryAfter: Int?

    public init(_ status: Status, _ message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.rawValue) \(message)" }

    /// A domain rule broken (RouteModel), by kind.
    public init(_ error: ValidationError) {
        let status: Status = switch error.kind {
        case .invalidArgument: .unprocessable
        case .alreadyExists: .conflict
        case .notFound: .notFound
        case .preconditionFailed: .preconditionFailed
        case .permissionDenied: .forbidden
        case .badRequest: .badRequest
        }
        self.init(status, error.message, field: error.field)
    }

    /// The control plane's refusal.
    public init(_ error: ControlPlaneError) {
        switch error {
        case .validation: self.init(.unprocessable, error.message, field: error.field)
        case .notFound(_, _, let retryAfter): self.init(.notFound, error.message, field: error.field, retryAfter: retryAfter)
        case .conflict: self.init(.conflict, error.message, field: error.field)
        case .versionMismatch: self.init(.preconditionFailed, error.message, field: error.field)
        case .forbidden: self.init(.forbidden, error.message, field: error.field)
        case .rateLimited(_, _, let retryAfter): self.init(.tooManyRequests, error.message, field: error.field, retryAfter: retryAfter)
        case .corrupt: self.init(.internalError, error.message)
        }
    }

    /// Any error of the layers below as what the client gets; nil for unexpected ones (500).
    static func from(_ error: any Error) -> APIError? {
        switch error {
        case let e as APIError: return e
        case let e as ControlPlaneError: return APIError(e)
        case let e as ValidationError: return APIError(e)
        case let e as TokenExpired:
            return APIError(.unauthorized, "token expired at \(ISO8601.format(Date(timeIntervalSince1970: TimeInterval(e.expiredAt)))); create a new token",
                            field: "Authorization")
        case let e as EventStoreError:
            if let refusal = APIError(database: e) { return refusal }
            if e.isUnavailable { return APIError(.unavailable, "the database is unavailable, retry shortly", retryAfter: 2) }
            if case .conflict = e { return APIError(.conflict, "the tenant changed concurrently; retry the request") }
            return nil
        case let e as DecodingError:
            // A body type's own decoding (not `RequestBodyDecoder`'s messages): the field, never the decoder's text.
            let field: String? = switch e {
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
                c.codingPath.last?.stringValue
            @unknown default: nil
            }
            return APIError(.badRequest, field.map { "couldn't parse JSON request: field \($0) is invalid" } ?? "couldn't parse JSON request", field: field)
        default: return nil
        }
    }

    /// What a request caught by a shutdown gets: the process stops, another controller (or this one restarted) answers.
    static let shuttingDown = APIError(.unavailable, "the controller is shutting down; retry the request", retryAfter: 5)

    /// The response for any error a request ended with: domain errors by `from`, Hummingbird's own (no such endpoint,
    /// method not allowed, body too large) with our messages, anything else a 500 that names the request id (the
    /// operator's log has the error).
    static func response(for error: any Error, request: Request, requestID: String, logger: Logger) -> Response {
        var apiError: APIError
        var allowed: [String] = []
        // A request whose task was cancelled (the server stopping) ends with whatever its await threw: a 503 to retry,
        // never a 500; a refusal decided before (a 4xx) stands.
        let cancelled = error is CancellationError || Task.isCancelled
        if let mapped = from(error), !(cancelled && mapped.status.rawValue >= 500) {
            apiError = mapped
            if error is DecodingError {
                logger.notice("request body not decodable", metadata: ["request_id": "\(requestID)", "error": "\(error)", "path": "\(request.uri.path)"])
            }
        } else if cancelled {
            apiError = shuttingDown
        } else if let http = error as? HTTPError {
            var code = Int(http.status.code)
            // The router answers 404 for a known path asked with a method it does not serve: that is a 405 (RFC 9110),
            // with Allow naming the methods the path does serve.
            if code == 404 {
                allowed = OpenAPIDocument.methods(servingPath: request.uri.path)
                if !allowed.isEmpty { code = 405 }
            }
            let message: String = switch code {
            case 404: "no such endpoint: \(request.method) \(request.uri.path)"
            case 405: "method \(request.method) is not allowed on \(request.uri.path)"
            case 413: "request body is larger than \(ControllerConfiguration.defaultMaxBodyBytes) bytes"
            default: http.body ?? http.status.reasonPhrase.lowercased()
            }
            apiError = APIError(Status(rawValue: code) ?? .badRequest, message)
        } else {
            logger.error("unexpected error", metadata: ["request_id": "\(requestID)", "error": "\(error)", "path": "\(request.uri.path)"])
            apiError = APIError(.internalError, "internal error (request id \(requestID)); the operator's log has the details")
        }
        if apiError.status == .unavailable {
            logger.warning("answering 503", metadata: ["request_id": "\(requestID)", "path": "\(request.uri.path)", "error": "\(error)",
                                                       "cancelled": "\(cancelled)"])
        }
        var response = jsonResponse(ErrorBody(message: apiError.message, code: apiError.status.rawValue, field: apiError.field),
                                    status: HTTPResponse.Status(code: apiError.status.rawValue))
        if let retry = apiError.retryAfter { response.headers[.retryAfter] = String(retry) }
        if apiError.status.rawValue == 405 { response.headers[.allow] = allowed.joined(separator: ", ") }
        return response
    }
}

struct ErrorBody: Encodable {
    var message: String
    var code: Int
    var field: String?
}
