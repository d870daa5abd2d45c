import Foundation
import ViewTransport
import RouteAgent
import RouteModel
import Testing

/// The state folder's identity and persisted view formats (signed views).
@Suite struct AgentStateFolderTests {
    func folder() throws -> AgentStateFolder {
        try AgentStateFolder(path: FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-state-\(UUID().uuidString.prefix(8))").path)
    }

    @Test func identitiesFromBeforeSignedViewsStillDecode() throws {
        let f = try folder()
        defer { try? FileManager.default.removeItem(atPath: f.path) }
        let old = #"{"controller":"http://c","credential":"rpc_x","ip":"100.64.0.2","nats_url":"nats://n","peer_id":"p1","tenant_id":"t1"}"#
        try Data(old.utf8).write(to: URL(fileURLWithPath: f.path + "/identity.json"))
        let identity = try #require(try f.loadIdentity())
        #expect(identity.peerID == "p1" && identity.viewSigningKey == nil)
        var pinned = identity
        pinned.viewSigningKey = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        try f.save(pinned)
        #expect(try f.loadIdentity() == pinned)
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: f.path + "/identity.json")), as: UTF8.self)
        #expect(text.contains(#""view_signing_key" : "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo""#))
    }

    @Test func persistedViewsCarryTheirSignatureAndRemovedFlag() throws {
        let f = try folder()
        defer { try? FileManager.default.removeItem(atPath: f.path) }
        #expect(try f.loadView() == nil)
        let body = PeerRouteView.empty(PeerID("p1")).canonicalJSON()
        let digest = PeerRouteView.digest(of: body)
        let old = try ViewSigner(seed: [UInt8](repeating: 1, count: 32))
        let signer = old.rotated(to: try ViewSigner(seed: [UInt8](repeating: 2, count: 32)))
        let signature = signer.sign(tenant: "t1", peer: "p1", version: 9, removed: true, digest: digest)
        try f.saveView(version: 9, digest: digest, removed: true, signature: signature, body: body)
        let loaded = try #require(try f.loadView())
        #expect(loaded == AgentStateFolder.PersistedView(version: 9, digest: digest, removed: true, signature: signature, body: body))
        let verifier = try ViewVerifier(pinnedKey: old.publicKey)
        #expect(try verifier.verify(tenant: "t1", peer: "p1", version: loaded.version, removed: loaded.removed, digest: loaded.digest,
                                    signature: loaded.signature).pinnedKey == signer.publicKey)
        // A changed body no longer matches the digest; the previous release's header (no signature) is refused.
        var file = try Data(contentsOf: URL(fileURLWithPath: f.path + "/view"))
        file.append(UInt8(ascii: " "))
        try file.write(to: URL(fileURLWithPath: f.path + "/view"))
        #expect(throws: AgentError.self) { try f.loadView() }
        try Data(Array("routeplane-view 1 9 \(digest)\n".utf8) + body).write(to: URL(fileURLWithPath: f.path + "/view"))
        #expect(throws: AgentError.self) { try f.loadView() }
    }
}
