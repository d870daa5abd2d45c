import PostgresClient
@testable import EventStore
import Foundation
import TestSupport
import Testing

@Suite("Prepared statements, event ids and array literals", .timeLimit(.minutes(10)))
struct PreparedStatementTests {
    @Test("a prepared statement the server forgot (DEALLOCATE ALL) is prepared again; appends keep working")
    func reprepareAfterDeallocate() async throws {
        // One connection, so the DEALLOCATE hits the session that prepared the append statements.
        let db = try await TestDatabase.create(maxConnections: 1)
        let store = db.store
        #expect(try await store.append(tenant: "p", expected: .noEvents, events: [event()]) == 1...1)
        #expect(try await store.append(tenant: "p", expected: .exactly(1), events: [event(), event()]) == 2...3)
        let before = try await store.pool.withSession { try $0.query("SELECT count(*) FROM pg_prepared_statements") }
        #expect(before.rows[0][0].flatMap { Int($0) } ?? 0 >= 2, "single and batch appends run as prepared statements")
        _ = try await store.pool.withSession { try $0.query("DEALLOCATE ALL") }
        #expect(try await store.append(tenant: "p", expected: .exactly(3), events: [event()]) == 4...4)
        #expect(try await store.append(tenant: "p", expected: .exactly(4), events: [event(), event()]) == 5...6)
        // A conflict through the prepared path is still the typed conflict.
        await #expect(throws: EventStoreError.conflict(tenant: "p", expected: 1, actual: 6)) {
            try await store.append(tenant: "p", expected: .exactly(1), events: [event()])
        }
        #expect(try await store.read(tenant: "p").map(\.sequence) == Array(1...6))
        await db.drop()
    }

    @Test("prepared query(prepared:) returns rows like query, and reports server errors typed")
    func preparedQuery() async throws {
        let db = try await TestDatabase.create(maxConnections: 1)
        let rows = try await db.store.pool.withSession { session in
            _ = try session.query(prepared: "SELECT $1::int + 1 AS n", ["41"])
            return try session.query(prepared: "SELECT $1::int + 1 AS n", ["1"])
        }
        #expect(rows.columns == ["n"])
        #expect(rows[0, "n"] == "2")
        await #expect(throws: EventStoreError.self) {
            try await db.store.pool.withSession { try $0.query(prepared: "SELECT $1::int", ["not a number"]) }
        }
        // The connection is still usable after the error.
        let again = try await db.store.pool.withSession { try $0.query(prepared: "SELECT $1::int + 1 AS n", ["2"]) }
        #expect(again[0, "n"] == "3")
        await db.drop()
    }

    @Test("after a PostgreSQL restart, a reconnected pool prepares its statements again")
    func reprepareAfterRestart() async throws {
        let server = try await PrivatePostgres.start(name: "prepare-restart-test", port: 25443)
        let db = try await TestDatabase.create(maxConnections: 2, server: server.url)
        let store = db.store
        #expect(try await store.append(tenant: "r", expected: .noEvents, events: [event()]) == 1...1)
        #expect(try await store.append(tenant: "r", expected: .any, events: [event(), event()]) == 2...3)
        try await server.restart()
        // The first attempts may fail while the pool notices the dead connections and reconnects.
        let deadline = Deadline(after: .seconds(30))
        var single: ClosedRange<Int64>?
        let retried = event()
        while single == nil && !deadline.passed {
            do {
                single = try await store.append(tenant: "r", expected: .any, events: [retried])
            } catch let error as EventStoreError where error.isUnavailable {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(single == 4...4)
        #expect(try await store.append(tenant: "r", expected: .exactly(4), events: [event(), event()]) == 5...6)
        #expect(try await store.read(tenant: "r").map(\.sequence) == Array(1...6))
        await db.drop()
        try await server.stop()
    }

    @Test("event ids are random version-4 UUIDs in PostgreSQL's lower-case text form")
    func eventIDs() {
        let ids = (0..<2000).map { _ in FastUUID.random() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(300) {
            let text = FastUUID.text(id)
            #expect(text == id.uuidString.lowercased())
            #expect(Array(text)[14] == "4", "version 4")
            #expect("89ab".contains(Array(text)[19]), "RFC 9562 variant")
        }
        #expect(NewEvent(type: "T", data: "{}", metadata: EventMetadata(actor: "a")).id != NewEvent(type: "T", data: "{}", metadata: EventMetadata(actor: "a")).id)
    }
}
