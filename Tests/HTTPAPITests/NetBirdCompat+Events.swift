import ControlPlane
import Foundation
import HTTPTypes
import Testing

/// `/api/events` and `/api/events/audit` as NetBird's clients read them. Each checked value cites the NetBird code it
/// comes from (netbirdio/netbird).
@Suite("NetBird compatibility: events", .timeLimit(.minutes(10)), .serialized)
struct NetBirdCompatEventsTests {
    func route(peer: String, groups: [String], metric: Int = 100) -> [String: Any] {
        ["network_id": "lan", "network": "10.20.0.0/24", "metric": metric, "masquerade": true, "groups": groups, "enabled": true,
         "description": "office lan", "peer": peer]
    }

    @Test("GET /api/events: a bare array NetBird's Go client decodes (meta map[string]string), newest first, NetBird's codes, one entry per peer of a membership change")
    func eventsAsNetBirdClientReadsThem() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
            let peers = try await api.enroll(token, names: ["r1", "r2"], autoGroups: [g])
            let r = try await api.send(.post, "/api/routes", token: token, json: route(peer: peers[0], groups: [g])).id
            _ = try await api.send(.put, "/api/routes/\(r)", token: token, json: route(peer: peers[0], groups: [g], metric: 300))
            #expect(try await api.send(.delete, "/api/routes/\(r)", token: token).status == 200)
            let h = try await api.send(.post, "/api/groups", token: token, json: ["name": "both", "peers": peers]).id
            #expect(try await api.send(.put, "/api/groups/\(h)", token: token, json: ["name": "renamed", "peers": [String]()]).status == 200)

            let reply = try await api.send(.get, "/api/events", token: token)
            #expect(reply.status == 200)
            // shared/management/client/rest/events.go List: `parseResponse[[]api.Event]` — a bare array, meta map[string]string.
            let events = try reply.decoded([NetBirdEvent].self)
            #expect(!events.isEmpty)
            // management/server/activity/store/sql_store.go Get(…, descending: true): newest first.
            let seqs: [Int] = events.map { (e: NetBirdEvent) -> Int in Int(String(e.id.split(separator: "-")[0])) ?? -1 }
            #expect(seqs == seqs.sorted(by: >), "\(seqs)")
            #expect(Set(events.map(\.id)).count == events.count, "ids are unique")

            // Codes (activity/codes.go activityMap; openapi.yml Event.activity_code enum).
            let codes = Set(events.map(\.activity_code))
            for code in ["account.create", "personal.access.token.create", "group.add", "setupkey.add", "setupkey.group.add",
                         "peer.setupkey.add", "peer.group.add", "route.add", "route.update", "route.delete", "group.update", "peer.group.delete"] {
                #expect(codes.contains(code), "\(code) in \(codes.sorted())")
            }
            #expect(codes.isSubset(of: netBirdActivityCodes), "\(codes.subtracting(netBirdActivityCodes))")
            // activity/codes.go: PeerAddedWithSetupKey {"Peer added", "peer.setupkey.add"}; RouteUpdated {"Route updated", "route.update"};
            // GroupAddedToPeer {"Group added to peer", "peer.group.add"}; GroupRemovedFromPeer {"Group removed from peer", "peer.group.delete"}.
            #expect(events.first { $0.activity_code == "peer.setupkey.add" }?.activity == "Peer added")
            #expect(events.first { $0.activity_code == "route.update" }?.activity == "Route updated")
            #expect(events.first { $0.activity_code == "peer.group.add" }?.activity == "Group added to peer")
            #expect(events.first { $0.activity_code == "peer.group.delete" }?.activity == "Group removed from peer")

            // management/server/peer.go AddPeer: one peer.setupkey.add per enrollment, target the peer, meta name/ip (peer.EventMeta)
            // and setup_key_name.
            let enrolled = events.filter { $0.activity_code == "peer.setupkey.add" }
            #expect(Set(enrolled.map(\.target_id)) == Set(peers))
            #expect(enrolled.allSatisfy { $0.meta["name"] != nil && $0.meta["ip"]?.hasPrefix("100.64.") == true && $0.meta["setup_key_name"] == "k" })
            #expect(enrolled.allSatisfy { $0.initiator_email == "" && $0.initiator_id.hasPrefix("setup_key:") })

