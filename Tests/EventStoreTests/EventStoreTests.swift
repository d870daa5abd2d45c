import PostgresClient
@testable import EventStore
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

/// Every test here talks to the real PostgreSQL started by `ops/services`, each in a fresh database.
@Suite("Event store on PostgreSQL", .timeLimit(.minutes(3)))
struct EventStoreTests {
    @Test("8 concurrent writers on one tenant: every sequence number taken once, losers get conflicts, no gaps")
    func concurrentWritersOneTenant() async throws {
        let db = try await TestDatabase.create(maxConnections: 8)
        let target = 240
        let store = db.store
        let results = try await withThrowingTaskGroup(of: (won: [Int64], conflicts: Int).self) { group in
            for writer in 0..<8 {
                group.addTask {
                    var won: [Int64] = []
                    var conflicts = 0
                    while true {
                        let version = try await store.version(tenant: "t1")
                        if version >= Int64(target) { break }
                        do {
                            let seqs = try await store.append(tenant: "t1", expected: .exactly(version),
                                                              events: [event("Written", #"{"writer":\#(writer)}"#)])
                            #expect(seqs == (version + 1)...(version + 1))
                            won.append(seqs.lowerBound)
                        } catch let EventStoreError.conflict(tenant, expected, actual) {
                            #expect(tenant == "t1")
                            #expect(expected == version)
                            #expect(actual > version)
                            conflicts += 1
                        }
                    }
                    return (won, conflicts)
                }
            }
            return try await group.reduce(into: [(won: [Int64], conflicts: Int)]()) { $0.append($1) }
        }
        let allWon = results.flatMap(\.won).sorted()
        let conflicts = results.map(\.conflicts).reduce(0, +)
        #expect(allWon.count >= target)
        #expect(Set(allWon).count == allWon.count, "a sequence number was handed out twice")
        #expect(allWon == Array(1...Int64(allWon.count)), "sequence has a gap")
        #expect(conflicts > 0, "8 writers racing on one tenant should have produced conflicts")
        let stored = try await store.read(tenant: "t1", fromSequence: 1, limit: 10_000)
        #expect(stored.map(\.sequence) == allWon)
        #expect(try await store.version(tenant: "t1") == Int64(allWon.count))
        await db.drop()
    }

    @Test("appendUnderTenantLock: 8 writers in 2 pools read-modify-write one tenant without a conflict; each decision saw every earlier event; a throwing decision appends nothing")
    func lockedReadModifyWrite() async throws {
        let db = try await TestDatabase.create(maxConnections: 4)
        let second = EventStore(url: db.url, maxConnections: 4)
        struct Refused: Error {}
        // Each writer appends the count of events it saw (after its stale starting point) plus that start:
        // under the lock this must equal its own sequence - 1.
        let sequences = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for writer in 0..<8 {
                let store = writer % 2 == 0 ? db.store : second
                group.addTask {
                    var mine: [Int64] = []
                    for i in 0..<25 {
                        let stale = Int64(0)
                        let (range, seen) = try await store.appendUnderTenantLock(tenant: "t", after: stale) { newer -> EventStore.LockedAppend<Int64> in
                            let before = stale + Int64(newer.count)
                            #expect(newer.map(\.sequence) == Array(stride(from: stale + 1, through: before, by: 1)))
                            return .init(events: [event("Counted", #"{"before":\#(before),"writer":\#(writer),"i":\#(i)}"#)], value: before)
                        }
                        let sequence = try #require(range).lowerBound
                        #expect(sequence == seen + 1)
                        mine.append(sequence)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [Int64]()) { $0 += $1 }
        }
        #expect(sequences.sorted() == Array(1...200))
        await #expect(throws: Refused.self) {
            _ = try await db.store.appendUnderTenantLock(tenant: "t", after: 200) { _ -> EventStore.LockedAppend<Int> in throw Refused() }
        }
        let empty = try await db.store.appendUnderTenantLock(tenant: "t", after: 200) { _ in EventStore.LockedAppend<Int>(events: [], value: 7) }
        #expect(empty.sequences == nil && empty.value == 7)
        #expect(try await db.store.version(tenant: "t") == 200)
        await second.shutdown()
        await db.drop()
    }

    @Test("noEvents and exactly(n) expectations, and the conflict names expected and actual")
    func expectedVersions() async throws {
        let db = try await TestDatabase.create()
        let store = db.store
        #expect(try await store.append(tenant: "a", expected: .noEvents, events: [event(), event()]) == 1...2)
        await #expect(throws: EventStoreError.conflict(tenant: "a", expected: 0, actual: 2)) {
            try await store.append(tenant: "a", expected: .noEvents, events: [event()])
        }
        await #expect(throws: EventStoreError.conflict(tenant: "a", expected: 5, actual: 2)) {
            try await store.append(tenant: "a", expected: .exactly(5), events: [event()])
        }
        #expect(try await store.append(tenant: "a", expected: .exactly(2), events: [event()]) == 3...3)
        #expect(try await store.append(tenant: "a", expected: .any, events: [event()]) == 4...4)
        // A failed append left nothing behind.
        #expect(try await store.read(tenant: "a").map(\.sequence) == [1, 2, 3, 4])
        await #expect(throws: EventStoreError.self) {
            try await store.append(tenant: "a", expected: .any, events: [])
        }
        await db.drop()
    }

    @Test("a batch is all or nothing: one invalid JSON value rejects the whole append")
    func batchAtomic() async throws {
        let db = try await TestDatabase.create()
        let store = db.store
        await #expect(throws: EventStoreError.self) {
            try await store.append(tenant: "x", expected: .any, events: [event(), event("Bad", "{not json")])
        }
        #expect(try await store.read(tenant: "x").isEmpty)
        #expect(try await store.version(tenant: "x") == 0)
        await db.drop()
    }

    @Test("re-appending the same event ids (a client retry) writes nothing twice and returns the original sequence")
    func idempotentRetry() async throws {
        let db = try await TestDatabase.create()
        let batch = [event(), event()]
        #expect(try await db.store.append(tenant: "r", expected: .noEvents, events: batch) == 1...2)
        #expect(try await db.store.append(tenant: "r", expected: .noEvents, events: batch) == 1...2)
        #expect(try await db.store.append(tenant: "r", expected: .any, events: batch) == 1...2)
        #expect(try await db.store.read(tenant: "r").count == 2)
        // Reusing one id inside a different batch is refused, not half-applied.
        await #expect(throws: EventStoreError.self) {
            try await db.store.append(tenant: "r", expected: .any, events: [event(), batch[0]])
        }
        #expect(try await db.store.read(tenant: "r").count == 2)
        await db.drop()
    }

    @Test("two tenants append in parallel: a held append on one does not block the other")
    func tenantsDoNotBlockEachOther() async throws {
        let db = try await TestDatabase.create()
        let held = try await db.rawConnection()
        defer { held.close() }
        try await held.withSession { session in
            try session.query("BEGIN")
            try session.query("SELECT append_events('busy', -1, ARRAY[gen_random_uuid()], ARRAY['Held'], ARRAY['{}'::json], ARRAY['{\"actor\":\"t\"}'::jsonb])")
        }
        // Another tenant appends while 'busy' holds its lock.
        let clock = ContinuousClock()
        let elapsed = try await clock.measure {
            try await db.store.append(tenant: "free", expected: .any, events: [event()])
        }
        // Behaviour, not speed: had it waited behind 'busy' it would wait until the COMMIT below, i.e. forever here.
        #expect(elapsed < .seconds(30), "tenant 'free' waited \(elapsed) behind tenant 'busy'")
        // The same tenant does wait: its append completes only after the holder commits.
        let store = db.store
        let sameTenant = Task { try await store.append(tenant: "busy", expected: .any, events: [event()]) }
        try await Task.sleep(for: .milliseconds(300))
        _ = try await held.withSession { try $0.query("COMMIT") }
        #expect(try await sameTenant.value == 2...2)
        await db.drop()
    }

    @Test("an event committed late by a slower transaction is delivered by readAll, in order, exactly once")
    func lateCommitReadAll() async throws {
        let db = try await TestDatabase.create()
        try await db.store.append(tenant: "early", expected: .any, events: [event()])
        // readAll holds back everything behind any running transaction of the cluster (other tests'
        // too), so wait until the committed event is released.
        var delivered = try await readAllEventually(db.store, after: .start, count: 1)
        #expect(delivered.count == 1)

        // A slow transaction takes its position first and holds it...
        let slow = try await db.rawConnection()
        defer { slow.close() }
        try await slow.withSession { session in
            try session.query("BEGIN")
            try session.query("SELECT append_events('slow', -1, ARRAY[gen_random_uuid()], ARRAY['Slow'], ARRAY['{}'::json], ARRAY['{\"actor\":\"t\"}'::jsonb])")
        }
        // ...while a fast one takes a later position and commits.
        try await db.store.append(tenant: "fast", expected: .any, events: [event("Fast")])
        let positions = try await db.store.pool.withSession { try $0.query("SELECT count(*) FROM events") }
        #expect(positions.rows[0][0] == "2", "the slow transaction's row is not visible yet")

        // A reader that ran now and trusted "max position seen" would skip the slow event forever.
        let middle = try await db.store.readAll(after: delivered.last!.globalPosition)
        #expect(middle.isEmpty, "events behind a running transaction must be held back, got \(middle.map(\.type))")
        delivered += middle

        _ = try await slow.withSession { try $0.query("COMMIT") }
        let rest = try await readAllEventually(db.store, after: delivered.last!.globalPosition, count: 2)
        delivered += rest
        #expect(delivered.map(\.tenant) == ["early", "slow", "fast"])
        #expect(Set(delivered.map(\.id)).count == 3)
        // Reading again from the end yields nothing new.
        #expect(try await db.store.readAll(after: delivered.last!.globalPosition).isEmpty)
        await db.drop()
    }

    @Test("subscribe catches up, follows live appends, and delivers a late commit exactly once and in order")
    func subscribeLateCommit() async throws {
        let db = try await TestDatabase.create()
        let store = db.store
        for i in 0..<5 { try await store.append(tenant: "s", expected: .any, events: [event("Before", #"{"i":\#(i)}"#)]) }

        let collector = Task { () -> [RecordedEvent] in
            var seen: [RecordedEvent] = []
            for try await e in store.subscribe(pollInterval: .milliseconds(200)) {
                seen.append(e)
                if seen.count == 5 + 1 + 3 { break }
            }
            return seen
        }
        try await Task.sleep(for: .milliseconds(300))
        let slow = try await db.rawConnection()
        defer { slow.close() }
        try await slow.withSession { session in
            try session.query("BEGIN")
            try session.query("SELECT append_events('late', -1, ARRAY[gen_random_uuid()], ARRAY['Late'], ARRAY['{}'::json], ARRAY['{\"actor\":\"t\"}'::jsonb])")
        }
        for i in 0..<3 { try await store.append(tenant: "live", expected: .any, events: [event("Live", #"{"i":\#(i)}"#)]) }
        try await Task.sleep(for: .milliseconds(500))
        _ = try await slow.withSession { try $0.query("COMMIT") }

        let seen = try await withTimeout(.seconds(10)) { try await collector.value }
        #expect(seen.map(\.type) == Array(repeating: "Before", count: 5) + ["Late"] + Array(repeating: "Live", count: 3))
        #expect(Set(seen.map(\.id)).count == seen.count)
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.globalPosition < $1.globalPosition })
        await db.drop()
    }

    @Test("quotes, semicolons, unicode and 1 MB of JSON round-trip unchanged")
    func roundTrip() async throws {
        let db = try await TestDatabase.create()
        let tricky = #"{"q":"it's \"quoted\"; DROP TABLE events; --","u":"Zürich 東京 🛰️ e\u0301 \\ back\\slash","arr":[1,2.5,-3e10,true,null]}"#
        var big = #"{"items":["#
        var i = 0
        while big.utf8.count < 1_048_576 {
            if i > 0 { big += "," }
            big += #"{"id":\#(i),"name":"peer-\#(i) ✓ 'x';","cidr":"10.\#(i % 256).0.0/16"}"#
            i += 1
        }
        big += "]}"
        let metadata = EventMetadata(actor: "o'brien; \"admin\" 🧑‍💻", requestID: "req;'1'\n\t\u{01}", correlationID: "c\\1")
        let events = [NewEvent(type: "Tricky'Type;", data: tricky, metadata: metadata), NewEvent(type: "Big", data: big, metadata: metadata)]
        try await db.store.append(tenant: "tenant 'ü'; --", expected: .noEvents, events: events)
        let back = try await db.store.read(tenant: "tenant 'ü'; --")
        #expect(back.count == 2)
        #expect(back[0].data == tricky)
        #expect(back[0].type == "Tricky'Type;")
        #expect(back[0].metadata == metadata)
        #expect(back[1].data.utf8.count == big.utf8.count)
        #expect(back[1].data == big)
        #expect(back.map(\.id) == events.map(\.id))
        await db.drop()
    }

    @Test("migrate twice and concurrently is harmless; a changed applied migration is refused")
    func migrations() async throws {
        let db = try await TestDatabase.create(migrate: false)
        let files = try Migrator.load(directory: TestDatabase.migrationsDirectory)
        let other = EventStore(url: db.url, maxConnections: 1)
        async let first = Migrator(store: db.store).migrate(files)
        async let second = Migrator(store: other).migrate(files)
        let outcomes = try await [first, second]
        await other.shutdown()
        let applied = outcomes.flatMap { $0 }.filter { if case .applied = $0 { true } else { false } }
        #expect(applied.count == files.count, "each migration applied exactly once across both runs")
        let again = try await Migrator(store: db.store).migrate(files)
        #expect(again.allSatisfy { if case .alreadyApplied = $0 { true } else { false } })
        let recorded = try await db.store.pool.withSession { try $0.query("SELECT count(*) FROM schema_migrations") }
        #expect(recorded.rows[0][0] == String(files.count))

        var changed = files
        changed[0].sql += "\n-- edited after apply\n"
        await #expect(throws: Migrator.MigrationError.changedAfterApply(version: changed[0].version, name: changed[0].name)) {
            try await Migrator(store: db.store).migrate(changed)
        }
        await db.drop()
    }

    @Test("a PostgreSQL restart during appends: the pool recovers, no event lost or duplicated")
    func restartDuringAppends() async throws {
        // A server of its own: restarting the shared one would disturb tests running in parallel.
        let server = try await PrivatePostgres.start(name: "restart-test", port: 25442)
        let db = try await TestDatabase.create(maxConnections: 4, server: server.url)
        // The writers' store counts the appends it retried itself after a lost connection (its warning), so the test
        // can tell that the restart hit appends even when every retry succeeded inside the store.
        let retriedInside = RetryCounter()
        let store = EventStore(url: db.url, maxConnections: 4, logger: Logger(label: "restart-test") { _ in RetryCountingHandler(counter: retriedInside) })
        let stop = Deadline(after: .seconds(90))
        // Writers keep appending — at least 150 each, and on until the restart is over, so the restart always falls
        // amid appends; an append that fails because the database is gone is retried with the same event ids until
        // it is acknowledged, exactly as a careful client would.
        let restarted = RestartFlag()
        let failedToWriters = RetryCounter()
        let writers = (0..<3).map { w in
            Task { () -> (acknowledged: [UUID], failures: Int, attempts: [Range<ContinuousClock.Instant>]) in
                var acknowledged: [UUID] = []
                var failures = 0
                var attempts: [Range<ContinuousClock.Instant>] = []
                var n = 0
                while (n < 150 || !restarted.done.load(ordering: .acquiring)) && !stop.passed {
                    let batch = [event("W", #"{"w":\#(w),"n":\#(n)}"#)]
                    while !stop.passed {
                        let began = ContinuousClock.now
                        do {
                            try await store.append(tenant: "w\(w)", expected: .any, events: batch)
                            attempts.append(began..<ContinuousClock.now)
                            acknowledged.append(batch[0].id)
                            break
                        } catch let error as EventStoreError where error.isUnavailable {
                            attempts.append(began..<ContinuousClock.now)
                            failures += 1
                            failedToWriters.value.add(1, ordering: .relaxed)
                            try await Task.sleep(for: .milliseconds(100))
                        }
                    }
                    n += 1
                    try await Task.sleep(for: .milliseconds(5))
                }
                return (acknowledged, failures, attempts)
            }
        }
        // The restart starts once every writer has appended (not after a guessed delay).
        #expect(try await eventually(timeout: .seconds(30)) {
            for w in 0..<3 where try await store.read(tenant: "w\(w)", limit: 1).isEmpty { return false }
            return true
        }, "the writers did not start appending")
        // Stop, and start again only once the restart has hit appends (one failed to its writer or was retried inside
        // the store): the scenario is made to happen, not hoped for.
        let restartBegan = ContinuousClock.now
        try await server.stop()
        let hit = try await eventually(timeout: .seconds(60)) {
            failedToWriters.value.load(ordering: .relaxed) + retriedInside.value.load(ordering: .relaxed) > 0
        }
        try await server.restart()
        let restartEnded = ContinuousClock.now
        #expect(hit, "no append failed or was retried while the server was down")
        restarted.done.store(true, ordering: .releasing)
        var acknowledged: [UUID] = []
        var failures = 0
        var attempts: [Range<ContinuousClock.Instant>] = []
        for writer in writers {
            let r = try await writer.value
            acknowledged += r.acknowledged
            failures += r.failures
            attempts += r.attempts
        }
        #expect(acknowledged.count >= 3 * 150, "writers did not finish within the deadline")
        // The scenario happened: appends were under way while the server was down. Each either failed (surfaced to
        // its writer, who retried it), was retried by the store after its connection was lost, or waited in the pool
        // for a new connection until the server was back; all were acknowledged in the end (checked below).
        let retried = retriedInside.value.load(ordering: .relaxed)
        let duringRestart = attempts.filter { $0.lowerBound < restartEnded && $0.upperBound > restartBegan }
        let heldAcross = duringRestart.filter { $0.lowerBound <= restartBegan && $0.upperBound >= restartEnded }.count
        print("restart during appends: \(attempts.count) attempts, \(duringRestart.count) under way during the restart "
              + "(\(heldAcross) held across it), \(failures) failed to their writer, \(retried) retried inside the store")
        #expect(!duringRestart.isEmpty, "no append was under way while the server restarted")
        #expect(failures + retried > 0, "no append failed: the restart did not fall amid the appends")
        var stored: [RecordedEvent] = []
        for w in 0..<3 {
            let events = try await store.read(tenant: "w\(w)", limit: 10_000)
            #expect(events.map(\.sequence) == Array(1...Int64(events.count)), "gap in tenant w\(w)")
            stored += events
        }
        #expect(Set(stored.map(\.id)) == Set(acknowledged), "stored events differ from acknowledged ones")
        #expect(stored.count == acknowledged.count, "an event was stored twice")
        // The pool works normally afterwards.
        #expect(try await store.append(tenant: "after", expected: .noEvents, events: [event()]) == 1...1)
        print("restart test: \(acknowledged.count) appends acknowledged, \(failures) failed attempts retried by the writers and \(retried) by the store during the restart")
        await store.shutdown()
        await db.drop()
        try await server.stop()
    }
}

/// readAll until `count` events came back (or 10 s passed): events wait while older transactions run.
func readAllEventually(_ store: EventStore, after: GlobalPosition, count: Int) async throws -> [RecordedEvent] {
    let deadline = Deadline(after: .seconds(10))
    var events: [RecordedEvent] = []
    while events.count < count && !deadline.passed {
        events += try await store.readAll(after: events.last?.globalPosition ?? after)
        if events.count < count { try await Task.sleep(for: .milliseconds(20)) }
    }
    return events
}

struct Deadline: Sendable {
    let instant: ContinuousClock.Instant
    init(after duration: Duration) { instant = .now + duration }
    var passed: Bool { ContinuousClock.now >= instant }
}

struct TimeoutError: Error {}

func withTimeout<T: Sendable>(_ duration: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask { try await Task.sleep(for: duration); throw TimeoutError() }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
}

/// Appends the store retried after a lost connection (its "retrying append after lost connection" warning).
private final class RetryCounter: Sendable {
    let value = Atomic<Int>(0)
}

private struct RetryCountingHandler: LogHandler {
    let counter: RetryCounter
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        if message.description.hasPrefix("retrying append") { counter.value.add(1, ordering: .relaxed) }
    }
}

/// Set once the restart is over (shared by the writer tasks).
private final class RestartFlag: Sendable {
    let done = Atomic<Bool>(false)
}
