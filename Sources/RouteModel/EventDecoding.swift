import JSONKit

/// Decoding stored events with JSONKit's `JSONReader` (the hot path of every projection rebuild),
/// applying exactly the rules of the Codable implementations, which stay the reference
/// (`RouteEvent.decodeWithFoundation`, compared in `FastDecodingTests`):
/// - required keys must be present and not null; optional keys (`decodeIfPresent`) may be
///   absent or null; unknown keys are ignored; the first of duplicated keys wins (`JSONField`);
/// - `Route`: `network` (a `Prefix`) else `domains`, `peer` else `peer_groups`, each looked at
///   only when the one before it is absent or null (as the Codable `init(from:)` does);
///   `network_type` is never read;
/// - `event_version`: absent or null is 1; a newer version than the code knows is
///   `unsupportedVersion` even when the rest of the body would not decode; an older one goes
///   through the payload's Codable `upcast` (no payload has one yet).

// MARK: - entities

extension JSONReadable where Self: StringIdentifier {
    @inlinable
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> Self { Self(rawValue: try r.readString()) }
}

extension RouteID: JSONReadable {}
extension GroupID: JSONReadable {}
extension PeerID: JSONReadable {}
extension SetupKeyID: JSONReadable {}

extension Route: JSONReadable {
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> Route {
        var id = JSONField<RouteID>(), networkID = JSONField<String>(), description = JSONField<String>()
        var network = JSONField<Prefix>(), peer = JSONField<PeerID>()
        // The alternatives are read later, and only when needed (see `finish`).
        var domainsAt: Int?, peerGroupsAt: Int?
        var metric = JSONField<Int>(), masquerade = JSONField<Bool>(), groups = JSONField<[GroupID]>(), enabled = JSONField<Bool>()
        var keepRoute = JSONField<Bool>(), accessControlGroups = JSONField<[GroupID]>(), skipAutoApply = JSONField<Bool>()
        var writtenDomains = JSONField<[String]>()
        try r.readObject { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "id": try id.read(&r)
            case "network_id": try networkID.read(&r)
            case "description": try description.readNullable(&r)
            case "network": try network.readNullable(&r)
            case "domains":
                if domainsAt == nil { domainsAt = r.pos }
                try r.skipValue()
            case "peer": try peer.readNullable(&r)
            case "peer_groups":
                if peerGroupsAt == nil { peerGroupsAt = r.pos }
                try r.skipValue()
            case "metric": try metric.read(&r)
            case "masquerade": try masquerade.read(&r)
            case "groups": try groups.read(&r)
            case "enabled": try enabled.read(&r)
            case "keep_route": try keepRoute.readNullable(&r)
            case "access_control_groups": try accessControlGroups.readNullable(&r)
            case "skip_auto_apply": try skipAutoApply.readNullable(&r)
            case "written_domains": try writtenDomains.readNullable(&r)
            default: return false
            }
            return true
        }
        let routeID = try id.required("id", r), routeNetworkID = try networkID.required("network_id", r)
        let destination: RouteDestination
        if let network = network.value {
            destination = .network(network)
        } else if let at = domainsAt, let d = try r.at(at, { (r: inout JSONReader) throws(JSONReadError) in try r.readOptional([String].read(from:)) }) {
            destination = .domains(d)
        } else {
            throw r.fail("route has neither network nor domains")
        }
        let routingPeers: RoutingPeers
        if let peer = peer.value {
            routingPeers = .peer(peer)
        } else if let at = peerGroupsAt, let g = try r.at(at, { (r: inout JSONReader) throws(JSONReadError) in try r.readOptional([GroupID].read(from:)) }) {
            routingPeers = .peerGroups(g)
        } else {
            throw r.fail("route has neither peer nor peer_groups")
        }
        return Route(
            id: routeID, networkID: routeNetworkID, description: description.value ?? "", destination: destination, routingPeers: routingPeers,
            metric: try metric.required("metric", r), masquerade: try masquerade.required("masquerade", r),
            groups: try groups.required("groups", r), enabled: try enabled.required("enabled", r),
            keepRoute: keepRoute.value ?? false, accessControlGroups: accessControlGroups.value ?? [], skipAutoApply: skipAutoApply.value ?? false,
            writtenDomains: writtenDomains.value)
    }
}

