/// Decoding stored events with `JSONReader` (the hot path of every projection rebuild), applying
/// exactly the rules of the Codable implementations, which stay the reference
/// (`RouteEvent.decodeWithFoundation`, compared in `FastDecodingTests`):
/// - required keys must be present and not null; optional keys (`decodeIfPresent`) may be
///   absent or null; unknown keys are ignored; the first of duplicated keys wins;
/// - `Route`: `network` (a `Prefix`) else `domains`, `peer` else `peer_groups`, each looked at
///   only when the one before it is absent or null (as the Codable `init(from:)` does);
///   `network_type` is never read;
/// - `event_version`: absent or null is 1; a newer version than the code knows is
///   `unsupportedVersion` even when the rest of the body would not decode; an older one goes
///   through the payload's Codable `upcast` (no payload has one yet).

// MARK: - entities

struct RouteFields: JSONObjectFields {
    var seen = SeenKeys()
    var id: RouteID?
    var networkID: String?
    var description: String?
    var network: Prefix?
    var peer: PeerID?
    var domainsAt = -1, peerGroupsAt = -1
    var metric: Int?
    var masquerade: Bool?
    var groups: [GroupID]?
    var enabled: Bool?
    var keepRoute: Bool?
    var accessControlGroups: [GroupID]?
    var skipAutoApply: Bool?

    init() {}

    mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
        switch key.raw.count {
        case 2 where key.is("id"):
            if seen.first(0) { id = RouteID(rawValue: try r.readString()) } else { try r.skipValue() }
        case 10 where key.is("network_id"):
            if seen.first(1) { networkID = try r.readString() } else { try r.skipValue() }
        case 11 where key.is("description"):
            if seen.first(2) { description = try r.readOptional { (r: inout JSONReader) throws(JSONReadError) in try r.readString() } } else { try r.skipValue() }
        case 7 where key.is("network"):
            // Always looked at when present (decodeIfPresent): read now. Only the alternatives
            // (`domains`, `peer_groups`) are read later, and only when needed.
            if seen.first(3) { network = try r.readOptional { (r: inout JSONReader) throws(JSONReadError) in try r.readPrefix() } } else { try r.skipValue() }
        case 7 where key.is("domains"):
            if seen.first(4) { domainsAt = r.pos }
            try r.skipValue()
        case 4 where key.is("peer"):
            if seen.first(5) { peer = try r.readOptional { (r: inout JSONReader) throws(JSONReadError) in PeerID(rawValue: try r.readString()) } } else { try r.skipValue() }
        case 11 where key.is("peer_groups"):
            if seen.first(6) { peerGroupsAt = r.pos }
            try r.skipValue()
        case 6 where key.is("metric"):
            if seen.first(7) { metric = try r.readInt() } else { try r.skipValue() }
        case 10 where key.is("masquerade"):
            if seen.first(8) { masquerade = try r.readBool() } else { try r.skipValue() }
        case 6 where key.is("groups"):
            if seen.first(9) { groups = try r.readIDs() } else { try r.skipValue() }
        case 7 where key.is("enabled"):
            if seen.first(10) { enabled = try r.readBool() } else { try r.skipValue() }
        case 10 where key.is("keep_route"):
            if seen.first(11) { keepRoute = try r.readOptional { (r: inout JSONReader) throws(JSONReadError) in try r.readBool() } } else { try r.skipValue() }
        case 21 where key.is("access_control_groups"):
            if seen.first(12) { accessControlGroups = try r.readOptional { (r: inout JSONReader) throws(JSONReadError) -> [GroupID] in try r.readIDs() } } else { try r.skipValue() }
        case 15 where key.is("skip_auto_apply"):
            if seen.first(13) { skipAutoApply = try r.readOptional { (r: inout JSONReader) throws(JSONReadError) in try r.readBool() } } else { try r.skipValue() }
        default:
            // Escaped keys have another raw length: compare their unescaped bytes.
            if key.unescaped != nil, let canonical = Self.unescapedKey(key) {
                return try read(canonical, &r)
            }
            return false
        }
        return true
    }

    static let keys: [StaticString] = [
        "id", "network_id", "description", "network", "domains", "peer", "peer_groups", "metric", "masquerade",
        "groups", "enabled", "keep_route", "access_control_groups", "skip_auto_apply",
    ]

    /// An escaped key that spells one of `keys`, as a plain key (so `read` can match its length).
    static func unescapedKey(_ key: JSONKey) -> JSONKey? {
        guard let name = keys.first(where: { key.is($0) }) else { return nil }
        return JSONKey(raw: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), unescaped: nil)
    }

    func finish(_ r: inout JSONReader) throws(JSONReadError) -> Route {
        guard let id else { throw r.missing("id") }
        guard let networkID else { throw r.missing("network_id") }
        let destination: RouteDestination
        if let network {
            destination = .network(network)
        } else if domainsAt >= 0, let d = try r.at(domainsAt, { (r: inout JSONReader) throws(JSONReadError) in try r.readOptional { (r: inout JSONReader) throws(JSONReadError) in try r.readStrings() } }) {
            destination = .domains(d)
        } else {
            throw r.fail("route has neither network nor domains")
        }
        let routingPeers: RoutingPeers
        if let peer {
            routingPeers = .peer(peer)
        } else if peerGroupsAt >= 0, let g = try r.at(peerGroupsAt, { (r: inout JSONReader) throws(JSONReadError) -> [GroupID]? in try r.readOptional { (r: inout JSONReader) throws(JSONReadError) -> [GroupID] in try r.readIDs() } }) {
            routingPeers = .peerGroups(g)
        } else {
            throw r.fail("route has neither peer nor peer_groups")
        }
        guard let metric else { throw r.missing("metric") }
        guard let masquerade else { throw r.missing("masquerade") }
        guard let groups else { throw r.missing("groups") }
        guard let enabled else { throw r.missing("enabled") }
        return Route(
            id: id, networkID: networkID, description: description ?? "", destination: destination,
            routingPeers: routingPeers, metric: metric, masquerade: masquerade, groups: groups, enabled: enabled,
            keepRoute: keepRoute ?? false, accessControlGroups: accessControlGroups ?? [], skipAutoApply: skipAutoApply ?? false)
    }
}

