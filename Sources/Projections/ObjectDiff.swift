import Foundation
import RouteModel

/// One field of an object that differs between two points (named apart from the view diff's `FieldChange`): `old` absent = the field was not there (an added
/// object, or an optional field that appeared); `new` absent = it went away.
public struct ObjectFieldChange: Hashable, Sendable, Codable {
    public var field: String
    public var old: JSONTree?
    public var new: JSONTree?

    public init(field: String, old: JSONTree?, new: JSONTree?) {
        self.field = field
        self.old = old
        self.new = new
    }

    enum CodingKeys: String, CodingKey { case field, old, new }

    /// `old` and `new` are always written, `null` where the field is absent, so a reader sees both sides.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(field, forKey: .field)
        try c.encode(old ?? .null, forKey: .old)
        try c.encode(new ?? .null, forKey: .new)
    }
}

/// A route, group or peer that was added, removed or changed between two points, with its fields old → new
/// (every field for an added or removed object).
public struct ObjectChange: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable, Comparable {
        case route, group, peer
        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }
    public enum Change: String, Hashable, Sendable, Codable { case added, removed, changed }

    public var kind: Kind
    public var id: String
    public var change: Change
    public var fields: [ObjectFieldChange]

    public init(kind: Kind, id: String, change: Change, fields: [ObjectFieldChange]) {
        self.kind = kind
        self.id = id
        self.change = change
        self.fields = fields
    }
}

/// Field-by-field differences of routes, groups and peers between two tenant states (pure). Objects are compared
/// in their stored form (the `Codable` encoding events carry: `network_id`, `peer_groups`, `ip`, …), so a field
/// name here is the one in the event log.
public enum ObjectDiff {
    /// The fields of two encoded objects that differ, by field name. A value that is not an object counts as one
    /// field named "".
    public static func fields(old: JSONTree?, new: JSONTree?) -> [ObjectFieldChange] {
        func members(_ v: JSONTree?) -> [String: JSONTree] {
            switch v {
            case nil: [:]
            case .object(let o)?: o
            case let other?: ["": other]
            }
        }
        let (a, b) = (members(old), members(new))
        return Set(a.keys).union(b.keys).sorted().compactMap { k in
            a[k] == b[k] ? nil : ObjectFieldChange(field: k, old: a[k], new: b[k])
        }
    }

    /// One object's change, nil when it is the same (or absent) at both points.
    public static func change<T: Encodable & Equatable>(_ kind: ObjectChange.Kind, id: String, old: T?, new: T?) -> ObjectChange? {
        switch (old, new) {
        case (nil, nil): return nil
        case (nil, let n?): return ObjectChange(kind: kind, id: id, change: .added, fields: fields(old: nil, new: .of(n)))
        case (let o?, nil): return ObjectChange(kind: kind, id: id, change: .removed, fields: fields(old: .of(o), new: nil))
        case let (o?, n?):
            if o == n { return nil }
            let f = fields(old: .of(o), new: .of(n))
            return f.isEmpty ? nil : ObjectChange(kind: kind, id: id, change: .changed, fields: f)
        }
    }

    /// Every route, group and peer added, removed or changed from `old` to `new`, by kind then id.
    public static func between(_ old: TenantState, _ new: TenantState) -> [ObjectChange] {
        var out: [ObjectChange] = []
        for id in Set(old.routes.keys).union(new.routes.keys).sorted() {
            if let c = change(.route, id: id.rawValue, old: old.route(id), new: new.route(id)) { out.append(c) }
        }
        for id in Set(old.groups.keys).union(new.groups.keys).sorted() {
            if let c = change(.group, id: id.rawValue, old: old.group(id), new: new.group(id)) { out.append(c) }
        }
        for id in Set(old.peers.keys).union(new.peers.keys).sorted() {
            if let c = change(.peer, id: id.rawValue, old: old.peer(id), new: new.peer(id)) { out.append(c) }
        }
        return out.sorted { ($0.kind, $0.id) < ($1.kind, $1.id) }
    }
}
