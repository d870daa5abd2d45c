import Foundation
import PostgresClient
import EventStore
import Logging
import RouteModel
import Synchronization

/// Who caused a change, carried into every event's metadata.
public struct Actor: Sendable, Equatable {
    /// "token:<id>", "setup_key:<id>", "peer:<id>", "cli".
    public var id: String
    public var name: String?
    public init(id: String, name: String? = nil) {
        self.id = id
        self.name = name
    }
}

/// The outcome of a write: the tenant after it, and the sequence numbers it took (nil when the
/// command changed nothing).
public struct WriteResult: Sendable {
    public var snapshot: TenantSnapshot
    public var events: [RouteEvent]
    public var sequences: ClosedRange<Int64>?
}

/// Decide-then-append: the command is decided against the tenant's latest snapshot and appended expecting
/// exactly that version (one round trip). If another writer (another controller) got in between, it is
/// decided again inside a transaction that holds the tenant's append lock, against the state it will land
/// on, so it never applies to a state it was not checked against and never fails twice. `If-Match` is
/// checked on each attempt against the object's current version.
public struct CommandWriter: Sendable {
    let store: EventStore
    let cache: TenantCache
    let logger: Logger
    /// Writers of one tenant in this process take turns (a queue, not a conflict storm); writers in other
    /// controllers are still caught by the append's expected-version check and decided again.
    let turns = TenantTurns()
    /// Tenants written by other controllers lately (see `write`).
    let contention = TenantContention()
    /// Tenants whose cached snapshot was found behind lately (see `writeOnCachedSnapshot`).
    let staleCache = TenantContention()
    /// Every write is refused when it grows a kind past its quota, on the state it lands on (see `withAllGroup`).
    let quotas: TenantQuotas?

    public init(store: EventStore, cache: TenantCache, logger: Logger, quotas: TenantQuotas? = nil) {
        self.store = store
        self.cache = cache
        self.logger = logger
        self.quotas = quotas
    }

