import RouteModel
import TestSupport
import Testing

/// Runs commands through decide/evolve, failing the test on a refused command.
@discardableResult
func build(_ commands: [Command], from start: TenantState = TenantState(),
           sourceLocation: SourceLocation = #_sourceLocation) -> TenantState {
    var state = start
    for c in commands {
        switch decide(c, state) {
        case .success(let events):
            for e in events { state.apply(e) }
        case .failure(let error):
            Issue.record("command \(c) refused: \(error)", sourceLocation: sourceLocation)
        }
    }
    return state
}

/// The error `command` is refused with, or nil (and a recorded issue) when it is accepted.
func refusal(_ command: Command, in state: TenantState, sourceLocation: SourceLocation = #_sourceLocation) -> ValidationError? {
    switch decide(command, state) {
    case .success(let events):
        Issue.record("command \(command) accepted with \(events)", sourceLocation: sourceLocation)
        return nil
    case .failure(let e):
        return e
    }
}

func events(_ command: Command, in state: TenantState, sourceLocation: SourceLocation = #_sourceLocation) -> [RouteEvent] {
    switch decide(command, state) {
    case .success(let events): return events
    case .failure(let e):
        Issue.record("command \(command) refused: \(e)", sourceLocation: sourceLocation)
        return []
    }
}

func enroll(_ id: String, os: String = "linux", ip: String) -> Command {
    .enrollPeer(id: PeerID(id), name: id, os: os, meshIP: ip)
}

func group(_ id: String, _ peers: [String]) -> Command {
    .createGroup(id: GroupID(id), name: id, peers: peers.map { PeerID($0) })
}

func route(_ networkID: String = "net", network: String? = "10.0.0.0/24", domains: [String]? = nil,
           peer: String? = "r1", peerGroups: [String]? = nil, metric: Int = 100, masquerade: Bool = true,
           groups: [String] = ["clients"], enabled: Bool = true, keepRoute: Bool = false,
           acl: [String]? = nil, description: String = "") -> RouteInput {
    RouteInput(networkID: networkID, description: description, network: network, domains: domains,
               peer: peer.map { PeerID($0) }, peerGroups: peerGroups?.map { GroupID($0) }, metric: metric,
               masquerade: masquerade, groups: groups.map { GroupID($0) }, enabled: enabled,
               keepRoute: keepRoute, accessControlGroups: acl?.map { GroupID($0) })
}

/// A small tenant: routers r1, r2, r3 (linux), clients c1, c2, c3, a windows peer w1;
/// groups clients {c1,c2}, others {c3}, routers {r1,r2}, empty {}.
func baseTenant() -> TenantState {
    build([
        enroll("r1", ip: "100.64.0.1"), enroll("r2", ip: "100.64.0.2"), enroll("r3", ip: "100.64.0.3"),
        enroll("c1", os: "darwin", ip: "100.64.1.1"), enroll("c2", ip: "100.64.1.2"),
        enroll("c3", os: "windows", ip: "100.64.1.3"), enroll("w1", os: "windows", ip: "100.64.2.1"),
        group("clients", ["c1", "c2"]), group("others", ["c3"]), group("routers", ["r1", "r2"]),
        group("empty", []),
    ])
}

/// Every peer's view, computed from scratch.
func allViews(_ state: TenantState, peers: Set<PeerID>) -> [PeerID: PeerRouteView] {
    var out: [PeerID: PeerRouteView] = [:]
    for p in peers { out[p] = view(for: p, in: state) }
    return out
}
