import JSONKit
import Crypto

/// Canonical JSON of a view: UTF-8, no whitespace, object keys in byte order, arrays in the view's
/// canonical order (the view keeps them sorted), strings escaped one way only (`\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`, everything else raw UTF-8).
/// Written by hand rather than by `JSONEncoder` so the bytes can never change under a Foundation
/// upgrade; decodes with `JSONDecoder` into `PeerRouteView` (same keys).
extension PeerRouteView {
    public func canonicalJSON() -> [UInt8] {
        var w = JSONWriter()
        w.raw("{\"forwards\":[")
        for (i, f) in forwards.enumerated() {
            if i > 0 { w.raw(",") }
            // Keys in byte order: domains < masquerade < network < network_id.
            w.raw("{")
            switch f.key.destination {
            case .domains:
                w.destination(f.key.destination)
                w.raw(",\"masquerade\":"); w.bool(f.masquerade)
            case .network:
                w.raw("\"masquerade\":"); w.bool(f.masquerade)
                w.raw(",")
                w.destination(f.key.destination)
            }
            w.raw(",\"network_id\":"); w.string(f.key.networkID)
            w.raw(",\"network_type\":"); w.string(f.key.destination.networkType)
            w.raw(",\"route_id\":"); w.string(f.routeID.rawValue)
            // Only for a route with access-control groups: other views keep the bytes they had before policies.
            if let rules = f.rules {
                w.raw(",\"rules\":[")
                for (k, rule) in rules.enumerated() {
                    if k > 0 { w.raw(",") }
                    w.forwardRule(rule)
                }
                w.raw("]")
            }
            w.raw("}")
        }
        w.raw("],\"ha_sets\":[")
        for (i, s) in haSets.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"candidates\":[")
            for (j, c) in s.candidates.enumerated() {
                if j > 0 { w.raw(",") }
                // `draining` only when set: views without a drained candidate keep the bytes (and
                // digests) they had before drain mode existed.
                w.raw("{")
                if c.draining { w.raw("\"draining\":true,") }
                w.raw("\"keep_route\":"); w.bool(c.keepRoute)
                w.raw(",\"masquerade\":"); w.bool(c.masquerade)
                w.raw(",\"mesh_ip\":"); w.address(c.meshIP)
                w.raw(",\"metric\":"); w.int(c.metric)
                w.raw(",\"peer_id\":"); w.string(c.peerID.rawValue)
                w.raw(",\"route_id\":"); w.string(c.routeID.rawValue)
                w.raw(",\"skip_auto_apply\":"); w.bool(c.skipAutoApply)
                w.raw("}")
            }
            w.raw("],")
            w.destination(s.key.destination)
            w.raw(",\"network_id\":"); w.string(s.key.networkID)
            w.raw(",\"network_type\":"); w.string(s.key.destination.networkType)
            w.raw("}")
        }
        w.raw("],\"peer_id\":"); w.string(peerID.rawValue)
        // Only when some peer to reach has a WireGuard key: other views keep the bytes they had before WireGuard.
        if !wireguardPeers.isEmpty {
            w.raw(",\"wireguard_peers\":[")
            for (i, p) in wireguardPeers.enumerated() {
                if i > 0 { w.raw(",") }
                // Keys in byte order: endpoints < mesh_ip < peer_id < public_key.
                w.raw("{\"endpoints\":[")
                for (j, e) in p.endpoints.enumerated() {
                    if j > 0 { w.raw(",") }
                    w.string(e)
                }
                w.raw("],\"mesh_ip\":"); w.address(p.meshIP)
                w.raw(",\"peer_id\":"); w.string(p.peerID.rawValue)
                w.raw(",\"public_key\":"); w.string(p.publicKey)
                w.raw("}")
            }
            w.raw("]")
        }
        w.raw("}")
        return w.bytes
    }

    /// SHA-256 of `canonicalJSON()`, lowercase hex.
    public var digest: String { Self.digest(of: canonicalJSON()) }

    /// Canonical bytes and their digest, computed once.
    public func encoded() -> (json: [UInt8], digest: String) {
        let json = canonicalJSON()
        return (json, Self.digest(of: json))
    }

    public static func digest(of bytes: [UInt8]) -> String { SHA256Hex.of(bytes) }
}

/// SHA-256 as lowercase hex: view digests (and so the envelope's), and the stored hashes of secrets.
public enum SHA256Hex {
    public static func of<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in SHA256.hash(data: Array(bytes)) {
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The view's own values, written the canonical way (IPv4 without an intermediate String).
extension JSONWriter {
    /// An address as a JSON string; IPv4 without building an intermediate String.
    mutating func address(_ a: IPAddress) {
        guard a.isV4 else { string(a.description); return }
        let v = UInt32(truncatingIfNeeded: a.low)
        bytes.append(UInt8(ascii: "\""))
        int(Int(v >> 24)); bytes.append(UInt8(ascii: "."))
        int(Int((v >> 16) & 0xff)); bytes.append(UInt8(ascii: "."))
        int(Int((v >> 8) & 0xff)); bytes.append(UInt8(ascii: "."))
        int(Int(v & 0xff))
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func prefix(_ p: Prefix) {
        guard p.isV4 else { string(p.description); return }
        address(p.address)
        bytes.removeLast()
        bytes.append(UInt8(ascii: "/"))
        int(p.length)
        bytes.append(UInt8(ascii: "\""))
    }

    /// A forward rule, keys in byte order: action < port_ranges < ports < protocol < sources.
    mutating func forwardRule(_ r: ForwardRule) {
        raw("{\"action\":"); string(r.action.rawValue)
        raw(",\"port_ranges\":[")
        for (i, range) in r.portRanges.enumerated() {
            if i > 0 { raw(",") }
            raw("{\"end\":"); int(range.end)
            raw(",\"start\":"); int(range.start)
            raw("}")
        }
        raw("],\"ports\":[")
        for (i, port) in r.ports.enumerated() {
            if i > 0 { raw(",") }
            int(port)
        }
        raw("],\"protocol\":"); string(r.protocol.rawValue)
        raw(",\"sources\":[")
        for (i, a) in r.sources.enumerated() {
            if i > 0 { raw(",") }
            address(a)
        }
        raw("]}")
    }

    /// Writes `"domains":[…]` or `"network":"…"` (the keys sort the same way in both objects).
    mutating func destination(_ d: RouteDestination) {
        switch d {
        case .network(let p):
            raw("\"network\":"); prefix(p)
        case .domains(let ds):
            raw("\"domains\":[")
            for (i, x) in ds.enumerated() {
                if i > 0 { raw(",") }
                string(x)
            }
            raw("]")
        }
    }
}
