import AsyncHTTPClient
import Foundation
import ViewTransport
import NIOCore
import NIOHTTP1
import NIOSSL
import RouteModel

/// The agent's HTTP calls to the controller: enrollment, and the view as a fallback when NATS is down.
///
/// Each call runs on an `HTTPClient` of its own (AsyncHTTPClient, on NIO's shared event loops: no waits on Swift's
/// cooperative threads), shut down when the call returns. The agent calls the controller rarely (enrollment, credential
/// renewals, the view every few seconds while NATS is down), so a connection per call costs nothing, no idle connection
/// outlives a controller that was killed, and there is no client for the agent to shut down.
public struct ControllerClient: Sendable {
    public let baseURL: String
    /// For the whole call: connecting, sending, and reading the answer.
    let timeout: Duration
    /// PEM CA file trusted for an `https://` controller (nil: the system's trust store).
    let caFile: String?

    /// The largest answer read (a view of a large tenant is well below it).
    static let maxAnswerBytes = 64 << 20

    public init(baseURL: String, timeout: Duration = .seconds(5), caFile: String? = nil) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.timeout = timeout
        self.caFile = caFile
    }

    var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: TimeAmount(timeout)))
        // A refused connection (controller down) fails the call at once, as it did with URLSession, instead of retrying
        // until the timeout: the caller decides (another controller at enrollment, the next round of the fallback).
        configuration.connectionPool.retryConnectionEstablishment = false
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.trustRoots = .file(caFile)
            configuration.tlsConfiguration = tls
        }
        return configuration
    }

    func call(_ method: String, _ path: String, token: String? = nil, body: [String: any Sendable]? = nil) async throws -> (Int, Data) {
        guard URL(string: baseURL + path) != nil else { throw AgentError.controller("bad controller URL \(baseURL)") }
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = HTTPMethod(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Token \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(try JSONSerialization.data(withJSONObject: body))
        }
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        return try await HTTPClient.withHTTPClient(configuration: configuration) { http in
            let response = try await http.execute(request, deadline: deadline)
            let answer = try await response.body.collect(upTo: Self.maxAnswerBytes)
            return (Int(response.status.code), Data(answer.readableBytesView))
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
    public func enroll(setupKey: String, name: String, os: String, ip: String?, natsPublicKey: String? = nil,
                       wireguard: WireGuardIdentity? = nil) async throws -> (AgentIdentity, BusCredentials?) {
        var body: [String: any Sendable] = ["setup_key": setupKey, "name": name, "os": os]
        if let ip { body["ip"] = ip }
        if let natsPublicKey { body["nats_public_key"] = natsPublicKey }
        if let wireguard {
            body["wireguard_public_key"] = wireguard.publicKey
            body["wireguard_endpoints"] = wireguard.endpoints
        }
        let (status, data) = try await call("POST", "/api/agent/enroll", body: body)
        if status == 429 { throw AgentError.enrollmentRateLimited(Self.message(data)) }
        guard status == 201 else { throw AgentError.enrollment("controller answered \(status): \(Self.message(data))") }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let tenant = object["tenant_id"] as? String, let peer = object["peer_id"] as? String,
              let meshIP = object["ip"] as? String, let credential = object["credential"] as? String else {
            throw AgentError.enrollment("unexpected answer: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        return (AgentIdentity(controller: baseURL, tenantID: tenant, peerID: peer, ip: meshIP, credential: credential,
                              natsURL: object["nats_url"] as? String, viewSigningKey: object["view_signing_key"] as? String,
                              natsInboxPrefix: object["nats_inbox_prefix"] as? String, meshRange: object["mesh_range"] as? String),
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
