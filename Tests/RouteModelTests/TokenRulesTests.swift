@testable import RouteModel
import Testing

/// API tokens' pure rules: expiry computation, the scope check, the creation rule, and events written before.
@Suite struct TokenRulesTests {
    let day: Int64 = 86_400
    let now: Int64 = 1_800_000_000

    func state() -> TenantState {
        TenantState(events: [.tenantCreated(TenantCreated(name: "acme"))])
    }

    func create(_ days: Int, scope: TokenScope = .admin, grantor: TokenScope? = nil, name: String = "ci") -> Result<[RouteEvent], ValidationError> {
        decide(AccessCommand.createToken(id: "t1", name: name, scope: scope, expiresInDays: days, now: now, createdBy: "token:x", grantor: grantor), state())
    }

    @Test("expiry: days of 24 hours from creation; refused from its second on; legacy tokens get the grace from their creation")
    func expiry() {
        #expect(TokenPolicy.expiresAt(now: now, days: 1) == now + day)
        #expect(TokenPolicy.expiresAt(now: now, days: 365) == now + 365 * day)
        let at = TokenPolicy.expiresAt(now: now, days: 30)
        #expect(!TokenPolicy.isExpired(expiresAt: at, now: at - 1))
        #expect(TokenPolicy.isExpired(expiresAt: at, now: at))
        #expect(TokenPolicy.isExpired(expiresAt: at, now: at + 1))
        #expect(TokenPolicy.effectiveExpiry(stored: at, createdAt: 0) == at)
        #expect(TokenPolicy.effectiveExpiry(stored: nil, createdAt: now) == now + Int64(TokenPolicy.legacyGraceDays) * day)
        #expect(TokenPolicy.defaultExpiresInDays >= TokenPolicy.minExpiresInDays && TokenPolicy.defaultExpiresInDays <= TokenPolicy.maxExpiresInDays)
    }

    @Test("scope: only admin writes; a token grants at most its own rights")
    func scope() {
        #expect(TokenScope.admin.canWrite)
        #expect(!TokenScope.readOnly.canWrite)
        #expect(TokenScope.admin.canGrant(.admin) && TokenScope.admin.canGrant(.readOnly))
        #expect(TokenScope.readOnly.canGrant(.readOnly))
        #expect(!TokenScope.readOnly.canGrant(.admin))
        #expect(TokenScope(rawValue: "read_only") == .readOnly && TokenScope(rawValue: "readonly") == nil)
    }

    @Test("creation: 1 to 365 days (NetBird's message, field expires_in), a name, and no more rights than the grantor")
    func creation() throws {
        for bad in [0, -1, 366, 10_000] {
            guard case .failure(let e) = create(bad) else { Issue.record("expires_in \(bad) accepted"); continue }
            #expect(e.field == "expires_in" && e.message.hasPrefix("expiration has to be between 1 and 365"), "\(e)")
        }
        guard case .failure(let empty) = create(30, name: "") else { Issue.record("empty name accepted"); return }
        #expect(empty.field == "name" && empty.message == "token name can't be empty")
        guard case .failure(let raise) = create(30, scope: .admin, grantor: .readOnly) else { Issue.record("read-only granted admin"); return }
        #expect(raise.kind == .permissionDenied && raise.field == "scope" && raise.message.hasPrefix("permission denied"))
        #expect((try? create(30, scope: .readOnly, grantor: .readOnly).get()) != nil)
        #expect((try? create(30, scope: .readOnly, grantor: .admin).get()) != nil)

        let events = try create(1).get()
        guard case .tokenCreated(let e)? = events.first else { Issue.record("\(events)"); return }
        #expect(e.scope == .admin && e.expiresAt == now + day && e.createdAt == now && e.createdBy == "token:x")
        var s = state()
        for event in events { s.apply(event) }
        #expect(s.tokens["t1"] == TokenInfo(name: "ci", revoked: false, scope: .admin, expiresAt: now + day, createdAt: now, createdBy: "token:x"))
        let readOnly = try create(365, scope: .readOnly).get()
        for event in readOnly { s = TenantState(events: [.tenantCreated(TenantCreated(name: "acme")), event]) }
        #expect(s.tokens["t1"]?.scope == .readOnly)
    }

    @Test("a TokenCreated written before scopes and expiry decodes as an admin token without expiry, and re-encodes to the same bytes")
    func oldEventsDecode() throws {
        let oldBody = #"{"event_version":1,"name":"ops","token_id":"abc"}"#
        let event = try RouteEvent.decode(type: "TokenCreated", json: Array(oldBody.utf8))
        guard case .tokenCreated(let e) = event else { Issue.record("\(event)"); return }
        #expect(e.scope == nil && e.expiresAt == nil && e.createdAt == nil && e.createdBy == nil)
        #expect(String(decoding: event.encode().1, as: UTF8.self) == oldBody)
        let s = TenantState(events: [event])
        #expect(s.tokens["abc"]?.scope == .admin && s.tokens["abc"]?.expiresAt == nil)
        // And the new fields round-trip.
        let new = RouteEvent.tokenCreated(TokenCreated(tokenID: "abc", name: "ops", scope: .readOnly, expiresAt: 5, createdAt: 4, createdBy: "cli"))
        #expect(try RouteEvent.decode(type: "TokenCreated", json: new.encode().1) == new)
    }
}