            // management/server/group.go prepareGroupEvents: one peer.group.add/peer.group.delete per peer, target the peer,
            // meta group, group_id, peer_ip, peer_fqdn.
            let addedToClients = events.filter { $0.activity_code == "peer.group.add" && $0.meta["group_id"] == g }
            #expect(Set(addedToClients.map(\.target_id)) == Set(peers), "auto groups at enrollment, one entry per peer")
            #expect(addedToClients.allSatisfy { $0.meta["group"] == "clients" && $0.meta["peer_ip"]?.hasPrefix("100.64.") == true && $0.meta["peer_fqdn"] == "" })
            // The new group with two peers: group.add, then peer.group.add for each (one event, entries <seq>, <seq>-1, <seq>-2).
            let created = events.filter { $0.meta["group_id"] == h && $0.activity_code == "peer.group.add" }
            #expect(Set(created.map(\.target_id)) == Set(peers))
            let groupAdd = try #require(events.first { $0.activity_code == "group.add" && $0.target_id == h })
            #expect(Set(created.map(\.id)) == [groupAdd.id + "-1", groupAdd.id + "-2"])
            // Emptying it: one peer.group.delete per peer, from one event.
            let removed = events.filter { $0.activity_code == "peer.group.delete" && $0.meta["group_id"] == h }
            #expect(Set(removed.map(\.target_id)) == Set(peers))
            let removedEvents: Set<String> = Set(removed.map { (e: NetBirdEvent) -> String in String(e.id.split(separator: "-")[0]) })
            #expect(removedEvents.count == 1)
            // group.go prepareGroupEvents: a rename is group.update with meta old_name/new_name.
            let renamed = try #require(events.first { $0.activity_code == "group.update" })
            #expect(renamed.meta["old_name"] == "both" && renamed.meta["new_name"] == "renamed" && renamed.target_id == h)
            // route/route.go Route.EventMeta: name (the network id), network_range, peer_id, peer_groups.
            let routeAdd = try #require(events.first { $0.activity_code == "route.add" })
            #expect(routeAdd.meta["name"] == "lan" && routeAdd.meta["network_range"] == "10.20.0.0/24" && routeAdd.meta["peer_id"] == peers[0])
            #expect(routeAdd.target_id == r)
            // The structured old → new values stay, in `details`; meta has them as strings.
            let update = try #require(reply.array.first { $0["activity_code"] as? String == "route.update" })
            let metric = ((update["details"] as? [String: Any])?["changes"] as? [String: Any])?["metric"] as? [String: Any]
            #expect(metric?["old"] as? Int == 100 && metric?["new"] as? Int == 300)
            #expect((update["meta"] as? [String: String])?["new_metric"] == "300")

