import JSONKit
import Foundation

/// Who did something and why: stored with every event, read back by the audit log.
public struct EventMetadata: Codable, Sendable, Equatable {
    /// The user, token or service that caused the change (e.g. "token:abc", "system").
    public var actor: String
    public var requestID: String?
    public var correlationID: String?
    /// A readable name for the actor (token name, "setup key <name>"), for the audit log.
    public var actorName: String?
    /// The id of the object the event is about (route, group, peer, setup key, token): the audit
    /// log filters on it without decoding payloads.
    public var target: String?

    public init(actor: String, requestID: String? = nil, correlationID: String? = nil, actorName: String? = nil, target: String? = nil) {
        self.actor = actor
        self.requestID = requestID
        self.correlationID = correlationID
        self.actorName = actorName
        self.target = target
    }

    enum CodingKeys: String, CodingKey {
        case actor, target
        case requestID = "request_id"
        case correlationID = "correlation_id"
        case actorName = "actor_name"
    }

    /// The stored JSON form (same keys as the Codable form), written without JSONEncoder: it is built for every appended event.
    var json: String {
        var out = #"{"actor":"# + JSONString.quoted(actor)
        if let actorName { out += #","actor_name":"# + JSONString.quoted(actorName) }
        if let correlationID { out += #","correlation_id":"# + JSONString.quoted(correlationID) }
        if let requestID { out += #","request_id":"# + JSONString.quoted(requestID) }
        if let target { out += #","target":"# + JSONString.quoted(target) }
        return out + "}"
    }
}


/// An event about to be appended. `data` is JSON text, stored byte for byte.
public struct NewEvent: Sendable, Equatable {
    /// Chosen by the writer. Re-appending the same ids (a retry after a lost connection) writes nothing twice.
    public var id: UUID
    public var type: String
    public var data: String
    public var metadata: EventMetadata

    public init(id: UUID = FastUUID.random(), type: String, data: String, metadata: EventMetadata) {
        self.id = id
        self.type = type
        self.data = data
        self.metadata = metadata
    }
}

/// Where an event sits in the global order read by catch-up readers: the writing transaction's id, then
/// the insertion position. Readers only ever see a prefix of this order that can no longer grow in the middle.
public struct GlobalPosition: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var transaction: UInt64
    public var position: Int64

    public init(transaction: UInt64, position: Int64) {
        self.transaction = transaction
        self.position = position
    }

    /// Before every event.
    public static let start = GlobalPosition(transaction: 0, position: 0)

    public static func < (a: GlobalPosition, b: GlobalPosition) -> Bool {
        (a.transaction, a.position) < (b.transaction, b.position)
    }

    public var description: String { "\(transaction)/\(position)" }
}

/// An event as stored.
public struct RecordedEvent: Sendable, Equatable {
    public var id: UUID
    public var tenant: String
    /// Per-tenant sequence number: 1, 2, 3, … without gaps.
    public var sequence: Int64
    public var globalPosition: GlobalPosition
    public var type: String
    public var data: String
    public var metadata: EventMetadata
    public var recordedAt: Date
}

/// The version a writer expects the tenant to be at when its append lands.
public enum ExpectedVersion: Sendable, Equatable {
    /// Append whatever the tenant's version.
    case any
    /// The tenant must have no events yet.
    case noEvents
    /// The tenant's last sequence number must be exactly this.
    case exactly(Int64)

    var sqlValue: Int64 {
        switch self {
        case .any: -1
        case .noEvents: 0
        case let .exactly(n): n
        }
    }
}
