#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A fact about one tenant, in the past tense. Each carries everything needed to rebuild state
/// without looking anything up (deleted objects are carried whole, updates carry old and new),
/// so the audit log can show old and new values.
///
/// Stored as `type` + JSON (`encode()` / `decode(type:json:)`). The JSON body carries
/// `event_version`; `decode` dispatches on (type, version), so a payload's shape can change by
/// adding a version and an upcaster, and new event types are new cases with new type strings:
/// old stored events keep decoding. The envelope (tenant, sequence, actor, request id, time)
/// belongs to the event store, not to these payloads.
public enum RouteEvent: Hashable, Sendable {
    case routeCreated(RouteCreated)
    case routeUpdated(RouteUpdated)
    case routeDeleted(RouteDeleted)
    case groupCreated(GroupCreated)
    case groupUpdated(GroupUpdated)
    case groupMembersChanged(GroupMembersChanged)
    case groupDeleted(GroupDeleted)
    case peerEnrolled(PeerEnrolled)
    case peerRenamed(PeerRenamed)
    case peerDrainingChanged(PeerDrainingChanged)
    case peerRemoved(PeerRemoved)
    case tenantCreated(TenantCreated)
    case tokenCreated(TokenCreated)
    case tokenRevoked(TokenRevoked)
    case setupKeyCreated(SetupKeyCreated)
    case setupKeyUpdated(SetupKeyUpdated)
    case setupKeyDeleted(SetupKeyDeleted)
    case policyCreated(PolicyCreated)
    case policyUpdated(PolicyUpdated)
    case policyDeleted(PolicyDeleted)

    /// Stable type string stored next to the JSON ("RouteCreated", …). Never rename one.
    public var type: String {
        switch self {
        case .routeCreated: return RouteCreated.type
        case .routeUpdated: return RouteUpdated.type
        case .routeDeleted: return RouteDeleted.type
        case .groupCreated: return GroupCreated.type
        case .groupUpdated: return GroupUpdated.type
        case .groupMembersChanged: return GroupMembersChanged.type
        case .groupDeleted: return GroupDeleted.type
        case .peerEnrolled: return PeerEnrolled.type
        case .peerRenamed: return PeerRenamed.type
        case .peerDrainingChanged: return PeerDrainingChanged.type
        case .peerRemoved: return PeerRemoved.type
        case .tenantCreated: return TenantCreated.type
        case .tokenCreated: return TokenCreated.type
        case .tokenRevoked: return TokenRevoked.type
        case .setupKeyCreated: return SetupKeyCreated.type
        case .setupKeyUpdated: return SetupKeyUpdated.type
        case .setupKeyDeleted: return SetupKeyDeleted.type
        case .policyCreated: return PolicyCreated.type
        case .policyUpdated: return PolicyUpdated.type
        case .policyDeleted: return PolicyDeleted.type
        }
    }

    /// The version of the payload shape this code writes.
    public var eventVersion: Int {
        switch self {
        case .routeCreated: return RouteCreated.eventVersion
        case .routeUpdated: return RouteUpdated.eventVersion
        case .routeDeleted: return RouteDeleted.eventVersion
        case .groupCreated: return GroupCreated.eventVersion
        case .groupUpdated: return GroupUpdated.eventVersion
        case .groupMembersChanged: return GroupMembersChanged.eventVersion
        case .groupDeleted: return GroupDeleted.eventVersion
        case .peerEnrolled: return PeerEnrolled.eventVersion
        case .peerRenamed: return PeerRenamed.eventVersion
        case .peerDrainingChanged: return PeerDrainingChanged.eventVersion
        case .peerRemoved: return PeerRemoved.eventVersion
        case .tenantCreated: return TenantCreated.eventVersion
        case .tokenCreated: return TokenCreated.eventVersion
        case .tokenRevoked: return TokenRevoked.eventVersion
        case .setupKeyCreated: return SetupKeyCreated.eventVersion
        case .setupKeyUpdated: return SetupKeyUpdated.eventVersion
        case .setupKeyDeleted: return SetupKeyDeleted.eventVersion
        case .policyCreated: return PolicyCreated.eventVersion
        case .policyUpdated: return PolicyUpdated.eventVersion
        case .policyDeleted: return PolicyDeleted.eventVersion
        }
    }

