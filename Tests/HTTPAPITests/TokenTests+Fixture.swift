import Foundation
import HTTPAPI
import HTTPTypes
import TestSupport

/// One object of every kind in a tenant, so that every endpoint the router serves can be called with a real id and a
/// valid body: a test that sweeps the router's endpoints fails on a path or write it does not know, so a new endpoint
/// cannot be left out of the scope check's test.
struct ReadOnlyFixture {
    let tenant: String
    let admin: String
    let group: String
    let peer: String
    let route: String
    let setupKey: String
    let tokenID: String
    let policy: String

    static func make(_ api: LiveAPI, tenant: String, admin: String) async throws -> ReadOnlyFixture {
        let group = try await api.send(.post, "/api/groups", token: admin, json: ["name": "clients"]).id
        let peer = try await api.enroll(admin, names: ["r1"])[0]
        let route = try await api.send(.post, "/api/routes", token: admin, json: Self.route(peer: peer, groups: [group])).id
        let keys = try await api.send(.get, "/api/setup-keys", token: admin).array
        let tokens = try await api.send(.get, "/api/users/\(tenant)/tokens", token: admin).array
        guard !group.isEmpty, !route.isEmpty, let setupKey = keys.first?["id"] as? String, let tokenID = tokens.first?["id"] as? String else {
            throw TestSetupError("fixture: group \(group), route \(route), keys \(keys), tokens \(tokens)")
        }
        let policy = try await api.send(.post, "/api/policies", token: admin, json: Self.policy(group: group)).id
        return ReadOnlyFixture(tenant: tenant, admin: admin, group: group, peer: peer, route: route, setupKey: setupKey, tokenID: tokenID,
                               policy: policy)
    }

    static func policy(group: String) -> [String: Any] {
        ["name": "web", "enabled": true, "rules": [["name": "http", "enabled": true, "action": "accept", "bidirectional": false,
                                                    "protocol": "tcp", "ports": ["80"], "sources": [group], "destinations": [group]]]]
    }

    static func route(peer: String, groups: [String]) -> [String: Any] {
        ["network_id": "lan", "network": "10.20.0.0/24", "peer": peer, "metric": 100, "masquerade": true, "groups": groups,
         "enabled": true, "description": "office lan", "keep_route": false]
    }

    /// `template` with its placeholders replaced by this tenant's objects; throws for a placeholder it does not know.
    func path(_ template: String) throws -> String {
        var out = template
        let ids: [(prefix: String, id: String)] = [("/api/routes/", route), ("/api/groups/", group), ("/api/peers/", peer),
                                                   ("/api/setup-keys/", setupKey), ("/api/policies/", policy)]
        if out.contains("{id}") {
            guard let id = ids.first(where: { out.hasPrefix($0.prefix) })?.id else { throw TestSetupError("no object for \(template)") }
            out = out.replacingOccurrences(of: "{id}", with: id)
        }
        out = out.replacingOccurrences(of: "{userId}", with: tenant).replacingOccurrences(of: "{tokenId}", with: tokenID)
        if out.contains("{") { throw TestSetupError("unknown placeholder in \(template): add it to ReadOnlyFixture") }
        return out
    }

    /// A valid body for each write that takes one; throws for a write it does not know.
    func body(_ method: String, _ path: String) throws -> Any {
        switch (method, path) {
        case ("POST", "/api/routes"): return Self.route(peer: peer, groups: [group]).merging(["network": "10.30.0.0/24"]) { _, b in b }
        case ("PUT", "/api/routes/{id}"): return Self.route(peer: peer, groups: [group]).merging(["metric": 200]) { _, b in b }
        case ("POST", "/api/groups"): return ["name": "another"]
        case ("PUT", "/api/groups/{id}"): return ["name": "renamed", "peers": [peer]]
        case ("PUT", "/api/peers/{id}"): return ["name": "renamed", "draining": true]
        case ("POST", "/api/setup-keys"): return ["name": "another", "type": "reusable"]
        case ("PUT", "/api/setup-keys/{id}"): return ["revoked": true, "auto_groups": [String]()]
        case ("POST", "/api/policies"), ("PUT", "/api/policies/{id}"): return Self.policy(group: group)
        case ("POST", "/api/users/{userId}/tokens"): return ["name": "made", "expires_in": 30, "scope": "read_only"]
        case ("POST", "/api/agent/nats-credentials"): return ["nats_public_key": "U" + String(repeating: "A", count: 55)]
        default: throw TestSetupError("no body for \(method) \(path): add one to ReadOnlyFixture")
        }
    }

    /// The tenant's version (its last event's sequence), read with the admin token.
    func version(_ api: LiveAPI) async throws -> String {
        let r = try await api.send(.get, "/api/routes", token: admin)
        guard let v = r.headers[HTTPField.Name("X-Routeplane-Sequence")!] else { throw TestSetupError("no sequence header: \(r.text)") }
        return v
    }
}
