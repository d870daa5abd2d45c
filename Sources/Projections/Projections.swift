// Projections: per-peer route views, read models (routes / groups / peers) and the outbox,
// folded from the event stream and rebuildable from event zero.
//
// Pure part (no I/O): `TenantProjection` (one batch of events -> changed views, read-model changes),
// `TenantFold` (rebuild from zero), `ProjectionComparison` (verify). Thin shells doing the SQL:
// `ProjectionRunner` (asynchronous, one runner per tenant at a time via an advisory lock),
// `ProjectionMaintenance` (rebuild, verify), `ProjectionCheckpoints` (wait until projected).
import RouteModel

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An event with its per-tenant sequence number.
public struct SequencedEvent: Sendable, Hashable {
    public var sequence: Int64
    public var event: RouteEvent

    public init(sequence: Int64, event: RouteEvent) {
        self.sequence = sequence
        self.event = event
    }
}

/// What the projection believes PostgreSQL holds for one peer's view.
public struct StoredViewRef: Sendable, Hashable {
    public var version: Int64
    public var digest: String

    public init(version: Int64, digest: String) {
        self.version = version
        self.digest = digest
    }
}

/// A view to write (and publish): one `peer_views` upsert (or delete when `removed`) and one outbox row.
public struct ViewUpdate: Sendable, Hashable {
    public var peer: PeerID
    /// Tenant sequence number of the event that last changed the view.
    public var version: Int64
    public var digest: String
    /// Canonical JSON. For a removed peer: its empty view (the tombstone its agent applies).
    public var body: [UInt8]
    /// The peer no longer exists: its row is deleted; the outbox row is its last message.
    public var removed: Bool

    public init(peer: PeerID, version: Int64, digest: String, body: [UInt8], removed: Bool) {
        self.peer = peer
        self.version = version
        self.digest = digest
        self.body = body
        self.removed = removed
    }
}

/// The three read models the API reads.
public enum ReadModelKind: String, Sendable, Hashable, CaseIterable, Comparable {
    case route, group, peer

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// Table and id column.
    public var table: (name: String, idColumn: String) {
        switch self {
        case .route: ("projected_routes", "route_id")
        case .group: ("projected_groups", "group_id")
        case .peer: ("projected_peers", "peer_id")
        }
    }
}

public struct ReadModelKey: Sendable, Hashable, Comparable {
    public var kind: ReadModelKind
    public var id: String

    public init(_ kind: ReadModelKind, _ id: String) {
        self.kind = kind
        self.id = id
    }

    public static func < (a: Self, b: Self) -> Bool { (a.kind, a.id) < (b.kind, b.id) }
}

/// One read-model row to upsert (`body` set) or delete (`body` nil).
public struct ReadModelUpdate: Sendable, Hashable {
    public var key: ReadModelKey
    /// Sequence of the last event that touched the object (usable as an ETag).
    public var version: Int64
    /// JSON of the object (sorted keys); nil when it no longer exists.
    public var body: String?

    public init(key: ReadModelKey, version: Int64, body: String?) {
        self.key = key
        self.version = version
        self.body = body
    }
}

/// How a batch recomputes views.
public enum ProjectionMode: String, Sendable, Hashable {
    /// Only the views of the peers an event affects (`TenantState.apply(_:affected:)`).
    case incremental
    /// Every peer's view after every event, like a full network-map recompute. Benchmarks only.
    case fullRecompute
}

/// What one batch produced.
public struct ProjectionBatch: Sendable {
    public var tenant: String
    /// The events covered: `firstSequence...lastSequence` (empty batch: first = last + 1).
    public var firstSequence: Int64
    public var lastSequence: Int64
    /// Changed views (digest differs from the stored one), sorted by peer id.
    public var views: [ViewUpdate]
    /// Read-model rows to upsert or delete, sorted by key.
    public var readModels: [ReadModelUpdate]
    /// How many times `view(for:in:)` ran.
    public var viewsComputed: Int
    /// Distinct peers the events affected.
    public var affectedPeers: Int

    public var eventCount: Int { Int(lastSequence - firstSequence + 1) }
}

