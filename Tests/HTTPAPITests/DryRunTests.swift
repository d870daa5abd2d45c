import ControlPlane
import EventStore
import Foundation
import HTTPAPI
import HTTPTypes
import PostgresClient
import Projections
import RouteModel
import Testing
import TestSupport

/// `?dry_run=true` on the writes of routes, groups, peers and setup keys, over real HTTP and PostgreSQL: the answer equals
/// what the real call then does (events, affected peers, the projection's view changes), a dry run leaves no row anywhere,
/// answers the real call's errors (validation, 412 on a stale If-Match, 403 for a read-only token), and sees one tenant only.
@Suite("Dry runs", .serialized, .timeLimit(.minutes(5)))
struct DryRunTests {
    static func route(peer: String? = nil, peerGroups: [String]? = nil, groups: [String], network: String = "10.20.0.0/24",
                      networkID: String = "lan", metric: Int = 100, enabled: Bool = true, masquerade: Bool = true) -> [String: Any] {
        var body: [String: Any] = ["network_id": networkID, "network": network, "metric": metric, "masquerade": masquerade,
                                   "groups": groups, "enabled": enabled, "description": ""]
        if let peer { body["peer"] = peer }
        if let peerGroups { body["peer_groups"] = peerGroups }
        return body
    }

    @Test("a dry run of every write leaves no event, outbox row, credential or audit entry, and the real call then does what it said")
    func noTrace() async throws {
        try await LiveAPI.run { api in
            let (tenant, token) = try await api.tenant("acme")
            let clients = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
            let peers = try await api.enroll(token, names: ["r1", "c1", "c2"], autoGroups: [clients])
            let projection = ProjectionRunnerHandle(store: api.db.store)
            try await projection.catchUp(tenant: tenant)
            let routeID = try await api.send(.post, "/api/routes", token: token, json: Self.route(peer: peers[0], groups: [clients])).id
            let keyID = try await api.send(.post, "/api/setup-keys", token: token, json: ["name": "k2", "type": "reusable"]).id
            try await projection.catchUp(tenant: tenant)

            let writes: [(HTTPRequest.Method, String, [String: Any]?)] = [
                (.post, "/api/routes", Self.route(peer: peers[0], groups: [clients], network: "10.30.0.0/24")),
                (.put, "/api/routes/\(routeID)", Self.route(peer: peers[0], groups: [clients], metric: 50)),
                (.delete, "/api/routes/\(routeID)", nil),
                (.post, "/api/groups", ["name": "more", "peers": [peers[1]]]),
                (.put, "/api/groups/\(clients)", ["name": "clients", "peers": [peers[1]]]),
                (.put, "/api/peers/\(peers[0])", ["name": "r1", "draining": true]),
                (.delete, "/api/peers/\(peers[0])", nil),
                (.post, "/api/setup-keys", ["name": "k3", "type": "one-off"]),
                (.put, "/api/setup-keys/\(keyID)", ["revoked": true, "auto_groups": [String]()]),
                (.delete, "/api/setup-keys/\(keyID)", nil),
            ]
            let before = try await DryRunTrace.read(api)
            let auditBefore = try await DryRunTrace.auditEntries(api, token: token)
            for (method, path, body) in writes {
                let reply = try await api.send(method, path + "?dry_run=true", token: token, json: body)
                #expect(reply.status == 200, "\(method) \(path): \(reply.text)")
                let answer = try reply.decode(DryRunAnswer.self)
                #expect(answer.dry_run)
                #expect(!answer.events.isEmpty, "\(method) \(path) would change something")
                #expect(answer.base_sequence > 0)
            }
            // Nothing anywhere: the tables a write touches, and the audit log the API reads.
            try await projection.catchUp(tenant: tenant)
            #expect(try await DryRunTrace.read(api) == before)
            #expect(try await DryRunTrace.auditEntries(api, token: token) == auditBefore)

            // The route removal a dry run of the routing peer's deletion announces: c1 and c2 lose their client route,
            // r1 its forward; and the real call then does exactly that.
            let preview = try await api.send(.delete, "/api/peers/\(peers[0])?dry_run=true", token: token).decode(DryRunAnswer.self)
            #expect(preview.events.map(\.type) == ["RouteUpdated", "PeerRemoved"])
            #expect(Set(preview.views.map(\.peerID.rawValue)) == Set(peers))
            for diff in preview.views where diff.peerID.rawValue != peers[0] {
                #expect(diff.removed.map(\.routeID.rawValue) == [routeID])
                #expect(diff.removed.first?.via?.rawValue == peers[0])
            }
            let viewsBefore = try await api.storedViews(tenant)
            #expect(try await api.send(.delete, "/api/peers/\(peers[0])", token: token).status == 200)
            try await projection.catchUp(tenant: tenant)
            let viewsAfter = try await api.storedViews(tenant)
            for diff in preview.views {
                let p = diff.peerID
                #expect(ViewDiff(from: viewsBefore[p.rawValue] ?? .empty(p), to: viewsAfter[p.rawValue] ?? .empty(p)) == diff)
            }
            let stored = try await api.storedEvents(tenant, after: preview.base_sequence)
            #expect(stored.map(\.type) == preview.events.map(\.type))
            #expect(stored.map(\.sequence) == preview.events.map(\.sequence))
        }
    }

