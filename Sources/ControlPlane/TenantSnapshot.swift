import EventStore
import RouteModel
import Synchronization

/// An object the API serves, for ETags and the audit log's target.
public struct ObjectRef: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable { case route, group, peer, setupKey = "setup_key", token, tenant, policy }
    public var kind: Kind
    public var id: String
    public init(_ kind: Kind, _ id: String) {
        self.kind = kind
        self.id = id
    }
    public var description: String { "\(kind.rawValue) \(id)" }
}

extension RouteEvent {
    /// The object an event is about (the audit log's `target_id`).
    public var target: ObjectRef {
        switch self {
        case .routeCreated(let e): ObjectRef(.route, e.route.id.rawValue)
        case .routeUpdated(let e): ObjectRef(.route, e.new.id.rawValue)
        case .routeDeleted(let e): ObjectRef(.route, e.route.id.rawValue)
        case .groupCreated(let e): ObjectRef(.group, e.group.id.rawValue)
        case .groupUpdated(let e): ObjectRef(.group, e.groupID.rawValue)
        case .groupMembersChanged(let e): ObjectRef(.group, e.groupID.rawValue)
        case .groupDeleted(let e): ObjectRef(.group, e.group.id.rawValue)
        case .peerEnrolled(let e): ObjectRef(.peer, e.peer.id.rawValue)
        case .peerRenamed(let e): ObjectRef(.peer, e.peerID.rawValue)
        case .peerDrainingChanged(let e): ObjectRef(.peer, e.peerID.rawValue)
        case .peerRemoved(let e): ObjectRef(.peer, e.peer.id.rawValue)
        case .tenantCreated: ObjectRef(.tenant, "")
        case .tokenCreated(let e): ObjectRef(.token, e.tokenID.rawValue)
        case .tokenRevoked(let e): ObjectRef(.token, e.tokenID.rawValue)
        case .setupKeyCreated(let e): ObjectRef(.setupKey, e.setupKey.id.rawValue)
        case .setupKeyUpdated(let e): ObjectRef(.setupKey, e.new.id.rawValue)
        case .setupKeyDeleted(let e): ObjectRef(.setupKey, e.setupKey.id.rawValue)
        case .policyCreated(let e): ObjectRef(.policy, e.policy.id.rawValue)
        case .policyUpdated(let e): ObjectRef(.policy, e.new.id.rawValue)
        case .policyDeleted(let e): ObjectRef(.policy, e.policy.id.rawValue)
        }
    }

    /// Every object whose representation the event changes (its ETag moves): the target, plus the
    /// groups a peer joins or leaves and the peers whose group list changes.
    public func touchedObjects(in before: TenantState) -> [ObjectRef] {
        switch self {
        case .groupMembersChanged(let e):
            return [ObjectRef(.group, e.groupID.rawValue)] + (e.added + e.removed).map { ObjectRef(.peer, $0.rawValue) }
        case .groupCreated(let e):
            return [ObjectRef(.group, e.group.id.rawValue)] + e.group.peers.map { ObjectRef(.peer, $0.rawValue) }
        case .groupDeleted(let e):
            return [ObjectRef(.group, e.group.id.rawValue)] + e.group.peers.map { ObjectRef(.peer, $0.rawValue) }
        case .groupUpdated(let e):
            // Peers list their groups by name.
            return [ObjectRef(.group, e.groupID.rawValue)] + (before.group(e.groupID)?.peers ?? []).map { ObjectRef(.peer, $0.rawValue) }
        case .peerRemoved(let e):
            return [ObjectRef(.peer, e.peer.id.rawValue)] + before.groups(of: e.peer.id).union(e.groups).map { ObjectRef(.group, $0.rawValue) }
        case .peerRenamed(let e):
            // Groups list their peers by name.
            return [ObjectRef(.peer, e.peerID.rawValue)] + before.groups(of: e.peerID).map { ObjectRef(.group, $0.rawValue) }
        default:
            return [target]
        }
    }
}

/// One tenant's state at a version, with the version of every object (its ETag): what the API
/// decides commands against and answers reads from. Rebuilt from the event store at any time.
public struct TenantSnapshot: Sendable {
    public private(set) var state = TenantState()
    /// The tenant's last sequence number folded in (0 = no events).
    public private(set) var version: Int64 = 0
    public private(set) var objectVersions: [ObjectRef: Int64] = [:]
    /// The sequence of the event that created each route, group and peer: lists answer in creation order, as
    /// NetBird's (rows in insertion order), not in id order.
    public private(set) var creationSequences: [ObjectRef: Int64] = [:]
    /// When each peer enrolled (unix seconds, from `PeerEnrolled.enrolledAt`; absent for peers added otherwise).
    public private(set) var peerEnrolledAt: [PeerID: Int64] = [:]