struct GroupFields: JSONObjectFields {
    var seen = SeenKeys()
    var id: GroupID?
    var name: String?
    var peers: [PeerID]?

    init() {}

    mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
        if key.is("id") {
            if seen.first(0) { id = GroupID(rawValue: try r.readString()) } else { try r.skipValue() }
        } else if key.is("name") {
            if seen.first(1) { name = try r.readString() } else { try r.skipValue() }
        } else if key.is("peers") {
            if seen.first(2) { peers = try r.readIDs() } else { try r.skipValue() }
        } else {
            return false
        }
        return true
    }

    func finish(_ r: inout JSONReader) throws(JSONReadError) -> Group {
        guard let id else { throw r.missing("id") }
        guard let name else { throw r.missing("name") }
        guard let peers else { throw r.missing("peers") }
        return Group(id: id, name: name, peers: peers)
    }
}

struct PeerFields: JSONObjectFields {
    var seen = SeenKeys()
    var id: PeerID?
    var name: String?
    var os: String?
    var meshIP: IPAddress?
    /// Optional (`decodeIfPresent`): absent or null is false.
    var draining: Bool?

    init() {}

    mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
        if key.is("id") {
            if seen.first(0) { id = PeerID(rawValue: try r.readString()) } else { try r.skipValue() }
        } else if key.is("name") {
            if seen.first(1) { name = try r.readString() } else { try r.skipValue() }
        } else if key.is("os") {
            if seen.first(2) { os = try r.readString() } else { try r.skipValue() }
        } else if key.is("ip") {
            if seen.first(3) { meshIP = try r.readAddress() } else { try r.skipValue() }
        } else if key.is("draining") {
            if seen.first(4) { draining = try r.readOptional { (r: inout JSONReader) throws(JSONReadError) in try r.readBool() } } else { try r.skipValue() }
        } else {
            return false
        }
        return true
    }

    func finish(_ r: inout JSONReader) throws(JSONReadError) -> Peer {
        guard let id else { throw r.missing("id") }
        guard let name else { throw r.missing("name") }
        guard let os else { throw r.missing("os") }
        guard let meshIP else { throw r.missing("ip") }
        return Peer(id: id, name: name, os: os, meshIP: meshIP, draining: draining ?? false)
    }
}

extension JSONReader {
    func missing(_ key: String) -> JSONReadError { fail("missing key \"\(key)\"") }

