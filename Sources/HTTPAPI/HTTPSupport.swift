import Foundation
import ControlPlane
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Per-request context: Hummingbird's core storage plus our request id.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID = ""
    /// The TCP peer's address (behind a reverse proxy, the proxy's): the key of per-source rate limits.
    public var sourceAddress: String?
    /// The authenticated caller (`AuthenticationMiddleware`), nil on routes served without credentials.
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        sourceAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Bodies above this are refused (413) before they are read in full.
    public var maxUploadSize: Int { ControllerConfiguration.defaultMaxBodyBytes }

    func pathID(_ name: String = "id") throws(APIError) -> String {
        guard let id = parameters.get(name), !id.isEmpty else { throw APIError(.badRequest, "missing \(name) in path") }
        return id
    }
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
    let metrics: ControllerMetrics
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID = Self.acceptableRequestID(request.headers[.requestID]) ?? Secrets.id()
        context.requestID = requestID
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = APIError.response(for: error, request: request, requestID: requestID, logger: logger)
        }
        response.headers[.requestID] = requestID
        let elapsed = ContinuousClock.now - start
        let status = Int(response.status.code)
        metrics.request(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: status, duration: elapsed)
        if status >= 500 {
            logger.error("request failed", metadata: ["request_id": "\(requestID)", "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(status)"])
        } else {
            logger.debug("request", metadata: ["request_id": "\(requestID)", "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(status)", "ms": "\(elapsed.nanoseconds / 1_000_000)"])
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
