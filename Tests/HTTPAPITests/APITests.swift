import ControlPlane
import HTTPAPI
import EventStore
import Foundation
import HTTPTypes
import ViewDistribution
import Testing
import TestSupport

@Suite("Controller API over real HTTP", .timeLimit(.minutes(10)), .serialized)
struct APITests {
    func route(_ networkID: String = "lan", network: String = "10.20.0.0/24", peer: String? = nil, peerGroups: [String]? = nil,
               metric: Int = 100, groups: [String], masquerade: Bool = true, enabled: Bool = true) -> [String: Any] {
        var r: [String: Any] = ["network_id": networkID, "network": network, "metric": metric, "masquerade": masquerade,
                                "groups": groups, "enabled": enabled, "description": "office lan", "keep_route": false]
        if let peer { r["peer"] = peer }
        if let peerGroups { r["peer_groups"] = peerGroups }
        return r
    }

    @Test("CRUD of groups, peers and routes with NetBird's field names; an HA pair of routes")
    func crud() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let clients = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"])
            #expect(clients.status == 200)
            #expect(clients.object["name"] as? String == "clients")
            #expect(clients.object["peers_count"] as? Int == 0)
            let peers = try await api.enroll(token, names: ["r1", "r2", "c1"])
            let client = peers[2]
            let put = try await api.send(.put, "/api/groups/\(clients.id)", token: token, json: ["name": "clients", "peers": [client]])
            #expect(put.status == 200)
            #expect(put.object["peers_count"] as? Int == 1)
            #expect((put.object["peers"] as? [[String: Any]])?.first?["name"] as? String == "c1")

            // HA: two routes, same network id and range, two routing peers.
            let a = try await api.send(.post, "/api/routes", token: token, json: route(peer: peers[0], metric: 100, groups: [clients.id]))
            let b = try await api.send(.post, "/api/routes", token: token, json: route(peer: peers[1], metric: 200, groups: [clients.id]))
            #expect(a.status == 200 && b.status == 200, "\(a.text) \(b.text)")
            #expect(a.object["network_type"] as? String == "IPv4")
            #expect(a.object["network"] as? String == "10.20.0.0/24")
            #expect(a.object["peer"] as? String == peers[0])
            #expect(a.object["keep_route"] as? Bool == false)
            #expect(a.etag != nil)
            let list = try await api.send(.get, "/api/routes", token: token)
            #expect(Set(list.array.compactMap { $0["id"] as? String }) == [a.id, b.id])

            // The client's view carries both candidates, lower metric first.
            let seq = Int64(b.headers[HTTPField.Name("X-Routeplane-Sequence")!] ?? "0") ?? 0
            #expect(seq > 0)

            // PUT replaces the whole route; a changed metric moves the ETag.
            var changed = route(peer: peers[0], metric: 50, groups: [clients.id])
            changed["network_type"] = "IPv4"
            let updated = try await api.send(.put, "/api/routes/\(a.id)", token: token, json: changed)
            #expect(updated.status == 200, "\(updated.text)")
            #expect(updated.object["metric"] as? Int == 50)
            #expect(updated.etag != a.etag)
            let got = try await api.send(.get, "/api/routes/\(a.id)", token: token)
            #expect(got.object["metric"] as? Int == 50)
            #expect(got.etag == updated.etag)

            // Peers: list, rename, get with groups.
            let peerList = try await api.send(.get, "/api/peers", token: token)
            #expect(peerList.array.count == 3)
            #expect(peerList.array.allSatisfy { ($0["ip"] as? String)?.hasPrefix("100.64.") == true && $0["connected"] as? Bool == false })
            let renamed = try await api.send(.put, "/api/peers/\(client)", token: token, json: ["name": "laptop", "ssh_enabled": false])
            #expect(renamed.status == 200)
            #expect(renamed.object["name"] as? String == "laptop")
            // A peer's groups as NetBird lists them: the built-in All first, then in creation order.
            #expect((renamed.object["groups"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["All", "clients"])

