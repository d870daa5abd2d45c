import Foundation
import HTTPTypes
import Testing
import TestSupport

/// `/api/groups` and the built-in "All" group, checked against NetBird's code (netbirdio/netbird), cited inline.
@Suite("NetBird compatibility: groups and the All group", .timeLimit(.minutes(10)), .serialized)
struct NetBirdCompatGroupsTests {
    @Test("every tenant has All, first, holding every enrolled peer; it cannot be deleted or updated")
    func allGroup() async throws {
        try await LiveAPI.run { api in
            let (tenant, token) = try await api.tenant("acme")
            // types/account.go `addAllGroup` / `GroupAllName`: created with the account, issued by the API.
            let initial = try await api.send(.get, "/api/groups", token: token).array
            #expect(initial.map { $0["name"] as? String } == ["All"] && initial.first?["peers_count"] as? Int == 0)
            let allID = try #require(initial.first?["id"] as? String)
            let g = try await api.group(token, "clients")
            // peer.go `AddPeer`: `transaction.AddPeerToAllGroup` in the enrollment transaction.
            let peers = try await api.enroll(token, names: ["r1", "c1", "c2"])
            let all = try await api.send(.get, "/api/groups/\(allID)", token: token)
            #expect(Set((all.object["peers"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }) == Set(peers))
            #expect(all.object["peers_count"] as? Int == 3)
            // The peer lists All among its groups.
            let peer = try await api.send(.get, "/api/peers/\(peers[1])", token: token)
            #expect((peer.object["groups"] as? [[String: Any]] ?? []).contains { $0["name"] as? String == "All" }, "\(peer.text)")
            // All first, then creation order.
            #expect(try await api.send(.get, "/api/groups", token: token).array.compactMap { $0["id"] as? String } == [allID, g])
            // group.go `validateDeleteGroup`: "deleting group ALL is not allowed", answered 400 by groups_handler.go
            // `deleteGroup` (joined errors → `util.WriteErrorResponse(err.Error(), http.StatusBadRequest)`).
            let del = try await api.send(.delete, "/api/groups/\(allID)", token: token)
            #expect(del.status == 400 && del.message == "deleting group ALL is not allowed" && del.object["field"] as? String == "group_id", "\(del.text)")
            // groups_handler.go `updateGroup`: InvalidArgument "updating group ALL is not allowed" (422), rename or not.
            for body in [["name": "Everyone"], ["name": "All", "peers": peers]] as [[String: Any]] {
                let put = try await api.send(.put, "/api/groups/\(allID)", token: token, json: body)
                #expect(put.status == 422 && put.message == "updating group ALL is not allowed", "\(put.text)")
            }
            // group.go `validateNewGroup`: "group with name All already exists" (AlreadyExists → 409).
            let twin = try await api.send(.post, "/api/groups", token: token, json: ["name": "All"])
            #expect(twin.status == 409 && twin.message == "group with name All already exists", "\(twin.text)")
            // A route distributed to All reaches every peer but its routing peer.
            let route = try await api.send(.post, "/api/routes", token: token,
                                           json: ["network_id": "lan", "network": "10.30.0.0/16", "peer": peers[0], "metric": 1, "groups": [allID], "enabled": true])
            #expect(route.status == 200, "\(route.text)")
            _ = try await api.enroll(token, names: ["c3"])
            try await ProjectionRunnerHandle(store: api.db.store).catchUp(tenant: tenant)
            let key = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k2", "type": "reusable"])
            let agent = try await api.send(.post, "/api/agent/enroll", json: ["setup_key": key.object["key"] as? String ?? "", "name": "c4", "os": "linux"])
            try await ProjectionRunnerHandle(store: api.db.store).catchUp(tenant: tenant)
            let view = try await api.send(.get, "/api/agent/view", token: agent.object["credential"] as? String ?? "")
            let sets = (view.object["view"] as? [String: Any])?["ha_sets"] as? [[String: Any]] ?? []
            #expect(sets.map { $0["network"] as? String } == ["10.30.0.0/16"], "\(view.text)")
            #expect(try await api.send(.get, "/api/groups/\(allID)", token: token).object["peers_count"] as? Int == 5)
        }
    }

