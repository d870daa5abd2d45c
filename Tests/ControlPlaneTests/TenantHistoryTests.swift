@testable import ControlPlane
import EventStore
import PostgresClient
import Foundation
import RouteModel
import Testing
import TestSupport

/// `TenantHistory` on a real database: resolution of sequences and times, snapshots written as reads fold, and rows
/// that are damaged or of another format ignored (the state is folded from events instead).
@Suite("Tenant history on PostgreSQL", .timeLimit(.minutes(10)))
struct TenantHistoryTests {
    static func withStore(_ body: (EventStore) async throws -> Void) async throws {
        let db = try await TestDatabase.create()
        do { try await body(db.store) } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    /// Appends `events` to `tenant` in batches; returns the snapshots folded after each event (index = sequence - 1).
    static func append(_ events: [RouteEvent], tenant: String, to store: EventStore) async throws -> [TenantSnapshot] {
        var out: [TenantSnapshot] = []
        var live = TenantSnapshot()
        for chunk in stride(from: 0, to: events.count, by: 25).map({ Array(events[$0..<min($0 + 25, events.count)]) }) {
            let news = chunk.map { e -> NewEvent in
                let (type, json) = e.encode()
                return NewEvent(type: type, data: String(decoding: json, as: UTF8.self), metadata: EventMetadata(actor: "test"))
            }
            try await store.append(tenant: tenant, expected: .any, events: news)
            for e in chunk {
                live.apply(e, sequence: live.version + 1)
                out.append(live)
            }
        }
        return out
    }

    static func same(_ a: TenantSnapshot, _ b: TenantSnapshot) -> Bool {
        a.version == b.version && a.state == b.state && a.objectVersions == b.objectVersions
            && a.creationSequences == b.creationSequences && a.peerEnrolledAt == b.peerEnrolledAt
    }

    @Test("as of k equals the fold of events 1...k: from nothing, from snapshots it stored, past damaged and old-format rows")
    func snapshotsWrittenAndUsed() async throws {
        try await Self.withStore { store in
            let events = try HistoryPropertyTests.events(seed: 7, count: 120)
            let truth = try await Self.append(events, tenant: "t1", to: store)
            // Another tenant's events must never leak into t1's history.
            _ = try await Self.append(try HistoryPropertyTests.events(seed: 8, count: 40), tenant: "t2", to: store)
            let history = TenantHistory(store: store, settings: HistorySettings(snapshotInterval: 10))
            let samples: [Int64] = [1, 9, 10, 11, 37, 60, 99, 120]
            for k in samples {
                #expect(Self.same(try await history.snapshot(tenant: "t1", at: k), truth[Int(k) - 1]), "k \(k), first pass")
            }
            let rows = try await store.pool.withSession { try $0.query("SELECT seq FROM tenant_snapshots WHERE tenant_id = 't1' ORDER BY seq") }
            #expect(rows.map { $0.int64("seq") ?? 0 } == Array(stride(from: Int64(10), through: 120, by: 10)))
            // Second pass: served from the stored snapshots.
            for k in samples {
                #expect(Self.same(try await history.snapshot(tenant: "t1", at: k), truth[Int(k) - 1]), "k \(k), from snapshots")
            }
            // A damaged row and a row of a future format are ignored.
            _ = try await store.pool.withSession { s in
                _ = try s.query("UPDATE tenant_snapshots SET body = '{\"format\":1}' WHERE tenant_id = 't1' AND seq = 50")
                _ = try s.query("INSERT INTO tenant_snapshots (tenant_id, format, seq, body) VALUES ('t1', 999, 55, 'not json')")
            }
            for k: Int64 in [50, 55, 59] {
                #expect(Self.same(try await history.snapshot(tenant: "t1", at: k), truth[Int(k) - 1]), "k \(k), past bad rows")
            }
            // The baseline (no snapshots) answers the same.
            let baseline = TenantHistory(store: store, settings: HistorySettings(useSnapshots: false))
            #expect(Self.same(try await baseline.snapshot(tenant: "t1", at: 77), truth[76]))
        }
    }

    /// A snapshot whose stored state was altered is what a read would answer: this is what makes the test above able
    /// to fail when reads do use stored snapshots.
    @Test("a read uses the stored snapshot (an altered one shows)")
    func readsUseStoredSnapshots() async throws {
        try await Self.withStore { store in
            let events = try HistoryPropertyTests.events(seed: 3, count: 30)
            _ = try await Self.append(events, tenant: "t", to: store)
            let history = TenantHistory(store: store, settings: HistorySettings(snapshotInterval: 10))
            _ = try await history.snapshot(tenant: "t", at: 30)
            let found = try await history.nearestStored(tenant: "t", atOrBefore: 20)
            var altered = try #require(found)
            altered.apply(.tenantCreated(TenantCreated(name: "altered")), sequence: 20)
            let body = StoredTenantSnapshot(altered).encoded()
            _ = try await store.pool.withSession { try $0.query("UPDATE tenant_snapshots SET body = $1 WHERE tenant_id = 't' AND seq = 20", [body]) }
            #expect(try await history.snapshot(tenant: "t", at: 21).state.tenantName == "altered")
            #expect(try await history.snapshot(tenant: "t", at: 19).state.tenantName != "altered")
        }
    }

    @Test("as_of resolves sequences 1...head and past times; refuses 0, beyond the head, the future and before the first event")
    func resolution() async throws {
        try await Self.withStore { store in
            let events = try HistoryPropertyTests.events(seed: 5, count: 6)
            _ = try await Self.append(Array(events.prefix(3)), tenant: "t", to: store)
            // A clear gap between the two batches' recording times.
            let between = Date()
            try await Task.sleep(for: .milliseconds(20))
            _ = try await Self.append(Array(events.suffix(3)), tenant: "t", to: store)
            let history = TenantHistory(store: store)
            #expect(try await history.resolve(.sequence(1), tenant: "t") == 1)
            #expect(try await history.resolve(.sequence(6), tenant: "t") == 6)
            #expect(try await history.resolve(.time(Date()), tenant: "t") == 6)
            #expect(try await history.resolve(.time(between), tenant: "t") == 3)
            await #expect(throws: ControlPlaneError.validation(field: "as_of", message: "as_of must be a sequence number of 1 or more, or an RFC 3339 time")) {
                _ = try await history.resolve(.sequence(0), tenant: "t")
            }
            await #expect(throws: ControlPlaneError.validation(field: "as_of", message: "as_of 7 is beyond the tenant's last event (6)")) {
                _ = try await history.resolve(.sequence(7), tenant: "t")
            }
            let future = Date().addingTimeInterval(3600)
            await #expect(throws: ControlPlaneError.validation(field: "to", message: "to \(ISO8601.format(future)) is in the future")) {
                _ = try await history.resolve(.time(future), tenant: "t", field: "to")
            }
            let past = Date(timeIntervalSince1970: 1_000_000_000)
            await #expect(throws: ControlPlaneError.validation(field: "as_of", message: "as_of \(ISO8601.format(past)) is before the tenant's first event")) {
                _ = try await history.resolve(.time(past), tenant: "t")
            }
            // Another tenant's token cannot reach this history: resolution is per tenant.
            await #expect(throws: ControlPlaneError.self) { _ = try await history.resolve(.sequence(1), tenant: "other") }
        }
    }

    @Test("points parse as sequences or RFC 3339 times, nothing else")
    func parsing() {
        #expect(HistoryPoint.parse("42") == .sequence(42))
        #expect(HistoryPoint.parse("2026-12-05T14:02:00Z") == .time(Date(timeIntervalSince1970: 1_796_479_320)))
        #expect(HistoryPoint.parse("2026-12-05T15:02:00+01:00") == .time(Date(timeIntervalSince1970: 1_796_479_320)))
        #expect(HistoryPoint.parse("2026-12-05T14:02:00.250Z") == .time(Date(timeIntervalSince1970: 1_796_479_320.25)))
        #expect(HistoryPoint.parse("yesterday") == nil)
        #expect(HistoryPoint.parse("") == nil)
        #expect(HistoryPoint.parse("12abc") == nil)
    }
}
