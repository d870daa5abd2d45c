import ControlPlane
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresClient
import RouteModel

// `Idempotency-Key` on the API's writes, Stripe's semantics (see `IdempotencyKeys` for the record's life):
//
// | request                                             | answer                                                      |
// |-----------------------------------------------------|-------------------------------------------------------------|
// | new key                                             | the write runs; a 2xx is stored with its events (one tx)    |
// | same key, same method + path + query + body         | the stored answer, `Idempotent-Replayed: true`, no append   |
// | same key, another request                           | 422 naming `Idempotency-Key`                                |
// | same key while its first request runs               | 409 naming `Idempotency-Key`, `Retry-After: 1`              |
// | first request ended in an error (4xx, 5xx, cut)     | nothing stored: the retry runs afresh                       |
// | key not 1..255 printable ASCII characters           | 400 naming `Idempotency-Key`                                |
// | GET/HEAD, or `?dry_run=true`                        | the header is ignored (nothing is appended)                 |
// | POST /api/users/{id}/tokens, POST /api/setup-keys   | 400: their answer holds a secret shown once, never stored   |

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}

/// A write's answer as bytes, so it can be both sent and stored as the key's first outcome.
struct JSONAnswer: Sendable {
    var status: Int = 200
    var body: [UInt8]
    var etag: Int64?
    var sequence: Int64?

    init<T: Encodable>(_ value: T, status: Int = 200, etag: Int64? = nil, sequence: Int64? = nil) {
        self.body = Array((try? jsonEncoder.encode(value)) ?? Data("{}".utf8))
        self.status = status
        self.etag = etag
        self.sequence = sequence
    }

    /// An answer whose body is already JSON text.
    init(json body: [UInt8], status: Int = 200, etag: Int64? = nil, sequence: Int64? = nil) {
        self.body = body
        self.status = status
        self.etag = etag
        self.sequence = sequence
    }

    init(stored: IdempotencyKeys.Answer) {
        body = Array(stored.body.utf8)
        status = stored.status
        etag = stored.etag
        sequence = stored.sequence
    }

    var response: Response { rawJSONResponse(body, status: HTTPResponse.Status(code: status), etag: etag, sequence: sequence) }
    var stored: IdempotencyKeys.Answer { .init(status: status, body: String(decoding: body, as: UTF8.self), etag: etag, sequence: sequence) }
}

/// The key this request holds, for `ResourceAccess.write` (task-local: the handler runs inside the middleware's task).
struct IdempotentWrite: Sendable {
    @TaskLocal static var current: IdempotentWrite?
    let claim: IdempotencyKeys.Claim
    let keys: IdempotencyKeys
}

/// Reads the header, claims the key and replays or refuses before the handler runs; frees the key when the handler
/// did not store an answer. Run by `AuthenticationMiddleware` right after authentication (API tokens only).
struct IdempotencyGate: Sendable {
    let keys: IdempotencyKeys
    let maxBodyBytes: Int
    let logger: Logger

    static let maxKeyLength = 255
    static let writeMethods: Set<HTTPRequest.Method> = [.post, .put, .delete, .patch]