    /// Every type string this code can decode.
    public static let knownTypes: [String] = [
        RouteCreated.type, RouteUpdated.type, RouteDeleted.type, GroupCreated.type, GroupUpdated.type,
        GroupMembersChanged.type, GroupDeleted.type, PeerEnrolled.type, PeerRenamed.type, PeerDrainingChanged.type, PeerRemoved.type,
        TenantCreated.type, TokenCreated.type, TokenRevoked.type, SetupKeyCreated.type, SetupKeyUpdated.type, SetupKeyDeleted.type,
        PolicyCreated.type, PolicyUpdated.type, PolicyDeleted.type,
    ]

    /// Type string and JSON body (UTF-8, sorted keys, snake_case, `event_version` included).
    public func encode() -> (type: String, json: [UInt8]) {
        (type, encodedJSON())
    }

    func encodedJSON() -> [UInt8] {
        switch self {
        // Route events are written by hand, byte for byte as the encoder below writes them (`EventEncoding.swift`).
        case .routeCreated(let e): return FastEventEncoding.encode(e)
        case .routeUpdated(let e): return FastEventEncoding.encode(e)
        case .routeDeleted(let e): return FastEventEncoding.encode(e)
        default: return encodedJSONWithFoundation()
        }
    }

    /// The reference encoder: Foundation's `JSONEncoder` through the payloads' Codable conformances (sorted keys,
    /// slashes unescaped). `encodedJSON()` must give the same bytes for every event.
    func encodedJSONWithFoundation() -> [UInt8] {
        switch self {
        case .routeCreated(let e): return EventCoding.encode(e)
        case .routeUpdated(let e): return EventCoding.encode(e)
        case .routeDeleted(let e): return EventCoding.encode(e)
        case .groupCreated(let e): return EventCoding.encode(e)
        case .groupUpdated(let e): return EventCoding.encode(e)
        case .groupMembersChanged(let e): return EventCoding.encode(e)
        case .groupDeleted(let e): return EventCoding.encode(e)
        case .peerEnrolled(let e): return EventCoding.encode(e)
        case .peerRenamed(let e): return EventCoding.encode(e)
        case .peerDrainingChanged(let e): return EventCoding.encode(e)
        case .peerRemoved(let e): return EventCoding.encode(e)
        case .tenantCreated(let e): return EventCoding.encode(e)
        case .tokenCreated(let e): return EventCoding.encode(e)
        case .tokenRevoked(let e): return EventCoding.encode(e)
        case .setupKeyCreated(let e): return EventCoding.encode(e)
        case .setupKeyUpdated(let e): return EventCoding.encode(e)
        case .setupKeyDeleted(let e): return EventCoding.encode(e)
        case .policyCreated(let e): return EventCoding.encode(e)
        case .policyUpdated(let e): return EventCoding.encode(e)
        case .policyDeleted(let e): return EventCoding.encode(e)
        }
    }

    /// Decodes a stored event. Throws `EventDecodingError` for an unknown type, a version newer
    /// than this code knows, or a body that does not match.
    ///
    /// Reads the body with JSONKit's `JSONReader` (`EventDecoding.swift`), which applies
    /// the same rules as the payloads' Codable conformances (`decodeWithFoundation`) at a small
    /// fraction of the cost; payloads of an older `event_version` go through their Codable upcast.
    public static func decode(type: String, json: [UInt8]) throws(EventDecodingError) -> RouteEvent {
        try json.withUnsafeBufferPointer { buf throws(EventDecodingError) in try decode(type: type, utf8: buf) }
    }

    /// `decode(type:json:)` for a body held as a `String` (as read from the database), without
    /// copying its bytes.
    public static func decode(type: String, json: String) throws(EventDecodingError) -> RouteEvent {
        var json = json
        let result = json.withUTF8 { buf in Result { () throws(EventDecodingError) in try decode(type: type, utf8: buf) } }
        return try result.get()
    }