            // Deletes: a routing peer goes and its route stays, disabled and without routing peer (NetBird's
            // `Account.DeletePeer`); the route goes; a group a route uses stays (400, NetBird's `GroupLinkError`).
            #expect(try await api.send(.delete, "/api/peers/\(peers[1])", token: token).status == 200)
            #expect(try await api.send(.get, "/api/peers/\(peers[1])", token: token).status == 404)
            let orphan = try await api.send(.get, "/api/routes/\(b.id)", token: token)
            #expect(orphan.object["enabled"] as? Bool == false && orphan.object["peer"] as? String == "", "\(orphan.text)")
            #expect(try await api.send(.delete, "/api/routes/\(b.id)", token: token).status == 200)
            #expect(try await api.send(.get, "/api/routes/\(b.id)", token: token).status == 404)
            let inUse = try await api.send(.delete, "/api/groups/\(clients.id)", token: token)
            #expect(inUse.status == 400)
            #expect(inUse.message == "group has been linked to route: lan", "\(inUse.text)")
        }
    }

    @Test("every validation rule reaches the client with NetBird's status, the field and the rule")
    func validation() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
            let peers = try await api.enroll(token, names: ["r1", "win"], os: "linux")
            let win = try await api.enroll(token, names: ["w"], os: "windows")[0]
            let ok = route(peer: peers[0], groups: [g])
            func with(_ changes: [String: Any?]) -> [String: Any] {
                var r = ok
                for (k, v) in changes { r[k] = v }
                return r
            }
            let cases: [(String, Any, Int, String)] = [
                ("network_id too long", with(["network_id": String(repeating: "n", count: 41)]), 422, "network_id"),
                ("network_id missing", with(["network_id": nil]), 422, "network_id"),
                ("metric 0", with(["metric": 0]), 422, "metric"),
                ("metric 10000", with(["metric": 10000]), 422, "metric"),
                ("bad network", with(["network": "10.0.0.0/33"]), 422, "network"),
                ("network and domains", with(["domains": ["example.com"]]), 422, "network"),
                ("peer and peer_groups", with(["peer_groups": [g]]), 422, "peer"),
                ("neither peer nor peer_groups", with(["peer": nil]), 422, "peer"),
                ("unknown peer", with(["peer": "nope"]), 422, "peer"),
                ("unknown group", with(["groups": ["nope"]]), 422, "groups"),
                ("empty groups", with(["groups": [String]()]), 422, "groups"),
                ("windows routing peer", with(["peer": win]), 412, "peer"),
                ("metric not a number", with(["metric": "high"]), 400, "metric"),
                ("groups not an array", with(["groups": "g"]), 400, "groups"),
            ]
            for (name, body, status, field) in cases {
                let r = try await api.send(.post, "/api/routes", token: token, json: body)
                #expect(r.status == status, "\(name): \(r.status) \(r.text)")
                #expect(r.object["code"] as? Int == status, "\(name)")
                #expect(r.message.contains(field) || r.object["field"] as? String == field, "\(name): \(r.text)")
            }
            // Unknown fields are ignored, as NetBird's clients send some.
            let created = try await api.send(.post, "/api/routes", token: token, json: with(["some_future_field": 1]))
            #expect(created.status == 200)
            // The same peer serving the same range again: 409 under the same network id; accepted under another one,
            // as NetBird accepts it (route.go `checkRoutePrefixOrDomainsExistForPeers`).
            let dup = try await api.send(.post, "/api/routes", token: token, json: ok)
            #expect(dup.status == 409, "\(dup.text)")
            let other = try await api.send(.post, "/api/routes", token: token, json: with(["network_id": "other"]))
            #expect(other.status == 200, "\(other.text)")
            // Malformed JSON, a non-object, an oversized body.
            #expect(try await api.send(.post, "/api/routes", token: token, raw: "{\"network_id\": ").status == 400)
            #expect(try await api.send(.post, "/api/routes", token: token, raw: "[1,2]").status == 400)
            let big = try await api.send(.post, "/api/routes", token: token, raw: "{\"description\":\"" + String(repeating: "x", count: 300_000) + "\"}")
            #expect(big.status == 413, "\(big.status) \(big.text.prefix(200))")
            // Unknown ids and endpoints.
            #expect(try await api.send(.get, "/api/routes/nope", token: token).status == 404)
            #expect(try await api.send(.put, "/api/routes/nope", token: token, json: ok).status == 404)
            #expect(try await api.send(.get, "/api/nothing-here", token: token).status == 404)
            // Tokens.
            #expect(try await api.send(.get, "/api/routes").status == 401)
            #expect(try await api.send(.get, "/api/routes", token: "rpt_wrong").status == 401)
            // Setup keys.
            let badType = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "forever"])
            #expect(badType.status == 422 && badType.message.contains("type"))
            let badExpiry = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable", "expires_in": -5])
            #expect(badExpiry.status == 422 && badExpiry.message.contains("expires_in"))
            let oneOff = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "once", "type": "one-off"])
            let secret = oneOff.object["key"] as? String ?? ""
            #expect(try await api.send(.post, "/api/agent/enroll", json: ["setup_key": secret, "name": "a", "os": "linux"]).status == 201)
            let second = try await api.send(.post, "/api/agent/enroll", json: ["setup_key": secret, "name": "b", "os": "linux"])
            #expect(second.status == 403 && second.message.contains("usage limit"), "\(second.text)")
            #expect(try await api.send(.post, "/api/agent/enroll", json: ["setup_key": "rps_nope", "name": "b", "os": "linux"]).status == 403)
            let listed = try await api.send(.get, "/api/setup-keys/\(oneOff.id)", token: token)
            #expect(listed.object["key"] as? String == String(secret.prefix(5)) + "****")
            #expect(listed.object["state"] as? String == "overused")
            #expect(listed.object["used_times"] as? Int == 1)
        }
    }

    @Test("tenant A's token cannot read, list, change or delete tenant B's objects, nor see B's audit entries")
    func tenantIsolation() async throws {
        try await LiveAPI.run { api in
            let (_, tokenA) = try await api.tenant("a")
            let (_, tokenB) = try await api.tenant("b")
            let gB = try await api.send(.post, "/api/groups", token: tokenB, json: ["name": "secret-group"]).id
            let pB = try await api.enroll(tokenB, names: ["rb"])[0]
            let rB = try await api.send(.post, "/api/routes", token: tokenB, json: route(peer: pB, groups: [gB])).id
            for path in ["/api/routes/\(rB)", "/api/groups/\(gB)", "/api/peers/\(pB)"] {
                let get = try await api.send(.get, path, token: tokenA)
                #expect(get.status == 404, "\(path)")
                let missing = try await api.send(.get, path.replacingOccurrences(of: path.split(separator: "/").last!, with: "doesnotexist"), token: tokenA)
                #expect(get.message.replacingOccurrences(of: String(path.split(separator: "/").last!), with: "X")
                        == missing.message.replacingOccurrences(of: "doesnotexist", with: "X"), "same answer as a missing object")
                #expect(try await api.send(.delete, path, token: tokenA).status == 404)
            }
            #expect(try await api.send(.put, "/api/routes/\(rB)", token: tokenA, json: route(peer: pB, groups: [gB])).status == 404)
            #expect(try await api.send(.put, "/api/groups/\(gB)", token: tokenA, json: ["name": "mine"]).status == 404)
            #expect(try await api.send(.get, "/api/routes", token: tokenA).array.isEmpty)
            // A sees only its own built-in "All" group.
            let groupsA = try await api.send(.get, "/api/groups", token: tokenA).array
            #expect(groupsA.map { $0["name"] as? String } == ["All"] && groupsA.first?["id"] as? String != gB && groupsA.first?["peers_count"] as? Int == 0)
            #expect(try await api.send(.get, "/api/peers", token: tokenA).array.isEmpty)
            let audit = try await api.send(.get, "/api/events/audit?limit=1000", token: tokenA)
            #expect(!audit.text.contains("secret-group") && !audit.text.contains(rB))
            #expect(try await api.send(.get, "/api/events/audit?target_id=\(rB)", token: tokenA).array.isEmpty)
            // B still has everything.
            #expect(try await api.send(.get, "/api/routes/\(rB)", token: tokenB).status == 200)
        }
    }

    @Test("a revoked token is refused")
    func revokedToken() async throws {
        try await LiveAPI.run { api in
            let (tenant, token) = try await api.tenant("acme")
            #expect(try await api.send(.get, "/api/routes", token: token).status == 200)
            try await api.controller.controlPlane.revokeToken(tenant: nil, token: token)
            let r = try await api.send(.get, "/api/routes", token: token)
            #expect(r.status == 401)
            let audit = try await api.send(.get, "/api/events/audit?activity_code=personal.access.token.delete",
                                           token: try await api.controller.controlPlane.createToken(tenant: tenant, name: "second").token)
            #expect(audit.array.count == 1)
        }
    }

    @Test("50 concurrent PUTs of one route with If-Match: exactly one 200, the rest 412")
    func concurrentIfMatch() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
            let p = try await api.enroll(token, names: ["r1"])[0]
            let created = try await api.send(.post, "/api/routes", token: token, json: route(peer: p, groups: [g]))
            let etag = try #require(created.etag)
            let bodies = (0..<50).map { i in jsonData(route(peer: p, metric: 200 + i, groups: [g])) }
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for body in bodies {
                    group.addTask {
                        try await api.sendOnOwnConnection(.put, "/api/routes/\(created.id)", token: token, body: body, headers: [.ifMatch: etag]).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == 412 }.count == 49, "\(statuses)")
            // Without If-Match, every writer is applied in turn (none lost): 20 more PUTs, 20 RouteUpdated events.
            let before = try await api.send(.get, "/api/events/audit?activity_code=route.update&limit=1000", token: token).array.count
            let unconditional = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<20 {
                    group.addTask {
                        try await api.sendOnOwnConnection(.put, "/api/routes/\(created.id)", token: token, body: jsonData(route(peer: p, metric: 1000 + i, groups: [g]))).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(unconditional.allSatisfy { $0 == 200 }, "\(unconditional)")
            let after = try await api.send(.get, "/api/events/audit?activity_code=route.update&limit=1000", token: token).array.count
            #expect(after - before == 20)
        }
    }

    @Test("audit log: NetBird codes, old and new values, filters, and keyset pages that return each entry once while appends run")
    func auditLog() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
            let p = try await api.enroll(token, names: ["r1"])[0]
            let r = try await api.send(.post, "/api/routes", token: token, json: route(peer: p, metric: 100, groups: [g]), headers: [HTTPField.Name("X-Request-Id")!: "req-123"])
            #expect(r.headers[HTTPField.Name("X-Request-Id")!] == "req-123")
            _ = try await api.send(.put, "/api/routes/\(r.id)", token: token, json: route(peer: p, metric: 300, groups: [g]))
            let updates = try await api.send(.get, "/api/events/audit?activity_code=route.update", token: token).array
            #expect(updates.count == 1)
            let details = updates.first?["details"] as? [String: Any]
            let metric = (details?["changes"] as? [String: Any])?["metric"] as? [String: Any]
            #expect(metric?["old"] as? Int == 100 && metric?["new"] as? Int == 300, "\(String(describing: details))")
            let meta = updates.first?["meta"] as? [String: String]
            #expect(meta?["old_metric"] == "100" && meta?["new_metric"] == "300", "\(String(describing: meta))")
            #expect(updates.first?["activity"] as? String == "Route updated")
            #expect(updates.first?["initiator_name"] as? String == "acme-token")
            let created = try await api.send(.get, "/api/events/audit?target_id=\(r.id)&order=asc", token: token).array
            #expect(created.map { $0["activity_code"] as? String } == ["route.add", "route.update"])
            #expect(created.first?["request_id"] as? String == "req-123")
            #expect(try await api.send(.get, "/api/events/audit?search=office%20lan&activity_code=route.add", token: token).array.count == 1)
            #expect(try await api.send(.get, "/api/events/audit?activity_code=bogus", token: token).status == 422)
            #expect(try await api.send(.get, "/api/events/audit?start_date=2999-01-01T00:00:00Z", token: token).array.isEmpty)
            #expect(try await api.send(.get, "/api/events/audit?limit=0", token: token).status == 422)

            // Page through newest-first in pages of 7 while 60 more changes are appended.
            let writer = Task {
                for i in 0..<60 {
                    _ = try await api.sendOnOwnConnection(.put, "/api/routes/\(r.id)", token: token, body: jsonData(route(peer: p, metric: 400 + i, groups: [g])))
                }
            }
            let first = try await api.send(.get, "/api/events/audit?limit=7", token: token)
            let top = Int(first.array.first?["id"] as? String ?? "0") ?? 0
            var seen = first.array.compactMap { $0["id"] as? String }
            var cursor = first.headers[HTTPField.Name("X-Next-Cursor")!]
            while let c = cursor {
                try await Task.sleep(for: .milliseconds(5))
                let page = try await api.send(.get, "/api/events/audit?limit=7&cursor=\(c)", token: token)
                seen += page.array.compactMap { $0["id"] as? String }
                cursor = page.headers[HTTPField.Name("X-Next-Cursor")!]
            }
            try await writer.value
            #expect(seen.count == Set(seen).count, "no entry twice")
            #expect(seen.compactMap(Int.init) == Array((1...top).reversed()), "every entry up to the first page's newest, once, in order")
        }
    }

    @Test("drain mode: PUT draining shows in GET and in the audit log with old and new; rename and drain in one write; wrong type is 400")
    func peerDrain() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let p = try await api.enroll(token, names: ["r1"])[0]
            #expect(try await api.send(.get, "/api/peers/\(p)", token: token).object["draining"] as? Bool == false)
            let put = try await api.send(.put, "/api/peers/\(p)", token: token, json: ["name": "r1-maint", "draining": true],
                                         headers: [HTTPField.Name("X-Request-Id")!: "req-drain"])
            #expect(put.status == 200, "\(put.text)")
            #expect(put.object["draining"] as? Bool == true && put.object["name"] as? String == "r1-maint")
            let got = try await api.send(.get, "/api/peers/\(p)", token: token)
            #expect(got.object["draining"] as? Bool == true)
            #expect(got.etag == put.etag)
            // Absent: unchanged (and no event when nothing changes).
            let same = try await api.send(.put, "/api/peers/\(p)", token: token, json: ["name": "r1-maint"])
            #expect(same.status == 200 && same.object["draining"] as? Bool == true && same.etag == put.etag)

            let drains = try await api.send(.get, "/api/events/audit?activity_code=peer.drain.enable", token: token).array
            #expect(drains.count == 1)
            #expect(drains.first?["activity"] as? String == "Peer drain mode enabled")
            #expect(drains.first?["target_id"] as? String == p)
            let change = ((drains.first?["details"] as? [String: Any])?["changes"] as? [String: Any])?["draining"] as? [String: Any]
            #expect(change?["old"] as? Bool == false && change?["new"] as? Bool == true, "\(String(describing: drains.first))")
            // The rename and the drain change were one write: consecutive entries of one request.
            let entries = try await api.send(.get, "/api/events/audit?target_id=\(p)&order=asc", token: token).array
                .filter { ($0["activity_code"] as? String ?? "").hasPrefix("peer.group.") == false } // memberships of built-in groups aside
            #expect(entries.map { $0["activity_code"] as? String } == ["peer.setupkey.add", "peer.rename", "peer.drain.enable"])
            #expect(entries.dropFirst().allSatisfy { $0["request_id"] as? String == "req-drain" })
            let ids = entries.compactMap { Int($0["id"] as? String ?? "") }
            #expect(ids.count == 3 && ids[2] == ids[1] + 1)

            // Undrain.
            let undrain = try await api.send(.put, "/api/peers/\(p)", token: token, json: ["name": "r1-maint", "draining": false])
            #expect(undrain.status == 200 && undrain.object["draining"] as? Bool == false)

            // A wrong type is 400 naming the field, and changes nothing.
            let bad = try await api.send(.put, "/api/peers/\(p)", token: token, json: ["name": "other", "draining": "yes"])
            #expect(bad.status == 400)
            #expect(bad.object["field"] as? String == "draining" && bad.message.contains("draining"), "\(bad.text)")
            #expect(try await api.send(.get, "/api/peers/\(p)", token: token).object["name"] as? String == "r1-maint")
            #expect(try await api.send(.put, "/api/peers/nope", token: token, json: ["name": "x", "draining": true]).status == 404)
        }
    }

    @Test("the OpenAPI document lists every endpoint the router serves, and nothing else")
    func openAPIMatchesRouter() async throws {
        try await LiveAPI.run { api in
            let served = api.controller.makeRouter().endpoints
            #expect(served == OpenAPIDocument.endpoints)
            let doc = try await api.send(.get, "/api/openapi.json")
            #expect(doc.status == 200)
            let paths = doc.object["paths"] as? [String: Any] ?? [:]
            #expect(Set(paths.keys) == Set(served.map(\.path)))
            #expect(try await api.send(.get, "/healthz").status == 200)
            let metrics = try await api.send(.get, "/metrics")
            #expect(metrics.text.contains("routeplane_http_requests_total"))
            #expect(metrics.text.contains("routeplane_outbox_depth"))
        }
    }

    @Test("an enrolled agent reads its own view with its credential, and only that")
    func agentView() async throws {
        try await LiveAPI.run { api in
            let (tenant, token) = try await api.tenant("acme")
            let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
            let key = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable", "auto_groups": [g]])
            let secret = key.object["key"] as? String ?? ""
            let router = try await api.send(.post, "/api/agent/enroll", json: ["setup_key": secret, "name": "r1", "os": "linux", "ip": "100.64.9.9"])
            let client = try await api.send(.post, "/api/agent/enroll", json: ["setup_key": secret, "name": "c1", "os": "linux"])
            #expect(router.object["ip"] as? String == "100.64.9.9")
            let routerID = router.object["peer_id"] as? String ?? ""
            let credential = client.object["credential"] as? String ?? ""
            #expect(try await api.send(.get, "/api/groups/\(g)", token: token).object["peers_count"] as? Int == 2, "auto groups applied")
            _ = try await api.send(.post, "/api/routes", token: token, json: route(peer: routerID, groups: [g]))
            // Run the projection for this tenant as `serve` would.
            let runner = ProjectionRunnerHandle(store: api.db.store)
            try await runner.catchUp(tenant: tenant)
            let view = try await api.send(.get, "/api/agent/view", token: credential)
            #expect(view.status == 200, "\(view.text)")
            let haSets = (view.object["view"] as? [String: Any])?["ha_sets"] as? [[String: Any]]
            #expect(haSets?.first?["network"] as? String == "10.20.0.0/24")
            #expect(view.object["stale"] as? Bool == false)
            // Signed as the relay signs, with the key the enrollment told the agent to pin.
            let pinned = try #require(client.object["view_signing_key"] as? String)
            #expect(pinned == api.controller.controlPlane.viewSigner.publicKey && router.object["view_signing_key"] as? String == pinned)
            #expect(view.object["removed"] as? Bool == false && view.object["key"] as? String == pinned && view.object["endorsement"] == nil)
            let version = try #require(view.object["version"] as? Int)
            let signature = ViewSignature(key: pinned, signature: view.object["signature"] as? String ?? "")
            let verifier = try ViewVerifier(pinnedKey: pinned)
            let clientID = client.object["peer_id"] as? String ?? ""
            let digest = view.object["digest"] as? String ?? ""
            #expect(throws: Never.self) {
                try verifier.verify(tenant: tenant, peer: clientID, version: Int64(version), removed: false, digest: digest, signature: signature)
            }
            #expect(throws: ViewSignatureError.badSignature, "the signature is bound to the peer") {
                try verifier.verify(tenant: tenant, peer: routerID, version: Int64(version), removed: false, digest: digest, signature: signature)
            }
            // An API token is not an agent credential, and an agent credential is not an API token.
            #expect(try await api.send(.get, "/api/agent/view", token: token).status == 401)
            #expect(try await api.send(.get, "/api/routes", token: credential).status == 401)
        }
    }
}