public enum ProjectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Events must come in sequence order without gaps.
    case gap(tenant: String, expected: Int64, got: Int64)
    /// A stored event this code cannot decode; the tenant's projection stops there until it is fixed.
    case undecodableEvent(tenant: String, sequence: Int64, type: String, reason: String)
    /// `waitUntilProjected` ran out of time.
    case timeout(tenant: String, sequence: Int64, projected: Int64)
    /// PostgreSQL answered something unexpected.
    case invalidResponse(String)

    public var description: String {
        switch self {
        case let .gap(tenant, expected, got):
            "projection of tenant \(tenant): expected event \(expected), got \(got)"
        case let .undecodableEvent(tenant, sequence, type, reason):
            "projection of tenant \(tenant) is stuck at event \(sequence) (\(type)), which does not decode: \(reason)"
        case let .timeout(tenant, sequence, projected):
            "tenant \(tenant) is projected up to \(projected), not yet \(sequence)"
        case let .invalidResponse(what):
            "unexpected database response: \(what)"
        }
    }
}

/// JSON bodies of the read models: RouteModel's NetBird-shaped Codable forms, keys sorted.
enum ReadModelEncoding {
    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// The body of `key` in `state`, or nil when the object does not exist.
    static func body(_ key: ReadModelKey, in state: TenantState, encoder: JSONEncoder) -> String? {
        do {
            switch key.kind {
            case .route:
                guard let r = state.route(RouteID(key.id)) else { return nil }
                return String(decoding: try encoder.encode(r), as: UTF8.self)
            case .group:
                guard let g = state.group(GroupID(key.id)) else { return nil }
                return String(decoding: try encoder.encode(g), as: UTF8.self)
            case .peer:
                guard let p = state.peer(PeerID(key.id)) else { return nil }
                return String(decoding: try encoder.encode(p), as: UTF8.self)
            }
        } catch {
            // Routes, groups and peers are plain strings, numbers, booleans and arrays.
            preconditionFailure("encoding \(key) failed: \(error)")
        }
    }

    /// The read-model objects `event` touches. Call before applying it (a removed peer's groups are read
    /// from the state it leaves).
    static func touched(by event: RouteEvent, in state: TenantState, into out: inout [ReadModelKey: Int64], sequence: Int64) {
        switch event {
        case .routeCreated(let e): out[ReadModelKey(.route, e.route.id.rawValue)] = sequence
        case .routeUpdated(let e):
            out[ReadModelKey(.route, e.old.id.rawValue)] = sequence
            out[ReadModelKey(.route, e.new.id.rawValue)] = sequence
        case .routeDeleted(let e): out[ReadModelKey(.route, e.route.id.rawValue)] = sequence
        case .groupCreated(let e): out[ReadModelKey(.group, e.group.id.rawValue)] = sequence
        case .groupUpdated(let e): out[ReadModelKey(.group, e.groupID.rawValue)] = sequence
        case .groupMembersChanged(let e): out[ReadModelKey(.group, e.groupID.rawValue)] = sequence
        case .groupDeleted(let e): out[ReadModelKey(.group, e.group.id.rawValue)] = sequence
        case .peerEnrolled(let e): out[ReadModelKey(.peer, e.peer.id.rawValue)] = sequence
        case .peerRenamed(let e): out[ReadModelKey(.peer, e.peerID.rawValue)] = sequence
        case .peerDrainingChanged(let e): out[ReadModelKey(.peer, e.peerID.rawValue)] = sequence
        case .peerRemoved(let e):
            out[ReadModelKey(.peer, e.peer.id.rawValue)] = sequence
            for g in state.groups(of: e.peer.id).union(e.groups) where state.group(g) != nil {
                out[ReadModelKey(.group, g.rawValue)] = sequence
            }
        case .tenantCreated, .tokenCreated, .tokenRevoked, .setupKeyCreated, .setupKeyUpdated, .setupKeyDeleted,
             .policyCreated, .policyUpdated, .policyDeleted:
            // Access objects and policies have no projected read model: the API answers them from the tenant state.
            break
        }
    }
}
