@testable import ControlPlane
import Testing

/// The audit query's parameter rules, without a database: what `GET /api/events/audit` refuses and what it reads.
@Suite struct AuditQueryTests {
    static func query(_ values: [String: String]) throws(ControlPlaneError) -> AuditQuery {
        try AuditQuery { values[$0] }
    }

    @Test func anEmptyCursorIsTheFirstPage() throws {
        let first = try Self.query(["cursor": ""])
        #expect(first.conditions.isEmpty)
        #expect(first.parameters.isEmpty)
    }

    @Test func emptyFiltersFilterNothingButUnknownCodesAreRefused() throws {
        let none = try Self.query(["activity_code": "", "search": ""])
        #expect(none.conditions.isEmpty)
        let routes = try Self.query(["activity_code": "route.add"])
        #expect(routes.conditions.count == 1)
        #expect(throws: ControlPlaneError.self) { try Self.query(["activity_code": "route.explode"]) }
    }

    @Test func timesTakeEveryRFC3339Offset() throws {
        let far = try #require(ISO8601.parse("2026-11-26T10:00:00-21:16"))
        #expect(far == ISO8601.parse("2026-11-27T07:16:00Z"))
        let east = try #require(ISO8601.parse("2026-11-26T10:00:00.250+23:59"))
        #expect(east == ISO8601.parse("2026-11-25T10:01:00.250Z"))
        #expect(ISO8601.parse("2026-11-26T10:00:00+24:00") == nil)
        _ = try Self.query(["start_date": "1125-12-07T17:30:03.003Z", "end_date": "1019-11-18T05:50:50-21:16"])
    }

    @Test func aCursorIsAnEntryIDFromAPreviousPage() throws {
        let plain = try Self.query(["cursor": "42"])
        #expect(plain.conditions == ["seq < $2"])
        #expect(plain.parameters == ["42"])
        let further = try Self.query(["cursor": "42-3", "order": "asc"])
        #expect(further.conditions == ["seq > $2"])
        #expect(further.parameters == ["42"])
    }

    @Test(arguments: ["abc", "+5", "-1", "42-", "42-x", "42-3-1", "1234567890123456789", "42-1234567890", " 42"])
    func anythingElseIsRefusedNamingCursor(_ cursor: String) {
        #expect {
            try Self.query(["cursor": cursor])
        } throws: { error in
            (error as? ControlPlaneError)?.field == "cursor"
        }
    }
}
