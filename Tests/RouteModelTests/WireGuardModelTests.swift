import Foundation
import JSONKit
@testable import RouteModel
import TestSupport
import Testing

/// WireGuard identities on peers and in views: validation (field-naming errors), which peers a view carries, and that
/// events and views written before WireGuard keep decoding and keep their bytes.
@Suite struct WireGuardModelTests {
    static func key(_ n: UInt8) -> String { Data([n] + [UInt8](repeating: 7, count: 31)).base64EncodedString() }

    func enrollWG(_ id: String, os: String = "linux", ip: String, key: UInt8, endpoints: [String] = []) -> Command {
        .enrollPeer(id: PeerID(id), name: id, os: os, meshIP: ip,
                    wireguard: WireGuardIdentity(publicKey: Self.key(key), endpoints: endpoints))
    }

    /// r1, r2 (routing peers, keys 1 and 2), clients c1 (key 11), c2 (no key), c3 (key 13, in another group).
    func tenant() -> TenantState {
        build([
            enrollWG("r1", ip: "100.64.0.1", key: 1, endpoints: ["192.0.2.1:51820"]),
            enrollWG("r2", ip: "100.64.0.2", key: 2, endpoints: ["192.0.2.2:51820", "[2001:db8::2]:51820"]),
            enrollWG("c1", ip: "100.64.1.1", key: 11),
            enroll("c2", ip: "100.64.1.2"),
            enrollWG("c3", ip: "100.64.1.3", key: 13),
            group("clients", ["c1", "c2"]), group("others", ["c3"]),
            .createRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r1", metric: 100)),
            .createRoute(id: "b", route("lan", network: "10.20.0.0/24", peer: "r2", metric: 200)),
        ])
    }

    @Test func validationNamesTheField() throws {
        let good = Self.key(1)
        #expect(try WireGuardIdentity.validated(publicKey: nil, endpoints: nil) == nil)
        let ok = try WireGuardIdentity.validated(publicKey: good, endpoints: ["192.0.2.1:51820", "[2001:db8::1]:1", "192.0.2.1:51820"])
        #expect(ok == WireGuardIdentity(publicKey: good, endpoints: ["192.0.2.1:51820", "[2001:db8::1]:1"]))
        func field(_ key: String?, _ endpoints: [String]?) -> String? {
            do {
                _ = try WireGuardIdentity.validated(publicKey: key, endpoints: endpoints)
                return nil
            } catch { return "\(error)".components(separatedBy: ":").first }
        }
        // Keys: 31 and 33 bytes, not base64, no padding.
        for bad in [Data(count: 31).base64EncodedString(), Data(count: 33).base64EncodedString(), String(repeating: "!", count: 43) + "=",
                    String(good.dropLast())] {
            #expect(field(bad, nil) == "wireguard_public_key", "\(bad)")
        }
        #expect(field(nil, ["192.0.2.1:51820"]) == "wireguard_public_key")
        for bad in ["192.0.2.1", "192.0.2.1:0", "192.0.2.1:65536", "host.example:51820", "2001:db8::1:51820", "[192.0.2.1]:5",
                    "[2001:db8::1]51820", "192.0.2.1:+5", ""] {
            #expect(field(good, [bad]) == "wireguard_endpoints", "\(bad)")
        }
        #expect(field(good, (1...9).map { "192.0.2.\($0):1" }) == "wireguard_endpoints")
    }

    @Test func aKeyBelongsToOnePeer() {
        let s = tenant()
        let e = refusal(enrollWG("c9", ip: "100.64.1.9", key: 11), in: s)
        #expect(e?.kind == .alreadyExists && e?.field == "wireguard_public_key")
        let bad = refusal(.enrollPeer(id: "c9", name: "c9", os: "linux", meshIP: "100.64.1.9",
                                      wireguard: WireGuardIdentity(publicKey: "not a key")), in: s)
        #expect(bad?.kind == .invalidArgument && bad?.field == "wireguard_public_key")
    }

