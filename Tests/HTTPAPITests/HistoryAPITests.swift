import ControlPlane
import Foundation
import HTTPAPI
import HTTPTypes
import RouteModel
import Testing
import TestSupport

/// `?as_of=` on every read, `GET /api/peers/{id}/view` and `GET /api/history/diff`, over real HTTP.
@Suite("History reads over real HTTP", .timeLimit(.minutes(10)), .serialized)
struct HistoryAPITests {
    static let asOfHeader = HTTPField.Name("Routeplane-As-Of-Sequence")!
    static let sequenceHeader = HTTPField.Name("X-Routeplane-Sequence")!

    static func route(peer: String, group: String, metric: Int = 100) -> [String: Any] {
        ["network_id": "lan", "network": "10.20.0.0/24", "metric": metric, "masquerade": true, "groups": [group],
         "enabled": true, "description": "office", "peer": peer]
    }

    static func sequence(_ r: Reply) -> Int64? { r.headers[sequenceHeader].flatMap { Int64($0) } }

    /// A tenant with two peers, a group and a route, changed over time; the sequences of the interesting points.
    struct Story {
        var token: String
        var tenant: String
        var peers: [String]
        var group: String
        var route: String
        /// After the group was created (no route yet).
        var beforeRoute: Int64
        /// After the route was created, metric 100, group named "clients".
        var withRoute: Int64
        /// After the metric went to 200, the group was renamed and peer c1 was renamed.
        var changed: Int64
    }

