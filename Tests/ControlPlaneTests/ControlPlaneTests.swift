import ControlPlane
import EventStore
import RouteModel
import Testing
import TestSupport

/// The write path without HTTP, as the command-line tools use it: domain errors, no status codes.
@Suite("Control plane without HTTP", .timeLimit(.minutes(10)))
struct ControlPlaneTests {
    func withControlPlane(_ body: (ControlPlane) async throws -> Void) async throws {
        let db = try await TestDatabase.create()
        do {
            try await body(ControlPlane(store: db.store))
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    @Test("admin operations refuse what does not exist with ControlPlaneError.notFound naming the field")
    func adminRefusals() async throws {
        try await withControlPlane { cp in
            await #expect(throws: ControlPlaneError.notFound(field: "tenant", message: "tenant t-nope not found")) {
                _ = try await cp.createToken(tenant: "t-nope", name: "x")
            }
            await #expect(throws: ControlPlaneError.notFound(field: "token", message: "token not found (give --tenant with a token id)")) {
                try await cp.revokeToken(tenant: nil, token: "no-such-token")
            }
            await #expect(throws: ControlPlaneError.notFound(field: "tenant", message: "tenant t-nope not found")) {
                _ = try await cp.setPeerDraining(tenant: "t-nope", peer: PeerID("p"), draining: true)
            }
        }
    }

    @Test("a token authenticates until revoked; drain mode is written once")
    func tokensAndDrain() async throws {
        try await withControlPlane { cp in
            let tenant = try await cp.createTenant(name: "acme")
            #expect(try await cp.listTenants().map(\.id) == [tenant])
            let token = try await cp.createToken(tenant: tenant, name: "ops")
            #expect(try await cp.principal(secret: token.token) == .token(tenant: tenant, tokenID: token.id, scope: .admin))
            try await cp.revokeToken(tenant: nil, token: token.token)
            #expect(try await cp.principal(secret: token.token) == nil)

            _ = try await cp.writer.write(tenant: tenant, actor: Actor(id: "test"), requestID: "r") { s in
                try decideOrThrow(.enrollPeer(id: PeerID("p1"), name: "r1", os: "linux", meshIP: "100.64.0.1"), s.state)
            }
            #expect(try await cp.setPeerDraining(tenant: tenant, peer: PeerID("p1"), draining: true).sequences != nil)
            #expect(try await cp.setPeerDraining(tenant: tenant, peer: PeerID("p1"), draining: true).sequences == nil, "already draining")
        }
    }

    @Test("If-Match on a version the object moved past is a versionMismatch naming both versions")
    func ifMatch() async throws {
        try await withControlPlane { cp in
            let tenant = try await cp.createTenant(name: "acme")
            let enrolled = try await cp.writer.write(tenant: tenant, actor: Actor(id: "test"), requestID: "r") { s in
                try decideOrThrow(.enrollPeer(id: PeerID("p1"), name: "r1", os: "linux", meshIP: "100.64.0.1"), s.state)
            }
            let version = try #require(enrolled.snapshot.version(of: ObjectRef(.peer, "p1")))
            let peer = ObjectRef(.peer, "p1")
            let error = ControlPlaneError.versionMismatch(object: peer, current: version, expected: version - 1)
            await #expect(throws: error) {
                _ = try await cp.writer.write(tenant: tenant, actor: Actor(id: "test"), requestID: "r", ifMatch: (peer, version - 1)) { s in
                    try decideOrThrow(.setPeerDraining(id: PeerID("p1"), draining: true), s.state)
                }
            }
            #expect(error.message == "precondition failed: peer p1 is at version \(version), If-Match gave \(version - 1)")
            #expect(error.field == "If-Match")
        }
    }
}
