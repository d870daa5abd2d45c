import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RouteModel
import ControlPlane

/// Per-request context: Hummingbird's core storage plus our request id.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID = ""

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Bodies above this are refused (413) before they are read in full.
    public var maxUploadSize: Int { ControllerConfiguration.defaultMaxBodyBytes }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
    /// The tenant sequence number a write produced (wait for "projected up to" it, or compare versions).
    static let routeplaneSequence = HTTPField.Name("X-Routeplane-Sequence")!
    static let nextCursor = HTTPField.Name("X-Next-Cursor")!
    static let retryAfter = HTTPField.Name("Retry-After")!
}

/// Request id, error rendering in NetBird's shape, access log and request metrics, for every request.
struct APIMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let controller: Controller

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID = Self.acceptableRequestID(request.headers[.requestID]) ?? Secrets.id()
        context.requestID = requestID
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = Self.errorResponse(error, request: request, requestID: requestID, logger: controller.logger)
        }
        response.headers[.requestID] = requestID
        let elapsed = ContinuousClock.now - start
        let status = Int(response.status.code)
        controller.metrics.request(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: status, duration: elapsed)
        if status >= 500 {
            controller.logger.error("request failed", metadata: ["request_id": "\(requestID)", "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(status)"])
        } else {
            controller.logger.debug("request", metadata: ["request_id": "\(requestID)", "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(status)", "ms": "\(elapsed.nanoseconds / 1_000_000)"])
        }
        return response
    }

    /// A client's own request id is kept when it is short and plain; otherwise we make one.
    static func acceptableRequestID(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= 128,
              value.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) })
        else { return nil }
        return value
    }

    static func errorResponse(_ error: any Error, request: Request, requestID: String, logger: Logger) -> Response {
        var apiError: APIError
        if let mapped = APIError.from(error) {
            apiError = mapped
        } else if let http = error as? HTTPError {
            let code = Int(http.status.code)
            let message: String = switch code {
            case 404: "no such endpoint: \(request.method) \(request.uri.path)"
            case 405: "method \(request.method) is not allowed on \(request.uri.path)"
            case 413: "request body is larger than \(ControllerConfiguration.defaultMaxBodyBytes) bytes"
            default: http.body ?? http.status.reasonPhrase.lowercased()
            }
            apiError = APIError(APIError.Status(rawValue: code) ?? .badRequest, message)
        } else {
            logger.error("unexpected error", metadata: ["request_id": "\(requestID)", "error": "\(error)", "path": "\(request.uri.path)"])
            apiError = APIError(.internalError, "internal error (request id \(requestID)); the operator's log has the details")
        }
        if apiError.status == .unavailable {
            logger.warning("answering 503", metadata: ["request_id": "\(requestID)", "error": "\(error)"])
        }
        var response = jsonResponse(ErrorBody(message: apiError.message, code: apiError.status.rawValue, field: apiError.field),
                                    status: HTTPResponse.Status(code: apiError.status.rawValue))
        if let retry = apiError.retryAfter { response.headers[.retryAfter] = String(retry) }
        return response
    }
}

struct ErrorBody: Encodable {
    var message: String
    var code: Int
    var field: String?
}

let jsonEncoder: JSONEncoder = {
    let e = JSONEncoder()
    e.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
    return e
}()

func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, etag: Int64? = nil, sequence: Int64? = nil) -> Response {
    let bytes = (try? jsonEncoder.encode(value)) ?? Data("{}".utf8)
    return rawJSONResponse(Array(bytes), status: status, etag: etag, sequence: sequence)
}

func rawJSONResponse(_ bytes: [UInt8], status: HTTPResponse.Status = .ok, etag: Int64? = nil, sequence: Int64? = nil) -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let etag { headers[.eTag] = "\"\(etag)\"" }
    if let sequence { headers[.routeplaneSequence] = String(sequence) }
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
}

struct EmptyObject: Encodable {}

extension Request {
    /// The body as one JSON object (413 above the limit, 400 when unparseable).
    mutating func jsonBody(limit: Int) async throws -> JSONBody {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch {
            throw APIError(.payloadTooLarge, "request body is larger than \(limit) bytes")
        }
        return try JSONBody(bytes: Array(buffer.readableBytesView))
    }

    /// `If-Match: "12"` (or 12, W/"12"): the object version the client last saw; nil without the header.
    func ifMatchVersion() throws(APIError) -> Int64? {
        guard var value = headers[.ifMatch]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if value == "*" { return nil }
        if value.hasPrefix("W/") { value.removeFirst(2) }
        value = value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard let version = Int64(value) else {
            throw APIError(.badRequest, "If-Match must be an ETag this API returned, like \"12\"", field: "If-Match")
        }
        return version
    }

    func query(_ name: String) -> String? {
        uri.queryParameters[Substring(name)].map(String.init)
    }
}

extension APIRequestContext {
    func pathID(_ name: String = "id") throws(APIError) -> String {
        guard let id = parameters.get(name), !id.isEmpty else { throw APIError(.badRequest, "missing \(name) in path") }
        return id
    }
}
