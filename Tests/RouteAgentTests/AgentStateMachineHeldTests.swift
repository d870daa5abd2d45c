import RouteAgent
import RouteModel
import Testing

/// Which view the agent holds: none yet, an applied one, or a tombstone; a tombstone is not "nothing yet".
@Suite("Agent state machine: the view held")
struct AgentStateMachineHeldTests {
    let now = ContinuousClock.now
    let view = PeerRouteView(peerID: "client", haSets: [])

    @Test("nothing, then an applied view, then a tombstone; the same tombstone again is a duplicate")
    func heldView() {
        var m = AgentStateMachine()
        #expect(m.held == .nothing)
        #expect(m.appliedVersion == 0 && m.appliedDigest == nil && m.view == nil)
        _ = m.receive(.init(version: 1, digest: "d1", body: [], view: view, source: .nats), now: now)
        #expect(m.held == .applied(version: 1, digest: "d1", view: view))
        #expect(m.appliedVersion == 1 && m.appliedDigest == "d1" && m.view == view)
        _ = m.receive(.init(version: 2, digest: "d2", body: [], view: nil, source: .nats), now: now)
        #expect(m.held == .removed(version: 2, digest: "d2"))
        #expect(m.appliedVersion == 2 && m.appliedDigest == "d2" && m.view == nil)
        #expect(m.receive(.init(version: 2, digest: "d2", body: [], view: nil, source: .http), now: now).isEmpty)
        #expect(m.counters.ignoredDuplicate == 1)
    }

    @Test("a first view with version 0 is applied (nothing held yet), the same one again is a duplicate")
    func versionZero() {
        var m = AgentStateMachine()
        #expect(!m.receive(.init(version: 0, digest: "d0", body: [], view: view, source: .persisted), now: now).isEmpty)
        #expect(m.receive(.init(version: 0, digest: "d0", body: [], view: view, source: .nats), now: now).isEmpty)
        #expect(m.counters.applied == 1 && m.counters.ignoredDuplicate == 1)
    }
}