    mutating func readIDs<ID: StringIdentifier>() throws(JSONReadError) -> [ID] {
        try readArray { (r: inout JSONReader) throws(JSONReadError) in ID(rawValue: try r.readString()) }
    }

    mutating func readPrefix() throws(JSONReadError) -> Prefix {
        let at = pos
        if peek == UInt8(ascii: "\"") {
            // Fast path for the common `a.b.c.d/n`, exactly as `Prefix(parsing:)` reads it; any
            // other text (IPv6, escapes, errors) takes the general parser below.
            let (start, end, escaped) = try scanString()
            if !escaped {
                var i = start
                if let v4 = Self.ipv4(buf, &i, end), i < end, buf[i] == UInt8(ascii: "/"), let length = Self.prefixLength(buf, i + 1, end, max: 32) {
                    return Prefix(IPAddress(v4: v4), length: length)
                }
            }
            pos = at
        }
        let text = try readString()
        do {
            return try Prefix(parsing: text)
        } catch {
            throw JSONReadError(reason: error.description, offset: at)
        }
    }

    mutating func readAddress() throws(JSONReadError) -> IPAddress {
        let at = pos
        if peek == UInt8(ascii: "\"") {
            let (start, end, escaped) = try scanString()
            if !escaped {
                var i = start
                if let v4 = Self.ipv4(buf, &i, end), i == end { return IPAddress(v4: v4) }
            }
            pos = at
        }
        let text = try readString()
        do {
            return try IPAddress(parsing: text)
        } catch {
            throw JSONReadError(reason: "\(error.input): \(error.reason)", offset: at)
        }
    }

    /// A dotted quad from `i` as `IPAddress.parseV4` accepts it (four decimal octets, no leading
    /// zeros, each ≤ 255), stopping at the first byte that is not a digit or dot; nil if there is
    /// none (the caller then uses the general parser, which gives the error).
    @inline(__always)
    static func ipv4(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int, _ end: Int) -> UInt32? {
        var value: UInt32 = 0
        for part in 0..<4 {
            if part > 0 {
                guard i < end, b[i] == UInt8(ascii: ".") else { return nil }
                i += 1
            }
            guard i < end else { return nil }
            let first = b[i]
            guard first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return nil }
            var octet = UInt32(first - UInt8(ascii: "0"))
            i += 1
            var digits = 1
            while i < end, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                if first == UInt8(ascii: "0") { return nil }  // leading zero
                octet = octet * 10 + UInt32(b[i] - UInt8(ascii: "0"))
                digits += 1
                if digits > 3 || octet > 255 { return nil }
                i += 1
            }
            value = value << 8 | octet
        }
        if i < end, b[i] == UInt8(ascii: ".") { return nil }  // a fifth octet
        return value
    }

    /// A prefix length filling `start..<end`: decimal, no leading zero, at most `max`.
    @inline(__always)
    static func prefixLength(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, max: Int) -> Int? {
        let n = end - start
        guard n == 1 || n == 2 else { return nil }
        var length = 0
        for k in start..<end {
            let c = b[k]
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            length = length * 10 + Int(c - UInt8(ascii: "0"))
        }
        if n == 2 && b[start] == UInt8(ascii: "0") { return nil }
        return length <= max ? length : nil
    }

    mutating func readRoute() throws(JSONReadError) -> Route { try readObject(RouteFields.self) }
    mutating func readGroup() throws(JSONReadError) -> Group { try readObject(GroupFields.self) }
    mutating func readPeer() throws(JSONReadError) -> Peer { try readObject(PeerFields.self) }
}

// MARK: - payloads

/// A payload that `JSONReader` decodes: its top-level keys other than `event_version`.
protocol JSONDecodablePayload: EventPayload {
    associatedtype Fields: JSONObjectFields where Fields.Value == Self
}

extension RouteCreated: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var route: Route?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            guard key.is("route") else { return false }
            if seen.first(0) { route = try r.readRoute() } else { try r.skipValue() }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> RouteCreated {
            guard let route else { throw r.missing("route") }
            return RouteCreated(route: route)
        }
    }
}