    static func decode(type: String, utf8 json: UnsafeBufferPointer<UInt8>) throws(EventDecodingError) -> RouteEvent {
        switch type {
        case RouteCreated.type: return .routeCreated(try FastEventCoding.decode(RouteCreated.self, json))
        case RouteUpdated.type: return .routeUpdated(try FastEventCoding.decode(RouteUpdated.self, json))
        case RouteDeleted.type: return .routeDeleted(try FastEventCoding.decode(RouteDeleted.self, json))
        case GroupCreated.type: return .groupCreated(try FastEventCoding.decode(GroupCreated.self, json))
        case GroupUpdated.type: return .groupUpdated(try FastEventCoding.decode(GroupUpdated.self, json))
        case GroupMembersChanged.type: return .groupMembersChanged(try FastEventCoding.decode(GroupMembersChanged.self, json))
        case GroupDeleted.type: return .groupDeleted(try FastEventCoding.decode(GroupDeleted.self, json))
        case PeerEnrolled.type: return .peerEnrolled(try FastEventCoding.decode(PeerEnrolled.self, json))
        case PeerRenamed.type: return .peerRenamed(try FastEventCoding.decode(PeerRenamed.self, json))
        case PeerDrainingChanged.type: return .peerDrainingChanged(try FastEventCoding.decode(PeerDrainingChanged.self, json))
        case PeerRemoved.type: return .peerRemoved(try FastEventCoding.decode(PeerRemoved.self, json))
        // Access events are rare (a few per tenant): the Foundation decoder is fast enough.
        case TenantCreated.type, TokenCreated.type, TokenRevoked.type, SetupKeyCreated.type, SetupKeyUpdated.type, SetupKeyDeleted.type,
             PolicyCreated.type, PolicyUpdated.type, PolicyDeleted.type:
            return try decodeWithFoundation(type: type, json: Array(json))
        default: throw .unknownType(type)
        }
    }

    /// The reference decoder: Foundation's `JSONDecoder` through the payloads' Codable
    /// conformances. Kept for the equivalence tests and the micro-benchmark (and used for
    /// upcasting older versions); `decode(type:json:)` must give the same results.
    public static func decodeWithFoundation(type: String, json: [UInt8]) throws(EventDecodingError) -> RouteEvent {
        switch type {
        case RouteCreated.type: return .routeCreated(try EventCoding.decode(RouteCreated.self, json))
        case RouteUpdated.type: return .routeUpdated(try EventCoding.decode(RouteUpdated.self, json))
        case RouteDeleted.type: return .routeDeleted(try EventCoding.decode(RouteDeleted.self, json))
        case GroupCreated.type: return .groupCreated(try EventCoding.decode(GroupCreated.self, json))
        case GroupUpdated.type: return .groupUpdated(try EventCoding.decode(GroupUpdated.self, json))
        case GroupMembersChanged.type: return .groupMembersChanged(try EventCoding.decode(GroupMembersChanged.self, json))
        case GroupDeleted.type: return .groupDeleted(try EventCoding.decode(GroupDeleted.self, json))
        case PeerEnrolled.type: return .peerEnrolled(try EventCoding.decode(PeerEnrolled.self, json))
        case PeerRenamed.type: return .peerRenamed(try EventCoding.decode(PeerRenamed.self, json))
        case PeerDrainingChanged.type: return .peerDrainingChanged(try EventCoding.decode(PeerDrainingChanged.self, json))
        case PeerRemoved.type: return .peerRemoved(try EventCoding.decode(PeerRemoved.self, json))
        case TenantCreated.type: return .tenantCreated(try EventCoding.decode(TenantCreated.self, json))
        case TokenCreated.type: return .tokenCreated(try EventCoding.decode(TokenCreated.self, json))
        case TokenRevoked.type: return .tokenRevoked(try EventCoding.decode(TokenRevoked.self, json))
        case SetupKeyCreated.type: return .setupKeyCreated(try EventCoding.decode(SetupKeyCreated.self, json))
        case SetupKeyUpdated.type: return .setupKeyUpdated(try EventCoding.decode(SetupKeyUpdated.self, json))
        case SetupKeyDeleted.type: return .setupKeyDeleted(try EventCoding.decode(SetupKeyDeleted.self, json))
        case PolicyCreated.type: return .policyCreated(try EventCoding.decode(PolicyCreated.self, json))
        case PolicyUpdated.type: return .policyUpdated(try EventCoding.decode(PolicyUpdated.self, json))
        case PolicyDeleted.type: return .policyDeleted(try EventCoding.decode(PolicyDeleted.self, json))
        default: throw .unknownType(type)
        }
    }
}

public enum EventDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownType(String)
    case unsupportedVersion(type: String, version: Int)
    case malformed(type: String, reason: String)

    public var description: String {
        switch self {
        case .unknownType(let t): return "unknown event type \(t)"
        case .unsupportedVersion(let t, let v): return "event \(t) has version \(v), newer than this code knows"
        case .malformed(let t, let r): return "event \(t) does not decode: \(r)"
        }
    }
}

