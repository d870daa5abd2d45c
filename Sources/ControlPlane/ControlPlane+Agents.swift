import PostgresClient
import Foundation
import Logging
import EventStore
import ViewDistribution
import Projections
import RouteModel

/// What agents do through the control plane: enroll with a setup key, renew their NATS credentials, read their view.
extension ControlPlane {
    /// A peer just enrolled: its identity, its credential (shown once) and, when it sent a NATS key and this controller
    /// holds the NATS keys, its NATS user JWT.
    public struct Enrollment: Sendable {
        public var tenant: String
        public var peerID: PeerID
        public var meshIP: String
        public var credential: String
        public var bus: AgentBusIssuer.Issued?
        /// The tenant's version after the enrollment.
        public var sequence: Int64
    }

    /// Enrolls a peer with a setup key. `reportedIP` empty or nil: the lowest free address of the mesh range; given: only
    /// a free host address of the range. `source`: the caller's address, for the per-source rate limit (by address, or
    /// by /64 for IPv6; checked first, then the per-key one, both before the key is looked up: a flood costs no database
    /// work).
    /// `wireguard`: the agent's WireGuard key and endpoints, checked before anything else (422 naming the field).
    public func enroll(setupKey: String, name: String, os: String, reportedIP: String?, natsPublicKey: String?,
                       requestID: String, source: String? = nil, wireguardPublicKey: String? = nil,
                       wireguardEndpoints: [String]? = nil) async throws -> Enrollment {
        let wireguard = try WireGuardIdentity.validated(publicKey: wireguardPublicKey, endpoints: wireguardEndpoints)
        if let throttle {
            if let source, case .limited(let retry) = throttle.perSource.admit(enrollmentSourceKey(source)) {
                logger.notice("enrollment refused: too many from this address",
                              metadata: ["source": "\(source)", "retry_after": "\(retry)", "request_id": "\(requestID)"])
                throw ControlPlaneError.rateLimited(field: "source", message: "too many enrollments from this address; retry after \(retry) s",
                                                    retryAfter: retry)
            }
            // The secret itself is never kept: the limiter knows it by a per-process hash.
            if case .limited(let retry) = throttle.perSetupKey.admit(setupKey.hashValue) {
                logger.notice("enrollment refused: too many with this setup key",
                              metadata: ["source": "\(source ?? "-")", "retry_after": "\(retry)", "request_id": "\(requestID)"])
                throw ControlPlaneError.rateLimited(field: "setup_key", message: "too many enrollments with this setup key; retry after \(retry) s",
                                                    retryAfter: retry)
            }
        }
        let natsKey = try natsPublicKey.map(AgentBusIssuer.validatedPublicKey)
        guard setupKey.utf8.count <= 256, let found = try await credentials.lookup(setupKey, kind: .setupKey) else {
            throw ControlPlaneError.forbidden(field: "setup_key", message: "setup key is not valid")
        }
        // Only a caller holding a valid setup key learns whether a NATS key is taken. (A race between two enrollments
        // with one key is settled by the unique index: the loser's whole enrollment rolls back.)
        if let natsKey {
            let taken = try await store.pool.withSession { s in try s.query("SELECT 1 FROM nats_users WHERE public_key = $1", [natsKey]).rows.count }
            if taken > 0 {
                throw ControlPlaneError.conflict(field: "nats_public_key", message: "nats_public_key is already registered to another peer; generate a new key")
            }
        }
        let tenant = found.tenant
        let keyID = SetupKeyID(found.subject)
        let peerID = PeerID(Secrets.id())
        let credential = Secrets.secret(prefix: "rpc_")
        let now = Int64(Date().timeIntervalSince1970)
        let range = settings.meshRange
        let keyName = try await cache.current(tenant).state.setupKeys[keyID]?.name
        let result = try await writer.write(tenant: tenant, actor: Actor(id: "setup_key:\(keyID)", name: keyName.map { "setup key \($0)" }),
                                            requestID: requestID) { s in
            // The address is chosen in `decide`, against the state this append lands on (decided again under the
            // tenant's lock when another controller appended first), so concurrent enrollments never share one.
            try decideOrThrow(AccessCommand.enrollWithSetupKey(key: keyID, peerID: peerID, name: name, os: os, meshIP: reportedIP, now: now,
                                                               meshRange: range, wireguard: wireguard), s.state)
        } sideStatements: { _ in
            [CredentialStore.insert(secret: credential, tenant: tenant, kind: .peer, subject: peerID.rawValue)]
                + (natsKey.map { [AgentBusIssuer.insert(tenant: tenant, peer: peerID.rawValue, publicKey: $0)] } ?? [])
        }
        guard let peer = result.snapshot.state.peer(peerID) else { throw ControlPlaneError.corrupt("enrolled peer missing from state") }
        let issued = try natsKey.flatMap { key in try settings.bus?.issue(tenant: tenant, peer: peerID.rawValue, publicKey: key) }
        return Enrollment(tenant: tenant, peerID: peerID, meshIP: peer.meshIP.description, credential: credential, bus: issued,
                          sequence: result.snapshot.version)
    }

