@testable import RouteModel
import Testing

/// The setup key's later fields (NetBird's `ephemeral`, its masked key, `updated_at`) and the one-off rule.
@Suite struct SetupKeyCompatTests {
    /// A SetupKeyCreated body as written before the later fields existed.
    let oldBody = #"{"event_version":1,"setup_key":{"auto_groups":["g"],"created_at":1800000000,"expires_at":1900000000,"id":"k","name":"office","revoked":false,"type":"one-off","usage_limit":0}}"#

    @Test("an event written before decodes: ephemeral false, no masked key, never updated; and re-encodes to the same bytes")
    func oldEventsDecode() throws {
        let event = try RouteEvent.decode(type: "SetupKeyCreated", json: Array(oldBody.utf8))
        guard case .setupKeyCreated(let e) = event else { Issue.record("\(event)"); return }
        #expect(e.setupKey.ephemeral == false && e.setupKey.keySecret == nil && e.setupKey.updatedAt == nil)
        #expect(String(decoding: event.encode().1, as: UTF8.self) == oldBody)
    }

    @Test("the later fields round-trip, and are written only when set")
    func newFieldsRoundTrip() throws {
        let key = SetupKey(id: "k", name: "ci", type: .reusable, expiresAt: nil, autoGroups: [], usageLimit: 0, createdAt: 1,
                           ephemeral: true, keySecret: SetupKey.masked(secret: "rps_Abcdefgh"), updatedAt: 2)
        #expect(key.keySecret == "rps_A****")
        let event = RouteEvent.setupKeyCreated(SetupKeyCreated(setupKey: key))
        let json = event.encode().1
        #expect(try RouteEvent.decode(type: "SetupKeyCreated", json: json) == event)
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains(#""ephemeral":true"#) && text.contains(#""key_secret":"rps_A****""#) && text.contains(#""updated_at":2"#))
    }

    @Test("a one-off key stores usage limit 1 for 0 or 1 and refuses more; updates set updated_at only when something changed")
    func rules() throws {
        var state = TenantState()
        state.apply(.groupCreated(GroupCreated(group: Group(id: "g", name: "g", peers: []))))
        func create(_ type: SetupKey.KeyType, limit: Int) -> Result<[RouteEvent], ValidationError> {
            decide(.createSetupKey(id: "k", name: "k", type: type, expiresIn: 0, autoGroups: [], usageLimit: limit, now: 10,
                                   ephemeral: true, keySecret: "rps_x****"), state)
        }
        var created: [RouteEvent] = []
        for limit in [0, 1] {
            guard case .success(let events) = create(.oneOff, limit: limit), case .setupKeyCreated(let e)? = events.first else {
                Issue.record("one-off \(limit)"); continue
            }
            #expect(e.setupKey.usageLimit == 1 && e.setupKey.ephemeral && e.setupKey.keySecret == "rps_x****")
            created = events
        }
        guard case .failure(let refused) = create(.oneOff, limit: 2) else { Issue.record("one-off 2 accepted"); return }
        #expect(refused.field == "usage_limit")
        for e in created { state.apply(e) }
        let unchanged = try decideOrThrow(.updateSetupKey(id: "k", revoked: false, autoGroups: [], now: 20), state)
        #expect(unchanged.isEmpty)
        let changed = try decideOrThrow(.updateSetupKey(id: "k", revoked: false, autoGroups: ["g"], now: 20), state)
        guard case .setupKeyUpdated(let u)? = changed.first else { Issue.record("\(changed)"); return }
        #expect(u.new.updatedAt == 20 && u.old.updatedAt == nil && u.new.autoGroups == ["g"])
    }
}
