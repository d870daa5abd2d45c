import JSONKit

/// A route's API body written with JSONKit's `JSONWriter` instead of Foundation's `JSONEncoder` (~78 k instructions of
/// a `PUT /api/routes/{id}`, callgrind). The bytes are exactly `jsonEncoder`'s (`.sortedKeys`, `.withoutEscapingSlashes`):
/// members sorted by name, `domains` null for a network route as NetBird writes it, the optional members left out when
/// absent; `RouteJSONWriterTests` compares both byte for byte.
extension RouteJSON {
    func write(_ w: inout JSONWriter) {
        if let access_control_groups {
            w.raw("{\"access_control_groups\":")
            w.strings(access_control_groups)
            w.raw(",\"description\":")
        } else {
            w.raw("{\"description\":")
        }
        w.string(description)
        w.raw(",\"domains\":")
        if let domains { w.strings(domains) } else { w.raw("null") }
        w.raw(",\"enabled\":")
        w.bool(enabled)
        w.raw(",\"groups\":")
        w.strings(groups)
        w.raw(",\"id\":")
        w.string(id)
        w.raw(",\"keep_route\":")
        w.bool(keep_route)
        w.raw(",\"masquerade\":")
        w.bool(masquerade)
        w.raw(",\"metric\":")
        w.int(metric)
        w.raw(",\"network\":")
        w.string(network)
        w.raw(",\"network_id\":")
        w.string(network_id)
        w.raw(",\"network_type\":")
        w.string(network_type)
        w.raw(",\"peer\":")
        w.string(peer)
        if let peer_groups {
            w.raw(",\"peer_groups\":")
            w.strings(peer_groups)
        }
        w.raw(",\"skip_auto_apply\":")
        w.bool(skip_auto_apply)
        if let skipped_routing_peers {
            w.raw(",\"skipped_routing_peers\":[")
            for (i, p) in skipped_routing_peers.enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{\"id\":")
                w.string(p.id)
                w.raw(",\"name\":")
                w.string(p.name)
                w.raw(",\"os\":")
                w.string(p.os)
                w.raw("}")
            }
            w.raw("]")
        }
        w.raw("}")
    }

    /// The body of one route.
    var jsonBytes: [UInt8] {
        var w = JSONWriter(capacity: 384)
        write(&w)
        return w.bytes
    }

    /// The body of a list of routes (a JSON array).
    static func jsonBytes(_ routes: [RouteJSON]) -> [UInt8] {
        var w = JSONWriter(capacity: 64 + 320 * routes.count)
        w.raw("[")
        for (i, r) in routes.enumerated() {
            if i > 0 { w.raw(",") }
            r.write(&w)
        }
        w.raw("]")
        return w.bytes
    }
}