    /// Refused when this controller holds no NATS keys.
    public static let noBusCredentials = ControlPlaneError.notFound(
        field: "nats_public_key", message: "this controller issues no NATS credentials (it runs without --nats-keys)")

    /// A fresh user JWT for the agent's registered NATS key. An agent enrolled before keys were registered registers
    /// its key here once; another key than the registered one is refused (conflict), a revoked one too (forbidden).
    public func renewBusCredentials(tenant: String, peer: String, publicKey: String) async throws -> AgentBusIssuer.Issued {
        guard let bus = settings.bus else { throw Self.noBusCredentials }
        let key = try AgentBusIssuer.validatedPublicKey(publicKey)
        let rows = try await store.pool.withSession { s in
            try s.query("INSERT INTO nats_users (tenant_id, peer_id, public_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [tenant, peer, key])
            return try s.query("SELECT public_key, revoked_at IS NOT NULL AS revoked FROM nats_users WHERE tenant_id = $1 AND peer_id = $2", [tenant, peer])
        }
        guard let row = rows.first, let registered = row.string("public_key") else {
            throw ControlPlaneError.conflict(field: "nats_public_key", message: "nats_public_key is registered to another peer")
        }
        guard row.bool("revoked") != true else { throw ControlPlaneError.forbidden(field: "nats_public_key", message: "this peer's NATS user is revoked") }
        guard registered == key else {
            throw ControlPlaneError.conflict(field: "nats_public_key",
                                             message: "nats_public_key differs from the key this peer registered; re-enroll to use a new key")
        }
        return try bus.issue(tenant: tenant, peer: peer, publicKey: key)
    }

    /// A peer's current route view, signed as the relay signs its NATS messages.
    public struct SignedView: Sendable {
        /// The view's version as stored (digits).
        public var version: String
        public var digest: String
        /// The canonical view JSON.
        public var body: String
        /// True when the projection did not reach the tenant's latest event within the wait.
        public var stale: Bool
        public var signature: ViewSignature
    }

    /// The agent's current view, after waiting briefly (`projectionWait`) for the projection to reach the tenant's latest
    /// event. A peer with no view yet (or a removed one) is `notFound`, retry after a second.
    public func agentView(tenant: String, peer: String) async throws -> SignedView {
        let head = try await store.version(tenant: tenant)
        var stale = false
        do {
            try await checkpoints.waitUntilProjected(tenant: tenant, sequence: head, timeout: settings.projectionWait)
        } catch {
            stale = true
        }
        let rows = try await store.pool.withSession { s in
            try s.query("SELECT version, digest, body FROM peer_views WHERE tenant_id = $1 AND peer_id = $2", [tenant, peer])
        }
        guard let row = rows.first, let version = row.string("version"), let versionNumber = Int64(version), let digest = row.string("digest"),
              let body = row.string("body") else {
            throw ControlPlaneError.notFound(field: "peer_id", message: "no route view for peer \(peer) yet; retry shortly", retryAfter: 1)
        }
        let signature = viewSigner.sign(tenant: tenant, peer: peer, version: versionNumber, removed: false, digest: digest)
        return SignedView(version: version, digest: digest, body: body, stale: stale, signature: signature)
    }
}