    public init() {}

    /// A snapshot from its parts (a stored history snapshot, `StoredTenantSnapshot`).
    init(state: TenantState, version: Int64, objectVersions: [ObjectRef: Int64], creationSequences: [ObjectRef: Int64],
         peerEnrolledAt: [PeerID: Int64]) {
        self.state = state
        self.version = version
        self.objectVersions = objectVersions
        self.creationSequences = creationSequences
        self.peerEnrolledAt = peerEnrolledAt
    }

    public func version(of object: ObjectRef) -> Int64? { objectVersions[object] }

    /// The sequence of the event that created `object` (routes, groups and peers); nil when unknown.
    public func creationSequence(of object: ObjectRef) -> Int64? { creationSequences[object] }

    /// `items` in creation order (by the sequence of the event that created each), ties and unknowns by `ref` text.
    public func inCreationOrder<T>(_ items: [T], ref: (T) -> ObjectRef) -> [T] {
        items.map { (ref($0), $0) }
            .sorted { a, b in
                let (x, y) = (creationSequences[a.0] ?? .max, creationSequences[b.0] ?? .max)
                return x != y ? x < y : a.0.id < b.0.id
            }
            .map(\.1)
    }

    public var exists: Bool { version > 0 }

    public mutating func apply(_ event: RouteEvent, sequence: Int64) {
        for ref in event.touchedObjects(in: state) { objectVersions[ref] = sequence }
        switch event {
        case .routeCreated, .groupCreated, .policyCreated: creationSequences[event.target] = sequence
        case .peerEnrolled(let e):
            creationSequences[event.target] = sequence
            peerEnrolledAt[e.peer.id] = e.enrolledAt
        case .routeDeleted, .groupDeleted, .policyDeleted: creationSequences[event.target] = nil
        case .peerRemoved(let e):
            creationSequences[event.target] = nil
            peerEnrolledAt[e.peer.id] = nil
        default: break
        }
        state.apply(event)
        version = sequence
    }
}

/// The latest snapshot of every tenant this controller has served, caught up from the event store
/// on every use (one indexed query for the events after the cached version), so a read after a write
/// on any controller sees that write. Holds nothing PostgreSQL cannot rebuild.
public final class TenantCache: Sendable {
    let store: EventStore
    private let snapshots = Mutex<[String: TenantSnapshot]>([:])

    /// Catch-ups run (`current` calls), for tests that count the queries a write makes.
    private let catchUps = Atomic<Int>(0)

    public init(store: EventStore) { self.store = store }

    /// How many times `current` has caught a tenant up (one query or more each).
    public var catchUpCount: Int { catchUps.load(ordering: .relaxed) }

    /// The tenant's cached snapshot as it is, without catching up: possibly behind the event store (another controller
    /// may have written since). Only for decisions that PostgreSQL checks again (an append expecting its version) or
    /// for facts that never change once written (a token's name).
    public func cached(_ tenant: String) -> TenantSnapshot? {
        snapshots.withLock { $0[tenant] }
    }

    /// The tenant's snapshot, caught up to its latest committed event.
    public func current(_ tenant: String) async throws -> TenantSnapshot {
        catchUps.add(1, ordering: .relaxed)
        var snapshot = snapshots.withLock { $0[tenant] } ?? TenantSnapshot()
        while true {
            let batch = try await store.read(tenant: tenant, fromSequence: snapshot.version + 1, limit: 2000)
            for recorded in batch {
                snapshot.apply(try Self.decode(recorded, tenant: tenant), sequence: recorded.sequence)
            }
            if batch.count < 2000 { break }
        }
        remember(tenant, snapshot)
        return snapshot
    }

    /// A stored event as a domain event; one that does not decode is `corrupt`, naming it (the operator must look).
    static func decode(_ recorded: RecordedEvent, tenant: String) throws(ControlPlaneError) -> RouteEvent {
        do {
            return try RouteEvent.decode(type: recorded.type, json: recorded.data)
        } catch {
            throw .corrupt("tenant \(tenant): event \(recorded.sequence) (\(recorded.type)) does not decode: \(error)")
        }
    }

    /// Keeps `snapshot` if it is newer than the cached one.
    public func remember(_ tenant: String, _ snapshot: TenantSnapshot) {
        snapshots.withLock { all in
            if (all[tenant]?.version ?? -1) < snapshot.version { all[tenant] = snapshot }
        }
    }
}
