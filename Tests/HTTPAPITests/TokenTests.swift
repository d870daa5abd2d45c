import ControlPlane
import EventStore
import Foundation
import HTTPAPI
import HTTPTypes
import PostgresClient
import RouteModel
import Testing
import TestSupport

/// API tokens over real HTTP: expiry, scopes (a read-only token against every endpoint the router serves), NetBird's
/// personal-access-token endpoints under /api/users/{userId}/tokens, and tenant isolation.
@Suite("API tokens over real HTTP", .timeLimit(.minutes(10)), .serialized)
struct TokenTests {
    let day: Int64 = 86_400
    var now: Int64 { Int64(Date().timeIntervalSince1970) }

    @Test("an expired token answers 401 \"token expired\" on reads and writes; one still inside its lifetime works")
    func expiredToken() async throws {
        try await LiveAPI.run { api in
            let (tenant, _) = try await api.tenant("acme")
            let cp = api.controller.controlPlane
            // Created two days ago for one day: expired yesterday.
            let expired = try await cp.createToken(tenant: tenant, name: "old", expiresInDays: 1, now: now - 2 * day)
            // Created 29 days ago for 30 days: one more day to go.
            let live = try await cp.createToken(tenant: tenant, name: "new", expiresInDays: 30, now: now - 29 * day)
            #expect(try await api.send(.get, "/api/routes", token: live.token).status == 200)
            for (method, path) in [(HTTPRequest.Method.get, "/api/routes"), (.get, "/api/users/\(tenant)/tokens"), (.post, "/api/groups")] {
                let r = try await api.send(method, path, token: expired.token, json: method == .post ? ["name": "g"] : nil)
                #expect(r.status == 401, "\(method) \(path): \(r.text)")
                #expect(r.message.hasPrefix("token expired at ") && r.object["field"] as? String == "Authorization", "\(r.text)")
            }
            // The expired one is still listed (as NetBird lists expired tokens), with its expiry in the past.
            let list = try await api.send(.get, "/api/users/\(tenant)/tokens", token: live.token).array
            let old = try #require(list.first { $0["id"] as? String == expired.id })
            let expiry = try #require(ISO8601.parse(old["expiration_date"] as? String ?? ""))
            #expect(Int64(expiry.timeIntervalSince1970) == expired.expiresAt && expired.expiresAt < now)
        }
    }

    @Test("a token stored without an expiry (written by an older controller) works for 30 days from its creation, then 401")
    func legacyToken() async throws {
        try await LiveAPI.run { api in
            let (tenant, admin) = try await api.tenant("acme")
            let cp = api.controller.controlPlane
            var legacy: [String: String] = [:]
            for name in ["fresh", "stale"] {
                let id = Secrets.id(), secret = Secrets.secret(prefix: "rpt_")
                // What a controller before expiry wrote: the event without policy, the row without expiry or scope.
                _ = try await cp.writer.write(tenant: tenant, actor: Actor(id: "cli"), requestID: "legacy-" + id) { _ in
                    [.tokenCreated(TokenCreated(tokenID: TokenID(id), name: name))]
                } sideStatements: { _ in [CredentialStore.insert(secret: secret, tenant: tenant, kind: .apiToken, subject: id)] }
                legacy[name] = secret
            }
            let staleHash = Secrets.hash(legacy["stale"]!)
            try await api.db.store.pool.withSession { s in
                _ = try s.query("UPDATE credentials SET created_at = now() - interval '31 days' WHERE secret_hash = $1", [staleHash])
            }
            let fresh = try await api.send(.get, "/api/routes", token: legacy["fresh"]!)
            #expect(fresh.status == 200, "\(fresh.text)")
            #expect(try await api.send(.post, "/api/groups", token: legacy["fresh"]!, json: ["name": "legacy-admin"]).status == 200, "legacy tokens are admins")
            let stale = try await api.send(.get, "/api/routes", token: legacy["stale"]!)
            #expect(stale.status == 401 && stale.message.hasPrefix("token expired"), "\(stale.text)")
            let list = try await api.send(.get, "/api/users/\(tenant)/tokens", token: admin).array
            let shown = try #require(list.first { $0["name"] as? String == "fresh" })
            #expect(shown["scope"] as? String == "admin" && shown["created_by"] as? String == "")
            let expiry = try #require(ISO8601.parse(shown["expiration_date"] as? String ?? ""))
            #expect(abs(expiry.timeIntervalSince1970 - Double(now + 30 * day)) < 120, "implied expiry: creation + 30 days")
        }
    }

