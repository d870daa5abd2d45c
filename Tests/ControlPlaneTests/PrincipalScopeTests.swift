import ControlPlane
import RouteModel
import Testing

/// The scope check every authenticated request passes (`ResourceAccess.requireScope` asks `Principal.permits`).
@Suite struct PrincipalScopeTests {
    @Test("a read-only token may only GET and HEAD; an admin token and an agent may use every method")
    func permits() {
        let readOnly = Principal.token(tenant: "t", tokenID: "r", scope: .readOnly)
        let admin = Principal.token(tenant: "t", tokenID: "a", scope: .admin)
        let agent = Principal.agent(tenant: "t", peerID: "p")
        for method in ["GET", "HEAD"] {
            #expect(readOnly.permits(method: method) && admin.permits(method: method) && agent.permits(method: method))
        }
        for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"] {
            #expect(!readOnly.permits(method: method), "\(method)")
            #expect(admin.permits(method: method) && agent.permits(method: method), "\(method)")
        }
        #expect(!readOnly.canWrite && admin.canWrite)
    }
}
