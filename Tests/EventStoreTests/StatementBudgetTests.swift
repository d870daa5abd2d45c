import PostgresClient
import EventStore
import Foundation
import Synchronization
import Testing
import TestSupport

/// The statement budget and the lease deadline over a real PostgreSQL (fresh database, its own pool).
@Suite("Statement budget and lease deadline (PostgreSQL)", .timeLimit(.minutes(2)))
struct StatementBudgetTests {
    static let budget = StatementBudget(read: .milliseconds(100), write: .seconds(10), leaseDeadline: .milliseconds(300), label: "test")

    @Test func aReadPastTheBudgetIsCancelledAndTheConnectionIsFreeAfterwards() async throws {
        let db = try await TestDatabase.create(maxConnections: 1)
        do {
            let error = await #expect(throws: PostgresError.self) {
                try await Self.budget.run { try await db.store.pool.query(prepared: "SELECT pg_sleep(2)") }
            }
            #expect(error?.isStatementTimeout == true)
            #expect(error?.isUnavailable == false)
            // The same (only) connection, without a budget (background work): no limit is left behind on it.
            let slept = try await db.store.pool.value(prepared: "SELECT pg_sleep(0.3)::text || 'done'", [])
            #expect(slept == "done")
            let setting = try await db.store.pool.value(prepared: "SELECT current_setting('statement_timeout')", [])
            #expect(setting == "0")
            // And in a session (transactions use these).
            let inSession = await #expect(throws: PostgresError.self) {
                try await Self.budget.run { try await db.store.pool.withSession { try $0.query("SELECT pg_sleep(2)") } }
            }
            #expect(inSession?.isStatementTimeout == true)
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    @Test func writesGetTheWriteLimitNotTheReadLimit() async throws {
        let db = try await TestDatabase.create(maxConnections: 1)
        do {
            let value = try await Self.budget.run {
                try await StatementBudget.writing { try await db.store.pool.value(prepared: "SELECT pg_sleep(0.3)::text || 'written'", []) }
            }
            #expect(value == "written")
            let setting = try await Self.budget.run { try await db.store.pool.value(prepared: "SELECT current_setting('statement_timeout')", []) }
            #expect(setting == "100ms")
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    @Test func aLeaseWaitingPastItsDeadlineFailsWithPoolBusy() async throws {
        let db = try await TestDatabase.create(maxConnections: 1)
        let release = Mutex(false)
        do {
            // Hold the only connection until told.
            let holder = Task {
                try await db.store.pool.withSession { _ in
                    while !release.withLock({ $0 }) { usleep(5_000) }
                }
            }
            #expect(await eventually { db.store.pool.stats.idle == 0 && db.store.pool.stats.open == 1 })
            let start = ContinuousClock.now
            let error = await #expect(throws: PostgresError.self) {
                try await Self.budget.run { try await db.store.pool.query(prepared: "SELECT 1") }
            }
            let waited = ContinuousClock.now - start
            #expect(error == .poolBusy(waited: .milliseconds(300)))
            #expect(error?.isUnavailable == true)
            #expect(waited >= .milliseconds(300) && waited < .seconds(5))
            #expect(db.store.pool.stats.waiting == 0)
            release.withLock { $0 = true }
            try await holder.value
            // Served normally once the connection is back.
            #expect(try await Self.budget.run { try await db.store.pool.value(prepared: "SELECT 'ok'", []) } == "ok")
        } catch {
            release.withLock { $0 = true }
            await db.drop()
            throw error
        }
        await db.drop()
    }
}
