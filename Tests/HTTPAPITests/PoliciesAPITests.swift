import Foundation
import HTTPTypes
import TestSupport
import Testing

/// `/api/policies` over real HTTP against PostgreSQL: NetBird's shape, status codes and words, If-Match, the audit
/// codes, the group link, and tenant isolation.
@Suite("Policies API", .timeLimit(.minutes(10)), .serialized)
struct PoliciesAPITests {
    static func body(name: String = "web", sources: [String], destinations: [String], proto: String = "tcp",
                     ports: [String]? = ["80"], enabled: Bool = true) -> [String: Any] {
        var rule: [String: Any] = ["name": "http", "enabled": true, "action": "accept", "bidirectional": false, "protocol": proto,
                                   "sources": sources, "destinations": destinations]
        if let ports { rule["ports"] = ports }
        return ["name": name, "description": "web access", "enabled": enabled, "rules": [rule]]
    }

    @Test("create, get, list, replace and delete in NetBird's shape, with If-Match and the policy.* audit codes")
    func lifecycle() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let clients = try await api.group(token, "web-clients")
            let servers = try await api.group(token, "servers")
            let created = try await api.send(.post, "/api/policies", token: token, json: Self.body(sources: [clients], destinations: [servers]))
            #expect(created.status == 200, "\(created.text)")
            let id = created.id
            #expect(!id.isEmpty && created.object["enabled"] as? Bool == true && created.object["description"] as? String == "web access")
            let rules = created.object["rules"] as? [[String: Any]] ?? []
            #expect(rules.count == 1)
            let rule = rules.first ?? [:]
            #expect(rule["ports"] as? [String] == ["80"] && rule["protocol"] as? String == "tcp" && rule["action"] as? String == "accept")
            #expect((rule["sources"] as? [[String: Any]])?.first?["name"] as? String == "web-clients")
            #expect((rule["destinations"] as? [[String: Any]])?.first?["id"] as? String == servers)
            let ruleID = rule["id"] as? String ?? ""
            #expect(!ruleID.isEmpty)

            let got = try await api.send(.get, "/api/policies/\(id)", token: token)
            #expect(got.status == 200 && got.id == id)
            let etag = try #require(got.etag)
            let listed = try await api.send(.get, "/api/policies", token: token)
            #expect(listed.array.map { $0["id"] as? String } == [id])

            // Replace: a stale If-Match is 412; the rule keeps its id when it names it.
            var replacement = Self.body(name: "web2", sources: [clients], destinations: [servers], ports: ["80", "443"])
            var r0 = (replacement["rules"] as! [[String: Any]])[0]
            r0["id"] = ruleID
            replacement["rules"] = [r0]
            let stale = try await api.send(.put, "/api/policies/\(id)", token: token, json: replacement, headers: [.ifMatch: "\"999999\""])
            #expect(stale.status == 412, "\(stale.text)")
            let replaced = try await api.send(.put, "/api/policies/\(id)", token: token, json: replacement, headers: [.ifMatch: etag])
            #expect(replaced.status == 200, "\(replaced.text)")
            #expect(replaced.object["name"] as? String == "web2")
            let newRule = (replaced.object["rules"] as? [[String: Any]])?.first ?? [:]
            #expect(newRule["id"] as? String == ruleID && newRule["ports"] as? [String] == ["80", "443"])

            // The group cannot go while the policy names it (NetBird's 400 and words).
            let blocked = try await api.send(.delete, "/api/groups/\(clients)", token: token)
            #expect(blocked.status == 400 && blocked.message == "group has been linked to policy: web2", "\(blocked.text)")

            let deleted = try await api.send(.delete, "/api/policies/\(id)", token: token)
            #expect(deleted.status == 200)
            #expect(try await api.send(.get, "/api/policies/\(id)", token: token).status == 404)
            #expect(try await api.send(.delete, "/api/groups/\(clients)", token: token).status == 200)