    static func story(_ api: LiveAPI, name: String = "acme") async throws -> Story {
        let (tenant, token) = try await api.tenant(name)
        let peers = try await api.enroll(token, names: ["r1", "c1"])
        let group = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients", "peers": [peers[1]]])
        #expect(group.status == 200, "\(group.text)")
        let beforeRoute = try #require(sequence(group))
        let route = try await api.send(.post, "/api/routes", token: token, json: Self.route(peer: peers[0], group: group.id))
        #expect(route.status == 200, "\(route.text)")
        let withRoute = try #require(sequence(route))
        _ = try await api.send(.put, "/api/routes/\(route.id)", token: token, json: Self.route(peer: peers[0], group: group.id, metric: 200))
        _ = try await api.send(.put, "/api/groups/\(group.id)", token: token, json: ["name": "staff", "peers": [peers[1]]])
        let last = try await api.send(.put, "/api/peers/\(peers[1])", token: token, json: ["name": "laptop"])
        #expect(last.status == 200, "\(last.text)")
        return Story(token: token, tenant: tenant, peers: peers, group: group.id, route: route.id, beforeRoute: beforeRoute,
                     withRoute: withRoute, changed: try #require(sequence(last)))
    }

    @Test("every read answers the state as of a sequence, with the sequence in Routeplane-As-Of-Sequence")
    func readsAsOf() async throws {
        try await LiveAPI.run { api in
            let s = try await Self.story(api)
            let t = s.token
            // Routes: none before, metric 100 then, 200 now.
            let before = try await api.send(.get, "/api/routes?as_of=\(s.beforeRoute)", token: t)
            #expect(before.status == 200 && before.array.isEmpty, "\(before.text)")
            #expect(before.headers[Self.asOfHeader] == String(s.beforeRoute))
            #expect(try await api.send(.get, "/api/routes/\(s.route)?as_of=\(s.beforeRoute)", token: t).status == 404)
            let then = try await api.send(.get, "/api/routes/\(s.route)?as_of=\(s.withRoute)", token: t)
            #expect(then.object["metric"] as? Int == 100, "\(then.text)")
            #expect(then.headers[Self.asOfHeader] == String(s.withRoute))
            #expect(try await api.send(.get, "/api/routes?as_of=\(s.withRoute)", token: t).array.first?["metric"] as? Int == 100)
            #expect(try await api.send(.get, "/api/routes/\(s.route)", token: t).object["metric"] as? Int == 200)
            // Without as_of: no as-of header.
            #expect(try await api.send(.get, "/api/routes", token: t).headers[Self.asOfHeader] == nil)
            // Groups: the old name then, the new one now.
            let g = try await api.send(.get, "/api/groups/\(s.group)?as_of=\(s.withRoute)", token: t)
            #expect(g.object["name"] as? String == "clients" && g.headers[Self.asOfHeader] == String(s.withRoute), "\(g.text)")
            let gs = try await api.send(.get, "/api/groups?as_of=\(s.withRoute)", token: t)
            #expect(gs.array.contains { $0["name"] as? String == "clients" } && !gs.array.contains { $0["name"] as? String == "staff" })
            #expect(try await api.send(.get, "/api/groups/\(s.group)", token: t).object["name"] as? String == "staff")
            // Peers: the old name then.
            let p = try await api.send(.get, "/api/peers/\(s.peers[1])?as_of=\(s.withRoute)", token: t)
            #expect(p.object["name"] as? String == "c1" && p.headers[Self.asOfHeader] == String(s.withRoute), "\(p.text)")
            let ps = try await api.send(.get, "/api/peers?as_of=\(s.withRoute)", token: t)
            #expect(Set(ps.array.compactMap { $0["name"] as? String }) == ["r1", "c1"], "\(ps.text)")
            #expect(try await api.send(.get, "/api/peers/\(s.peers[1])", token: t).object["name"] as? String == "laptop")
            // A peer before it enrolled: 404.
            #expect(try await api.send(.get, "/api/peers/\(s.peers[1])?as_of=1", token: t).status == 404)
            // A time: now resolves to the last event.
            // Milliseconds: a time rounded down to the second could fall before the last event, written within that second.
            let now = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            let r = try await api.send(.get, "/api/routes/\(s.route)?as_of=\(now)", token: t)
            #expect(r.object["metric"] as? Int == 200 && r.headers[Self.asOfHeader] == String(s.changed), "\(r.text)")
        }
    }

    @Test("a peer's route view now and as of a sequence (GET /api/peers/{id}/view)")
    func peerView() async throws {
        try await LiveAPI.run { api in
            let s = try await Self.story(api)
            func routes(_ r: Reply) -> [[String: Any]] {
                ((r.object["view"] as? [String: Any])?["ha_sets"] as? [[String: Any]]) ?? []
            }
            let before = try await api.send(.get, "/api/peers/\(s.peers[1])/view?as_of=\(s.beforeRoute)", token: s.token)
            #expect(before.status == 200, "\(before.text)")
            #expect(routes(before).isEmpty, "\(before.text)")
            #expect(before.headers[Self.asOfHeader] == String(s.beforeRoute))
            #expect(before.object["sequence"] as? Int == Int(s.beforeRoute))
            let then = try await api.send(.get, "/api/peers/\(s.peers[1])/view?as_of=\(s.withRoute)", token: s.token)
            #expect(routes(then).count == 1, "\(then.text)")
            #expect(then.text.contains("\"metric\":100"), "\(then.text)")
            let now = try await api.send(.get, "/api/peers/\(s.peers[1])/view", token: s.token)
            #expect(now.text.contains("\"metric\":200") && now.headers[Self.asOfHeader] == nil, "\(now.text)")
            #expect((now.object["digest"] as? String)?.count == 64)
            #expect(try await api.send(.get, "/api/peers/nope/view", token: s.token).status == 404)
        }
    }

    @Test("bad as_of values are 422 naming as_of: not a point, 0, beyond the head, in the future, before the tenant")
    func badValues() async throws {
        try await LiveAPI.run { api in
            let s = try await Self.story(api)
            for value in ["yesterday", "0", "-3", "\(s.changed + 1)", "2999-01-01T00:00:00Z", "2001-01-01T00:00:00Z"] {
                for path in ["/api/routes", "/api/groups/\(s.group)", "/api/peers", "/api/peers/\(s.peers[0])/view"] {
                    let r = try await api.send(.get, "\(path)?as_of=\(value)", token: s.token)
                    #expect(r.status == 422 && r.object["field"] as? String == "as_of", "\(path) as_of=\(value): \(r.status) \(r.text)")
                }
            }
            let beyond = try await api.send(.get, "/api/routes?as_of=\(s.changed + 1)", token: s.token)
            #expect(beyond.message.contains("beyond the tenant's last event"), "\(beyond.text)")
            let badFrom = try await api.send(.get, "/api/history/diff?from=never", token: s.token)
            #expect(badFrom.status == 422 && badFrom.object["field"] as? String == "from", "\(badFrom.text)")
            let reversed = try await api.send(.get, "/api/history/diff?from=\(s.changed)&to=\(s.beforeRoute)", token: s.token)
            #expect(reversed.status == 422 && reversed.object["field"] as? String == "from", "\(reversed.text)")
            let badTo = try await api.send(.get, "/api/history/diff?from=1&to=soon", token: s.token)
            #expect(badTo.status == 422 && badTo.object["field"] as? String == "to", "\(badTo.text)")
        }
    }

    @Test("diff lists objects added, removed and changed field by field, and the peers whose views differ")
    func diff() async throws {
        try await LiveAPI.run { api in
            let s = try await Self.story(api)
            let d = try await api.send(.get, "/api/history/diff?from=\(s.withRoute)&to=\(s.changed)", token: s.token)
            #expect(d.status == 200, "\(d.text)")
            #expect(d.object["from"] as? Int == Int(s.withRoute) && d.object["to"] as? Int == Int(s.changed))
            let objects = d.object["objects"] as? [[String: Any]] ?? []
            let summary = Set(objects.map { "\($0["kind"] as? String ?? "") \($0["id"] as? String ?? "") \($0["change"] as? String ?? "")" })
            #expect(summary == ["route \(s.route) changed", "group \(s.group) changed", "peer \(s.peers[1]) changed"], "\(d.text)")
            let route = objects.first { $0["kind"] as? String == "route" }
            let fields = route?["fields"] as? [[String: Any]] ?? []
            #expect(fields.count == 1 && fields.first?["field"] as? String == "metric"
                    && fields.first?["old"] as? Int == 100 && fields.first?["new"] as? Int == 200, "\(d.text)")
            let views = d.object["views"] as? [[String: Any]] ?? []
            #expect(views.map { $0["peer_id"] as? String } == [s.peers[1]], "\(d.text)")
            // From before the route: the route is added, and the client's view gains it.
            let added = try await api.send(.get, "/api/history/diff?from=\(s.beforeRoute)&to=\(s.withRoute)", token: s.token)
            #expect(added.text.contains("\"change\":\"added\""), "\(added.text)")
            // The client gains it as a route to install, the routing peer as one to forward.
            let gained = Set(((added.object["views"] as? [[String: Any]]) ?? []).compactMap { $0["peer_id"] as? String })
            #expect(gained == Set(s.peers), "\(added.text)")
            // `from` defaults to the first event, `to` to the last; the same point twice is an empty diff.
            let whole = try await api.send(.get, "/api/history/diff", token: s.token)
            #expect(whole.object["from"] as? Int == 1 && whole.object["to"] as? Int == Int(s.changed), "\(whole.text)")
            let toHead = try await api.send(.get, "/api/history/diff?from=\(s.withRoute)", token: s.token)
            #expect(toHead.object["to"] as? Int == Int(s.changed) && toHead.headers[Self.asOfHeader] == String(s.changed))
            let none = try await api.send(.get, "/api/history/diff?from=\(s.changed)&to=\(s.changed)", token: s.token)
            #expect((none.object["objects"] as? [Any])?.isEmpty == true && (none.object["views"] as? [Any])?.isEmpty == true, "\(none.text)")
        }
    }

