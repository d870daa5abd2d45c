import ControlPlane
import HTTPAPI
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import TestSupport

/// A response, with the body parsed as JSON when it is JSON.
struct Reply: Sendable {
    var status: Int
    var headers: HTTPFields
    var text: String
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) }
    var object: [String: Any] { json as? [String: Any] ?? [:] }
    var array: [[String: Any]] { json as? [[String: Any]] ?? [] }
    var message: String { object["message"] as? String ?? "" }
    var id: String { object["id"] as? String ?? "" }
    var etag: String? { headers[.eTag] }
}

/// A real controller on a fresh database, served over real HTTP on loopback (HummingbirdTesting's
/// live mode: an HTTP/1.1 client on a TCP connection to the running server).
struct LiveAPI: Sendable {
    let db: TestDatabase
    let controller: APIServer
    let port: Int
    let client: any TestClientProtocol

    static func run(_ body: @Sendable (LiveAPI) async throws -> Void) async throws {
        try await run(configuration: ControllerConfiguration(maxBodyBytes: 64 * 1024), body)
    }

    /// As `run`, with the controller's `configuration` (limits, quotas, mesh range) and a pool of `maxConnections`.
    static func run(configuration: ControllerConfiguration, maxConnections: Int = 16, logLevel: Logger.Level = .warning,
                    _ body: @Sendable (LiveAPI) async throws -> Void) async throws {
        let db = try await TestDatabase.create(maxConnections: maxConnections)
        var logger = Logger(label: "test.api")
        logger.logLevel = logLevel
        let controller = APIServer(configuration: configuration, store: db.store, logger: logger)
        let app = Application(router: controller.makeRouter().router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        do {
            try await app.test(.live) { client in
                try await body(LiveAPI(db: db, controller: controller, port: client.port!, client: client))
            }
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    /// A tenant with an API token (through the admin operations the CLI uses).
    func tenant(_ name: String) async throws -> (id: String, token: String) {
        let id = try await controller.controlPlane.createTenant(name: name)
        return (id, try await controller.controlPlane.createToken(tenant: id, name: "\(name)-token").token)
    }

    func send(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: Any? = nil, raw: String? = nil,
              headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Token \(token)" }
        var body: ByteBuffer?
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: json)))
        } else if let raw {
            body = ByteBuffer(string: raw)
        }
        return try await client.execute(uri: path, method: method, headers: headers, body: body) { response in
            Reply(status: Int(response.status.code), headers: response.headers, text: String(buffer: response.body))
        }
    }

    /// The same over a connection of its own (for concurrent requests).
    func sendOnOwnConnection(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, body data: Data?,
                             headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Token \(token)" }
        headers[.contentType] = "application/json"
        let body = data.map { ByteBuffer(bytes: Array($0)) }
        let finalHeaders = headers
        return try await TestClient.withClient(host: "127.0.0.1", port: port) { c in
            let r = try await c.execute(TestClient.Request(path, method: method, authority: "127.0.0.1", headers: finalHeaders, body: body))
            return Reply(status: Int(r.status.code), headers: r.headers, text: r.body.map { String(buffer: $0) } ?? "")
        }
    }

    /// A setup key (reusable unless told) and `count` peers enrolled with it; returns their ids.
    func enroll(_ token: String, names: [String], os: String = "linux", autoGroups: [String] = []) async throws -> [String] {
        let key = try await send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable", "auto_groups": autoGroups])
        guard key.status == 200, let secret = key.object["key"] as? String else { throw TestSetupError("setup key: \(key.status) \(key.text)") }
        var ids: [String] = []
        for name in names {
            let r = try await send(.post, "/api/agent/enroll", json: ["setup_key": secret, "name": name, "os": os])
            guard r.status == 201, let id = r.object["peer_id"] as? String else { throw TestSetupError("enroll: \(r.status) \(r.text)") }
            ids.append(id)
        }
        return ids
    }
}

func jsonData(_ value: Any) -> Data {
    (try? JSONSerialization.data(withJSONObject: value)) ?? Data()
}