    public func write(
        tenant: String, actor: Actor, requestID: String,
        ifMatch: (object: ObjectRef, version: Int64)? = nil,
        decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent],
        sideStatements: @escaping @Sendable ([RouteEvent]) -> [EventStore.SideStatement] = { _ in [] },
        finish: Finish? = nil
    ) async throws -> WriteResult {
        try await turns.wait(tenant)
        defer { turns.done(tenant) }
        let decide = Self.withAllGroup(decide, quotas: quotas)
        // A tenant that saw a conflict lately (writers in other controllers) is written under its lock: writers
        // queue in PostgreSQL instead of deciding, failing and deciding again (measured with `bench scaleout`).
        if contention.isContended(tenant) {
            return try await writeUnderLock(tenant: tenant, actor: actor, requestID: requestID, ifMatch: ifMatch,
                                            decide: decide, sideStatements: sideStatements, finish: finish)
        }
        if !staleCache.isContended(tenant), let cached = cache.cached(tenant),
           let result = try await writeOnCachedSnapshot(cached, tenant: tenant, actor: actor, requestID: requestID, ifMatch: ifMatch,
                                                        decide: decide, sideStatements: sideStatements, finish: finish) {
            return result
        }
        var snapshot = try await cache.current(tenant)
        try Self.check(ifMatch, snapshot)
        let events = try decide(snapshot)
        if events.isEmpty { return WriteResult(snapshot: snapshot, events: [], sequences: nil) }
        let expected: ExpectedVersion = snapshot.version == 0 ? .noEvents : .exactly(snapshot.version)
        do {
            let sequences = try await store.append(tenant: tenant, expected: expected,
                                                   events: Self.newEvents(events, actor: actor, requestID: requestID),
                                                   with: sideStatements(events) + Self.finishing(finish, snapshot, events))
            for (event, sequence) in zip(events, sequences) { snapshot.apply(event, sequence: sequence) }
            cache.remember(tenant, snapshot)
            return WriteResult(snapshot: snapshot, events: events, sequences: sequences)
        } catch EventStoreError.conflict(_, let expectedVersion, let actual) {
            // Another controller appended in between: decide again, this time under the tenant's lock (cannot conflict).
            contention.noteConflict(tenant)
            logger.debug("write conflict; deciding again under the tenant lock",
                         metadata: ["tenant": "\(tenant)", "expected": "\(expectedVersion)", "actual": "\(actual)", "request_id": "\(requestID)"])
            return try await writeUnderLock(tenant: tenant, actor: actor, requestID: requestID, ifMatch: ifMatch,
                                            decide: decide, sideStatements: sideStatements, finish: finish)
        }
    }

    /// The write decided on the cached snapshot without catching it up first (one query less per write; writes of a
    /// tenant served by one controller find the cache current): the append expects exactly the cached version, so it
    /// lands only on the state it was decided against. Nil — take the ordinary path (catch up, decide again) — when
    /// another controller appended since (the append conflicts; the tenant then skips this path for a while), and when
    /// the decision on the cached snapshot refuses, does nothing or fails `If-Match`: a snapshot that may be behind is
    /// trusted only for a write PostgreSQL confirms, never for an answer that is not a write.
    func writeOnCachedSnapshot(
        _ cached: TenantSnapshot, tenant: String, actor: Actor, requestID: String,
        ifMatch: (object: ObjectRef, version: Int64)?,
        decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent],
        sideStatements: @escaping @Sendable ([RouteEvent]) -> [EventStore.SideStatement],
        finish: Finish?
    ) async throws -> WriteResult? {
        guard cached.version > 0, (try? Self.check(ifMatch, cached)) != nil,
              let events = try? decide(cached), !events.isEmpty,
              let finishing = try? Self.finishing(finish, cached, events) else { return nil }
        var snapshot = cached
        do {
            let sequences = try await store.append(tenant: tenant, expected: .exactly(cached.version),
                                                   events: Self.newEvents(events, actor: actor, requestID: requestID),
                                                   with: sideStatements(events) + finishing)
            for (event, sequence) in zip(events, sequences) { snapshot.apply(event, sequence: sequence) }
            cache.remember(tenant, snapshot)
            return WriteResult(snapshot: snapshot, events: events, sequences: sequences)
        } catch EventStoreError.conflict(_, let expectedVersion, let actual) {
            staleCache.noteConflict(tenant)
            logger.debug("cached snapshot was behind; catching up and deciding again",
                         metadata: ["tenant": "\(tenant)", "expected": "\(expectedVersion)", "actual": "\(actual)", "request_id": "\(requestID)"])
            return nil
        }
    }

    /// Statements that join the append's transaction and need the write's outcome (the idempotency record and its
    /// answer): given the result the append will produce — the snapshot after the events, numbered from the version
    /// they are appended at (`append_events` checks that exact version, so the numbers cannot differ).
    public typealias Finish = @Sendable (WriteResult) throws -> [EventStore.SideStatement]

    static func finishing(_ finish: Finish?, _ before: TenantSnapshot, _ events: [RouteEvent]) throws -> [EventStore.SideStatement] {
        guard let finish, !events.isEmpty else { return [] }
        var after = before
        let sequences = (before.version + 1)...(before.version + Int64(events.count))
        for (event, sequence) in zip(events, sequences) { after.apply(event, sequence: sequence) }
        return try finish(WriteResult(snapshot: after, events: events, sequences: sequences))
    }

    /// The write decided and appended in one transaction holding the tenant's append lock
    /// (`EventStore.appendUnderTenantLock`): the state it is decided against is the state it lands on.
    func writeUnderLock(
        tenant: String, actor: Actor, requestID: String,
        ifMatch: (object: ObjectRef, version: Int64)?,
        decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent],
        sideStatements: @escaping @Sendable ([RouteEvent]) -> [EventStore.SideStatement],
        finish: Finish? = nil
    ) async throws -> WriteResult {
        // Catch up outside the lock, so the lock is held only for what was appended since.
        let base = try await cache.current(tenant)
        let ifMatchValue = ifMatch.map { IfMatch(object: $0.object, version: $0.version) }
        let (sequences, decided) = try await store.appendUnderTenantLock(tenant: tenant, after: base.version) { newer in
            var snapshot = base
            for recorded in newer {
                snapshot.apply(try TenantCache.decode(recorded, tenant: tenant), sequence: recorded.sequence)
            }
            try Self.check(ifMatchValue.map { ($0.object, $0.version) }, snapshot)
            let events = try decide(snapshot)
            return EventStore.LockedAppend(events: Self.newEvents(events, actor: actor, requestID: requestID),
                                           statements: events.isEmpty ? [] : sideStatements(events) + (try Self.finishing(finish, snapshot, events)),
                                           value: Decided(snapshot: snapshot, events: events))
        }
        var snapshot = decided.snapshot
        if let sequences {
            for (event, sequence) in zip(decided.events, sequences) { snapshot.apply(event, sequence: sequence) }
        }
        cache.remember(tenant, snapshot)
        return WriteResult(snapshot: snapshot, events: sequences == nil ? [] : decided.events, sequences: sequences)
    }

    /// `decide`, followed by the events that give the tenant its built-in "All" group with every peer when it
    /// lacks it: a new tenant (its `TenantCreated`) or one created before the group existed (its next write), in
    /// the same append. Nothing when the group is there and complete, which is every other write.
    /// With `quotas`, the decided events are first held against the tenant's quotas (the repair itself is not counted).
    static func withAllGroup(_ decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent],
                             quotas: TenantQuotas? = nil) -> @Sendable (TenantSnapshot) throws -> [RouteEvent] {
        { snapshot in
            let events = try decide(snapshot)
            let after = evolve(snapshot.state, events)
            if let quotas, !events.isEmpty { try quotas.check(before: snapshot.state, after: after) }
            return events + after.allGroupRepair(newID: GroupID(Secrets.id()))
        }
    }

    private struct IfMatch: Sendable {
        var object: ObjectRef
        var version: Int64
    }

    private struct Decided: Sendable {
        var snapshot: TenantSnapshot
        var events: [RouteEvent]
    }

    /// `If-Match` against the object's version in `snapshot`: `versionMismatch` when it moved on.
    static func check(_ ifMatch: (object: ObjectRef, version: Int64)?, _ snapshot: TenantSnapshot) throws(ControlPlaneError) {
        guard let ifMatch else { return }
        let current = snapshot.version(of: ifMatch.object)
        if current != ifMatch.version {
            throw .versionMismatch(object: ifMatch.object, current: current, expected: ifMatch.version)
        }
    }

    static func newEvents(_ events: [RouteEvent], actor: Actor, requestID: String) -> [NewEvent] {
        events.map { event in
            let (type, json) = event.encode()
            return NewEvent(type: type, data: String(decoding: json, as: UTF8.self),
                            metadata: EventMetadata(actor: actor.id, requestID: requestID, actorName: actor.name,
                                                    target: event.target.id.isEmpty ? nil : event.target.id))
        }
    }
}