extension RouteUpdated: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var old: Route?
        var new: Route?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            if key.is("old") {
                if seen.first(0) { old = try r.readRoute() } else { try r.skipValue() }
            } else if key.is("new") {
                if seen.first(1) { new = try r.readRoute() } else { try r.skipValue() }
            } else {
                return false
            }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> RouteUpdated {
            guard let old else { throw r.missing("old") }
            guard let new else { throw r.missing("new") }
            return RouteUpdated(old: old, new: new)
        }
    }
}

extension RouteDeleted: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var route: Route?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            guard key.is("route") else { return false }
            if seen.first(0) { route = try r.readRoute() } else { try r.skipValue() }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> RouteDeleted {
            guard let route else { throw r.missing("route") }
            return RouteDeleted(route: route)
        }
    }
}

extension GroupCreated: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var group: Group?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            guard key.is("group") else { return false }
            if seen.first(0) { group = try r.readGroup() } else { try r.skipValue() }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> GroupCreated {
            guard let group else { throw r.missing("group") }
            return GroupCreated(group: group)
        }
    }
}

extension GroupUpdated: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var groupID: GroupID?
        var oldName: String?
        var name: String?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            if key.is("group_id") {
                if seen.first(0) { groupID = GroupID(rawValue: try r.readString()) } else { try r.skipValue() }
            } else if key.is("old_name") {
                if seen.first(1) { oldName = try r.readString() } else { try r.skipValue() }
            } else if key.is("name") {
                if seen.first(2) { name = try r.readString() } else { try r.skipValue() }
            } else {
                return false
            }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> GroupUpdated {
            guard let groupID else { throw r.missing("group_id") }
            guard let oldName else { throw r.missing("old_name") }
            guard let name else { throw r.missing("name") }
            return GroupUpdated(groupID: groupID, oldName: oldName, name: name)
        }
    }
}

extension GroupMembersChanged: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var groupID: GroupID?
        var added: [PeerID]?
        var removed: [PeerID]?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            if key.is("group_id") {
                if seen.first(0) { groupID = GroupID(rawValue: try r.readString()) } else { try r.skipValue() }
            } else if key.is("added_peers") {
                if seen.first(1) { added = try r.readIDs() } else { try r.skipValue() }
            } else if key.is("removed_peers") {
                if seen.first(2) { removed = try r.readIDs() } else { try r.skipValue() }
            } else {
                return false
            }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> GroupMembersChanged {
            guard let groupID else { throw r.missing("group_id") }
            guard let added else { throw r.missing("added_peers") }
            guard let removed else { throw r.missing("removed_peers") }
            return GroupMembersChanged(groupID: groupID, added: added, removed: removed)
        }
    }
}

extension GroupDeleted: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var group: Group?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            guard key.is("group") else { return false }
            if seen.first(0) { group = try r.readGroup() } else { try r.skipValue() }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> GroupDeleted {
            guard let group else { throw r.missing("group") }
            return GroupDeleted(group: group)
        }
    }
}

extension PeerEnrolled: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var peer: Peer?
        var setupKeyID: SetupKeyID?
        var enrolledAt: Int64?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            if key.is("peer") {
                if seen.first(0) { peer = try r.readPeer() } else { try r.skipValue() }
            } else if key.is("setup_key_id") {
                if seen.first(1) { setupKeyID = try r.readOptional { (r: inout JSONReader) throws(JSONReadError) in SetupKeyID(rawValue: try r.readString()) } } else { try r.skipValue() }
            } else if key.is("enrolled_at") {
                if seen.first(2) { enrolledAt = try r.readOptional { (r: inout JSONReader) throws(JSONReadError) in Int64(try r.readInt()) } } else { try r.skipValue() }
            } else {
                return false
            }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> PeerEnrolled {
            guard let peer else { throw r.missing("peer") }
            return PeerEnrolled(peer: peer, setupKeyID: setupKeyID, enrolledAt: enrolledAt)
        }
    }
}

extension PeerRenamed: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var peerID: PeerID?
        var oldName: String?
        var name: String?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            if key.is("peer_id") {
                if seen.first(0) { peerID = PeerID(rawValue: try r.readString()) } else { try r.skipValue() }
            } else if key.is("old_name") {
                if seen.first(1) { oldName = try r.readString() } else { try r.skipValue() }
            } else if key.is("name") {
                if seen.first(2) { name = try r.readString() } else { try r.skipValue() }
            } else {
                return false
            }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> PeerRenamed {
            guard let peerID else { throw r.missing("peer_id") }
            guard let oldName else { throw r.missing("old_name") }
            guard let name else { throw r.missing("name") }
            return PeerRenamed(peerID: peerID, oldName: oldName, name: name)
        }
    }
}

