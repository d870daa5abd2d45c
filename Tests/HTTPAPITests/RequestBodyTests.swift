import HTTPAPI
import Foundation
import HTTPTypes
import Testing
import TestSupport

/// Request bodies are decoded into types, with the messages clients had before: a missing field is 422 naming it, a
/// wrong type 400 naming it and the type it got, checked in the body's field order.
@Suite("Request bodies: status, message and field of every kind of refusal", .timeLimit(.minutes(10)), .serialized)
struct RequestBodyTests {
    struct Case: Sendable {
        var method: HTTPRequest.Method
        var path: String
        var body: String
        var status: Int
        var message: String
        var field: String?
    }

    static let cases: [Case] = [
        Case(method: .post, path: "/api/routes", body: "{", status: 400, message: "couldn't parse JSON request", field: nil),
        Case(method: .post, path: "/api/routes", body: "[1]", status: 400,
             message: "couldn't parse JSON request: the body must be a JSON object, got array", field: nil),
        // Route fields absent or null take Go's zero values, as NetBird's handler decodes them; then the rules speak, in
        // NetBird's order (routes_handler.go `validateRouteCommon`: network/domains first).
        Case(method: .post, path: "/api/routes", body: "{}", status: 422, message: "either 'network' or 'domains' should be provided", field: "network"),
        Case(method: .post, path: "/api/routes", body: #"{"network_id":null}"#, status: 422, message: "either 'network' or 'domains' should be provided", field: "network"),
        Case(method: .post, path: "/api/routes", body: #"{"network_id":5}"#, status: 400,
             message: "couldn't parse JSON request: field network_id must be a string, got number", field: "network_id"),
        Case(method: .post, path: "/api/routes", body: #"{"peer":true}"#, status: 400,
             message: "couldn't parse JSON request: field peer must be a string, got boolean", field: "peer"),
        Case(method: .post, path: "/api/routes", body: #"{"network_id":"n","metric":"x"}"#, status: 400,
             message: "couldn't parse JSON request: field metric must be an integer, got string", field: "metric"),
        Case(method: .post, path: "/api/routes", body: #"{"network_id":"n","metric":1.5}"#, status: 400,
             message: "couldn't parse JSON request: field metric must be an integer, got number", field: "metric"),
        Case(method: .post, path: "/api/routes", body: #"{"network_id":"n","metric":1,"network":"10.0.0.0/8"}"#, status: 422,
             message: "either 'peer' or 'peer_groups' should be provided", field: "peer"),
        Case(method: .post, path: "/api/routes", body: #"{"network_id":"n","metric":1,"masquerade":true,"groups":"g"}"#, status: 400,
             message: "couldn't parse JSON request: field groups must be an array of strings, got string", field: "groups"),
        Case(method: .post, path: "/api/routes", body: #"{"network_id":"n","metric":1,"masquerade":true,"groups":["g",2]}"#, status: 400,
             message: "couldn't parse JSON request: field groups must be an array of strings, got number", field: "groups"),
        Case(method: .post, path: "/api/routes", body: #"{"network_id":"n","domains":{},"metric":1}"#, status: 400,
             message: "couldn't parse JSON request: field domains must be an array of strings, got object", field: "domains"),
        Case(method: .post, path: "/api/groups", body: #"{"peers":[]}"#, status: 422, message: "name is required", field: "name"),
        Case(method: .post, path: "/api/groups", body: #"{"name":"g","peers":"p"}"#, status: 400,
             message: "couldn't parse JSON request: field peers must be an array of peer ids, got string", field: "peers"),
        Case(method: .post, path: "/api/groups", body: #"{"name":"g","peers":[{"name":"x"}]}"#, status: 400,
             message: "couldn't parse JSON request: field peers must be an array of peer ids", field: "peers"),
        Case(method: .post, path: "/api/setup-keys", body: #"{"name":"k"}"#, status: 422, message: "type is required", field: "type"),
        Case(method: .post, path: "/api/setup-keys", body: #"{"name":"k","type":"reusable","usage_limit":"1"}"#, status: 400,
             message: "couldn't parse JSON request: field usage_limit must be an integer, got string", field: "usage_limit"),
        Case(method: .post, path: "/api/setup-keys", body: #"{"name":"k","type":"reusable","ephemeral":"yes"}"#, status: 400,
             message: "couldn't parse JSON request: field ephemeral must be a boolean, got string", field: "ephemeral"),
        Case(method: .put, path: "/api/setup-keys/nope", body: #"{"revoked":true}"#, status: 422,
             message: "setup key auto_groups field is invalid: it is required (an empty list for none)", field: "auto_groups"),
        Case(method: .post, path: "/api/agent/enroll", body: #"{"setup_key":"s","name":"n"}"#, status: 422, message: "os is required", field: "os"),
        Case(method: .post, path: "/api/agent/enroll", body: #"{"setup_key":"s","name":"n","os":"linux","nats_public_key":"bad"}"#, status: 422,
             message: "nats_public_key must be a NATS user public nkey (56 characters starting with U)", field: "nats_public_key"),
        Case(method: .post, path: "/api/agent/enroll", body: #"{"setup_key":"s","name":"n","os":"linux"}"#, status: 403,
             message: "setup key is not valid", field: "setup_key"),
    ]

    @Test("each refusal answers as before")
    func refusals() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            for c in Self.cases {
                let r = try await api.send(c.method, c.path, token: token, raw: c.body, headers: [.contentType: "application/json"])
                #expect(r.status == c.status, "\(c.path) \(c.body): \(r.text)")
                #expect(r.message == c.message, "\(c.path) \(c.body)")
                #expect(r.object["field"] as? String == c.field, "\(c.path) \(c.body)")
                #expect(r.object["code"] as? Int == c.status, "\(c.path) \(c.body)")
            }
        }
    }
}