    @Test("a dry run answers the real call's errors: validation (same message and field), 404, 412 on a stale If-Match, 403 for a read-only token")
    func sameErrors() async throws {
        try await LiveAPI.run { api in
            let (tenant, token) = try await api.tenant("acme")
            let readOnly = try await api.controller.controlPlane.createToken(tenant: tenant, name: "auditor", scope: .readOnly).token
            let clients = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
            let peers = try await api.enroll(token, names: ["r1"], autoGroups: [clients])
            let created = try await api.send(.post, "/api/routes", token: token, json: Self.route(peer: peers[0], groups: [clients]))
            let routeID = created.id
            let etag = try #require(created.etag)

            let bad: [(HTTPRequest.Method, String, [String: Any]?)] = [
                (.post, "/api/routes", Self.route(peer: peers[0], groups: [clients], metric: 0)),
                (.post, "/api/routes", Self.route(peer: peers[0], groups: ["nope"])),
                (.put, "/api/routes/missing", Self.route(peer: peers[0], groups: [clients])),
                (.delete, "/api/groups/\(clients)", nil),                  // still used by the route
                (.post, "/api/groups", ["name": ""]),
                (.put, "/api/peers/\(peers[0])", ["name": ""]),
                (.post, "/api/setup-keys", ["name": "k", "type": "sometimes"]),
            ]
            let before = try await DryRunTrace.read(api)
            for (method, path, body) in bad {
                let dry = try await api.send(method, path + "?dry_run=true", token: token, json: body)
                let real = try await api.send(method, path, token: token, json: body)
                #expect(dry.status == real.status, "\(method) \(path): dry \(dry.status) \(dry.text), real \(real.status) \(real.text)")
                #expect(dry.status >= 400)
                #expect(dry.message == real.message)
                #expect(dry.object["field"] as? String == real.object["field"] as? String)
            }
            #expect(try await DryRunTrace.read(api) == before)

            // If-Match: the current version previews, a stale one is 412 as for real.
            let current = try await api.send(.put, "/api/routes/\(routeID)?dry_run=true", token: token,
                                             json: Self.route(peer: peers[0], groups: [clients], metric: 7), headers: [.ifMatch: etag])
            #expect(current.status == 200, "\(current.text)")
            #expect(try await api.send(.put, "/api/routes/\(routeID)", token: token, json: Self.route(peer: peers[0], groups: [clients], metric: 8)).status == 200)
            for (method, body) in [(HTTPRequest.Method.put, Self.route(peer: peers[0], groups: [clients], metric: 9)), (.delete, nil)] as [(HTTPRequest.Method, [String: Any]?)] {
                let dry = try await api.send(method, "/api/routes/\(routeID)?dry_run=true", token: token, json: body, headers: [.ifMatch: etag])
                let real = try await api.send(method, "/api/routes/\(routeID)", token: token, json: body, headers: [.ifMatch: etag])
                #expect(dry.status == 412, "\(dry.text)")
                #expect(real.status == 412, "\(real.text)")
                #expect(dry.message == real.message)
            }

            // A read-only token: 403 on a dry run as on the real call (the scope is checked by method, before any handler).
            let ro = try await api.send(.post, "/api/routes?dry_run=true", token: readOnly, json: Self.route(peer: peers[0], groups: [clients]))
            #expect(ro.status == 403, "\(ro.text)")
            #expect(ro.message.contains("permission denied"))

            // A malformed dry_run is refused by name; where no dry run is offered (tokens) it is refused, never written.
            let malformed = try await api.send(.post, "/api/routes?dry_run=maybe", token: token, json: Self.route(peer: peers[0], groups: [clients]))
            #expect(malformed.status == 400)
            #expect(malformed.object["field"] as? String == "dry_run")
            let tokensBefore = try await DryRunTrace.read(api)
            let tokenDry = try await api.send(.post, "/api/users/\(tenant)/tokens?dry_run=true", token: token, json: ["name": "t", "expires_in": 1])
            #expect(tokenDry.status == 400, "\(tokenDry.text)")
            #expect(tokenDry.object["field"] as? String == "dry_run")
            #expect(try await DryRunTrace.read(api) == tokensBefore)
        }
    }