/// One payload shape: its stable type string and the version this code writes.
public protocol EventPayload: Codable, Hashable, Sendable {
    static var type: String { get }
    static var eventVersion: Int { get }
    /// Turns a payload of an older `version` into the current shape. Version 1 is current for
    /// every payload today, so the default only accepts 1...eventVersion as-is.
    static func upcast(from version: Int, decoder: any Decoder) throws -> Self
}

extension EventPayload {
    public static func upcast(from version: Int, decoder: any Decoder) throws -> Self {
        try Self(from: decoder)
    }
}

public struct RouteCreated: EventPayload {
    public static let type = "RouteCreated"
    public static let eventVersion = 1
    public var route: Route
    /// Members of the route's peer groups that cannot route (not Linux) when it was created: they forward nothing.
    /// Written only when not empty (events before it existed lack it).
    public var skippedRoutingPeers: [SkippedRoutingPeer]
    public init(route: Route, skippedRoutingPeers: [SkippedRoutingPeer] = []) {
        self.route = route
        self.skippedRoutingPeers = skippedRoutingPeers
    }
    enum CodingKeys: String, CodingKey {
        case route
        case skippedRoutingPeers = "skipped_routing_peers"
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        route = try c.decode(Route.self, forKey: .route)
        skippedRoutingPeers = try c.decodeIfPresent([SkippedRoutingPeer].self, forKey: .skippedRoutingPeers) ?? []
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(route, forKey: .route)
        if !skippedRoutingPeers.isEmpty { try c.encode(skippedRoutingPeers, forKey: .skippedRoutingPeers) }
    }
}

/// A route replaced by a new version of itself (same id). Both are carried whole.
public struct RouteUpdated: EventPayload {
    public static let type = "RouteUpdated"
    public static let eventVersion = 1
    public var old: Route
    public var new: Route
    /// As in `RouteCreated`, for the new version (written only when not empty).
    public var skippedRoutingPeers: [SkippedRoutingPeer]
    public init(old: Route, new: Route, skippedRoutingPeers: [SkippedRoutingPeer] = []) {
        self.old = old
        self.new = new
        self.skippedRoutingPeers = skippedRoutingPeers
    }
    enum CodingKeys: String, CodingKey {
        case old, new
        case skippedRoutingPeers = "skipped_routing_peers"
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        old = try c.decode(Route.self, forKey: .old)
        new = try c.decode(Route.self, forKey: .new)
        skippedRoutingPeers = try c.decodeIfPresent([SkippedRoutingPeer].self, forKey: .skippedRoutingPeers) ?? []
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(old, forKey: .old)
        try c.encode(new, forKey: .new)
        if !skippedRoutingPeers.isEmpty { try c.encode(skippedRoutingPeers, forKey: .skippedRoutingPeers) }
    }
}

/// A member of a route's peer groups that forwards nothing because only Linux peers can be routing peers.
public struct SkippedRoutingPeer: Hashable, Sendable, Codable {
    public var id: PeerID
    public var name: String
    public var os: String
    public init(id: PeerID, name: String, os: String) {
        self.id = id
        self.name = name
        self.os = os
    }
    public init(_ peer: Peer) { self.init(id: peer.id, name: peer.name, os: peer.os) }
}

public struct RouteDeleted: EventPayload {
    public static let type = "RouteDeleted"
    public static let eventVersion = 1
    /// The route as it was.
    public var route: Route
    public init(route: Route) { self.route = route }
}

public struct GroupCreated: EventPayload {
    public static let type = "GroupCreated"
    public static let eventVersion = 1
    public var group: Group
    public init(group: Group) { self.group = group }
}

/// A group renamed (membership changes are `GroupMembersChanged`).
public struct GroupUpdated: EventPayload {
    public static let type = "GroupUpdated"
    public static let eventVersion = 1
    public var groupID: GroupID
    public var oldName: String
    public var name: String
    public init(groupID: GroupID, oldName: String, name: String) {
        self.groupID = groupID
        self.oldName = oldName
        self.name = name
    }
    enum CodingKeys: String, CodingKey {
        case name
        case groupID = "group_id"
        case oldName = "old_name"
    }
}