extension Group: JSONReadable {
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> Group {
        var id = JSONField<GroupID>(), name = JSONField<String>(), peers = JSONField<[PeerID]>()
        try r.readObject { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "id": try id.read(&r)
            case "name": try name.read(&r)
            case "peers": try peers.read(&r)
            default: return false
            }
            return true
        }
        return Group(id: try id.required("id", r), name: try name.required("name", r), peers: try peers.required("peers", r))
    }
}

extension Peer: JSONReadable {
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> Peer {
        var id = JSONField<PeerID>(), name = JSONField<String>(), os = JSONField<String>(), meshIP = JSONField<IPAddress>()
        var draining = JSONField<Bool>()  // optional: absent or null is false (events written before drain mode lack it)
        var wireguard = JSONField<WireGuardIdentity>()  // optional: events written before WireGuard lack it
        try r.readObject { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "id": try id.read(&r)
            case "name": try name.read(&r)
            case "os": try os.read(&r)
            case "ip": try meshIP.read(&r)
            case "draining": try draining.readNullable(&r)
            case "wireguard": try wireguard.readNullable(&r)
            default: return false
            }
            return true
        }
        return Peer(id: try id.required("id", r), name: try name.required("name", r), os: try os.required("os", r),
                    meshIP: try meshIP.required("ip", r), draining: draining.value ?? false, wireguard: wireguard.value)
    }
}

extension WireGuardIdentity: JSONReadable {
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> WireGuardIdentity {
        var key = JSONField<String>(), endpoints = JSONField<[String]>()
        try r.readObject { (k, r) throws(JSONReadError) -> Bool in
            switch k {
            case "public_key": try key.read(&r)
            case "endpoints": try endpoints.readNullable(&r)
            default: return false
            }
            return true
        }
        return WireGuardIdentity(publicKey: try key.required("public_key", r), endpoints: endpoints.value ?? [])
    }
}

extension Prefix: JSONReadable {
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> Prefix {
        let at = r.pos
        if r.peek == UInt8(ascii: "\"") {
            // Fast path for the common `a.b.c.d/n`, exactly as `Prefix(parsing:)` reads it; any
            // other text (IPv6, escapes, errors) takes the general parser below.
            let (start, end, escaped) = try r.scanString()
            if !escaped {
                var i = start
                if let v4 = DottedQuad.parse(r.buf, &i, end), i < end, r.buf[i] == UInt8(ascii: "/"),
                   let length = DottedQuad.prefixLength(r.buf, i + 1, end, max: 32) {
                    return Prefix(IPAddress(v4: v4), length: length)
                }
            }
            r.pos = at
        }
        let text = try r.readString()
        do {
            return try Prefix(parsing: text)
        } catch {
            throw JSONReadError(reason: error.description, offset: at)
        }
    }
}

extension IPAddress: JSONReadable {
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> IPAddress {
        let at = r.pos
        if r.peek == UInt8(ascii: "\"") {
            let (start, end, escaped) = try r.scanString()
            if !escaped {
                var i = start
                if let v4 = DottedQuad.parse(r.buf, &i, end), i == end { return IPAddress(v4: v4) }
            }
            r.pos = at
        }
        let text = try r.readString()
        do {
            return try IPAddress(parsing: text)
        } catch {
            throw JSONReadError(reason: "\(error.input): \(error.reason)", offset: at)
        }
    }
}

/// The IPv4 fast paths of `Prefix.read` and `IPAddress.read`.
enum DottedQuad {
    /// A dotted quad from `i` as `IPAddress.parseV4` accepts it (four decimal octets, no leading
    /// zeros, each ≤ 255), stopping at the first byte that is not a digit or dot; nil if there is
    /// none (the caller then uses the general parser, which gives the error).
    @inline(__always)
    static func parse(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int, _ end: Int) -> UInt32? {
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
}

// MARK: - payloads

/// A payload that `JSONReader` decodes: it reads its top-level members (all but `event_version`)
/// from `object` and builds itself.
protocol FastDecodablePayload: EventPayload {
    static func read(_ object: inout PayloadObject) throws(JSONReadError) -> Self
}

extension RouteCreated: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self {
        var route = JSONField<Route>(), skipped = JSONField<[SkippedRoutingPeer]>()
        try o.members { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "route": try route.read(&r)
            case "skipped_routing_peers": try skipped.readNullable(&r)
            default: return false
            }
            return true
        }
        return Self(route: try o.required(route, "route"), skippedRoutingPeers: skipped.value ?? [])
    }
}

