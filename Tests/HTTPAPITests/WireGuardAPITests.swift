import ControlPlane
import Foundation
import HTTPAPI
import HTTPTypes
import TestSupport
import Testing

/// WireGuard identities over real HTTP: enrollment takes the agent's key and endpoints (validated, field named), the
/// views carry exactly the peers to reach, and never another tenant's.
@Suite(.serialized, .timeLimit(.minutes(3))) struct WireGuardAPITests {
    static func key(_ n: UInt8) -> String { Data([n] + [UInt8](repeating: 5, count: 31)).base64EncodedString() }

    static func route(peer: String, group: String, metric: Int) -> [String: Any] {
        ["network_id": "lan", "network": "10.20.0.0/24", "peer": peer, "metric": metric, "masquerade": true, "groups": [group], "enabled": true]
    }

    struct Tenant {
        var id: String
        var token: String
        var secret: String
        var group: String
    }

    func tenant(_ api: LiveAPI, _ name: String) async throws -> Tenant {
        let (id, token) = try await api.tenant(name)
        let g = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
        let key = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable"])
        return Tenant(id: id, token: token, secret: key.object["key"] as? String ?? "", group: g)
    }

    func enroll(_ api: LiveAPI, _ t: Tenant, _ name: String, key: UInt8?, endpoints: [String] = []) async throws -> Reply {
        var body: [String: Any] = ["setup_key": t.secret, "name": name, "os": "linux"]
        if let key { body["wireguard_public_key"] = Self.key(key) }
        if !endpoints.isEmpty { body["wireguard_endpoints"] = endpoints }
        return try await api.send(.post, "/api/agent/enroll", json: body)
    }

    @Test("enrollment validates the WireGuard key and endpoints, naming the field")
    func enrollmentValidation() async throws {
        try await LiveAPI.run { api in
            let t = try await tenant(api, "wg-validation")
            let ok = try await enroll(api, t, "r1", key: 1, endpoints: ["192.0.2.1:51820"])
            #expect(ok.status == 201, "\(ok.text)")
            #expect(ok.object["mesh_range"] as? String == "100.64.0.0/10")
            let cases: [([String: Any], String, Int)] = [
                (["wireguard_public_key": "short="], "wireguard_public_key", 422),
                (["wireguard_public_key": Self.key(2), "wireguard_endpoints": ["example.com:51820"]], "wireguard_endpoints", 422),
                (["wireguard_public_key": Self.key(2), "wireguard_endpoints": ["192.0.2.1:0"]], "wireguard_endpoints", 422),
                (["wireguard_endpoints": ["192.0.2.1:51820"]], "wireguard_public_key", 422),
                (["wireguard_public_key": Self.key(1)], "wireguard_public_key", 409),
            ]
            for (extra, field, status) in cases {
                var body: [String: Any] = ["setup_key": t.secret, "name": "x", "os": "linux"]
                body.merge(extra) { $1 }
                let r = try await api.send(.post, "/api/agent/enroll", json: body)
                #expect(r.status == status && r.object["field"] as? String == field, "\(extra): \(r.status) \(r.text)")
                #expect(!r.text.contains("SQL") && !r.text.contains("postgres"))
            }
        }
    }

    @Test("views carry the WireGuard peers to reach, of the tenant only")
    func viewsAndIsolation() async throws {
        try await LiveAPI.run { api in
            let a = try await tenant(api, "wg-a")
            let b = try await tenant(api, "wg-b")
            let r1 = try await enroll(api, a, "r1", key: 1, endpoints: ["192.0.2.1:51820"])
            let r2 = try await enroll(api, a, "r2", key: 2, endpoints: ["192.0.2.2:51820"])
            let c1 = try await enroll(api, a, "c1", key: 11)
            // Tenant b: a routing peer and a client of its own, with keys.
            let br = try await enroll(api, b, "br", key: 21, endpoints: ["198.51.100.1:51820"])
            let bc = try await enroll(api, b, "bc", key: 22)
            let ids = [r1, r2, c1, br, bc].map { $0.object["peer_id"] as? String ?? "" }
            for (t, member) in [(a, ids[2]), (b, ids[4])] {
                #expect(try await api.send(.put, "/api/groups/\(t.group)", token: t.token, json: ["name": "clients", "peers": [member]]).status == 200)
            }
            #expect(try await api.send(.post, "/api/routes", token: a.token, json: Self.route(peer: ids[0], group: a.group, metric: 100)).status == 200)
            #expect(try await api.send(.post, "/api/routes", token: a.token, json: Self.route(peer: ids[1], group: a.group, metric: 200)).status == 200)
            #expect(try await api.send(.post, "/api/routes", token: b.token, json: Self.route(peer: ids[3], group: b.group, metric: 100)).status == 200)
            let runner = ProjectionRunnerHandle(store: api.db.store)
            try await runner.catchUp(tenant: a.id)
            try await runner.catchUp(tenant: b.id)

            func wgPeers(_ enrolled: Reply) async throws -> [[String: Any]] {
                let v = try await api.send(.get, "/api/agent/view", token: enrolled.object["credential"] as? String ?? "")
                #expect(v.status == 200, "\(v.text)")
                return (v.object["view"] as? [String: Any])?["wireguard_peers"] as? [[String: Any]] ?? []
            }
            // The client reaches both candidates; each routing peer reaches the client.
            let clientPeers = try await wgPeers(c1)
            #expect(clientPeers.map { $0["peer_id"] as? String } == [ids[0], ids[1]].sorted().map { Optional($0) })
            #expect(clientPeers.first { $0["peer_id"] as? String == ids[0] }?["public_key"] as? String == Self.key(1))
            #expect(clientPeers.first { $0["peer_id"] as? String == ids[0] }?["endpoints"] as? [String] == ["192.0.2.1:51820"])
            #expect(try await wgPeers(r1).map { $0["peer_id"] as? String } == [ids[2]])
            // Isolation: no view of one tenant names a peer or key of the other.
            let aKeys = Set([1, 2, 11].map { Self.key(UInt8($0)) }), bKeys = Set([21, 22].map { Self.key(UInt8($0)) })
            for enrolled in [r1, r2, c1] {
                let keys = Set(try await wgPeers(enrolled).compactMap { $0["public_key"] as? String })
                #expect(keys.isDisjoint(with: bKeys))
            }
            for enrolled in [br, bc] {
                let peers = try await wgPeers(enrolled)
                #expect(Set(peers.compactMap { $0["public_key"] as? String }).isDisjoint(with: aKeys))
                #expect(!peers.isEmpty, "tenant b's own peers are there")
            }
            // And another tenant's API token reads nothing of them; no token reads nothing at all.
            #expect(try await api.send(.get, "/api/peers/\(ids[0])", token: b.token).status == 404)
            #expect(try await api.send(.get, "/api/agent/view").status == 401)
        }
    }
}
