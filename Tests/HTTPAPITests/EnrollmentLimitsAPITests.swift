import ControlPlane
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RouteModel
import Testing
import TestSupport

extension LiveAPI {
    /// A live controller with enrollment limits and quotas (`routeplane serve`'s admission settings) and a mesh range.
    static func run(admission: AdmissionSettings, meshRange: String = "100.64.0.0/10", _ body: @Sendable (LiveAPI) async throws -> Void) async throws {
        var configuration = ControllerConfiguration(meshRange: try Prefix(parsing: meshRange), maxBodyBytes: 64 * 1024)
        configuration.controlPlane.admission = admission
        try await run(configuration: configuration, body)
    }

    /// A new reusable setup key's secret.
    func setupKey(_ token: String, _ extra: [String: Any] = [:]) async throws -> String {
        let r = try await send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable"].merging(extra) { $1 })
        guard r.status == 200, let secret = r.object["key"] as? String else { throw TestSetupError("setup key: \(r.status) \(r.text)") }
        return secret
    }

    func enrollReply(_ key: String, name: String, os: String = "linux", ip: String? = nil) async throws -> Reply {
        var body = ["setup_key": key, "name": name, "os": os]
        if let ip { body["ip"] = ip }
        return try await send(.post, "/api/agent/enroll", json: body)
    }
}

/// Enrollment as strangers reach it: the mesh address the controller chooses, field lengths, setup keys' defaults,
/// rate limits and tenants' quotas, over real HTTP against PostgreSQL.
@Suite("Enrollment limits over HTTP", .timeLimit(.minutes(10)), .serialized)
struct EnrollmentLimitsAPITests {
    /// Loose limits: nothing here is refused for its rate.
    static let loose = AdmissionSettings(enrollPerSetupKey: RateLimit(burst: 1_000, perSecond: 1_000),
                                         enrollPerSource: RateLimit(burst: 1_000, perSecond: 1_000))