    @Test("token CRUD: the secret is answered once; lists and reads never show it; delete is 401 at once; deleting oneself is allowed")
    func crud() async throws {
        try await LiveAPI.run { api in
            let (tenant, admin) = try await api.tenant("acme")
            let users = try await api.send(.get, "/api/users", token: admin)
            #expect(users.status == 200 && users.array.count == 1)
            let user = try #require(users.array.first)
            #expect(user["id"] as? String == tenant && user["is_service_user"] as? Bool == true && user["name"] as? String == "acme")
            for key in ["id", "email", "name", "role", "auto_groups", "status", "is_blocked", "pending_approval"] { #expect(user[key] != nil, "\(key)") }
            #expect(try await api.send(.get, "/api/users?service_user=false", token: admin).array.isEmpty)
            #expect(try await api.send(.get, "/api/users?service_user=true", token: admin).array.count == 1)
            #expect(try await api.send(.get, "/api/users?service_user=maybe", token: admin).object["field"] as? String == "service_user")

            let base = "/api/users/\(tenant)/tokens"
            let created = try await api.send(.post, base, token: admin, json: ["name": "ci", "expires_in": 7])
            #expect(created.status == 200, "\(created.text)")
            let secret = try #require(created.object["plain_token"] as? String)
            let pat = try #require(created.object["personal_access_token"] as? [String: Any])
            let id = try #require(pat["id"] as? String)
            #expect(pat["name"] as? String == "ci" && pat["scope"] as? String == "admin")
            #expect((pat["created_by"] as? String ?? "").hasPrefix("token:"))
            let expiry = try #require(ISO8601.parse(pat["expiration_date"] as? String ?? ""))
            #expect(abs(expiry.timeIntervalSince1970 - Double(now + 7 * day)) < 120)
            #expect(try await api.send(.get, "/api/routes", token: secret).status == 200)

            let list = try await api.send(.get, base, token: admin)
            #expect(list.status == 200 && list.array.count == 2 && list.array.map { $0["name"] as? String }.contains("ci"))
            #expect(!list.text.contains(secret) && !list.text.contains(String(secret.dropFirst(4).prefix(12))) && !list.text.contains("plain_token"))
            let one = try await api.send(.get, "\(base)/\(id)", token: admin)
            #expect(one.status == 200 && one.id == id && !one.text.contains(secret) && one.etag != nil)

            let deleted = try await api.send(.delete, "\(base)/\(id)", token: admin)
            #expect(deleted.status == 200 && deleted.text == "{}")
            let refused = try await api.send(.get, "/api/routes", token: secret)
            #expect(refused.status == 401 && refused.message == "token invalid or revoked")
            #expect(try await api.send(.get, "\(base)/\(id)", token: admin).status == 404)
            #expect(try await api.send(.delete, "\(base)/\(id)", token: admin).status == 404, "a deleted token is gone, as in NetBird")
            #expect(try await api.send(.get, base, token: admin).array.count == 1)

            // A token may delete itself (NetBird has no such check); its next request is refused.
            let selfID = try #require(try await api.send(.get, base, token: admin).array.first?["id"] as? String)
            #expect(try await api.send(.delete, "\(base)/\(selfID)", token: admin).status == 200)
            #expect(try await api.send(.get, base, token: admin).status == 401)

            // NetBird's audit codes, with the policy in the details.
            let auditor = try await api.controller.controlPlane.createToken(tenant: tenant, name: "auditor", scope: .readOnly).token
            let audit = try await api.send(.get, "/api/events/audit?activity_code=personal.access.token.create", token: auditor).array
            let ci = try #require(audit.first { ($0["meta"] as? [String: String])?["name"] == "ci" })
            #expect((ci["meta"] as? [String: String])?["scope"] == "admin" && (ci["meta"] as? [String: String])?["expires_at"] != nil)
            #expect(try await api.send(.get, "/api/events/audit?activity_code=personal.access.token.delete", token: auditor).array.count == 2)
        }
    }

    @Test("creation refuses what NetBird refuses, naming the field: expires_in outside 1..365 or missing, an empty name, an unknown scope")
    func createValidation() async throws {
        try await LiveAPI.run { api in
            let (tenant, admin) = try await api.tenant("acme")
            let base = "/api/users/\(tenant)/tokens"
            let cases: [([String: Any], String)] = [
                (["name": "x", "expires_in": 0], "expires_in"), (["name": "x", "expires_in": 366], "expires_in"),
                (["name": "x"], "expires_in"), (["name": "", "expires_in": 1], "name"), (["expires_in": 1], "name"),
                (["name": String(repeating: "n", count: 256), "expires_in": 1], "name"),
                (["name": "x", "expires_in": 1, "scope": "root"], "scope"),
            ]
            for (body, field) in cases {
                let r = try await api.send(.post, base, token: admin, json: body)
                #expect(r.status == 422 && r.object["field"] as? String == field, "\(body): \(r.text)")
            }
            #expect(try await api.send(.post, base, token: admin, json: ["name": "x", "expires_in": 1]).message.isEmpty)
            #expect(try await api.send(.post, base, token: admin, json: ["name": "x", "expires_in": 365, "scope": "read_only"]).status == 200)
            #expect(try await api.send(.get, base, token: admin).array.count == 3, "the refused ones wrote nothing")
        }
    }

    @Test("a read-only token reads every endpoint (200) and gets 403 \"permission denied\" on every write the router serves, writing nothing")
    func readOnlyEverywhere() async throws {
        try await LiveAPI.run { api in
            let (tenant, admin) = try await api.tenant("acme")
            let fixture = try await ReadOnlyFixture.make(api, tenant: tenant, admin: admin)
            let readOnly = try await api.controller.controlPlane.createToken(tenant: tenant, name: "auditor", scope: .readOnly).token
            let endpoints = api.controller.makeRouter().endpoints
            // Endpoints that take no API token at all: public ones, and the agent's (setup key or agent credential).
            let public_: Set<String> = ["GET /healthz", "GET /metrics", "GET /api/openapi.json", "POST /api/agent/enroll"]
            let agentOnly: Set<String> = ["GET /api/agent/view", "POST /api/agent/nats-credentials"]
            #expect(public_.union(agentOnly).isSubset(of: Set(endpoints.map { "\($0.method) \($0.path)" })), "the exclusions name served endpoints")
            let before = try await fixture.version(api)
            var writes = 0, reads = 0
            for endpoint in endpoints where !public_.contains("\(endpoint.method) \(endpoint.path)") {
                let path = try fixture.path(endpoint.path)
                let method = HTTPRequest.Method(endpoint.method)!
                let body = method == .get || method == .delete ? nil : try fixture.body(endpoint.method, endpoint.path)
                let r = try await api.send(method, path, token: readOnly, json: body)
                if agentOnly.contains("\(endpoint.method) \(endpoint.path)") {
                    #expect(r.status == 401, "\(endpoint): an API token is no agent credential: \(r.text)")
                } else if method == .get {
                    reads += 1
                    #expect(r.status == 200, "\(endpoint) \(path): \(r.text)")
                } else {
                    writes += 1
                    #expect(r.status == 403 && r.message.hasPrefix("permission denied"), "\(endpoint) \(path): \(r.status) \(r.text)")
                    // The same write with the admin token would be accepted (the 403 is the scope, not the request).
                }
            }
            #expect(writes >= 13 && reads >= 11, "writes \(writes), reads \(reads)")
            #expect(try await fixture.version(api) == before, "no read-only request wrote anything")
            // The admin token can do each of those writes (the bodies are valid): one of each kind, spot-checked.
            #expect(try await api.send(.post, "/api/groups", token: admin, json: try fixture.body("POST", "/api/groups")).status == 200)
            #expect(try await api.send(.post, "/api/users/\(tenant)/tokens", token: admin,
                                       json: try fixture.body("POST", "/api/users/{userId}/tokens")).status == 200)
            #expect(try await api.send(.delete, try fixture.path("/api/routes/{id}"), token: admin).status == 200)
        }
    }

    @Test("deleting a token makes it 401 at once on every controller; a new one works at once on every controller")
    func deleteAcrossControllers() async throws {
        try await ControllerFleet.run(count: 2) { fleet in
            let cp = fleet.controllers[0].controlPlane
            let tenant = try await cp.createTenant(name: "acme")
            let admin = try await cp.createToken(tenant: tenant, name: "admin").token
            let created = try await fleet.send(0, .post, "/api/users/\(tenant)/tokens", token: admin, json: ["name": "ci", "expires_in": 1])
            let secret = try #require(created.object["plain_token"] as? String)
            let id = try #require((created.object["personal_access_token"] as? [String: Any])?["id"] as? String)
            // Warm both controllers' caches of the tenant with the new token, then delete it on controller 1.
            #expect(try await fleet.send(0, .get, "/api/routes", token: secret).status == 200)
            #expect(try await fleet.send(1, .get, "/api/routes", token: secret).status == 200)
            #expect(try await fleet.send(1, .delete, "/api/users/\(tenant)/tokens/\(id)", token: admin).status == 200)
            #expect(try await fleet.send(0, .get, "/api/routes", token: secret).status == 401)
            #expect(try await fleet.send(1, .get, "/api/routes", token: secret).status == 401)
            #expect(try await fleet.send(0, .get, "/api/users/\(tenant)/tokens/\(id)", token: admin).status == 404)
        }
    }

    @Test("another tenant's token can neither list, read nor delete this tenant's tokens; no credentials is 401 everywhere")
    func isolation() async throws {
        try await LiveAPI.run { api in
            let (tenantA, tokenA) = try await api.tenant("a")
            let (tenantB, tokenB) = try await api.tenant("b")
            let idA = try #require(try await api.send(.get, "/api/users/\(tenantA)/tokens", token: tokenA).array.first?["id"] as? String)
            // B names A's user: 404, as for any object of another tenant.
            for (method, path) in [(HTTPRequest.Method.get, "/api/users/\(tenantA)/tokens"), (.get, "/api/users/\(tenantA)/tokens/\(idA)"),
                                   (.delete, "/api/users/\(tenantA)/tokens/\(idA)"), (.post, "/api/users/\(tenantA)/tokens")] {
                let r = try await api.send(method, path, token: tokenB, json: method == .post ? ["name": "x", "expires_in": 1] : nil)
                #expect(r.status == 404 && r.message == "user: \(tenantA) not found", "\(method) \(path): \(r.text)")
            }
            // B names its own user and A's token id: not found in B.
            #expect(try await api.send(.get, "/api/users/\(tenantB)/tokens/\(idA)", token: tokenB).status == 404)
            #expect(try await api.send(.delete, "/api/users/\(tenantB)/tokens/\(idA)", token: tokenB).status == 404)
            let listB = try await api.send(.get, "/api/users/\(tenantB)/tokens", token: tokenB)
            #expect(listB.array.count == 1 && !listB.text.contains(idA))
            let usersB = try await api.send(.get, "/api/users", token: tokenB)
            #expect(usersB.array.map { $0["id"] as? String } == [tenantB] && !usersB.text.contains(tenantA))
            // A's token is untouched and still works; A created nothing for B.
            #expect(try await api.send(.get, "/api/users/\(tenantA)/tokens/\(idA)", token: tokenA).status == 200)
            #expect(try await api.send(.get, "/api/users/\(tenantA)/tokens", token: tokenA).array.count == 1)
            // Nothing answers without credentials, nor with a made-up token.
            for (method, path) in [(HTTPRequest.Method.get, "/api/users"), (.get, "/api/users/\(tenantA)/tokens"),
                                   (.post, "/api/users/\(tenantA)/tokens"), (.get, "/api/users/\(tenantA)/tokens/\(idA)"),
                                   (.delete, "/api/users/\(tenantA)/tokens/\(idA)")] {
                for token in [nil, "rpt_madeup"] as [String?] {
                    let r = try await api.send(method, path, token: token, json: method == .post ? ["name": "x", "expires_in": 1] : nil)
                    #expect(r.status == 401, "\(method) \(path) token \(token ?? "none"): \(r.text)")
                }
            }
            #expect(try await api.send(.get, "/api/users/\(tenantA)/tokens/\(idA)", token: tokenA).status == 200)
        }
    }
}
