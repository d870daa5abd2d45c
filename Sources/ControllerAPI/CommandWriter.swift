import Foundation
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

/// Decide-then-append with optimistic concurrency: the command is decided against the tenant's
/// latest snapshot and appended expecting exactly that version; if another writer got in between,
/// it is decided again against the new state (so it never applies to a state it was not checked
/// against). `If-Match` is checked on each attempt against the object's current version.
public struct CommandWriter: Sendable {
    let store: EventStore
    let cache: TenantCache
    let logger: Logger
    /// Writers of one tenant in this process take turns (a queue, not a conflict storm); writers in other
    /// controllers are still caught by the append's expected-version check and decided again.
    let turns = TenantTurns()
    /// Attempts before answering 409 under heavy contention on one tenant.
    var maxAttempts = 12

    public init(store: EventStore, cache: TenantCache, logger: Logger) {
        self.store = store
        self.cache = cache
        self.logger = logger
    }

    public func write(
        tenant: String, actor: Actor, requestID: String,
        ifMatch: (object: ObjectRef, version: Int64)? = nil,
        decide: @Sendable (TenantSnapshot) throws -> [RouteEvent],
        sideStatements: @Sendable ([RouteEvent]) -> [EventStore.SideStatement] = { _ in [] }
    ) async throws -> WriteResult {
        try await turns.wait(tenant)
        defer { turns.done(tenant) }
        var attempt = 0
        while true {
            attempt += 1
            var snapshot = try await cache.current(tenant)
            if let ifMatch {
                let current = snapshot.version(of: ifMatch.object)
                if current != ifMatch.version {
                    throw APIError(.preconditionFailed,
                                   "precondition failed: \(ifMatch.object) is at version \(current.map(String.init) ?? "none"), If-Match gave \(ifMatch.version)",
                                   field: "If-Match")
                }
            }
            let events = try decide(snapshot)
            if events.isEmpty { return WriteResult(snapshot: snapshot, events: [], sequences: nil) }
            let newEvents = events.map { event in
                let (type, json) = event.encode()
                return NewEvent(type: type, data: String(decoding: json, as: UTF8.self),
                                metadata: EventMetadata(actor: actor.id, requestID: requestID, actorName: actor.name,
                                                        target: event.target.id.isEmpty ? nil : event.target.id))
            }
            let expected: ExpectedVersion = snapshot.version == 0 ? .noEvents : .exactly(snapshot.version)
            do {
                let sequences = try await store.append(tenant: tenant, expected: expected, events: newEvents, with: sideStatements(events))
                for (event, sequence) in zip(events, sequences) { snapshot.apply(event, sequence: sequence) }
                cache.remember(tenant, snapshot)
                return WriteResult(snapshot: snapshot, events: events, sequences: sequences)
            } catch EventStoreError.conflict(_, let expectedVersion, let actual) {
                if attempt >= maxAttempts {
                    logger.warning("write gave up after conflicts", metadata: ["tenant": "\(tenant)", "attempts": "\(attempt)", "request_id": "\(requestID)"])
                    throw APIError(.conflict, "tenant \(tenant) changed concurrently \(attempt) times (expected version \(expectedVersion), found \(actual)); retry the request")
                }
                if attempt > 2 { try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 * attempt)))) }
            }
        }
    }
}

extension APIError {
    /// Maps any error of the layers below to what the client gets; nil for unexpected ones (500).
    static func from(_ error: any Error) -> APIError? {
        switch error {
        case let e as APIError: return e
        case let e as ValidationError: return APIError(e)
        case let e as EventStoreError:
            if e.isUnavailable { return APIError(.unavailable, "the database is unavailable, retry shortly", retryAfter: 2) }
            if case .conflict = e { return APIError(.conflict, "the tenant changed concurrently; retry the request") }
            return nil
        default: return nil
        }
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
