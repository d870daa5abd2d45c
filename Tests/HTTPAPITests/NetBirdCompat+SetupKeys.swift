import Foundation
import HTTPTypes
import Testing

/// `/api/setup-keys` as NetBird's clients use it. Each checked value cites the NetBird code it comes from
/// (netbirdio/netbird).
@Suite("NetBird compatibility: setup keys", .timeLimit(.minutes(10)), .serialized)
struct NetBirdCompatSetupKeysTests {
    static func date(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    @Test("the key is shown whole once, then as NetBird's prefix: its first 5 characters and ****; ephemeral is stored and answered")
    func prefixAndEphemeral() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let created = try await api.send(.post, "/api/setup-keys", token: token,
                                             json: ["name": "ci", "type": "reusable", "ephemeral": true, "expires_in": 86_400, "usage_limit": 0, "auto_groups": [String]()])
            #expect(created.status == 200, "\(created.text)")
            // setupkeys_handler.go createSetupKey: the plain key in the creation answer (SetupKeyClear).
            let clear = try created.decoded(NetBirdSetupKey.self)
            #expect(clear.key.count > 9 && clear.ephemeral == true)
            // types/setupkey.go GenerateSetupKey: KeySecret = HiddenKey(key, 4) = key[0:5] + "****" (openapi.yml SetupKey.key example "A6160****").
            let masked = String(clear.key.prefix(5)) + "****"
            let got = try await api.send(.get, "/api/setup-keys/\(clear.id)", token: token).decoded(NetBirdSetupKey.self)
            #expect(got.key == masked && got.key.count == 9)
            #expect(got.ephemeral == true, "setupkeys_handler.go ToResponseBody: Ephemeral = key.Ephemeral")
            let listed = try await api.send(.get, "/api/setup-keys", token: token).decoded([NetBirdSetupKey].self)
            #expect(listed.map(\.key) == [masked])
            // The secret itself still enrolls, the prefix does not.
            #expect(try await api.send(.post, "/api/agent/enroll", json: ["setup_key": clear.key, "name": "n", "os": "linux"]).status == 201)
            #expect(try await api.send(.post, "/api/agent/enroll", json: ["setup_key": masked, "name": "m", "os": "linux"]).status == 403)
            // setupkey.go CreateSetupKey: setupkey.add with meta types.SetupKey.EventMeta {"name", "type", "key": KeySecret}.
            let events = try await api.send(.get, "/api/events", token: token).decoded([NetBirdEvent].self)
            let add = try #require(events.first { $0.activity_code == "setupkey.add" })
            #expect(add.meta["name"] == "ci" && add.meta["type"] == "reusable" && add.meta["key"] == masked && add.target_id == clear.id)
            #expect(!(try await api.send(.get, "/api/events", token: token).text.contains(clear.key)), "the secret is in no entry")
            // Without ephemeral: false (setupkeys_handler.go: req.Ephemeral nil → false).
            let plain = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "plain", "type": "reusable"]).decoded(NetBirdSetupKey.self)
            #expect(plain.ephemeral == false)
        }
    }

    @Test("NetBird's defaults for missing fields: usage_limit 0, auto_groups [], ephemeral false; expires_in 0 never expires")
    func defaults() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            // A missing expires_in is 30 days in Routeplane (EnrollmentLimitsAPITests), not NetBird's never: given as 0 here.
            let r = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable", "expires_in": 0])
            #expect(r.status == 200, "\(r.text)")
            let k = try r.decoded(NetBirdSetupKey.self)
            // setupkeys_handler.go createSetupKey: AutoGroups nil → []; UsageLimit 0 (unlimited, types.SetupKeyUnlimitedUsage);
            // types/setupkey.go GenerateSetupKey: validFor 0 → ExpiresAt nil, answered as Go's zero time (GetExpiresAt).
            #expect(k.auto_groups == [] && k.usage_limit == 0 && k.ephemeral == false && k.allow_extra_dns_labels == false)
            #expect(k.expires == "0001-01-01T00:00:00Z" && k.valid && k.state == "valid" && k.used_times == 0)
            #expect(Self.date(k.updated_at) != nil, "\(k.updated_at)")
        }
    }

    @Test("a one-off key: usage_limit absent, 0 or 1 is stored as 1 (NetBird's GenerateSetupKey), above 1 is refused naming usage_limit")
    func oneOffUsageLimit() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            // types/setupkey.go GenerateSetupKey: `if t == SetupKeyOneOff { limit = 1 }`.
            for limit in [nil, 0, 1] as [Int?] {
                var body: [String: Any] = ["name": "once", "type": "one-off"]
                if let limit { body["usage_limit"] = limit }
                let r = try await api.send(.post, "/api/setup-keys", token: token, json: body)
                #expect(r.status == 200 && r.object["usage_limit"] as? Int == 1, "\(String(describing: limit)): \(r.text)")
            }
            // NetBird overrides 5 with 1 silently; Routeplane refuses the contradiction (422, NetBird's status for an invalid argument).
            let refused = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "once", "type": "one-off", "usage_limit": 5])
            #expect(refused.status == 422 && refused.object["code"] as? Int == 422)
            #expect(refused.object["field"] as? String == "usage_limit" && refused.message.contains("one-off") && refused.message.contains("usage_limit"))
            // A reusable key keeps its limit.
            #expect(try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "r", "type": "reusable", "usage_limit": 5]).object["usage_limit"] as? Int == 5)
        }
    }

    @Test("updated_at: the creation time until a change, then the time of the last revoke or auto-group change")
    func updatedAt() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
            let created = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable"]).decoded(NetBirdSetupKey.self)
            let createdAt = try #require(Self.date(created.updated_at))
            // types/setupkey.go GenerateSetupKey: UpdatedAt = now at creation.
            #expect(abs(createdAt.timeIntervalSinceNow) < 60)
            // updated_at has a resolution of one second: wait until the clock is past the creation second.
            while Date().timeIntervalSince1970 < createdAt.timeIntervalSince1970 + 1 { try await Task.sleep(for: .milliseconds(20)) }
            let before = Date().timeIntervalSince1970.rounded(.down)
            // setupkey.go SaveSetupKey: newKey.UpdatedAt = time.Now().UTC().
            let changed = try await api.send(.put, "/api/setup-keys/\(created.id)", token: token, json: ["revoked": false, "auto_groups": [g]])
            let after = Date().timeIntervalSince1970.rounded(.up)
            #expect(changed.status == 200, "\(changed.text)")
            let updated = try changed.decoded(NetBirdSetupKey.self)
            let updatedAt = try #require(Self.date(updated.updated_at))
            #expect(updatedAt > createdAt && updatedAt.timeIntervalSince1970 >= before && updatedAt.timeIntervalSince1970 <= after,
                    "\(created.updated_at) → \(updated.updated_at)")
            #expect(try await api.send(.get, "/api/setup-keys/\(created.id)", token: token).decoded(NetBirdSetupKey.self).updated_at == updated.updated_at)
            // Revoking moves it again; the audit entries are NetBird's (setupkey.go SaveSetupKey: setupkey.revoke when revoked,
            // prepareSetupKeyEvents: setupkey.group.add/delete per group).
            while Date().timeIntervalSince1970 < updatedAt.timeIntervalSince1970 + 1 { try await Task.sleep(for: .milliseconds(20)) }
            let revoked = try await api.send(.put, "/api/setup-keys/\(created.id)", token: token, json: ["revoked": true, "auto_groups": [String]()])
                .decoded(NetBirdSetupKey.self)
            #expect(revoked.revoked && revoked.state == "revoked" && (Self.date(revoked.updated_at) ?? .distantPast) > updatedAt)
            let events = try await api.send(.get, "/api/events", token: token).decoded([NetBirdEvent].self).filter { $0.target_id == created.id }
            // Newest first: the revoke's removal, the revoke, the earlier group change, the creation.
            #expect(events.map(\.activity_code) == ["setupkey.group.delete", "setupkey.revoke", "setupkey.group.add", "setupkey.add"],
                    "\(events.map(\.activity_code))")
            let groupAdd = try #require(events.first { $0.activity_code == "setupkey.group.add" })
            #expect(groupAdd.meta["group"] == "clients" && groupAdd.meta["group_id"] == g && groupAdd.meta["setupkey"] == "k")
            #expect(groupAdd.activity == "Group added to setup key")
            // The audit path's activity_code filter selects these entries one by one.
            for (code, count) in [("setupkey.add", 1), ("setupkey.group.add", 1), ("setupkey.group.delete", 1), ("setupkey.revoke", 1), ("setupkey.update", 0)] {
                let found = try await api.send(.get, "/api/events/audit?activity_code=\(code)&target_id=\(created.id)", token: token)
                #expect(found.status == 200 && found.array.count == count, "\(code): \(found.text)")
            }
        }
    }

    @Test("refusals with NetBird's wording, its status, and the field")
    func refusals() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            // setupkeys_handler.go createSetupKey: "setup key name shouldn't be empty", "unknown setup key type %s" (InvalidArgument → 422).
            let emptyName = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "", "type": "reusable"])
            #expect(emptyName.status == 422 && emptyName.message.contains("setup key name shouldn't be empty") && emptyName.object["field"] as? String == "name")
            // Absent name or type: 422 as in NetBird (its Go zero value "" fails the same checks), with Routeplane's "is required".
            let noName = try await api.send(.post, "/api/setup-keys", token: token, json: ["type": "reusable"])
            #expect(noName.status == 422 && noName.object["field"] as? String == "name")
            let noType = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k"])
            #expect(noType.status == 422 && noType.object["field"] as? String == "type")
            let emptyType = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": ""])
            #expect(emptyType.status == 422 && emptyType.message.contains("unknown setup key type") && emptyType.object["field"] as? String == "type")
            let badType = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "forever"])
            #expect(badType.status == 422 && badType.message.contains("unknown setup key type forever"))
            // setupkeys_handler.go: "expiresIn can not be in the past".
            let past = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable", "expires_in": -1])
            #expect(past.status == 422 && past.message.contains("can not be in the past") && past.object["field"] as? String == "expires_in")
            // setupkey.go CreateSetupKey: "invalid auto groups: group not found: <id>" (validateSetupKeyAutoGroups, InvalidArgument).
            let noGroup = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable", "auto_groups": ["nope"]])
            #expect(noGroup.status == 422 && noGroup.message.contains("invalid auto groups: group not found: nope") && noGroup.object["field"] as? String == "auto_groups")
            // setupkey.go validateSetupKeyAutoGroups: "can't add All group to the setup key" (InvalidArgument → 422), on
            // create and on update; every peer joins All at enrollment anyway.
            let groups = try await api.send(.get, "/api/groups?name=All", token: token)
            let all = try #require((groups.array.first?["id"]) as? String, "\(groups.text)")
            let withAll = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable", "auto_groups": [all]])
            #expect(withAll.status == 422 && withAll.message.contains("can't add All group to the setup key") && withAll.object["field"] as? String == "auto_groups")
            let key = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable"]).id
            let updateAll = try await api.send(.put, "/api/setup-keys/\(key)", token: token, json: ["revoked": false, "auto_groups": [all]])
            #expect(updateAll.status == 422 && updateAll.message.contains("can't add All group to the setup key"))
            // setupkeys_handler.go updateSetupKey: AutoGroups nil → "setup key AutoGroups field is invalid" (422).
            let noGroups = try await api.send(.put, "/api/setup-keys/\(key)", token: token, json: ["revoked": true])
            #expect(noGroups.status == 422 && noGroups.message.contains("auto_groups field is invalid") && noGroups.object["field"] as? String == "auto_groups")
            // setupkey.go SaveSetupKey: "can't un-revoke a revoked setup key" (422).
            #expect(try await api.send(.put, "/api/setup-keys/\(key)", token: token, json: ["revoked": true, "auto_groups": [String]()]).status == 200)
            let unrevoke = try await api.send(.put, "/api/setup-keys/\(key)", token: token, json: ["revoked": false, "auto_groups": [String]()])
            #expect(unrevoke.status == 422 && unrevoke.message.contains("can't un-revoke a revoked setup key") && unrevoke.object["field"] as? String == "revoked")
            // Missing revoked is false (Go's zero value), so on a revoked key it is an un-revoke too.
            #expect(try await api.send(.put, "/api/setup-keys/\(key)", token: token, json: ["auto_groups": [String]()]).status == 422)
        }
    }

    @Test("tenant isolation: another tenant's token neither reads nor lists this tenant's setup keys or their prefixes")
    func isolation() async throws {
        try await LiveAPI.run { api in
            let (_, tokenA) = try await api.tenant("a")
            let (_, tokenB) = try await api.tenant("b")
            let keyB = try await api.send(.post, "/api/setup-keys", token: tokenB, json: ["name": "secret-key", "type": "reusable", "ephemeral": true])
                .decoded(NetBirdSetupKey.self)
            #expect(try await api.send(.get, "/api/setup-keys/\(keyB.id)", token: tokenA).status == 404)
            #expect(try await api.send(.get, "/api/setup-keys", token: tokenA).array.isEmpty)
            #expect(try await api.send(.put, "/api/setup-keys/\(keyB.id)", token: tokenA, json: ["revoked": true, "auto_groups": [String]()]).status == 404)
            let events = try await api.send(.get, "/api/events", token: tokenA).text
            #expect(!events.contains("secret-key") && !events.contains(String(keyB.key.prefix(5)) + "****") && !events.contains(keyB.id))
            #expect(try await api.send(.get, "/api/setup-keys/\(keyB.id)", token: tokenB).decoded(NetBirdSetupKey.self).ephemeral)
        }
    }
}
