import PostgresClient
import EventStore
import Foundation
import ViewDistribution
import NATSAuth

/// The controller's side of the bus as the tenant boundary (nats-server in operator mode): it signs each agent's
/// NATS user JWT — for the public nkey the agent generated itself, limited to that peer's own subjects
/// (`BusPermissions.agent`), valid for `userLifetime` — and, after a peer is deleted, has the account's revocation
/// list pushed to the NATS resolver (`revoked`), which cuts the agent's live connection and refuses its reconnects.
public struct AgentBusIssuer: Sendable {
    public let keys: NATSKeyDirectory
    /// How long an agent's user JWT is valid; agents renew at half of it (`POST /api/agent/nats-credentials`).
    public let userLifetime: Duration
    /// Called after a revocation committed; pushes the account JWT (see `NATSAccountPublisher`).
    public let revoked: @Sendable (_ reason: String) async -> Void

    public init(keys: NATSKeyDirectory, userLifetime: Duration = .seconds(12 * 3_600),
                revoked: @escaping @Sendable (_ reason: String) async -> Void) {
        self.keys = keys
        self.userLifetime = userLifetime
        self.revoked = revoked
    }

    public struct Issued: Sendable, Encodable {
        public var nats_jwt: String
        public var nats_jwt_expires_at: Int64
        public var nats_inbox_prefix: String
    }

    /// A user JWT for `publicKey`, valid from now for `userLifetime`.
    public func issue(tenant: String, peer: String, publicKey: String, now: Int64 = Int64(Date().timeIntervalSince1970)) throws -> Issued {
        let permissions = try BusPermissions.agent(tenant: tenant, peer: peer)
        let expires = now + userLifetime.components.seconds
        let jwt = keys.userJWT(name: "peer \(peer) of \(tenant)", user: publicKey, permissions: permissions, issuedAt: now, expires: expires)
        return Issued(nats_jwt: jwt, nats_jwt_expires_at: expires, nats_inbox_prefix: BusPermissions.agentInboxPrefix(peer: peer))
    }

    /// A user nkey's public half (`U…`), checked; the message names the field.
    public static func validatedPublicKey(_ key: String) throws(ControlPlaneError) -> String {
        guard let decoded = try? NKey.decodePublicKey(key), decoded.type == .user else {
            throw .validation(field: "nats_public_key", message: "nats_public_key must be a NATS user public nkey (56 characters starting with U)")
        }
        return key
    }

    public static func insert(tenant: String, peer: String, publicKey: String) -> EventStore.SideStatement {
        EventStore.SideStatement("INSERT INTO nats_users (tenant_id, peer_id, public_key) VALUES ($1, $2, $3)", [tenant, peer, publicKey])
    }

    public static func revoke(tenant: String, peer: String) -> EventStore.SideStatement {
        EventStore.SideStatement("UPDATE nats_users SET revoked_at = now() WHERE tenant_id = $1 AND peer_id = $2 AND revoked_at IS NULL", [tenant, peer])
    }
}

