import ViewDistribution
import ControlPlane
import Foundation
import ViewDistribution
import RouteModel
import Hummingbird

/// `/api/agent`: what agents call — enrollment with a setup key, their signed route view, their NATS credentials.
struct AgentController: Sendable {
    let access: ResourceAccess
    /// Told to agents at enrollment.
    let natsURL: String?

    /// Enrollment carries its credential (the setup key) in its body; the agent's own routes are behind `agents`.
    func addRoutes(to group: RouterGroup<APIRequestContext>, agents: AuthenticationMiddleware) {
        group.post("enroll", use: enroll)
        group.group().add(middleware: agents)
            .get("view", use: view)
            .post("nats-credentials", use: renewBusCredentials)
    }

    struct EnrollBody: Decodable {
        var setup_key: String
        var name: String
        var os: String
        var ip: String?
        var nats_public_key: String?
        var wireguard_public_key: String?
        var wireguard_endpoints: [String]?
    }

    struct Enrolled: Encodable {
        var peer_id: String
        var tenant_id: String
        var ip: String
        var credential: String
        var routes_subject: String
        var status_subject: String
        var nats_url: String?
        var nats_jwt: String?
        var nats_jwt_expires_at: Int64?
        var nats_inbox_prefix: String?
        /// The controller's view signing public key: the agent pins it and accepts only views it signed.
        var view_signing_key: String
        /// The deployment's mesh range: the agent gives its WireGuard interface its mesh IP with this prefix length.
        var mesh_range: String
    }

    /// `POST /api/agent/enroll` → the peer's id, mesh IP and credential, and (when the agent sent its NATS public key and
    /// this controller holds the NATS keys) its NATS user JWT.
    @Sendable func enroll(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await access.credentialBody(EnrollBody.self, of: request)
        let enrolled = try await access.controlPlane.enroll(setupKey: body.setup_key, name: body.name, os: body.os, reportedIP: body.ip,
                                                            natsPublicKey: body.nats_public_key, requestID: context.requestID,
                                                            source: context.sourceAddress, wireguardPublicKey: body.wireguard_public_key,
                                                            wireguardEndpoints: body.wireguard_endpoints)
        let (tenant, peerID, issued) = (enrolled.tenant, enrolled.peerID, enrolled.bus)
        return jsonResponse(Enrolled(peer_id: peerID.rawValue, tenant_id: tenant, ip: enrolled.meshIP, credential: enrolled.credential,
                                     routes_subject: "routeplane.\(tenant).peer.\(peerID).routes",
                                     status_subject: "routeplane.\(tenant).peer.\(peerID).status", nats_url: natsURL,
                                     nats_jwt: issued?.nats_jwt, nats_jwt_expires_at: issued?.nats_jwt_expires_at,
                                     nats_inbox_prefix: issued?.nats_inbox_prefix, view_signing_key: access.controlPlane.viewSigner.publicKey,
                                     mesh_range: access.controlPlane.settings.meshRange.description),
                            status: .created, sequence: enrolled.sequence)
    }

    /// `GET /api/agent/view` (agent credential): the agent's current route view, signed as the relay signs its NATS
    /// messages (`key`, `signature`, `endorsement` during a key rotation; `removed` is always false: a removed peer has
    /// no view row).
    @Sendable func view(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (tenant, peer) = try access.agent(context)
        let view = try await access.controlPlane.agentView(tenant: tenant, peer: peer)
        var out = Array(#"{"tenant_id":"#.utf8)
        out += Array((try? jsonEncoder.encode(tenant)) ?? Data())
        out += Array(#","peer_id":"#.utf8) + Array((try? jsonEncoder.encode(peer)) ?? Data())
        out += Array(#","version":\#(view.version),"digest":"\#(view.digest)","stale":\#(view.stale),"removed":false"#.utf8)
        // Keys and signatures are base64url: nothing to escape.
        out += Array(#","key":"\#(view.signature.key)","signature":"\#(view.signature.signature)""#.utf8)
        if let endorsement = view.signature.endorsement {
            out += Array(#","endorsement":{"key":"\#(endorsement.key)","signature":"\#(endorsement.signature)"}"#.utf8)
        }
        out += Array(#","view":"#.utf8)
        out += Array(view.body.utf8)
        out += Array("}".utf8)
        return rawJSONResponse(out, etag: Int64(view.version))
    }

    struct BusKeyBody: Decodable {
        var nats_public_key: String
    }

    /// `POST /api/agent/nats-credentials` `{"nats_public_key": "U…"}` (agent credential): a fresh user JWT for the
    /// agent's registered key (see `ControlPlane.renewBusCredentials`).
    @Sendable func renewBusCredentials(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let (tenant, peer) = try access.agent(context)
        // Before the body is read: a controller without NATS keys refuses whatever the body says.
        guard access.controlPlane.settings.bus != nil else { throw ControlPlane.noBusCredentials }
        let body = try await access.body(BusKeyBody.self, of: request, context)
        return jsonResponse(try await access.controlPlane.renewBusCredentials(tenant: tenant, peer: peer, publicKey: body.nats_public_key))
    }
}