    /// 1…255 printable ASCII characters (no spaces): a UUID, a ULID or any opaque token a client makes.
    static func validate(_ value: String) throws(APIError) -> String {
        guard !value.isEmpty, value.utf8.count <= maxKeyLength, value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw APIError(.badRequest, "Idempotency-Key must be 1 to \(maxKeyLength) printable ASCII characters without spaces",
                           field: "Idempotency-Key")
        }
        return value
    }

    /// Endpoints whose answer holds a secret shown once: the answer cannot be stored, so no key is taken.
    static func refusesKey(method: HTTPRequest.Method, path: String) -> Bool {
        guard method == .post else { return false }
        let parts = path.split(separator: "/")
        return parts == ["api", "setup-keys"] || (parts.count == 4 && parts[0] == "api" && parts[1] == "users" && parts[3] == "tokens")
    }

    static func fingerprint(method: HTTPRequest.Method, uri: String, body: ByteBuffer) -> String {
        IdempotencyKeys.fingerprint(method: method.rawValue, uri: uri, body: Array(body.readableBytesView))
    }

    static func principal(_ p: Principal) -> String {
        switch p {
        case .token(_, let id, _): "token:\(id)"
        case .agent(_, let peer): "peer:\(peer)"
        }
    }

    func handle(_ request: Request, context: APIRequestContext, principal: Principal,
                next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        guard Self.writeMethods.contains(request.method), let header = request.headers[.idempotencyKey] else {
            return try await next(request, context)
        }
        let key = try Self.validate(header.trimmingCharacters(in: CharacterSet(charactersIn: " \t")))
        if try request.isDryRun() { return try await next(request, context) }
        if Self.refusesKey(method: request.method, path: request.uri.path) {
            throw APIError(.badRequest, "Idempotency-Key is not offered on \(request.method) \(request.uri.path): its answer holds a secret shown once; "
                           + "retry without the header and check the list for a duplicate", field: "Idempotency-Key")
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(.payloadTooLarge, "request body is larger than \(maxBodyBytes) bytes")
        } catch {
            throw APIError(.badRequest, "the request body ended before it was complete")
        }
        request.body = RequestBody(buffer: body)
        let scope = IdempotencyKeys.Scope(tenant: principal.tenant, principal: Self.principal(principal), key: key)
        let fingerprint = Self.fingerprint(method: request.method, uri: request.uri.description, body: body)
        switch try await keys.claim(scope, fingerprint: fingerprint) {
        case .replay(let answer):
            logger.debug("idempotent replay", metadata: ["tenant": "\(principal.tenant)", "request_id": "\(context.requestID)", "status": "\(answer.status)"])
            var response = JSONAnswer(stored: answer).response
            response.headers[.idempotentReplayed] = "true"
            return response
        case .mismatch:
            throw APIError(.unprocessable, "Idempotency-Key was already used for another request (method, path or body differ); use a new key",
                           field: "Idempotency-Key")
        case .inFlight:
            throw APIError(.conflict, "a request with this Idempotency-Key is still in progress; retry shortly", field: "Idempotency-Key", retryAfter: 1)
        case .claimed(let claim):
            let write = IdempotentWrite(claim: claim, keys: keys)
            do {
                let response = try await IdempotentWrite.$current.withValue(write) { try await next(request, context) }
                await keys.release(claim)  // a no-op when the write stored its answer
                return response
            } catch {
                await keys.release(claim)
                throw error
            }
        }
    }
}

extension ResourceAccess {
    /// `write`, answered by `answer` from the write's result: with an `Idempotency-Key` claimed, the answer is stored in
    /// the append's transaction (or, for a write that appended nothing, right after), so a retry gets these bytes.
    func write(
        _ request: Request, _ context: APIRequestContext, ifMatch object: ObjectRef? = nil,
        decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent],
        sideStatements: @escaping @Sendable (_ tenant: String, [RouteEvent]) -> [EventStore.SideStatement] = { _, _ in [] },
        answer: @escaping @Sendable (WriteResult) throws -> JSONAnswer
    ) async throws -> Response {
        let held = IdempotentWrite.current
        var finish: CommandWriter.Finish?
        if let held {
            finish = { result in [held.keys.finishStatement(held.claim, try answer(result).stored)] }
        }
        if let lost = try await loseThisWrite(context, ifMatch: object, decide: decide, answer: answer) { return lost }
        let result: WriteResult
        do {
            result = try await write(request, context, ifMatch: object, decide: decide, sideStatements: sideStatements, finish: finish).0
        } catch let error as PostgresError {
            switch error {
            case let .server(sqlState: state, message: message, detail: _) where state == "RP410":
                controlPlane.logger.notice("write refused at commit: its Idempotency-Key was taken over", metadata: [
                    "request_id": "\(context.requestID)", "error": "\(message)"])
                throw APIError(.conflict, "this request's Idempotency-Key was taken over by a retry; its answer comes from that one",
                               field: "Idempotency-Key", retryAfter: 1)
            default:
                throw error
            }
        }
        let out = try answer(result)
        if let held, result.sequences == nil, (200..<300).contains(out.status) { try await held.keys.finish(held.claim, out.stored) }
        return out.response
    }
}
