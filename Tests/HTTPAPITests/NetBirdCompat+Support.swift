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


/// NetBird's `api.Event` as its generated Go client decodes it (`shared/management/http/api/types.gen.go`, used by
/// `shared/management/client/rest/events.go` List): every field a string, `meta` a `map[string]string`. Decoding with
/// Swift's JSONDecoder fails on a non-string meta value exactly where Go's encoding/json fails ("cannot unmarshal number
/// into Go struct field Event.meta of type string").
struct NetBirdEvent: Decodable, Sendable {
    var id: String
    var timestamp: String
    var activity: String
    var activity_code: String
    var initiator_id: String
    var initiator_name: String
    var initiator_email: String
    var target_id: String
    var meta: [String: String]
}

/// NetBird's `api.SetupKey` (`types.gen.go`): the fields its spec marks required (`openapi.yml` SetupKeyBase).
struct NetBirdSetupKey: Decodable, Sendable {
    var id: String
    var key: String
    var name: String
    var expires: String
    var type: String
    var valid: Bool
    var revoked: Bool
    var used_times: Int
    var last_used: String
    var state: String
    var auto_groups: [String]
    var updated_at: String
    var usage_limit: Int
    var ephemeral: Bool
    var allow_extra_dns_labels: Bool
}

extension Reply {
    /// The body decoded as NetBird's Go client would.
    func decoded<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}

/// The `Event.activity_code` enum of NetBird's spec (`shared/management/http/api/openapi.yml`, components.schemas.Event),
/// the codes of `management/server/activity/codes.go` activityMap.
let netBirdActivityCodes: Set<String> = [
    "peer.user.add", "peer.setupkey.add", "user.join", "user.invite", "account.create", "account.delete",
    "user.peer.delete", "rule.add", "rule.update", "rule.delete",
    "policy.add", "policy.update", "policy.delete",
    "setupkey.add", "setupkey.update", "setupkey.revoke", "setupkey.overuse", "setupkey.delete",
    "group.add", "group.update", "group.delete",
    "peer.group.add", "peer.group.delete",
    "user.group.add", "user.group.delete", "user.role.update",
    "setupkey.group.add", "setupkey.group.delete",
    "dns.setting.disabled.management.group.add", "dns.setting.disabled.management.group.delete",
    "route.add", "route.delete", "route.update",
    "peer.ssh.enable", "peer.ssh.disable", "peer.rename",
    "peer.login.expiration.enable", "peer.login.expiration.disable",
    "nameserver.group.add", "nameserver.group.delete", "nameserver.group.update",
    "account.setting.peer.login.expiration.update", "account.setting.peer.login.expiration.enable", "account.setting.peer.login.expiration.disable",
    "personal.access.token.create", "personal.access.token.delete",
    "service.user.create", "service.user.delete",
    "user.block", "user.unblock", "user.delete",
    "user.peer.login", "peer.login.expire",
    "dashboard.login",
    "integration.create", "integration.update", "integration.delete",
    "account.setting.peer.approval.enable", "account.setting.peer.approval.disable",
    "peer.approve", "peer.approval.revoke",
    "transferred.owner.role",
    "posture.check.create", "posture.check.update", "posture.check.delete",
    "peer.inactivity.expiration.enable", "peer.inactivity.expiration.disable",
    "account.peer.inactivity.expiration.enable", "account.peer.inactivity.expiration.disable", "account.peer.inactivity.expiration.update",
    "account.setting.group.propagation.enable", "account.setting.group.propagation.disable",
    "account.setting.routing.peer.dns.resolution.enable", "account.setting.routing.peer.dns.resolution.disable",
    "network.create", "network.update", "network.delete",
    "network.resource.create", "network.resource.update", "network.resource.delete",
    "network.router.create", "network.router.update", "network.router.delete",
    "resource.group.add", "resource.group.delete",
    "account.dns.domain.update",
    "account.setting.lazy.connection.enable", "account.setting.lazy.connection.disable",
    "account.network.range.update",
    "peer.ip.update",
    "user.approve", "user.reject", "user.create",
    "account.settings.auto.version.update",
    "identityprovider.create", "identityprovider.update", "identityprovider.delete",
    "dns.zone.create", "dns.zone.update", "dns.zone.delete",
    "dns.zone.record.create", "dns.zone.record.update", "dns.zone.record.delete",
    "peer.job.create",
    "user.password.change",
    "user.invite.link.create", "user.invite.link.accept", "user.invite.link.regenerate", "user.invite.link.delete",
    "service.create", "service.update", "service.delete",
]

/// Routeplane's own codes (no NetBird activity exists for them), named in NetBird's style (`peer.ssh.enable`/`disable`).
let routeplaneOnlyActivityCodes: Set<String> = ["peer.drain.enable", "peer.drain.disable"]
