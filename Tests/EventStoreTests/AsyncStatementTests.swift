import PostgresClient
@testable import EventStore
import Foundation
import TestSupport
import Testing

/// The async, non-blocking statement path (`ConnectionPool.query(prepared:)`, used by `append`): the I/O
/// loop's hand-overs, parking after readiness nobody waited for, large sends and broken connections.
@Suite("Async statements through the I/O loop", .timeLimit(.minutes(10)))
struct AsyncStatementTests {
    @Test("async statements and withSession's blocking calls share one connection; errors leave it usable")
    func interleavedWithBlockingSessions() async throws {
        // One connection: every async statement follows blocking calls that read the same socket (which
        // parks it in the loop) and must bring it back.
        let db = try await TestDatabase.create(maxConnections: 1)
        let pool = db.store.pool
        for i in 0..<200 {
            let rows = try await pool.query(prepared: "SELECT $1::int + 1 AS n", [String(i)])
            #expect(rows[0, "n"] == String(i + 1))
            if i % 3 == 0 {
                let blocking = try await pool.withSession { try $0.query("SELECT $1::int * 2 AS n", [String(i)]) }
                #expect(blocking[0, "n"] == String(i * 2))
            }
            if i % 50 == 0 {
                await #expect(throws: EventStoreError.self) { try await pool.query(prepared: "SELECT $1::int", ["not a number"]) }
            }
        }
        #expect(try await db.store.append(tenant: "mix", expected: .noEvents, events: [event()]) == 1...1)
        #expect(pool.stats.open == 1)
        await db.drop()
    }

    @Test("many concurrent callers on a few connections each get their own result")
    func concurrentCallers() async throws {
        let db = try await TestDatabase.create(maxConnections: 3)
        let pool = db.store.pool
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for caller in 0..<24 {
                group.addTask {
                    var wrong = 0
                    for i in 0..<100 {
                        let value = "\(caller)-\(i)"
                        let rows = try await pool.query(prepared: "SELECT $1::text || '!' AS v", [value])
                        if rows[0, "v"] != value + "!" { wrong += 1 }
                    }
                    return wrong
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        #expect(pool.stats.open <= 3)
        await db.drop()
    }

    @Test("a statement larger than the socket buffer is sent in pieces (PQflush returns 1) and answered")
    func largeStatement() async throws {
        let db = try await TestDatabase.create(maxConnections: 1)
        let big = String(repeating: "x", count: 24 << 20)  // 24 MiB: far over a loopback socket's buffer
        let rows = try await db.store.pool.query(prepared: "SELECT length($1) AS n", [big])
        #expect(rows[0, "n"] == String(24 << 20))
        let again = try await db.store.pool.query(prepared: "SELECT 1 AS one")
        #expect(again[0, "one"] == "1")
        await db.drop()
    }

    @Test("an idle connection the server closed is noticed on the async path, replaced, and appends carry on")
    func serverClosesIdleConnection() async throws {
        let db = try await TestDatabase.create(maxConnections: 1)
        let pool = db.store.pool
        let pid = try await pool.query(prepared: "SELECT pg_backend_pid() AS pid")[0, "pid"]
        #expect(try await terminate(db, pid: pid))  // its EOF reaches the idle socket: the loop parks it
        // The next statement finds the connection dead (connectionLost); the pool replaces it.
        do {
            _ = try await pool.query(prepared: "SELECT 1")
        } catch let error as EventStoreError {
            guard case .connectionLost = error else { throw error }
        }
        let newPid = try await pool.query(prepared: "SELECT pg_backend_pid() AS pid")[0, "pid"]
        #expect(newPid != nil && newPid != pid)
        // An append retries a lost connection by itself (idempotent by event id).
        #expect(try await terminate(db, pid: newPid))
        #expect(try await db.store.append(tenant: "k", expected: .noEvents, events: [event()]) == 1...1)
        #expect(try await db.store.read(tenant: "k").count == 1)
        await db.drop()
    }

    /// Ends a server session from outside the pool, then gives the EOF a moment to arrive.
    private func terminate(_ db: TestDatabase, pid: String?) async throws -> Bool {
        let killer = try await db.rawConnection()
        defer { killer.close() }
        let rows = try await killer.withSession { try $0.query("SELECT pg_terminate_backend($1::int) AS ok", [pid]) }
        try await Task.sleep(for: .milliseconds(200))
        return rows[0, "ok"] == "t"
    }
}
