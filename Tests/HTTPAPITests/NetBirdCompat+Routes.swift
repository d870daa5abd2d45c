import Foundation
import HTTPTypes
import Testing
import TestSupport

/// `/api/routes` driven the way NetBird's clients drive it (its dashboard, `client/rest`, Terraform), each checked
/// value from NetBird's code (netbirdio/netbird), cited next to it.
@Suite("NetBird compatibility: routes", .timeLimit(.minutes(10)), .serialized)
struct NetBirdCompatRoutesTests {
    @Test("network_type is ignored: lower-case, absent or of any type; NetBird derives it")
    func networkTypeIgnored() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "clients")
            let r = try await api.enroll(token, names: ["r1"])[0]
            // routes_handler.go `createRoute`: the type comes from `route.ParseNetwork(*req.Network)` (or
            // `route.DomainNetwork` for domains); `api.RouteRequest` has no network_type field, so Go ignores it.
            let sent: [(Any?, String, String)] = [("ipv4", "10.1.0.0/16", "IPv4"), ("IPv6", "10.2.0.0/16", "IPv4"), (42, "fd00:1::/64", "IPv6"),
                                                  (nil, "10.3.0.0/16", "IPv4"), ("domain", "10.4.0.0/16", "IPv4")]
            for (i, (type, network, derived)) in sent.enumerated() {
                var body: [String: Any] = ["network_id": "n\(i)", "network": network, "peer": r, "metric": 9999, "groups": [g],
                                           "enabled": true, "masquerade": true, "keep_route": false, "description": ""]
                if let type { body["network_type"] = type }
                let created = try await api.send(.post, "/api/routes", token: token, json: body)
                #expect(created.status == 200, "\(String(describing: type)): \(created.text)")
                #expect(created.object["network_type"] as? String == derived)
                let put = try await api.send(.put, "/api/routes/\(created.id)", token: token, json: body.merging(["network_type": "nonsense"]) { $1 })
                #expect(put.status == 200 && put.object["network_type"] as? String == derived, "\(put.text)")
            }
        }
    }

    @Test("absent booleans are false, absent metric and network_id are refused by their rule, as Go decodes NetBird's body")
    func missingFieldsTakeZeroValues() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "clients")
            let r = try await api.enroll(token, names: ["r1"])[0]
            // types.gen.go `RouteRequest`: masquerade/enabled/keep_route are plain `bool` (absent = false);
            // routes_handler.go: `skipAutoApply := false` unless `req.SkipAutoApply != nil`.
            let minimal: [String: Any] = ["network_id": "lan", "network": "10.9.0.0/24", "peer": r, "metric": 10, "groups": [g]]
            let created = try await api.send(.post, "/api/routes", token: token, json: minimal)
            #expect(created.status == 200, "\(created.text)")
            for key in ["masquerade", "enabled", "keep_route", "skip_auto_apply"] {
                #expect(created.object[key] as? Bool == false, "\(key)")
            }
            #expect(created.object["description"] as? String == "")
            // PUT without them: also false (the whole route is replaced, `SaveRoute`).
            let enabled = try await api.send(.put, "/api/routes/\(created.id)", token: token, json: minimal.merging(["enabled": true, "masquerade": true]) { $1 })
            #expect(enabled.object["enabled"] as? Bool == true && enabled.object["masquerade"] as? Bool == true)
            let again = try await api.send(.put, "/api/routes/\(created.id)", token: token, json: minimal)
            #expect(again.object["enabled"] as? Bool == false && again.object["masquerade"] as? Bool == false)
            // null is absent too (Go leaves the zero value).
            let nulls = try await api.send(.post, "/api/routes", token: token, json: minimal.merging(["network_id": "lan2", "enabled": NSNull(), "keep_route": NSNull()]) { $1 })
            #expect(nulls.status == 200 && nulls.object["enabled"] as? Bool == false, "\(nulls.text)")
            // metric absent = 0: route.go `validateRoute` "metric should be between 1 and 9999" (InvalidArgument → 422).
            var noMetric = minimal
            noMetric["metric"] = nil
            let m = try await api.send(.post, "/api/routes", token: token, json: noMetric)
            #expect(m.status == 422 && m.object["field"] as? String == "metric", "\(m.text)")
            // network_id absent = "": routes_handler.go `validateRouteCommon` "identifier should be between 1 and 40" (422).
            var noID = minimal
            noID["network_id"] = nil
            let n = try await api.send(.post, "/api/routes", token: token, json: noID)
            #expect(n.status == 422 && n.object["field"] as? String == "network_id", "\(n.text)")
        }
    }

    @Test("peer_groups: [] is a route without routing peer; every response carries peer, network and domains as NetBird's")
    func peerGroupsEmptyAndAbsentFields() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "clients")
            let r = try await api.enroll(token, names: ["r1"])[0]
            let routers = try await api.group(token, "routers", peers: [r])
            let base: [String: Any] = ["network_id": "lan", "metric": 100, "groups": [g], "enabled": true]
            // routes_handler.go `validateRouteCommon` checks only that `peer_groups` is present; route.go
            // `validateRoute` asks for no member: accepted. `toRouteResponse`: `Peer: &serverRoute.Peer` ("" here),
            // `peer_groups` only `if len(serverRoute.PeerGroups) > 0`.
            let none = try await api.send(.post, "/api/routes", token: token, json: base.merging(["network": "10.0.0.0/24", "peer_groups": [String]()]) { $1 })
            #expect(none.status == 200, "\(none.text)")
            #expect(none.object["peer"] as? String == "" && !none.has("peer_groups"))
            // toRouteResponse: `Domains: &domains` with a nil list → "domains": null for a network route.
            #expect(none.has("domains") && none.object["domains"] is NSNull, "\(none.text)")
            #expect(none.object["network"] as? String == "10.0.0.0/24")
            // A peer-group route: peer "" and the groups.
            let grouped = try await api.send(.post, "/api/routes", token: token, json: base.merging(["network": "10.1.0.0/24", "peer_groups": [routers]]) { $1 })
            #expect(grouped.object["peer"] as? String == "" && grouped.object["peer_groups"] as? [String] == [routers], "\(grouped.text)")
            // `peer_groups: []` next to `peer` is taken as absent (NetBird answers 422 "only one of"; Routeplane is lenient).
            let lenient = try await api.send(.post, "/api/routes", token: token, json: base.merging(["network": "10.2.0.0/24", "peer": r, "peer_groups": [String]()]) { $1 })
            #expect(lenient.status == 200 && lenient.object["peer"] as? String == r, "\(lenient.text)")
            // A domain route: `network` is NetBird's placeholder (route.go `getPlaceholderIP`: 192.0.2.0/32).
            let dom = try await api.send(.post, "/api/routes", token: token, json: base.merging(["network_id": "web", "domains": ["example.com"], "peer": r]) { $1 })
            #expect(dom.object["network"] as? String == "192.0.2.0/32" && dom.object["network_type"] as? String == "Domain", "\(dom.text)")
            // Every field the spec marks required on `Route` (openapi.yml), in lists too.
            let required = ["id", "network_id", "description", "enabled", "network_type", "metric", "masquerade", "groups", "keep_route"]
            for route in try await api.send(.get, "/api/routes", token: token).array {
                for key in required + ["peer", "network", "domains", "skip_auto_apply"] { #expect(has(route, key), "\(key) in \(route)") }
            }
        }
    }

    @Test("domains may hold underscores and come back as the user wrote them")
    func domainsAsWritten() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "clients")
            let r = try await api.enroll(token, names: ["r1"])[0]
            // shared/management/domain/validate.go `domainRegex` allows "_" in labels; routes_handler.go
            // `toRouteResponse` answers `Domains.ToStringList()` (idna.ToUnicode): the user's Unicode, not punycode.
            let written = ["_acme-challenge.Bücher.example", "svc_a.example.com"]
            let created = try await api.send(.post, "/api/routes", token: token,
                                             json: ["network_id": "web", "domains": written, "peer": r, "metric": 1, "groups": [g], "enabled": true])
            #expect(created.status == 200, "\(created.text)")
            #expect(created.object["domains"] as? [String] == written)
            #expect(try await api.send(.get, "/api/routes/\(created.id)", token: token).object["domains"] as? [String] == written)
            // A trailing "_" is refused as NetBird's regex refuses it (422, field domains).
            let bad = try await api.send(.post, "/api/routes", token: token,
                                         json: ["network_id": "x", "domains": ["a_.example.com"], "peer": r, "metric": 1, "groups": [g]])
            #expect(bad.status == 422 && bad.object["field"] as? String == "domains", "\(bad.text)")
            // The same names spelled otherwise are the same destination: the same peer under the same network id is refused.
            let same = try await api.send(.post, "/api/routes", token: token,
                                          json: ["network_id": "web", "domains": ["SVC_A.example.com", "_acme-challenge.xn--bcher-kva.example"], "peer": r, "metric": 1, "groups": [g]])
            #expect(same.status == 409, "\(same.text)")
        }
    }

    @Test("lists come back in creation order, not id order")
    func creationOrder() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "clients")
            let r = try await api.enroll(token, names: ["r1"])[0]
            // management/server/store/sql_store.go `GetAccountRoutes`: rows as stored (insertion order). Ids are random,
            // so with 8 routes id order matches creation order once in 40,320 runs.
            var ids: [String] = []
            for i in 0..<8 {
                let c = try await api.send(.post, "/api/routes", token: token,
                                           json: ["network_id": "n\(i)", "network": "10.\(i).0.0/16", "peer": r, "metric": 1, "groups": [g], "enabled": true])
                ids.append(c.id)
            }
            // An update keeps a route's place.
            _ = try await api.send(.put, "/api/routes/\(ids[0])", token: token,
                                   json: ["network_id": "n0", "network": "10.0.0.0/16", "peer": r, "metric": 5, "groups": [g], "enabled": true])
            let listed = try await api.send(.get, "/api/routes", token: token).array.compactMap { $0["id"] as? String }
            #expect(listed == ids)
        }
    }

    @Test("same range, same single peer under another network_id is accepted; deleting its routing peer disables the route")
    func sameRangeAndRoutingPeerDeletion() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "clients")
            let r = try await api.enroll(token, names: ["r1"])[0]
            let body: [String: Any] = ["network_id": "a", "network": "10.5.0.0/16", "peer": r, "metric": 1, "groups": [g], "enabled": true]
            let a = try await api.send(.post, "/api/routes", token: token, json: body)
            // route.go `checkRoutePrefixOrDomainsExistForPeers` records the other route's id where it meant its peer,
            // so the same single peer never conflicts: accepted under another network id.
            let b = try await api.send(.post, "/api/routes", token: token, json: body.merging(["network_id": "b"]) { $1 })
            #expect(a.status == 200 && b.status == 200, "\(b.text)")
            // Under the same network id it would list the peer twice in one HA set: 409 (Routeplane), NetBird's words.
            let dup = try await api.send(.post, "/api/routes", token: token, json: body)
            #expect(dup.status == 409 && dup.object["field"] as? String == "peer", "\(dup.text)")
            #expect(dup.message.hasPrefix("failed to add route with prefix 10.5.0.0/16 - peer \(r) already has this route"), "\(dup.message)")
            // types/account.go `Account.DeletePeer`: `r.Enabled = false; r.Peer = ""` for its routes; 200, not 409.
            let deleted = try await api.send(.delete, "/api/peers/\(r)", token: token)
            #expect(deleted.status == 200, "\(deleted.text)")
            for id in [a.id, b.id] {
                let route = try await api.send(.get, "/api/routes/\(id)", token: token)
                #expect(route.object["enabled"] as? Bool == false && route.object["peer"] as? String == "" && !route.has("peer_groups"), "\(route.text)")
            }
            // The change is in the audit log as route updates of the same request.
            let updates = try await api.send(.get, "/api/events/audit?activity_code=route.update", token: token).array
            #expect(updates.count == 2)
        }
    }

    @Test("non-Linux members of peer_groups are reported in the route and in the audit log, not dropped silently")
    func skippedRoutingPeers() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "clients")
            let linux = try await api.enroll(token, names: ["gw"])[0]
            let win = try await api.enroll(token, names: ["desk"], os: "windows")[0]
            let mixed = try await api.group(token, "mixed", peers: [linux, win])
            let created = try await api.send(.post, "/api/routes", token: token,
                                             json: ["network_id": "lan", "network": "10.7.0.0/16", "peer_groups": [mixed], "metric": 1, "groups": [g], "enabled": true])
            #expect(created.status == 200, "\(created.text)")
            let skipped = created.object["skipped_routing_peers"] as? [[String: Any]]
            #expect(skipped?.count == 1 && skipped?.first?["id"] as? String == win && skipped?.first?["os"] as? String == "windows"
                    && skipped?.first?["name"] as? String == "desk", "\(created.text)")
            // A single non-Linux peer stays refused: 412 (Routeplane's rule; old route.go "non-linux peers are not
            // supported as network routes").
            let single = try await api.send(.post, "/api/routes", token: token,
                                            json: ["network_id": "w", "network": "10.8.0.0/16", "peer": win, "metric": 1, "groups": [g]])
            #expect(single.status == 412 && single.object["field"] as? String == "peer")
            let audit = try await api.send(.get, "/api/events/audit?activity_code=route.add", token: token).array
            let meta = audit.first?["meta"] as? [String: Any]
            let skippedText = meta?["skipped_routing_peers"] as? String ?? ""
            #expect(skippedText.contains(win), "\(String(describing: meta))")
            // A Linux-only route has no such field.
            let plain = try await api.send(.post, "/api/routes", token: token,
                                           json: ["network_id": "p", "network": "10.9.0.0/16", "peer": linux, "metric": 1, "groups": [g]])
            #expect(plain.status == 200 && !plain.has("skipped_routing_peers"))
        }
    }
}
