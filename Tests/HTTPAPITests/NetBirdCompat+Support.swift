import ControlPlane
import EventStore
import Foundation
import HTTPTypes
import RouteModel
import TestSupport

/// Helpers of the NetBird compatibility suites (NetBirdCompat+Routes/Groups/Peers).
extension LiveAPI {
    /// A group by name (POST /api/groups), its id.
    func group(_ token: String, _ name: String, peers: [String] = []) async throws -> String {
        let r = try await send(.post, "/api/groups", token: token, json: ["name": name, "peers": peers])
        guard r.status == 200 else { throw TestSetupError("group \(name): \(r.status) \(r.text)") }
        return r.id
    }

    /// A tenant written the way controllers before the built-in "All" group wrote it (its events appended directly,
    /// without the writer), with one peer and an API token; returns the tenant, the token and the peer id.
    func legacyTenant(_ name: String) async throws -> (tenant: String, token: String, peer: String) {
        let tenant = "t-legacy-" + Secrets.id()
        let token = Secrets.secret(prefix: "rpt_")
        let peer = Peer(id: PeerID("legacy-peer"), name: "old-host", os: "linux", meshIP: try IPAddress(parsing: "100.64.7.7"))
        let events: [RouteEvent] = [
            .tenantCreated(TenantCreated(name: name)),
            .tokenCreated(TokenCreated(tokenID: TokenID("tk"), name: "old-token")),
            .peerEnrolled(PeerEnrolled(peer: peer)),
        ]
        _ = try await db.store.append(
            tenant: tenant, expected: .noEvents,
            events: events.map { e in
                let (type, json) = e.encode()
                return NewEvent(type: type, data: String(decoding: json, as: UTF8.self), metadata: EventMetadata(actor: "cli"))
            },
            with: [CredentialStore.insert(secret: token, tenant: tenant, kind: .apiToken, subject: "tk")])
        return (tenant, token, peer.id.rawValue)
    }
}

extension Reply {
    /// True when the body is an object holding `key` (with any value, null included).
    func has(_ key: String) -> Bool { object.keys.contains(key) }
}

/// True when `object` holds `key` (with any value, null included).
func has(_ object: [String: Any], _ key: String) -> Bool { object.keys.contains(key) }