/// Peers added to and removed from a group (both sorted, disjoint, each non-trivial).
public struct GroupMembersChanged: EventPayload {
    public static let type = "GroupMembersChanged"
    public static let eventVersion = 1
    public var groupID: GroupID
    public var added: [PeerID]
    public var removed: [PeerID]
    public init(groupID: GroupID, added: [PeerID], removed: [PeerID]) {
        self.groupID = groupID
        self.added = added
        self.removed = removed
    }
    enum CodingKeys: String, CodingKey {
        case groupID = "group_id"
        case added = "added_peers"
        case removed = "removed_peers"
    }
}

public struct GroupDeleted: EventPayload {
    public static let type = "GroupDeleted"
    public static let eventVersion = 1
    /// The group as it was.
    public var group: Group
    public init(group: Group) { self.group = group }
}

public struct PeerEnrolled: EventPayload {
    public static let type = "PeerEnrolled"
    public static let eventVersion = 1
    public var peer: Peer
    /// The setup key the agent enrolled with (nil for peers added by an operator).
    public var setupKeyID: SetupKeyID?
    /// Unix seconds (set when enrolled through the API).
    public var enrolledAt: Int64?
    public init(peer: Peer, setupKeyID: SetupKeyID? = nil, enrolledAt: Int64? = nil) {
        self.peer = peer
        self.setupKeyID = setupKeyID
        self.enrolledAt = enrolledAt
    }
    enum CodingKeys: String, CodingKey {
        case peer
        case setupKeyID = "setup_key_id"
        case enrolledAt = "enrolled_at"
    }
}

public struct PeerRenamed: EventPayload {
    public static let type = "PeerRenamed"
    public static let eventVersion = 1
    public var peerID: PeerID
    public var oldName: String
    public var name: String
    public init(peerID: PeerID, oldName: String, name: String) {
        self.peerID = peerID
        self.oldName = oldName
        self.name = name
    }
    enum CodingKeys: String, CodingKey {
        case name
        case peerID = "peer_id"
        case oldName = "old_name"
    }
}

/// An operator put a peer into drain mode or took it out (`draining`, the new value; events are
/// written only for a real change). A draining routing peer is chosen by clients only when no other
/// candidate of the HA set is up, so it can be taken down without dropping traffic.
public struct PeerDrainingChanged: EventPayload {
    public static let type = "PeerDrainingChanged"
    public static let eventVersion = 1
    public var peerID: PeerID
    public var draining: Bool
    public init(peerID: PeerID, draining: Bool) {
        self.peerID = peerID
        self.draining = draining
    }
    enum CodingKeys: String, CodingKey {
        case draining
        case peerID = "peer_id"
    }
}

/// A peer removed from the tenant; `groups` are the groups it was a member of (it leaves them).
public struct PeerRemoved: EventPayload {
    public static let type = "PeerRemoved"
    public static let eventVersion = 1
    public var peer: Peer
    public var groups: [GroupID]
    public init(peer: Peer, groups: [GroupID]) {
        self.peer = peer
        self.groups = groups
    }
    enum CodingKeys: String, CodingKey {
        case peer
        case groups = "removed_from_groups"
    }
}

// MARK: - JSON

enum EventCoding {
    private enum VersionKey: String, CodingKey { case eventVersion = "event_version" }

    /// Writes the payload's fields and `event_version` into one JSON object.
    private struct Versioned<P: EventPayload>: Codable {
        var payload: P

        init(_ payload: P) { self.payload = payload }

        func encode(to encoder: any Encoder) throws {
            try payload.encode(to: encoder)
            var c = encoder.container(keyedBy: VersionKey.self)
            try c.encode(P.eventVersion, forKey: .eventVersion)
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: VersionKey.self)
            let version = try c.decodeIfPresent(Int.self, forKey: .eventVersion) ?? 1
            guard version >= 1, version <= P.eventVersion else {
                throw EventDecodingError.unsupportedVersion(type: P.type, version: version)
            }
            payload = version == P.eventVersion ? try P(from: decoder) : try P.upcast(from: version, decoder: decoder)
        }
    }

    static func encode<P: EventPayload>(_ payload: P) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(Versioned(payload)))
        } catch {
            // Every payload is plain strings, numbers, booleans and arrays: encoding cannot fail.
            preconditionFailure("encoding \(P.type) failed: \(error)")
        }
    }

    static func decode<P: EventPayload>(_: P.Type, _ json: [UInt8]) throws(EventDecodingError) -> P {
        do {
            return try JSONDecoder().decode(Versioned<P>.self, from: Data(json)).payload
        } catch let e as EventDecodingError {
            throw e
        } catch {
            throw .malformed(type: P.type, reason: "\(error)")
        }
    }
}