    @Test("ip: allocated lowest-free without one; a reported one only inside the mesh range and free (422 / 409 naming ip); a full range is 412")
    func meshAddresses() async throws {
        try await LiveAPI.run(admission: Self.loose, meshRange: "100.70.0.0/30") { api in
            let (_, token) = try await api.tenant("acme")
            let key = try await api.setupKey(token)
            let first = try await api.enrollReply(key, name: "a")
            #expect(first.status == 201 && first.object["ip"] as? String == "100.70.0.1", "\(first.text)")
            let outside = try await api.enrollReply(key, name: "b", ip: "192.168.1.1")
            #expect(outside.status == 422 && outside.object["field"] as? String == "ip"
                    && outside.message == "ip 192.168.1.1 is outside the tenant's mesh range 100.70.0.0/30", "\(outside.text)")
            let taken = try await api.enrollReply(key, name: "b", ip: "100.70.0.1")
            #expect(taken.status == 409 && taken.object["field"] as? String == "ip" && taken.message.contains("already used"), "\(taken.text)")
            let broadcast = try await api.enrollReply(key, name: "b", ip: "100.70.0.3")
            #expect(broadcast.status == 422 && broadcast.object["field"] as? String == "ip", "\(broadcast.text)")
            let reported = try await api.enrollReply(key, name: "b", ip: "100.70.0.2")
            #expect(reported.status == 201 && reported.object["ip"] as? String == "100.70.0.2", "\(reported.text)")
            let full = try await api.enrollReply(key, name: "c")
            #expect(full.status == 412 && full.object["field"] as? String == "ip" && full.message == "the tenant's mesh range 100.70.0.0/30 has no free address",
                    "\(full.text)")
            // Refused enrollments left nothing behind: two peers, two addresses.
            let peers = try await api.send(.get, "/api/peers", token: token)
            #expect(Set(peers.array.compactMap { $0["ip"] as? String }) == ["100.70.0.1", "100.70.0.2"])
        }
    }

    @Test("concurrent enrollments without ip through several connections get distinct addresses")
    func concurrentAllocation() async throws {
        try await LiveAPI.run(admission: Self.loose) { api in
            let (_, token) = try await api.tenant("acme")
            let key = try await api.setupKey(token)
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for i in 0..<12 {
                    group.addTask {
                        try await api.sendOnOwnConnection(.post, "/api/agent/enroll", body: jsonData(["setup_key": key, "name": "p\(i)", "os": "linux"]))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.status == 201 }, "\(replies.map(\.text))")
            let ips = replies.compactMap { $0.object["ip"] as? String }
            #expect(Set(ips).count == 12 && Set(ips) == Set((1...12).map { "100.64.0.\($0)" }))
        }
    }

    @Test("name over 255 and os over 64 characters are refused naming the field; os is stored lower-case")
    func lengths() async throws {
        try await LiveAPI.run(admission: Self.loose) { api in
            let (_, token) = try await api.tenant("acme")
            let key = try await api.setupKey(token)
            let name = try await api.enrollReply(key, name: String(repeating: "n", count: 256))
            #expect(name.status == 422 && name.object["field"] as? String == "name" && name.message == "name must be 1 to 255 characters, got 256", "\(name.text)")
            let os = try await api.enrollReply(key, name: "a", os: String(repeating: "x", count: 65))
            #expect(os.status == 422 && os.object["field"] as? String == "os" && os.message == "os must be at most 64 characters, got 65", "\(os.text)")
            let ok = try await api.enrollReply(key, name: String(repeating: "n", count: 255), os: "Linux")
            #expect(ok.status == 201, "\(ok.text)")
            let peer = try await api.send(.get, "/api/peers/\(ok.object["peer_id"] as? String ?? "")", token: token)
            #expect(peer.object["os"] as? String == "linux", "\(peer.text)")
        }
    }

    @Test("setup key defaults: a missing expires_in is 30 days, 0 still never expires; explicit values kept; usage_limit missing is unlimited")
    func keyDefaults() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let before = Date()
            let bare = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable"])
            #expect(bare.status == 200, "\(bare.text)")
            let expires = try #require(NetBirdCompatSetupKeysTests.date(bare.object["expires"] as? String ?? ""), "\(bare.text)")
            let thirtyDays = 30.0 * 86_400
            #expect(abs(expires.timeIntervalSince(before) - thirtyDays) < 120, "\(expires)")
            #expect(bare.object["usage_limit"] as? Int == 0 && bare.object["state"] as? String == "valid")
            let never = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable", "expires_in": 0])
            #expect(never.object["expires"] as? String == "0001-01-01T00:00:00Z", "\(never.text)")
            let explicit = try await api.send(.post, "/api/setup-keys", token: token,
                                              json: ["name": "k", "type": "reusable", "expires_in": 3_600, "usage_limit": 7])
            let hour = try #require(NetBirdCompatSetupKeysTests.date(explicit.object["expires"] as? String ?? ""))
            #expect(abs(hour.timeIntervalSince(before) - 3_600) < 120 && explicit.object["usage_limit"] as? Int == 7, "\(explicit.text)")
        }
    }

    @Test("a burst of enrollments with one setup key gets 429 with Retry-After naming setup_key; another key from the same address passes")
    func perKeyRateLimit() async throws {
        let admission = AdmissionSettings(enrollPerSetupKey: RateLimit(burst: 3, perSecond: 0.01),
                                          enrollPerSource: RateLimit(burst: 1_000, perSecond: 1_000))
        try await LiveAPI.run(admission: admission) { api in
            let (_, token) = try await api.tenant("acme")
            let key = try await api.setupKey(token)
            var statuses: [Int] = []
            var limited: Reply?
            for i in 0..<10 {
                let r = try await api.enrollReply(key, name: "p\(i)")
                statuses.append(r.status)
                if r.status == 429 { limited = r; break }
            }
            #expect(statuses == [201, 201, 201, 429], "\(statuses)")
            let r = try #require(limited)
            let retry = try #require(r.headers[.retryAfter].flatMap(Int.init), "\(r.headers)")
            #expect(retry >= 1 && retry <= 100)
            #expect(r.object["field"] as? String == "setup_key" && r.object["code"] as? Int == 429 && r.message.contains("retry after"), "\(r.text)")
            // An invalid key is limited too, before any lookup; another valid key is not.
            let other = try await api.setupKey(token)
            #expect(try await api.enrollReply(other, name: "q").status == 201)
            // Only the three admitted enrollments made peers.
            #expect(try await api.send(.get, "/api/peers", token: token).array.count == 4)
        }
    }

    @Test("a burst from one source address with different keys gets 429 naming source")
    func perSourceRateLimit() async throws {
        let admission = AdmissionSettings(enrollPerSetupKey: RateLimit(burst: 1_000, perSecond: 1_000),
                                          enrollPerSource: RateLimit(burst: 2, perSecond: 0.01))
        try await LiveAPI.run(admission: admission) { api in
            let (_, token) = try await api.tenant("acme")
            var statuses: [Int] = []
            var last: Reply?
            for i in 0..<6 {
                // Invalid keys count as well: a guesser is slowed down before any database lookup.
                let r = try await api.enrollReply(i == 0 ? try await api.setupKey(token) : "rps_guess\(i)", name: "p\(i)")
                statuses.append(r.status)
                last = r
                if r.status == 429 { break }
            }
            #expect(statuses == [201, 403, 429], "\(statuses)")
            #expect(last?.object["field"] as? String == "source" && last?.headers[.retryAfter].flatMap(Int.init) != nil, "\(last?.text ?? "")")
        }
    }

    @Test("quotas: peers, routes, groups, setup keys and tokens each answer 403 naming the kind and the quota")
    func quotas() async throws {
        let admission = AdmissionSettings(enrollPerSetupKey: RateLimit(burst: 1_000, perSecond: 1_000),
                                          enrollPerSource: RateLimit(burst: 1_000, perSecond: 1_000),
                                          quotas: TenantQuotas(peers: 1, routes: 1, groups: 2, setupKeys: 1, tokens: 1))
        try await LiveAPI.run(admission: admission) { api in
            let (tenant, token) = try await api.tenant("acme")
            func expectQuota(_ r: Reply, _ field: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
                #expect(r.status == 403 && r.object["field"] as? String == field && r.message == message, "\(r.text)", sourceLocation: sourceLocation)
            }
            let key = try await api.setupKey(token)
            expectQuota(try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k2", "type": "reusable"]),
                        "setup_keys", "tenant quota of 1 setup keys reached; delete some or ask the operator to raise it")
            let peer = try await api.enrollReply(key, name: "gw")
            #expect(peer.status == 201)
            expectQuota(try await api.enrollReply(key, name: "second"), "peers", "tenant quota of 1 peers reached; delete some or ask the operator to raise it")
            // The All group is one of the two groups.
            let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"])
            #expect(g.status == 200, "\(g.text)")
            expectQuota(try await api.send(.post, "/api/groups", token: token, json: ["name": "more"]),
                        "groups", "tenant quota of 2 groups reached; delete some or ask the operator to raise it")
            let route: [String: Any] = ["network_id": "n", "network": "10.0.0.0/24", "peer": peer.object["peer_id"] as? String ?? "", "metric": 100,
                                        "masquerade": true, "enabled": true, "groups": [g.id], "description": ""]
            #expect(try await api.send(.post, "/api/routes", token: token, json: route).status == 200)
            var second = route
            second["network"] = "10.0.1.0/24"
            expectQuota(try await api.send(.post, "/api/routes", token: token, json: second),
                        "routes", "tenant quota of 1 routes reached; delete some or ask the operator to raise it")
            // Tokens: the tenant has one; a second through the controller's write path is refused.
            do {
                _ = try await api.controller.controlPlane.createToken(tenant: tenant, name: "second")
                Issue.record("a second token was created")
            } catch let e as ValidationError {
                #expect(e.field == "tokens" && e.httpStatus == 403 && e.message.hasPrefix("tenant quota of 1 tokens reached"))
            }
            // Deleting makes room again.
            let keyID = try await api.send(.get, "/api/setup-keys", token: token).array.first?["id"] as? String ?? ""
            #expect(try await api.send(.delete, "/api/setup-keys/\(keyID)", token: token).status == 200)
            #expect(try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k2", "type": "reusable"]).status == 200)
        }
    }

    @Test("quotas and limits are per tenant and per key: a tenant at its quota does not stop another")
    func isolation() async throws {
        let admission = AdmissionSettings(enrollPerSetupKey: RateLimit(burst: 1, perSecond: 0.01),
                                          enrollPerSource: RateLimit(burst: 1_000, perSecond: 1_000),
                                          quotas: TenantQuotas(peers: 1, routes: 1, groups: 2, setupKeys: 1, tokens: 1))
        try await LiveAPI.run(admission: admission) { api in
            let (_, tokenA) = try await api.tenant("a")
            let (_, tokenB) = try await api.tenant("b")
            let keyA = try await api.setupKey(tokenA)
            let keyB = try await api.setupKey(tokenB)
            #expect(try await api.enrollReply(keyA, name: "a1").status == 201)
            #expect(try await api.enrollReply(keyA, name: "a2").status == 429)
            let b = try await api.enrollReply(keyB, name: "b1")
            #expect(b.status == 201 && b.object["ip"] as? String == "100.64.0.1", "\(b.text)")
            // Without credentials nothing about quotas answers.
            #expect(try await api.send(.post, "/api/setup-keys", json: ["name": "x", "type": "reusable"]).status == 401)
        }
    }
}