/// Tenants that saw a write conflict in the last `window`: their writes go straight to the locked path.
final class TenantContention: Sendable {
    private let lastConflict = Mutex<[String: ContinuousClock.Instant]>([:])
    let window: Duration

    init(window: Duration = .seconds(2)) { self.window = window }

    func noteConflict(_ tenant: String) {
        let now = ContinuousClock.now
        lastConflict.withLock { all in
            all[tenant] = now
            if all.count > 10_000 { all = all.filter { now - $0.value < self.window } }
        }
    }

    func isContended(_ tenant: String) -> Bool {
        guard let last = lastConflict.withLock({ $0[tenant] }) else { return false }
        return ContinuousClock.now - last < window
    }
}

/// A FIFO turn per tenant: one writer at a time, the others wait in order (cancellation leaves the queue).
final class TenantTurns: Sendable {
    private struct Queue {
        var busy = false
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    }
    private let state = Mutex<(queues: [String: Queue], nextID: UInt64)>(([:], 0))

    func wait(_ tenant: String) async throws {
        let id = state.withLock { s -> UInt64 in s.nextID += 1; return s.nextID }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let proceed = state.withLock { s -> Bool in
                    var q = s.queues[tenant] ?? Queue()
                    defer { s.queues[tenant] = q }
                    if !q.busy {
                        q.busy = true
                        return true
                    }
                    q.waiters.append((id, continuation))
                    return false
                }
                if proceed { continuation.resume() }
            }
        } onCancel: {
            let removed = state.withLock { s -> CheckedContinuation<Void, any Error>? in
                guard var q = s.queues[tenant], let i = q.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                let c = q.waiters.remove(at: i).continuation
                s.queues[tenant] = q
                return c
            }
            removed?.resume(throwing: CancellationError())
        }
    }

    func done(_ tenant: String) {
        let next = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            guard var q = s.queues[tenant] else { return nil }
            if q.waiters.isEmpty {
                s.queues[tenant] = nil
                return nil
            }
            let c = q.waiters.removeFirst().continuation
            s.queues[tenant] = q
            return c
        }
        next?.resume()
    }
}
