import ControlPlane
import EventStore
import Foundation
@testable import HTTPAPI
import HTTPTypes
import PostgresClient
import Synchronization
import Testing
import TestSupport

/// Statement timeouts, the pool's lease deadline, the audit search's bounds and the list bounds, over real HTTP and a
/// real PostgreSQL. Slow statements are made by locks held from a connection of the test's own (a blocked statement is
/// cut by `statement_timeout` like a slow one), so nothing depends on the machine's speed.
@Suite("Database limits of API requests", .serialized, .timeLimit(.minutes(3)))
struct DatabaseLimitsTests {
    static func limits(read: Duration = .seconds(5), write: Duration = .seconds(15), lease: Duration = .seconds(2),
                       search: Duration = .seconds(3), perTenant: Int = 2) -> DatabaseLimits {
        var l = DatabaseLimits()
        l.statementTimeout = read
        l.writeStatementTimeout = write
        l.leaseDeadline = lease
        l.searchTimeout = search
        l.searchesPerTenant = perTenant
        return l
    }

    /// Nothing of the database's own words reaches a client.
    static func expectNoInternals(_ reply: Reply, sourceLocation: SourceLocation = #_sourceLocation) {
        for word in ["canceling", "statement timeout", "postgres", "57014", "pg_", "SELECT", "127.0.0.1"] {
            #expect(!reply.text.contains(word), "\(reply.text)", sourceLocation: sourceLocation)
        }
    }

