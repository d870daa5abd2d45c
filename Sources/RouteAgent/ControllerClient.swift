import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import ViewDistribution
import RouteModel
import Synchronization

/// The agent's HTTP calls to the controller: enrollment, and the view as a fallback when NATS is down.
public struct ControllerClient: Sendable {
    public let baseURL: String
    let session: URLSession

    public init(baseURL: String, timeout: Duration = .seconds(5)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = Double(timeout.components.seconds)
        session = URLSession(configuration: configuration)
    }

    func call(_ method: String, _ path: String, token: String? = nil, body: [String: String]? = nil) async throws -> (Int, Data) {
        guard let url = URL(string: baseURL + path) else { throw AgentError.controller("bad controller URL \(baseURL)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let token { request.setValue("Token \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let (data, response) = try await Self.perform(request, on: session)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// `session.data(for:)`, started from a Dispatch thread instead of the caller's. FoundationNetworking's
    /// `URLSessionTask.resume()` waits (`DispatchQueue.sync`) for the session's internal queue; on Swift's cooperative
    /// threads that wait stalled a process hosting hundreds of agents for tens of seconds when they all fell back to HTTP
    /// at once (ops/chaos, NATS restart). Cancelling the calling task cancels the request.
    static func perform(_ request: URLRequest, on session: URLSession) async throws -> (Data, URLResponse) {
        let started = StartedTask()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(Data, URLResponse), any Error>) in
                DispatchQueue.global().async {
                    let task = session.dataTask(with: request) { data, response, error in
                        if let error {
                            continuation.resume(throwing: error)
                        } else if let data, let response {
                            continuation.resume(returning: (data, response))
                        } else {
                            continuation.resume(throwing: URLError(.badServerResponse))
                        }
                    }
                    let wanted = started.start(task)
                    task.resume()
                    // Cancelled before it started: a running task's cancel completes it (with URLError.cancelled).
                    if !wanted { task.cancel() }
                }
            }
        } onCancel: {
            started.cancel()
        }
    }

    /// The request's task, so a cancellation that comes before or after it starts cancels it.
    final class StartedTask: Sendable {
        // Why @unchecked Sendable is safe: URLSessionTask's methods (cancel, resume) are thread-safe; the reference is only
        // stored and read under the Mutex.
        private struct Box: @unchecked Sendable {
            var task: URLSessionTask?
            var cancelled = false
        }
        private let state = Mutex(Box())

        /// Records the task; false when the request was already cancelled.
        func start(_ task: URLSessionTask) -> Bool {
            state.withLock { box in
                box.task = task
                return !box.cancelled
            }
        }

        func cancel() {
            let task = state.withLock { box -> URLSessionTask? in
                box.cancelled = true
                return box.task
            }
            task?.cancel()
        }
    }

    static func message(_ data: Data) -> String {
        ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["message"] as? String ?? String(decoding: data.prefix(200), as: UTF8.self)
    }

    /// A NATS user JWT the controller issued, and when it expires (Unix seconds).
    public struct BusCredentials: Sendable, Equatable {
        public var jwt: String
        public var expiresAt: Int64
    }

    static func busCredentials(_ object: [String: Any]) -> BusCredentials? {
        guard let jwt = object["nats_jwt"] as? String, let expires = (object["nats_jwt_expires_at"] as? NSNumber)?.int64Value else { return nil }
        return BusCredentials(jwt: jwt, expiresAt: expires)
    }

    /// `POST /api/agent/nats-credentials`: a fresh NATS user JWT for this agent's key.
    public func renewBusCredentials(credential: String, publicKey: String) async throws -> BusCredentials {
        let (status, data) = try await call("POST", "/api/agent/nats-credentials", token: credential, body: ["nats_public_key": publicKey])
        guard status == 200 else { throw AgentError.controller("POST /api/agent/nats-credentials answered \(status): \(Self.message(data))") }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any], let issued = Self.busCredentials(object) else {
            throw AgentError.controller("unexpected answer to POST /api/agent/nats-credentials: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        return issued
    }

    /// `POST /api/agent/enroll`.
    public func enroll(setupKey: String, name: String, os: String, ip: String?, natsPublicKey: String? = nil) async throws -> (AgentIdentity, BusCredentials?) {
        var body = ["setup_key": setupKey, "name": name, "os": os]
        if let ip { body["ip"] = ip }
        if let natsPublicKey { body["nats_public_key"] = natsPublicKey }
        let (status, data) = try await call("POST", "/api/agent/enroll", body: body)
        guard status == 201 else { throw AgentError.enrollment("controller answered \(status): \(Self.message(data))") }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let tenant = object["tenant_id"] as? String, let peer = object["peer_id"] as? String,
              let meshIP = object["ip"] as? String, let credential = object["credential"] as? String else {
            throw AgentError.enrollment("unexpected answer: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        return (AgentIdentity(controller: baseURL, tenantID: tenant, peerID: peer, ip: meshIP, credential: credential,
                              natsURL: object["nats_url"] as? String, viewSigningKey: object["view_signing_key"] as? String,
                              natsInboxPrefix: object["nats_inbox_prefix"] as? String),
                Self.busCredentials(object))
    }

    /// `GET /api/agent/view`: the view re-encoded canonically and checked against the digest the controller gave, with
    /// the controller's signature (nil when the answer has none). The caller verifies the signature (`AgentRunner`, as
    /// for NATS messages) before applying it. An answer that does not parse or match its digest throws `ViewEnvelopeError`
    /// (the caller counts it as a rejected message); other failures (unreachable, non-200) throw other errors.
    public func view(credential: String) async throws -> AgentStateMachine.ViewUpdate? {
        let (status, data) = try await call("GET", "/api/agent/view", token: credential)
        if status == 404 { return nil }
        guard status == 200 else { throw AgentError.controller("GET /api/agent/view answered \(status): \(Self.message(data))") }
        struct Endorsement: Decodable {
            var key: String
            var signature: String
        }
        struct Answer: Decodable {
            var version: Int64
            var digest: String
            var view: PeerRouteView
            var removed: Bool?
            var key: String?
            var signature: String?
            var endorsement: Endorsement?
        }
        let answer: Answer
        do {
            answer = try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw ViewEnvelopeError.unparseable("GET /api/agent/view answer: \(error)")
        }
        let body = answer.view.canonicalJSON()
        let digest = PeerRouteView.digest(of: body)
        guard digest == answer.digest else { throw ViewEnvelopeError.digestMismatch(expected: answer.digest, actual: digest) }
        var signature: ViewSignature?
        if let key = answer.key, let text = answer.signature {
            signature = ViewSignature(key: key, signature: text,
                                      endorsement: answer.endorsement.map { ViewKeyEndorsement(key: $0.key, signature: $0.signature) })
        }
        return .init(version: answer.version, digest: answer.digest, body: body, view: answer.removed == true ? nil : answer.view,
                     source: .http, signature: signature)
    }
}
