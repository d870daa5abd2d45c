@testable import PostgresClient
import Testing

@Suite("Typed row access (no I/O)")
struct PostgresRowTests {
    let rows = PostgresRows(columns: ["seq", "tenant_id", "locked", "age", "gone"], rows: [["42", "t1", "t", "1.5", nil], ["x", "t2", "f", "", nil]],
                            affectedRows: 0)

    @Test func readsCellsByNameAsTypedValues() {
        let row = rows[0]
        #expect(row.int64("seq") == 42 && row.uint64("seq") == 42)
        #expect(row.string("tenant_id") == "t1")
        #expect(row.bool("locked") == true && rows[1].bool("locked") == false)
        #expect(row.double("age") == 1.5)
        #expect(row.isNull("gone") && !row.isNull("seq"))
    }

    @Test func nullUnknownOrMalformedCellsAreNil() {
        #expect(rows[0].string("gone") == nil && rows[0].string("missing") == nil)
        #expect(rows[1].int64("seq") == nil && rows[1].double("age") == nil && rows[1].bool("tenant_id") == nil)
        #expect(!rows[0].isNull("missing"))
    }

    @Test func rowsAreACollection() {
        #expect(rows.count == 2 && rows.map { $0.string("tenant_id") } == ["t1", "t2"])
        #expect(rows.first?.int64("seq") == 42)
    }
}