    @Test func aReadCutByTheStatementTimeoutAnswers503WithRetryAfter() async throws {
        try await LiveAPI.run(limits: Self.limits(read: .milliseconds(300))) { api in
            let (_, token) = try await api.tenant("slow")
            #expect(try await api.send(.get, "/api/routes", token: token).status == 200)
            // Reading the tenant's events now waits on the lock until the read limit cuts it.
            let lock = try await HeldLock.hold(api.db, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            let start = ContinuousClock.now
            let r = try await api.send(.get, "/api/routes", token: token)
            let took = ContinuousClock.now - start
            await lock.release()
            #expect(r.status == 503, "\(r.text)")
            #expect(r.headers[retryAfterField] == "2")
            #expect(r.message == "the database took longer than this controller allows for one request; retry shortly")
            #expect(took >= .milliseconds(300) && took < .seconds(4))
            Self.expectNoInternals(r)
            #expect(try await api.send(.get, "/api/routes", token: token).status == 200)
        }
    }

    @Test func anAppendWaitingLongerThanTheReadLimitIsNotCut() async throws {
        try await LiveAPI.run(limits: Self.limits(read: .milliseconds(200), write: .seconds(20))) { api in
            let (tenant, token) = try await api.tenant("writer")
            // The tenant's append lock (the one append_events takes), held for longer than the read limit.
            let lock = try await HeldLock.hold(api.db, "SELECT pg_advisory_xact_lock(hashtextextended('routeplane.tenant:' || $1, 0))", [tenant])
            let releaser = Task {
                try await Task.sleep(for: .milliseconds(800))
                await lock.release()
            }
            let r = try await api.send(.post, "/api/groups", token: token, json: ["name": "made-while-locked"])
            try await releaser.value
            #expect(r.status == 200 || r.status == 201, "\(r.status) \(r.text)")
        }
    }

    @Test func waitingForAPoolConnectionPastTheDeadlineAnswers503WithRetryAfter() async throws {
        try await LiveAPI.run(limits: Self.limits(lease: .milliseconds(300)), maxConnections: 1) { api in
            let (_, token) = try await api.tenant("busy")
            #expect(try await api.send(.get, "/api/routes", token: token).status == 200)
            // The test holds the pool's only connection.
            let release = ReleaseFlag()
            let holder = Task {
                try await api.db.store.pool.withSession { _ in
                    while !release.isSet { usleep(5_000) }
                }
            }
            #expect(await eventually { api.db.store.pool.stats.idle == 0 && api.db.store.pool.stats.open == 1 })
            let start = ContinuousClock.now
            let r = try await api.send(.get, "/api/routes", token: token)
            let took = ContinuousClock.now - start
            release.set()
            try await holder.value
            #expect(r.status == 503, "\(r.text)")
            #expect(r.headers[retryAfterField] == "1")
            #expect(r.message == "the controller is busy; retry shortly")
            #expect(took >= .milliseconds(300) && took < .seconds(4))
            Self.expectNoInternals(r)
            #expect(try await api.send(.get, "/api/routes", token: token).status == 200)
        }
    }

    @Test func aSearchCutByItsOwnTimeoutAnswers503NamingSearch() async throws {
        try await LiveAPI.run(limits: Self.limits(read: .seconds(10), search: .milliseconds(300))) { api in
            let (_, token) = try await api.tenant("searcher")
            #expect(try await api.send(.get, "/api/events/audit?search=searcher", token: token).status == 200)
            let lock = try await HeldLock.hold(api.db, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            let start = ContinuousClock.now
            let r = try await api.send(.get, "/api/events/audit?search=searcher", token: token)
            let took = ContinuousClock.now - start
            await lock.release()
            #expect(r.status == 503, "\(r.text)")
            #expect(r.object["field"] as? String == "search")
            #expect(r.headers[retryAfterField] == "5")
            #expect(r.message.hasPrefix("the search ran longer than"))
            // Cut at the search's limit, not at the (longer) read limit.
            #expect(took >= .milliseconds(300) && took < .seconds(5))
            Self.expectNoInternals(r)
        }
    }

    @Test func searchesBeyondTheTenantsShareAnswer429NamingSearch() async throws {
        try await LiveAPI.run(limits: Self.limits(search: .seconds(20), perTenant: 1)) { api in
            let (_, token) = try await api.tenant("many")
            let (_, otherToken) = try await api.tenant("other")
            let lock = try await HeldLock.hold(api.db, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            let first = Task { try await api.sendOnOwnConnection(.get, "/api/events/audit?search=many", token: token, body: nil) }
            // The first search is under way (blocked on the lock) once PostgreSQL shows it waiting.
            #expect(try await eventually {
                try await api.db.store.pool.value(prepared: "SELECT count(*)::text FROM pg_stat_activity WHERE query LIKE '%ILIKE%' AND wait_event_type = 'Lock' AND query NOT LIKE '%pg_stat_activity%'", []) == "1"
            })
            let second = try await api.sendOnOwnConnection(.get, "/api/events/audit?search=many", token: token, body: nil)
            #expect(second.status == 429, "\(second.text)")
            #expect(second.object["field"] as? String == "search")
            #expect(second.headers[retryAfterField] == "1")
            // Another tenant is not refused for this tenant's searches (its own list is not a search at all).
            let otherList = Task { try await api.sendOnOwnConnection(.get, "/api/events/audit", token: otherToken, body: nil) }
            await lock.release()
            #expect(try await first.value.status == 200)
            #expect(try await otherList.value.status == 200)
            // The share is given back when a search ends.
            #expect(try await api.send(.get, "/api/events/audit?search=many", token: token).status == 200)
        }
    }

    @Test func aSearchIsServedByTheTrigramIndex() async throws {
        try await LiveAPI.run(limits: Self.limits()) { api in
            let (tenant, token) = try await api.tenant("indexed")
            _ = try await api.renamedGroup(token, name: "office")
            try await api.bulkGroupRenames(tenant: tenant, name: "office", count: 20_000)
            let query = try AuditQuery { ["search": "office-12345"][$0] }
            let plan = try await api.controller.controlPlane.explainAudit(tenant: tenant, query)
            #expect(plan.contains("events_data_trgm"), "\(plan)")
            let r = try await api.send(.get, "/api/events/audit?search=office-12345", token: token)
            #expect(r.status == 200)
            #expect(r.array.count == 1)
            #expect((r.array.first?["meta"] as? [String: String])?["new_name"] == "office-12345")
        }
    }

    @Test func searchTextIsBoundedAndTenantsSeeOnlyTheirOwnMatches() async throws {
        try await LiveAPI.run(limits: Self.limits()) { api in
            let (_, token) = try await api.tenant("alpha")
            let (_, otherToken) = try await api.tenant("beta")
            _ = try await api.renamedGroup(token, name: "alpha-secret-name")
            for short in ["ab", "é"] {
                let r = try await api.send(.get, "/api/events/audit?search=\(short.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)", token: token)
                #expect(r.status == 422, "\(r.text)")
                #expect(r.object["field"] as? String == "search")
                #expect(r.message == "search must be at least 3 characters")
            }
            let long = String(repeating: "x", count: 201)
            #expect(try await api.send(.get, "/api/events/audit?search=\(long)", token: token).status == 422)
            #expect(try await api.send(.get, "/api/events/audit?search=secret-name", token: token).array.count >= 1)
            #expect(try await api.send(.get, "/api/events/audit?search=secret-name", token: otherToken).array.isEmpty)
            #expect(try await api.send(.get, "/api/events/audit?search=secret-name").status == 401)
        }
    }

    @Test func listsAreBoundedAtNetBirdsLimits() async throws {
        try await LiveAPI.run(limits: Self.limits()) { api in
            let (tenant, token) = try await api.tenant("long-history")
            _ = try await api.renamedGroup(token, name: "hq")
            try await api.bulkGroupRenames(tenant: tenant, name: "hq", count: 10_050)
            // NetBird's GET /api/events: the newest 10,000 entries, no more.
            let all = try await api.send(.get, "/api/events", token: token)
            #expect(all.status == 200)
            #expect(all.array.count == 10_000)
            #expect((all.array.first?["meta"] as? [String: String])?["new_name"] == "hq-10050")
            // The filtered log: pages of at most 1,000.
            let over = try await api.send(.get, "/api/events/audit?limit=1001", token: token)
            #expect(over.status == 422 && over.object["field"] as? String == "limit", "\(over.text)")
            let page = try await api.send(.get, "/api/events/audit?limit=1000", token: token)
            #expect(page.array.count == 1000)
            #expect(page.headers[HTTPField.Name("X-Next-Cursor")!] != nil)
            #expect(try await api.send(.get, "/api/events/audit", token: token).array.count == 100)
        }
    }

    @Test func searchAdmissionCountsPerTenantAndInTotal() {
        var a = SearchAdmission(perTenant: 2, total: 3)
        #expect(a.admit("t1") == nil && a.admit("t1") == nil)
        #expect(a.admit("t1") == .tenantBusy)          // the tenant's share
        #expect(a.admit("t2") == nil)
        #expect(a.admit("t3") == .processBusy)         // the process's share
        a.finished("t1")
        #expect(a.admit("t3") == nil)
        #expect(a.admit("t1") == .processBusy)
        a.finished("t2"); a.finished("t3"); a.finished("t1")
        #expect(a.runningTotal == 0 && a.running.isEmpty)
        a.finished("t9")                               // a search that never started changes nothing
        #expect(a.runningTotal == 0)
    }
}

/// A flag a test sets to let a blocked connection go.
final class ReleaseFlag: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}

private let retryAfterField = HTTPField.Name("Retry-After")!