            // NetBird's handler takes no parameters (events_handler.go getAllEvents): ignored here too.
            #expect(try await api.send(.get, "/api/events?limit=1&activity_code=bogus", token: token).decoded([NetBirdEvent].self).count == events.count)
            // The same entries as the audit path, which keeps its own paging.
            let audit = try await api.send(.get, "/api/events/audit?limit=1000", token: token).decoded([NetBirdEvent].self)
            #expect(audit.map(\.id) == events.map(\.id))
        }
    }

    @Test("page size: /api/events answers every entry up to NetBird's 10 000 without paging; /api/events/audit pages by 100 events by default")
    func pageSize() async throws {
        // management/server/event.go GetEvents: eventStore.Get(ctx, accountID, 0, 10000, true) — offset 0, limit 10000.
        #expect(AuditQuery.netBirdEvents.limit == 10_000)
        #expect(AuditQuery.netBirdEvents.ascending == false)
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let before = try await api.send(.get, "/api/events", token: token).array.count
            #expect(before >= 2, "the account and its token")
            for i in 0..<105 {
                #expect(try await api.send(.post, "/api/groups", token: token, json: ["name": "g\(i)"]).status == 200)
            }
            let all = try await api.send(.get, "/api/events", token: token)
            #expect(all.array.count == before + 105)
            #expect(all.headers[HTTPField.Name("X-Next-Cursor")!] == nil && all.headers[HTTPField.Name("Link")!] == nil)
            let page = try await api.send(.get, "/api/events/audit", token: token)
            #expect(page.array.count == 100)
            let cursor = try #require(page.headers[HTTPField.Name("X-Next-Cursor")!])
            let rest = try await api.send(.get, "/api/events/audit?cursor=\(cursor)", token: token)
            #expect(rest.array.count == before + 5 && rest.headers[HTTPField.Name("X-Next-Cursor")!] == nil)
            #expect((page.array + rest.array).compactMap { $0["id"] as? String } == all.array.compactMap { $0["id"] as? String })
        }
    }

    @Test("every activity code the audit log knows is NetBird's, but for Routeplane's own drain codes")
    func knownCodesAreNetBirds() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let r = try await api.send(.get, "/api/events/audit?activity_code=bogus", token: token)
            #expect(r.status == 422 && r.object["field"] as? String == "activity_code")
            let known = Set((r.message.components(separatedBy: "known: ").last ?? "").components(separatedBy: ", "))
            #expect(known.count > 10, "\(r.message)")
            #expect(known.subtracting(netBirdActivityCodes) == routeplaneOnlyActivityCodes, "\(known.subtracting(netBirdActivityCodes))")
            // Codes Routeplane emitted before and NetBird renamed (openapi.yml lists only the new ones).
            for old in ["setupkey.peer.add", "user.peer.add", "peer.drain.update"] { #expect(!known.contains(old)) }
        }
    }

    @Test("the audit path's filters work entry by entry on membership changes: activity_code, target_id, search, time range, cursor")
    func auditFiltersOnMembership() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
            let peers = try await api.enroll(token, names: ["a", "b", "c"])
            #expect(try await api.send(.put, "/api/groups/\(g)", token: token, json: ["name": "clients", "peers": peers]).status == 200)
            #expect(try await api.send(.put, "/api/groups/\(g)", token: token, json: ["name": "clients", "peers": [peers[0]]]).status == 200)

            let deletes = try await api.send(.get, "/api/events/audit?activity_code=peer.group.delete", token: token).array
            #expect(deletes.count == 2 && deletes.allSatisfy { $0["activity_code"] as? String == "peer.group.delete" })
            #expect(Set(deletes.compactMap { $0["target_id"] as? String }) == [peers[1], peers[2]])
            let adds = try await api.send(.get, "/api/events/audit?activity_code=peer.group.add&order=asc", token: token).array
                .filter { ($0["meta"] as? [String: String])?["group_id"] == g }
            #expect(Set(adds.compactMap { $0["target_id"] as? String }) == Set(peers) && adds.count == 3)
            // target_id: a peer's own entries, including its memberships (whose event is about the group); memberships of
            // groups other than g (a built-in group) left aside.
            let b = try await api.send(.get, "/api/events/audit?target_id=\(peers[1])&order=asc", token: token).array
                .filter { ($0["activity_code"] as? String ?? "").hasPrefix("peer.group.") == false || ($0["meta"] as? [String: String])?["group_id"] == g }
            #expect(b.compactMap { $0["activity_code"] as? String } == ["peer.setupkey.add", "peer.group.add", "peer.group.delete"])
            #expect(b.allSatisfy { $0["target_id"] as? String == peers[1] })
            // search and time range still select events; every entry of a matching event comes back.
            #expect(try await api.send(.get, "/api/events/audit?search=clients&activity_code=group.add", token: token).array.count == 1)
            #expect(try await api.send(.get, "/api/events/audit?end_date=2000-01-01T00:00:00Z", token: token).array.isEmpty)
            // A cursor may be any entry id, also an event's further entry (<seq>-<n>).
            let page = try await api.send(.get, "/api/events/audit?limit=1", token: token)
            let newest = try #require(page.array.first?["id"] as? String)
            #expect(newest.contains("-"), "the newest event's entries come newest first: \(newest)")
            let after = try await api.send(.get, "/api/events/audit?limit=1000&cursor=\(newest)", token: token).array
            #expect(!after.isEmpty && after.allSatisfy { !($0["id"] as? String ?? "").hasPrefix(String(newest.split(separator: "-")[0]) + "-") })
            #expect(try await api.send(.get, "/api/events/audit?cursor=x-1", token: token).status == 422)
        }
    }

    @Test("tenant isolation of /api/events: another tenant's token sees none of this tenant's entries")
    func isolation() async throws {
        try await LiveAPI.run { api in
            let (_, tokenA) = try await api.tenant("a")
            let (_, tokenB) = try await api.tenant("b")
            let gB = try await api.send(.post, "/api/groups", token: tokenB, json: ["name": "secret-group"]).id
            let pB = try await api.enroll(tokenB, names: ["secret-peer"], autoGroups: [gB])[0]
            let rB = try await api.send(.post, "/api/routes", token: tokenB, json: route(peer: pB, groups: [gB])).id
            let a = try await api.send(.get, "/api/events", token: tokenA)
            #expect(a.status == 200)
            for secret in ["secret-group", "secret-peer", gB, pB, rB] { #expect(!a.text.contains(secret), "\(secret)") }
            let own = try a.decoded([NetBirdEvent].self)
            #expect(own.contains { $0.activity_code == "account.create" } && own.contains { $0.activity_code == "personal.access.token.create" })
            #expect(Set(own.map(\.activity_code)).isSubset(of: ["account.create", "personal.access.token.create", "group.add"]), "only A's set-up")
            // B sees its own.
            let b = try await api.send(.get, "/api/events", token: tokenB).decoded([NetBirdEvent].self)
            #expect(b.contains { $0.target_id == rB } && b.contains { $0.target_id == pB && $0.activity_code == "peer.group.add" })
            #expect(try await api.send(.get, "/api/events").status == 401)
        }
    }
}
