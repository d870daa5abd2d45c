import Foundation
import NATSAuth
import NATSClient

/// What each NATS user of a Routeplane deployment may do on the bus (nats-server in operator mode; everything not
/// allowed is denied). Tenants share one NATS account, so these lists are the tenant boundary: an agent's user names
/// only its own peer's subjects.
public enum BusPermissions {
    /// The reply-subject prefix of a peer's agent (`natsOptions_SetCustomInboxPrefix`): replies to its direct gets
    /// arrive under it, and it is the only inbox the agent may subscribe to.
    public static func agentInboxPrefix(peer: String) -> String { "_INBOX_\(peer)" }

    /// An agent (one peer of one tenant):
    /// - subscribe: its own view subject, its own inbox;
    /// - publish: its own status subject, and the direct get of its own view subject's last message.
    /// Notably denied: other peers' and tenants' subjects, `routeplane.>`, any other `$JS.API` request, publishing on
    /// any `.routes` subject, `_INBOX.>`.
    public static func agent(tenant: String, peer: String, stream: String = StreamSpec.views.name) throws(NATSError) -> NATSPermissions {
        let routes = try ViewSubjects.subject(tenant: tenant, peer: peer)
        return NATSPermissions(
            publishAllow: [statusSubject(tenant: tenant, peer: peer), "$JS.API.DIRECT.GET.\(stream).\(routes)"],
            subscribeAllow: [routes, agentInboxPrefix(peer: peer) + ".>"])
    }

    /// A controller: publishes every view (through JetStream: the stream API and its acks), records every status.
    public static let controller = NATSPermissions(
        publishAllow: [ViewSubjects.wildcard, "$JS.API.>"],
        subscribeAllow: [statusWildcard, "_INBOX.>"])

    public static func statusSubject(tenant: String, peer: String) -> String { "routeplane.\(tenant).peer.\(peer).status" }
    /// Every peer's status subject (the controllers' `PeerStatusRecorder` subscribes to it).
    public static let statusWildcard = "routeplane.*.peer.*.status"
}

/// A controller's own NATS user: a key pair made at start (never written anywhere) and a user JWT minted from the
/// account signing key at every connect, so it never expires under a running controller (the server closes a
/// connection whose JWT expired; the reconnect presents a fresh one).
public struct ControllerBusUser: Sendable {
    public let keys: NATSKeyDirectory
    public let key: NKeyPair
    public let lifetime: Duration

    public init(keys: NATSKeyDirectory, lifetime: Duration = .seconds(24 * 3_600), key: NKeyPair = .generate(.user)) {
        self.keys = keys
        self.lifetime = lifetime
        self.key = key
    }

    public var credentials: NATSUserCredentials {
        let keys = keys, seconds = lifetime.components.seconds
        return .minted(key: key) { user, now in
            keys.userJWT(name: "routeplane controller", user: user, permissions: BusPermissions.controller, issuedAt: now, expires: now + seconds)
        }
    }
}

extension NATSUserCredentials {
    /// Credentials of a user whose key pair lives only in this process and whose JWT is minted afresh at every connect
    /// by `issue(userPublicKey, nowUnixSeconds)` (so a reconnect after the JWT expired presents a new one).
    public static func minted(key: NKeyPair = .generate(.user),
                              _ issue: @escaping @Sendable (_ user: String, _ now: Int64) -> String) -> NATSUserCredentials {
        NATSUserCredentials(jwt: { issue(key.publicKey, Int64(Date().timeIntervalSince1970)) }, sign: { key.sign($0) })
    }
}