extension SkippedRoutingPeer: JSONReadable {
    public static func read(from r: inout JSONReader) throws(JSONReadError) -> SkippedRoutingPeer {
        var id = JSONField<PeerID>(), name = JSONField<String>(), os = JSONField<String>()
        try r.readObject { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "id": try id.read(&r)
            case "name": try name.read(&r)
            case "os": try os.read(&r)
            default: return false
            }
            return true
        }
        return SkippedRoutingPeer(id: try id.required("id", r), name: try name.required("name", r), os: try os.required("os", r))
    }
}

extension RouteDeleted: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self { Self(route: try o.only("route")) }
}

extension GroupCreated: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self { Self(group: try o.only("group")) }
}

extension GroupDeleted: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self { Self(group: try o.only("group")) }
}

extension RouteUpdated: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self {
        var old = JSONField<Route>(), new = JSONField<Route>(), skipped = JSONField<[SkippedRoutingPeer]>()
        try o.members { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "old": try old.read(&r)
            case "new": try new.read(&r)
            case "skipped_routing_peers": try skipped.readNullable(&r)
            default: return false
            }
            return true
        }
        return Self(old: try o.required(old, "old"), new: try o.required(new, "new"), skippedRoutingPeers: skipped.value ?? [])
    }
}

extension GroupUpdated: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self {
        var groupID = JSONField<GroupID>(), oldName = JSONField<String>(), name = JSONField<String>()
        try o.members { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "group_id": try groupID.read(&r)
            case "old_name": try oldName.read(&r)
            case "name": try name.read(&r)
            default: return false
            }
            return true
        }
        return Self(groupID: try o.required(groupID, "group_id"), oldName: try o.required(oldName, "old_name"), name: try o.required(name, "name"))
    }
}

extension GroupMembersChanged: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self {
        var groupID = JSONField<GroupID>(), added = JSONField<[PeerID]>(), removed = JSONField<[PeerID]>()
        try o.members { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "group_id": try groupID.read(&r)
            case "added_peers": try added.read(&r)
            case "removed_peers": try removed.read(&r)
            default: return false
            }
            return true
        }
        return Self(groupID: try o.required(groupID, "group_id"), added: try o.required(added, "added_peers"),
                    removed: try o.required(removed, "removed_peers"))
    }
}

extension PeerEnrolled: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self {
        var peer = JSONField<Peer>(), setupKeyID = JSONField<SetupKeyID>(), enrolledAt = JSONField<Int64>()
        try o.members { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "peer": try peer.read(&r)
            case "setup_key_id": try setupKeyID.readNullable(&r)
            case "enrolled_at": try enrolledAt.readNullable(&r)
            default: return false
            }
            return true
        }
        return Self(peer: try o.required(peer, "peer"), setupKeyID: setupKeyID.value, enrolledAt: enrolledAt.value)
    }
}

extension PeerRenamed: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self {
        var peerID = JSONField<PeerID>(), oldName = JSONField<String>(), name = JSONField<String>()
        try o.members { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "peer_id": try peerID.read(&r)
            case "old_name": try oldName.read(&r)
            case "name": try name.read(&r)
            default: return false
            }
            return true
        }
        return Self(peerID: try o.required(peerID, "peer_id"), oldName: try o.required(oldName, "old_name"), name: try o.required(name, "name"))
    }
}

extension PeerDrainingChanged: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self {
        var peerID = JSONField<PeerID>(), draining = JSONField<Bool>()
        try o.members { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "peer_id": try peerID.read(&r)
            case "draining": try draining.read(&r)
            default: return false
            }
            return true
        }
        return Self(peerID: try o.required(peerID, "peer_id"), draining: try o.required(draining, "draining"))
    }
}