    @Test func clientsGetTheirCandidatesRoutingPeersGetTheirClients() throws {
        let s = tenant()
        let c1 = view(for: "c1", in: s)
        #expect(c1.wireguardPeers.map(\.peerID) == ["r1", "r2"])
        #expect(c1.wireguardPeers[1] == WireGuardPeer(peerID: "r2", meshIP: try IPAddress(parsing: "100.64.0.2"), publicKey: Self.key(2),
                                                      endpoints: ["192.0.2.2:51820", "[2001:db8::2]:51820"]))
        // c2 has no key of its own but still reaches its candidates.
        #expect(view(for: "c2", in: s).wireguardPeers.map(\.peerID) == ["r1", "r2"])
        // A routing peer gets the clients it serves that have a key (c1), not c2 (no key), not c3 (not a client), not r2.
        #expect(view(for: "r1", in: s).wireguardPeers.map(\.peerID) == ["c1"])
        #expect(view(for: "c3", in: s).wireguardPeers.isEmpty)
        // The canonical bytes carry them and decode back.
        let json = c1.canonicalJSON()
        #expect(String(decoding: json, as: UTF8.self).contains(#""wireguard_peers":[{"endpoints":["192.0.2.1:51820"],"mesh_ip":"100.64.0.1","peer_id":"r1","public_key":"#))
        let decoded = try JSONDecoder().decode(PeerRouteView.self, from: Data(json))
        #expect(decoded == c1)
    }

    @Test func viewsWithoutKeysKeepTheirBytes() throws {
        // The same tenant without any key: no wireguard_peers key at all, so digests stay what they were.
        let s = build([
            enroll("r1", ip: "100.64.0.1"), enroll("c1", ip: "100.64.1.1"), group("clients", ["c1"]),
            .createRoute(id: "a", route("lan", network: "10.20.0.0/24", peer: "r1")),
        ])
        let text = String(decoding: view(for: "c1", in: s).canonicalJSON(), as: UTF8.self)
        #expect(!text.contains("wireguard"))
        #expect(text.hasSuffix(#"],"peer_id":"c1"}"#))
        // A view written before WireGuard decodes with no peers.
        let old = #"{"forwards":[],"ha_sets":[],"peer_id":"c1"}"#
        #expect(try JSONDecoder().decode(PeerRouteView.self, from: Data(old.utf8)).wireguardPeers.isEmpty)
    }

    @Test func enrolmentEventsOldAndNewDecodeWithBothDecoders() throws {
        let old = #"{"enrolled_at":1,"event_version":1,"peer":{"id":"p1","ip":"100.64.0.1","name":"p1","os":"linux"},"setup_key_id":"k"}"#
        for decoded in [try RouteEvent.decode(type: "PeerEnrolled", json: Array(old.utf8)),
                        try RouteEvent.decodeWithFoundation(type: "PeerEnrolled", json: Array(old.utf8))] {
            guard case .peerEnrolled(let e) = decoded else { Issue.record("not PeerEnrolled"); continue }
            #expect(e.peer.wireguard == nil)
        }
        // A peer without a key encodes as before (no wireguard key written).
        let plain = RouteEvent.peerEnrolled(PeerEnrolled(peer: Peer(id: "p1", name: "p1", os: "linux", meshIP: try IPAddress(parsing: "100.64.0.1"))))
        #expect(!String(decoding: plain.encode().json, as: UTF8.self).contains("wireguard"))
        let withKey = RouteEvent.peerEnrolled(PeerEnrolled(peer: Peer(id: "p1", name: "p1", os: "linux", meshIP: try IPAddress(parsing: "100.64.0.1"),
                                                                     wireguard: WireGuardIdentity(publicKey: Self.key(3), endpoints: ["192.0.2.3:1"]))))
        let (type, json) = withKey.encode()
        #expect(try RouteEvent.decode(type: type, json: json) == withKey)
        #expect(try RouteEvent.decodeWithFoundation(type: type, json: json) == withKey)
    }

    @Test func membershipOfAClientWithAKeyTouchesTheRoutingPeers() {
        let s = tenant()
        // c3 (with a key) joins the clients: r1 and r2 now serve it.
        var after = s
        var affected = Set<PeerID>()
        for e in events(.addGroupPeers(id: "clients", peers: ["c3"]), in: s) { after.apply(e, affected: &affected) }
        #expect(affected.isSuperset(of: ["r1", "r2", "c3"]))
        #expect(view(for: "r1", in: after).wireguardPeers.map(\.peerID) == ["c1", "c3"])
    }
}
