#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Crypto

/// What a peer's agent reports about its WireGuard interface: the public key (the private key never leaves the agent's
/// state folder) and the underlay endpoints other peers may send to. Carried on `Peer.wireguard` (so `PeerEnrolled`
/// stores it, an optional field: peers enrolled before WireGuard have none) and, for the peers an agent must reach, in
/// its view (`PeerRouteView.wireguardPeers`).
public struct WireGuardIdentity: Hashable, Sendable, Codable {
    /// Standard base64 of the 32-byte Curve25519 public key (44 characters), as `wg pubkey` prints it.
    public var publicKey: String
    /// `a.b.c.d:port` or `[v6]:port`, in the agent's order of preference, no duplicates; may be empty (a peer behind NAT
    /// that only initiates: its routing peers learn its address from its handshakes).
    public var endpoints: [String]

    public init(publicKey: String, endpoints: [String] = []) {
        self.publicKey = publicKey
        self.endpoints = endpoints
    }

    enum CodingKeys: String, CodingKey {
        case endpoints
        case publicKey = "public_key"
    }

    public static let maxEndpoints = 8

    /// Checks what an agent sent. `keyField`/`endpointsField`: the request's field names for messages.
    /// Endpoints without a key are refused (they are useless alone); both absent gives nil.
    public static func validated(publicKey: String?, endpoints: [String]?, keyField: String = "wireguard_public_key",
                                 endpointsField: String = "wireguard_endpoints") throws(ValidationError) -> WireGuardIdentity? {
        guard let publicKey else {
            if let endpoints, !endpoints.isEmpty {
                throw .invalid(keyField, "\(keyField) is required when \(endpointsField) is given")
            }
            return nil
        }
        guard isValidPublicKey(publicKey) else {
            throw .invalid(keyField, "\(keyField) must be the base64 of a 32-byte WireGuard public key (44 characters)")
        }
        let list = endpoints ?? []
        if list.count > maxEndpoints {
            throw .invalid(endpointsField, "\(endpointsField) may hold at most \(maxEndpoints) entries, got \(list.count)")
        }
        var seen = Set<String>()
        var out: [String] = []
        for (i, e) in list.enumerated() {
            guard let canonical = WireGuardEndpoint(parsing: e)?.description else {
                throw .invalid(endpointsField, "\(endpointsField)[\(i)] must be an IP address and port (a.b.c.d:port or [v6]:port), got \"\(e.prefix(64))\"")
            }
            if seen.insert(canonical).inserted { out.append(canonical) }
        }
        return WireGuardIdentity(publicKey: publicKey, endpoints: out)
    }

    /// Standard base64 (with padding) of exactly 32 bytes.
    public static func isValidPublicKey(_ text: String) -> Bool {
        guard text.utf8.count == 44, text.hasSuffix("="), !text.hasSuffix("==") else { return false }
        guard let data = Data(base64Encoded: text) else { return false }
        return data.count == 32
    }
}

/// An underlay endpoint: an IP address and a UDP port (host names are not taken: the agent reports addresses).
public struct WireGuardEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: Int

    public init(address: IPAddress, port: Int) {
        self.address = address
        self.port = port
    }

    public init?(parsing text: String) {
        let host: Substring, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portText), (1...65535).contains(port),
              let address = try? IPAddress(parsing: String(host)) else { return nil }
        if text.hasPrefix("[") != address.isV6 { return nil }
        self.address = address
        self.port = port
    }

    public var description: String { address.isV6 ? "[\(address)]:\(port)" : "\(address):\(port)" }
}

/// A peer the agent must have on its WireGuard interface: a candidate routing peer of one of its HA sets, or (on a
/// routing peer) a client it serves. Sorted by peer id in the view.
public struct WireGuardPeer: Hashable, Comparable, Sendable, Codable {
    public var peerID: PeerID
    public var meshIP: IPAddress
    public var publicKey: String
    public var endpoints: [String]

    public init(peerID: PeerID, meshIP: IPAddress, publicKey: String, endpoints: [String]) {
        self.peerID = peerID
        self.meshIP = meshIP
        self.publicKey = publicKey
        self.endpoints = endpoints
    }

    public static func < (a: WireGuardPeer, b: WireGuardPeer) -> Bool { a.peerID < b.peerID }

    enum CodingKeys: String, CodingKey {
        case endpoints
        case peerID = "peer_id"
        case meshIP = "mesh_ip"
        case publicKey = "public_key"
    }
}

extension TenantState {
    /// The peer holding `publicKey` as its WireGuard key, if any (a linear scan: enrollment only).
    public func peer(wireGuardKey publicKey: String) -> PeerID? {
        peers.values.first { $0.wireguard?.publicKey == publicKey }?.id
    }

    /// The WireGuard peers `peerID`'s agent must reach: the candidates of `haSets` and, for the routes it forwards
    /// (`forwards`), every member of their distribution groups (the clients it serves), itself excluded; only peers
    /// that reported a key.
    func wireGuardPeers(for peerID: PeerID, haSets: [HASet], forwards: [ForwardedRoute]) -> [WireGuardPeer] {
        var ids = Set<PeerID>()
        for s in haSets { for c in s.candidates { ids.insert(c.peerID) } }
        for f in forwards {
            guard let r = route(f.routeID) else { continue }
            ids.formUnion(members(of: r.groups))
        }
        ids.remove(peerID)
        var out: [WireGuardPeer] = []
        for id in ids {
            guard let p = peer(id), let wg = p.wireguard else { continue }
            out.append(WireGuardPeer(peerID: id, meshIP: p.meshIP, publicKey: wg.publicKey, endpoints: wg.endpoints))
        }
        return out.sorted()
    }
}

/// WireGuard key pairs (Curve25519, as `wg genkey` / `wg pubkey`): X25519 clamps the scalar itself, so the public key
/// computed here is the one WireGuard derives from the same private key.
public enum WireGuardKeys {
    /// A fresh private key, base64.
    public static func generatePrivateKey() -> String {
        Curve25519.KeyAgreement.PrivateKey().rawRepresentation.base64EncodedString()
    }

    /// The public key of a base64 private key; nil when it is not 32 bytes of base64.
    public static func publicKey(ofPrivate base64: String) -> String? {
        guard let raw = Data(base64Encoded: String(base64.filter { !$0.isWhitespace })), raw.count == 32,
              let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw) else { return nil }
        return key.publicKey.rawRepresentation.base64EncodedString()
    }
}