    @Test("?name= is an exact lookup: a one-element list or 404; tenants see only their own")
    func nameLookup() async throws {
        try await LiveAPI.run { api in
            let (_, tokenA) = try await api.tenant("a")
            let (_, tokenB) = try await api.tenant("b")
            let office = try await api.group(tokenA, "Office")
            _ = try await api.group(tokenA, "Office-2")
            // groups_handler.go `getAllGroups` → store `GetGroupByName` (`name = ?`): exact, case-sensitive,
            // answered as a list of one group.
            let found = try await api.send(.get, "/api/groups?name=Office", token: tokenA)
            #expect(found.status == 200 && found.array.compactMap { $0["id"] as? String } == [office], "\(found.text)")
            // Not found: `status.NewGroupNotFoundError(name)` → 404 "group: <name> not found".
            for miss in ["office", "Offic", "Office%20"] {
                let r = try await api.send(.get, "/api/groups?name=\(miss)", token: tokenA)
                #expect(r.status == 404, "\(miss): \(r.text)")
            }
            let notFound = try await api.send(.get, "/api/groups?name=office", token: tokenA)
            #expect(notFound.message == "group: office not found" && notFound.object["field"] as? String == "name")
            // An empty value lists all (the handler tests `groupName != ""`).
            #expect(try await api.send(.get, "/api/groups?name=", token: tokenA).array.count == 3)
            // Isolation: B does not find A's group, and its All is its own.
            #expect(try await api.send(.get, "/api/groups?name=Office", token: tokenB).status == 404)
            let allA = try await api.send(.get, "/api/groups?name=All", token: tokenA).array.first?["id"] as? String
            let allB = try await api.send(.get, "/api/groups?name=All", token: tokenB).array.first?["id"] as? String
            #expect(allA != nil && allB != nil && allA != allB)
            // Every field the spec marks required on `Group` (openapi.yml).
            for key in ["id", "name", "peers_count", "resources_count", "peers", "resources"] { #expect(found.array.first.map { has($0, key) } == true, "\(key)") }
        }
    }

    @Test("deleting a group used by a route or a setup key: 400 with NetBird's GroupLinkError text")
    func linkedGroups() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "clients")
            let k = try await api.group(token, "auto")
            let r = try await api.enroll(token, names: ["r1"])[0]
            _ = try await api.send(.post, "/api/routes", token: token,
                                   json: ["network_id": "office-lan", "network": "10.0.0.0/24", "peer": r, "metric": 1, "groups": [g], "enabled": true])
            _ = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "branch key", "type": "reusable", "auto_groups": [k]])
            // group.go `GroupLinkError.Error()`: "group has been linked to %s: %s" — route by its NetID, setup key by
            // its name; groups_handler.go `deleteGroup` answers 400.
            let byRoute = try await api.send(.delete, "/api/groups/\(g)", token: token)
            #expect(byRoute.status == 400 && byRoute.message == "group has been linked to route: office-lan" && byRoute.object["code"] as? Int == 400,
                    "\(byRoute.text)")
            #expect(byRoute.object["field"] as? String == "group_id")
            let byKey = try await api.send(.delete, "/api/groups/\(k)", token: token)
            #expect(byKey.status == 400 && byKey.message == "group has been linked to setup key: branch key", "\(byKey.text)")
            // Unused: deleted.
            let free = try await api.group(token, "free")
            #expect(try await api.send(.delete, "/api/groups/\(free)", token: token).status == 200)
        }
    }

    @Test("a tenant written before the All group gets it on its first request, once, with every peer")
    func existingTenantsGetAll() async throws {
        try await LiveAPI.run { api in
            let legacy = try await api.legacyTenant("old")
            // First request (a read): the group is created by an ordinary write, actor system.
            let groups = try await api.send(.get, "/api/groups", token: legacy.token)
            #expect(groups.status == 200, "\(groups.text)")
            #expect(groups.array.map { $0["name"] as? String } == ["All"])
            #expect((groups.array.first?["peers"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [legacy.peer])
            // Later requests and writes create nothing more.
            _ = try await api.send(.get, "/api/peers", token: legacy.token)
            _ = try await api.group(legacy.token, "new")
            let adds = try await api.send(.get, "/api/events/audit?activity_code=group.add&limit=100", token: legacy.token).array
            #expect(adds.count == 2, "\(adds)")
            #expect(adds.contains { $0["initiator_id"] as? String == "system" })
            // A second legacy tenant upgraded by its first write instead (the setup key before the enrollment): old and new peers are in All.
            let other = try await api.legacyTenant("old2")
            let enrolled = try await api.enroll(other.token, names: ["fresh"])
            let all = try await api.send(.get, "/api/groups?name=All", token: other.token).array.first
            #expect(Set((all?["peers"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }) == Set([other.peer] + enrolled))
        }
    }
}