extension PeerRemoved: FastDecodablePayload {
    static func read(_ o: inout PayloadObject) throws(JSONReadError) -> Self {
        var peer = JSONField<Peer>(), groups = JSONField<[GroupID]>()
        try o.members { (key, r) throws(JSONReadError) -> Bool in
            switch key {
            case "peer": try peer.read(&r)
            case "removed_from_groups": try groups.read(&r)
            default: return false
            }
            return true
        }
        return Self(peer: try o.required(peer, "peer"), groups: try o.required(groups, "removed_from_groups"))
    }
}

// MARK: - the envelope of a payload

/// The top-level object of a stored payload body. `members` reads it, taking `event_version`
/// itself; when the version (or an error) says the payload is not to be built from its members,
/// it throws and leaves `outcome` set for `FastEventCoding.decode`.
struct PayloadObject {
    enum Outcome {
        case unsupportedVersion(Int)
        case upcast
    }

    var reader: JSONReader
    let currentVersion: Int
    private(set) var outcome: Outcome?

    init(_ buf: UnsafeBufferPointer<UInt8>, currentVersion: Int) {
        reader = JSONReader(buf)
        self.currentVersion = currentVersion
    }

    /// Reads the object. Order of checks as in the Codable path: the text must be JSON (syntax
    /// errors anywhere are thrown), then `event_version` decides (a newer one is
    /// `unsupportedVersion` whatever the rest), then the first error `member` met.
    @inline(__always)
    mutating func members(_ member: (JSONKey, inout JSONReader) throws(JSONReadError) -> Bool) throws(JSONReadError) {
        reader.skipByteOrderMark()
        reader.skipWhitespace()
        try reader.beginObject()
        var versionSeen = false
        var version = 1
        var versionError: JSONReadError?
        // The first error met reading a member; the rest of the text is still validated, and a
        // newer event_version (possibly later in the object) takes precedence.
        var fieldError: JSONReadError?
        var first = true
        while let key = try reader.nextKey(&first) {
            let (start, depth) = (reader.pos, reader.depth)
            if key.is("event_version") {
                if versionSeen { try reader.skipValue(); continue }
                versionSeen = true
                if reader.takeNull() { continue }
                do {
                    version = try reader.readInt()
                } catch {
                    versionError = error
                    (reader.pos, reader.depth) = (start, depth)
                    try reader.skipValue()
                }
                continue
            }
            if fieldError != nil { try reader.skipValue(); continue }
            do {
                if try !member(key, &reader) { try reader.skipValue() }
            } catch {
                fieldError = error
                (reader.pos, reader.depth) = (start, depth)
                try reader.skipValue()  // a syntax error there is thrown now: the text is not JSON
            }
        }
        try reader.expectEnd()
        if let versionError { throw versionError }
        guard version >= 1, version <= currentVersion else {
            outcome = .unsupportedVersion(version)
            throw reader.fail("event_version \(version)")
        }
        if version < currentVersion {
            outcome = .upcast
            throw reader.fail("event_version \(version)")
        }
        if let fieldError { throw fieldError }
    }

    /// Reads an object with the one member `key`.
    mutating func only<Value: JSONReadable>(_ key: StaticString) throws(JSONReadError) -> Value {
        var field = JSONField<Value>()
        try members { (k, r) throws(JSONReadError) -> Bool in
            guard k.is(key) else { return false }
            try field.read(&r)
            return true
        }
        return try required(field, "\(key)")
    }

    func required<Value>(_ field: JSONField<Value>, _ key: String) throws(JSONReadError) -> Value {
        try field.required(key, reader)
    }
}

enum FastEventCoding {
    /// Reads one stored payload body (see `PayloadObject.members` for the order of checks).
    static func decode<P: FastDecodablePayload>(_: P.Type, _ buf: UnsafeBufferPointer<UInt8>) throws(EventDecodingError) -> P {
        var object = PayloadObject(buf, currentVersion: P.eventVersion)
        do throws(JSONReadError) {
            return try P.read(&object)
        } catch {
            switch object.outcome {
            case .unsupportedVersion(let version): throw .unsupportedVersion(type: P.type, version: version)
            case .upcast: return try EventCoding.decode(P.self, Array(buf))
            case nil: throw .malformed(type: P.type, reason: error.description)
            }
        }
    }
}