    @Test("isolation: another tenant's token dry-runs nothing of this tenant (404, its own state only); no credentials is 401")
    func isolation() async throws {
        try await LiveAPI.run { api in
            let (tenantA, tokenA) = try await api.tenant("a")
            let (_, tokenB) = try await api.tenant("b")
            let clients = try await api.send(.post, "/api/groups", token: tokenA, json: ["name": "clients"]).id
            let peers = try await api.enroll(tokenA, names: ["r1", "c1"], autoGroups: [clients])
            try await ProjectionRunnerHandle(store: api.db.store).catchUp(tenant: tenantA)
            let routeID = try await api.send(.post, "/api/routes", token: tokenA, json: Self.route(peer: peers[0], groups: [clients])).id

            for (method, path, body) in [
                (HTTPRequest.Method.put, "/api/routes/\(routeID)", Self.route(peer: peers[0], groups: [clients])),
                (.delete, "/api/routes/\(routeID)", nil), (.delete, "/api/groups/\(clients)", nil),
                (.put, "/api/peers/\(peers[0])", ["name": "x", "draining": true]), (.delete, "/api/peers/\(peers[0])", nil),
            ] as [(HTTPRequest.Method, String, [String: Any]?)] {
                let other = try await api.send(method, path + "?dry_run=true", token: tokenB, json: body)
                #expect(other.status == 404, "\(method) \(path): \(other.status) \(other.text)")
                #expect(!other.text.contains("\"views\"") && !other.text.contains("\"events\""))
                let anonymous = try await api.send(method, path + "?dry_run=true", json: body)
                #expect(anonymous.status == 401)
            }
            // B's own dry run naming A's peer and group: refused as unknown in B, never a view of A's peers.
            let cross = try await api.send(.post, "/api/routes?dry_run=true", token: tokenB, json: Self.route(peer: peers[0], groups: [clients]))
            #expect(cross.status >= 400, "\(cross.text)")
            #expect(!cross.text.contains("\"views\""))
            let bGroup = try await api.send(.post, "/api/groups?dry_run=true", token: tokenB, json: ["name": "mine", "peers": [peers[1]]])
            #expect(bGroup.status >= 400, "\(bGroup.text)")
        }
    }
}