extension PeerDrainingChanged: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var peerID: PeerID?
        var draining: Bool?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            if key.is("peer_id") {
                if seen.first(0) { peerID = PeerID(rawValue: try r.readString()) } else { try r.skipValue() }
            } else if key.is("draining") {
                if seen.first(1) { draining = try r.readBool() } else { try r.skipValue() }
            } else {
                return false
            }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> PeerDrainingChanged {
            guard let peerID else { throw r.missing("peer_id") }
            guard let draining else { throw r.missing("draining") }
            return PeerDrainingChanged(peerID: peerID, draining: draining)
        }
    }
}

extension PeerRemoved: JSONDecodablePayload {
    struct Fields: JSONObjectFields {
        var seen = SeenKeys()
        var peer: Peer?
        var groups: [GroupID]?
        init() {}
        mutating func read(_ key: JSONKey, _ r: inout JSONReader) throws(JSONReadError) -> Bool {
            if key.is("peer") {
                if seen.first(0) { peer = try r.readPeer() } else { try r.skipValue() }
            } else if key.is("removed_from_groups") {
                if seen.first(1) { groups = try r.readIDs() } else { try r.skipValue() }
            } else {
                return false
            }
            return true
        }
        func finish(_ r: inout JSONReader) throws(JSONReadError) -> PeerRemoved {
            guard let peer else { throw r.missing("peer") }
            guard let groups else { throw r.missing("removed_from_groups") }
            return PeerRemoved(peer: peer, groups: groups)
        }
    }
}

// MARK: - the envelope of a payload

enum FastEventCoding {
    private enum Outcome<P> {
        case decoded(P)
        case upcast
        case failed(EventDecodingError)
    }

    /// Reads one stored payload body. Order of checks as in the Codable path: the text must be
    /// JSON (syntax errors anywhere are `malformed`), then `event_version` decides (a newer one is
    /// `unsupportedVersion` whatever the rest), then the fields (`malformed` when they do not fit).
    static func decode<P: JSONDecodablePayload>(_: P.Type, _ buf: UnsafeBufferPointer<UInt8>) throws(EventDecodingError) -> P {
        var r = JSONReader(buf)
        let outcome: Outcome<P>
        do throws(JSONReadError) {
            outcome = try read(P.self, &r)
        } catch {
            throw .malformed(type: P.type, reason: error.description)
        }
        switch outcome {
        case .decoded(let p): return p
        case .failed(let e): throw e
        case .upcast: return try EventCoding.decode(P.self, Array(buf))
        }
    }

    private static func read<P: JSONDecodablePayload>(_: P.Type, _ r: inout JSONReader) throws(JSONReadError) -> Outcome<P> {
        r.skipByteOrderMark()
        r.skipWhitespace()
        try r.beginObject()
        var fields = P.Fields()
        var versionSeen = false
        var version = 1
        var versionError: JSONReadError?
        // The first error met reading a field; the rest of the text is still validated, and a
        // newer event_version (possibly later in the object) takes precedence.
        var fieldError: JSONReadError?
        var first = true
        while let key = try r.nextKey(&first) {
            let (start, depth) = (r.pos, r.depth)
            if key.is("event_version") {
                if versionSeen { try r.skipValue(); continue }
                versionSeen = true
                if r.takeNull() { continue }
                do {
                    version = try r.readInt()
                } catch {
                    versionError = error
                    (r.pos, r.depth) = (start, depth)
                    try r.skipValue()
                }
                continue
            }
            if fieldError != nil { try r.skipValue(); continue }
            do {
                if try !fields.read(key, &r) { try r.skipValue() }
            } catch {
                fieldError = error
                (r.pos, r.depth) = (start, depth)
                try r.skipValue()  // a syntax error there is thrown now: the text is not JSON
            }
        }
        try r.expectEnd()
        if let versionError { throw versionError }
        guard version >= 1, version <= P.eventVersion else {
            return .failed(.unsupportedVersion(type: P.type, version: version))
        }
        if version < P.eventVersion { return .upcast }
        if let fieldError { throw fieldError }
        return .decoded(try fields.finish(&r))
    }
}
