import JSONKit

/// The stored JSON of the route events (`RouteCreated`, `RouteUpdated`, `RouteDeleted`: what API route writes append)
/// written with JSONKit's `JSONWriter` instead of Foundation's `JSONEncoder`, which cost ~205 k of the ~1.2 M
/// instructions of a `PUT /api/routes/{id}` (callgrind). The bytes are exactly `EventCoding.encode`'s — members in the
/// order `.sortedKeys` puts them, strings escaped as `JSONEncoder` escapes them with `.withoutEscapingSlashes` (the
/// escapes `JSONString` writes), integers in decimal, no whitespace — so events stored before and after read the same
/// and the audit log's bodies keep one form; `RouteEventEncodingTests` compares both byte for byte on every route
/// event shape. The other event types are rare per request and keep `JSONEncoder`.
enum FastEventEncoding {
    static func encode(_ e: RouteCreated) -> [UInt8] {
        var w = JSONWriter(capacity: 384)
        w.raw("{\"event_version\":")
        w.int(RouteCreated.eventVersion)
        w.raw(",\"route\":")
        route(e.route, &w)
        skipped(e.skippedRoutingPeers, &w)
        w.raw("}")
        return w.bytes
    }

    static func encode(_ e: RouteUpdated) -> [UInt8] {
        var w = JSONWriter(capacity: 768)
        w.raw("{\"event_version\":")
        w.int(RouteUpdated.eventVersion)
        w.raw(",\"new\":")
        route(e.new, &w)
        w.raw(",\"old\":")
        route(e.old, &w)
        skipped(e.skippedRoutingPeers, &w)
        w.raw("}")
        return w.bytes
    }

    static func encode(_ e: RouteDeleted) -> [UInt8] {
        var w = JSONWriter(capacity: 384)
        w.raw("{\"event_version\":")
        w.int(RouteDeleted.eventVersion)
        w.raw(",\"route\":")
        route(e.route, &w)
        w.raw("}")
        return w.bytes
    }

    /// `Route`'s Codable form (`Route.encode(to:)`), members sorted by name.
    static func route(_ r: Route, _ w: inout JSONWriter) {
        w.raw("{\"access_control_groups\":")
        w.strings(r.accessControlGroups.lazy.map(\.rawValue))
        w.raw(",\"description\":")
        w.string(r.description)
        if case .domains(let domains) = r.destination {
            w.raw(",\"domains\":")
            w.strings(domains)
        }
        w.raw(",\"enabled\":")
        w.bool(r.enabled)
        w.raw(",\"groups\":")
        w.strings(r.groups.lazy.map(\.rawValue))
        w.raw(",\"id\":")
        w.string(r.id.rawValue)
        w.raw(",\"keep_route\":")
        w.bool(r.keepRoute)
        w.raw(",\"masquerade\":")
        w.bool(r.masquerade)
        w.raw(",\"metric\":")
        w.int(r.metric)
        if case .network(let prefix) = r.destination {
            w.raw(",\"network\":")
            w.string(prefix.description)
        }
        w.raw(",\"network_id\":")
        w.string(r.networkID)
        w.raw(",\"network_type\":")
        w.string(r.destination.networkType)
        switch r.routingPeers {
        case .peer(let peer):
            w.raw(",\"peer\":")
            w.string(peer.rawValue)
        case .peerGroups(let groups):
            w.raw(",\"peer_groups\":")
            w.strings(groups.lazy.map(\.rawValue))
        }
        w.raw(",\"skip_auto_apply\":")
        w.bool(r.skipAutoApply)
        if let written = r.writtenDomains {
            w.raw(",\"written_domains\":")
            w.strings(written)
        }
        w.raw("}")
    }

    /// `"skipped_routing_peers"` (written only when not empty), after a member.
    static func skipped(_ peers: [SkippedRoutingPeer], _ w: inout JSONWriter) {
        guard !peers.isEmpty else { return }
        w.raw(",\"skipped_routing_peers\":[")
        for (i, p) in peers.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"id\":")
            w.string(p.id.rawValue)
            w.raw(",\"name\":")
            w.string(p.name)
            w.raw(",\"os\":")
            w.string(p.os)
            w.raw("}")
        }
        w.raw("]")
    }
}