            let events = try await api.send(.get, "/api/events", token: token).decoded([NetBirdEvent].self)
            let codes = events.map(\.activity_code).filter { $0.hasPrefix("policy.") }
            #expect(Set(codes) == ["policy.add", "policy.update", "policy.delete"])
            #expect(events.first { $0.activity_code == "policy.add" }?.meta["name"] == "web")
            #expect(events.first { $0.activity_code == "policy.add" }?.target_id == id)
            // Routeplane's filtered view: the policy codes select their events (AuditLog.codeConditions).
            let filtered = try await api.send(.get, "/api/events/audit?activity_code=policy.update", token: token)
            #expect(filtered.status == 200 && filtered.array.map { $0["activity_code"] as? String } == ["policy.update"], "\(filtered.text)")
        }
    }

    @Test("NetBird's validation: 422 naming the field, 400 for a body that does not parse, 404 for an unknown policy")
    func validation() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "g")
            let cases: [([String: Any], String, String)] = [
                (Self.body(name: "", sources: [g], destinations: [g]), "name", "policy name shouldn't be empty"),
                (["name": "p", "enabled": true, "rules": [[String: Any]]()], "rules", "policy rules shouldn't be empty"),
                (Self.body(sources: [g], destinations: [g], proto: "icmp"), "rules[0].ports", "for ALL or ICMP protocol ports is not allowed"),
                (Self.body(sources: [g], destinations: [g], ports: ["70000"]), "rules[0].ports", "valid port value is in 1..65535 range"),
                (Self.body(sources: [g], destinations: ["nope"]), "rules[0].destinations", "group nope not found"),
                (Self.body(sources: [g], destinations: [g], proto: "gre"), "rules[0].protocol", "unknown protocol type: gre"),
            ]
            for (body, field, message) in cases {
                let r = try await api.send(.post, "/api/policies", token: token, json: body)
                #expect(r.status == 422, "\(body): \(r.text)")
                #expect(r.object["field"] as? String == field && r.message == message, "\(r.text)")
            }
            let missingRules = try await api.send(.post, "/api/policies", token: token, json: ["name": "p", "enabled": true])
            #expect(missingRules.status == 400 || missingRules.status == 422, "\(missingRules.text)")
            #expect(try await api.send(.post, "/api/policies", token: token, raw: "{").status == 400)
            #expect(try await api.send(.put, "/api/policies/ghost", token: token, json: Self.body(sources: [g], destinations: [g])).status == 404)
            #expect(try await api.send(.get, "/api/policies", token: token).array.isEmpty, "nothing was created")
        }
    }

    @Test("through the projection: the routing peer's view carries the policy's forward rules; the client still gets the route")
    func routingPeerViewCarriesRules() async throws {
        try await LiveAPI.run { api in
            let (tenant, token) = try await api.tenant("acme")
            let key = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable"]).object["key"] as? String ?? ""
            func enroll(_ name: String, _ ip: String) async throws -> (id: String, credential: String) {
                let r = try await api.send(.post, "/api/agent/enroll", json: ["setup_key": key, "name": name, "os": "linux", "ip": ip])
                guard r.status == 201 else { throw TestSetupError("enroll \(name): \(r.status) \(r.text)") }
                return (r.object["peer_id"] as? String ?? "", r.object["credential"] as? String ?? "")
            }
            let gw = try await enroll("gw", "100.64.0.1")
            let laptop = try await enroll("laptop", "100.64.0.10")
            let clients = try await api.group(token, "clients", peers: [laptop.id])
            let web = try await api.group(token, "web-clients", peers: [laptop.id])
            let servers = try await api.group(token, "servers")
            let route = try await api.send(.post, "/api/routes", token: token, json: [
                "network_id": "lan", "network": "10.40.0.0/24", "peer": gw.id, "metric": 100, "masquerade": true, "groups": [clients],
                "enabled": true, "access_control_groups": [servers]])
            #expect(route.status == 200, "\(route.text)")
            func view(_ credential: String) async throws -> [String: Any] {
                try await ProjectionRunnerHandle(store: api.db.store).catchUp(tenant: tenant)
                return try await api.send(.get, "/api/agent/view", token: credential).object["view"] as? [String: Any] ?? [:]
            }
            func rules() async throws -> [[String: Any]]? {
                ((try await view(gw.credential))["forwards"] as? [[String: Any]])?.first?["rules"] as? [[String: Any]]
            }
            // Guarded, no policy: nothing forwarded; the laptop (distribution group) still receives the route.
            #expect(try await rules()?.isEmpty == true)
            #expect(((try await view(laptop.credential))["ha_sets"] as? [[String: Any]])?.count == 1)
            let policy = try await api.send(.post, "/api/policies", token: token, json: Self.body(sources: [web], destinations: [servers])).id
            let allowed = try await rules() ?? []
            #expect(allowed.count == 1)
            #expect(allowed.first?["action"] as? String == "accept" && allowed.first?["protocol"] as? String == "tcp")
            #expect(allowed.first?["ports"] as? [Int] == [80] && allowed.first?["sources"] as? [String] == ["100.64.0.10"])
            #expect(try await api.send(.delete, "/api/policies/\(policy)", token: token).status == 200)
            #expect(try await rules()?.isEmpty == true)
        }
    }

    @Test("isolation: another tenant's token sees and changes nothing of this tenant's policies; no credentials is 401")
    func isolation() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let (_, other) = try await api.tenant("globex")
            let g = try await api.group(token, "g")
            let id = try await api.send(.post, "/api/policies", token: token, json: Self.body(sources: [g], destinations: [g])).id
            #expect(!id.isEmpty)
            #expect(try await api.send(.get, "/api/policies", token: other).array.isEmpty)
            #expect(try await api.send(.get, "/api/policies/\(id)", token: other).status == 404)
            #expect(try await api.send(.put, "/api/policies/\(id)", token: other, json: Self.body(sources: [g], destinations: [g])).status == 404)
            #expect(try await api.send(.delete, "/api/policies/\(id)", token: other).status == 404)
            // The other tenant cannot name this tenant's groups either.
            let foreign = try await api.send(.post, "/api/policies", token: other, json: Self.body(sources: [g], destinations: [g]))
            #expect(foreign.status == 422, "\(foreign.text)")
            for (method, path) in [(HTTPRequest.Method.get, "/api/policies"), (.get, "/api/policies/\(id)"), (.post, "/api/policies"),
                                   (.put, "/api/policies/\(id)"), (.delete, "/api/policies/\(id)")] {
                let r = try await api.send(method, path, json: method == .get || method == .delete ? nil : Self.body(sources: [g], destinations: [g]))
                #expect(r.status == 401, "\(method) \(path): \(r.status)")
            }
            #expect(try await api.send(.get, "/api/policies/\(id)", token: token).status == 200, "still there")
        }
    }
}
