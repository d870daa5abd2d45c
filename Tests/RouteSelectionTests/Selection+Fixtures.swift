import RouteModel
import RouteSelection
import Testing

typealias Machine = SelectionStateMachine
typealias Action = SelectionStateMachine.Action
typealias Instant = ContinuousClock.Instant

/// One origin for every test's clock: the machine only ever sees times derived from it.
let t0 = ContinuousClock.now

func at(_ seconds: Double) -> Instant { t0 + .milliseconds(Int64((seconds * 1000).rounded())) }

func ms(_ n: Int) -> Duration { .milliseconds(n) }

func key(_ networkID: String = "lan", _ prefix: String = "10.20.0.0/24") -> HAKey {
    HAKey(networkID: networkID, destination: .network(try! Prefix(parsing: prefix)))
}

/// A stable mesh address per peer name.
func meshIP(_ peer: String) -> IPAddress {
    let h = peer.unicodeScalars.reduce(UInt32(7)) { $0 &* 31 &+ $1.value }
    return IPAddress(v4: 0x6440_0000 | (h & 0xFFFF))
}

func cand(_ peer: String, metric: Int = 100, keepRoute: Bool = false, route: String = "r1", mesh: IPAddress? = nil) -> RouteCandidate {
    RouteCandidate(peerID: PeerID(peer), meshIP: mesh ?? meshIP(peer), metric: metric, masquerade: true,
                   keepRoute: keepRoute, skipAutoApply: false, routeID: RouteID(route))
}

func haSet(_ k: HAKey = key(), _ candidates: [RouteCandidate]) -> HASet { HASet(key: k, candidates: candidates) }

func up(_ latency: Int? = nil, relayed: Bool = false) -> PeerHealth { .connected(relayed: relayed, latency: latency.map(ms)) }

/// An OS routing table that only follows the actions, to check they always describe the machine's state.
struct RouteTableModel {
    var routes: [HAKey: RouteCandidate] = [:]

    mutating func apply(_ actions: [Action], sourceLocation: SourceLocation = #_sourceLocation) {
        for action in actions {
            switch action {
            case .install(let k, let c):
                #expect(routes[k] == nil, "install over an existing route: \(action)", sourceLocation: sourceLocation)
                routes[k] = c
            case .switch(let k, let from, let to, _):
                #expect(routes[k] == from, "switch from a route not installed: \(action)", sourceLocation: sourceLocation)
                #expect(from.peerID != to.peerID, "switch to the same peer: \(action)", sourceLocation: sourceLocation)
                routes[k] = to
            case .update(let k, let from, let to):
                #expect(routes[k] == from, "update of a route not installed: \(action)", sourceLocation: sourceLocation)
                #expect(from.peerID == to.peerID && from != to, "update must keep the peer and change the entry",
                        sourceLocation: sourceLocation)
                routes[k] = to
            case .remove(let k, let c, let keepRoute):
                #expect(routes[k] == c, "remove of a route not installed: \(action)", sourceLocation: sourceLocation)
                #expect(keepRoute == c.keepRoute, sourceLocation: sourceLocation)
                routes[k] = nil
            case .allDown(let k, let c), .recovered(let k, let c):
                #expect(routes[k] == c, "status for a route not installed: \(action)", sourceLocation: sourceLocation)
            }
        }
    }
}

extension Action {
    var switchReason: SwitchReason? {
        if case .switch(_, _, _, let reason) = self { return reason }
        return nil
    }
}