    @Test("isolation: another tenant's token sees nothing of this tenant's history; nothing answers without credentials; read-only tokens may read history")
    func isolation() async throws {
        try await LiveAPI.run { api in
            let a = try await Self.story(api, name: "acme")
            let (_, other) = try await api.tenant("globex")
            // The other tenant's own history does not contain acme's objects, at any point.
            for k in [a.beforeRoute, a.withRoute] {
                for path in ["/api/routes/\(a.route)", "/api/groups/\(a.group)", "/api/peers/\(a.peers[1])", "/api/peers/\(a.peers[1])/view"] {
                    let r = try await api.send(.get, "\(path)?as_of=\(k)", token: other)
                    #expect(r.status == 404 || r.status == 422, "\(path)?as_of=\(k): \(r.status) \(r.text)")
                }
            }
            let globexNow = try await api.send(.get, "/api/history/diff?from=1", token: other)
            #expect(globexNow.status == 200, "\(globexNow.text)")
            for id in [a.route, a.group] + a.peers { #expect(!globexNow.text.contains(id), "acme's \(id) in globex's diff") }
            for path in ["/api/routes?as_of=1", "/api/groups?as_of=1", "/api/peers?as_of=1"] {
                let r = try await api.send(.get, path, token: other)
                for id in [a.route, a.group] + a.peers { #expect(!r.text.contains(id), "\(path): acme's \(id)") }
            }
            // Without credentials: 401 everywhere new.
            for path in ["/api/routes?as_of=1", "/api/peers/\(a.peers[0])/view", "/api/peers/\(a.peers[0])/view?as_of=1",
                         "/api/history/diff?from=1", "/api/groups/\(a.group)?as_of=1"] {
                #expect(try await api.send(.get, path).status == 401, "\(path)")
                #expect(try await api.send(.get, path, token: "rpt_nonsense").status == 401, "\(path)")
            }
            // A read-only token of acme reads its history.
            let ro = try await api.controller.controlPlane.createToken(tenant: a.tenant, name: "auditor", scope: .readOnly).token
            #expect(try await api.send(.get, "/api/history/diff?from=\(a.withRoute)", token: ro).status == 200)
            #expect(try await api.send(.get, "/api/routes/\(a.route)?as_of=\(a.withRoute)", token: ro).object["metric"] as? Int == 100)
            #expect(try await api.send(.get, "/api/peers/\(a.peers[1])/view?as_of=\(a.withRoute)", token: ro).status == 200)
        }
    }
}
