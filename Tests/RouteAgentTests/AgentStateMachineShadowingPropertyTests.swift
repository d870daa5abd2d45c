import RouteAgent
import RouteModel
import RouteSelection
import Testing

/// Seeded random scripts (views whose HA sets share destinations across network ids, shared routing peers, health
/// reports, drain marks, ticks): after every step the desired state is one the applier accepts, every destination
/// that has an installable HA set up is installed exactly once, and the installed route is the winner's.
@Suite("Agent state machine: shadowing properties")
struct AgentStateMachineShadowingPropertyTests {
    let networkIDs = ["a", "b", "c"]
    let destinations = ["10.20.0.0/24", "0.0.0.0/0", "10.30.0.0/16"]
    let peers = (1...4).map { "r\($0)" }

    func meshIP(_ peer: String) -> IPAddress { try! IPAddress(parsing: "100.64.0.\(peer.dropFirst())") }

    func view(_ rng: inout SplitMix64) -> [HASet] {
        var sets: [HASet] = []
        for id in networkIDs {
            for destination in destinations where Int.random(in: 0..<3, using: &rng) > 0 {
                let key = HAKey(networkID: id, destination: .network(try! Prefix(parsing: destination)))
                let chosen = peers.shuffled(using: &rng).prefix(Int.random(in: 1...2, using: &rng)).sorted()
                sets.append(HASet(key: key, candidates: chosen.map { peer in
                    RouteCandidate(peerID: PeerID(peer), meshIP: meshIP(peer), metric: [100, 100, 200].randomElement(using: &rng)!,
                                   masquerade: true, keepRoute: false, skipAutoApply: Int.random(in: 0..<10, using: &rng) == 0,
                                   routeID: RouteID("\(id)-\(destination)-\(peer)"))
                }.sorted()))
            }
        }
        return sets.sorted { $0.key < $1.key }
    }

    func health(_ rng: inout SplitMix64) -> PeerHealth {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: .unreachable
        case 1: .connected(relayed: true, latency: .milliseconds(Int64.random(in: 1...80, using: &rng)))
        default: .connected(latency: .milliseconds(Int64.random(in: 1...80, using: &rng)))
        }
    }

    @Test("one installed route per destination, always valid, always the winner's", arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func invariants(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var m = AgentStateMachine()
        let t0 = ContinuousClock.now
        for step in 0..<300 {
            let now = t0 + .seconds(step)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0:
                let sets = view(&rng)
                let version = m.appliedVersion + 1
                _ = m.receive(.init(version: version, digest: "d\(version)", body: [],
                                    view: PeerRouteView(peerID: "client", haSets: sets), source: .nats), now: now)
            case 1...6: _ = m.healthObserved([PeerID(peers.randomElement(using: &rng)!): health(&rng)], now: now)
            default: _ = m.tick(now: now)
            }
            try m.desired.validate()
            #expect(m.desired == m.computeDesired())
            let installed = Dictionary(uniqueKeysWithValues: m.desired.routes.map { ($0.destination, $0.nextHop) })
            // Every installed route is a winner's chosen peer; no shadowed set installs anything.
            for (destination, winner) in m.arbiter.winners {
                guard case .network(let prefix) = destination, let chosen = m.selection.selection(for: winner)?.candidate else { continue }
                #expect(installed[prefix] == chosen.meshIP, "seed \(seed) step \(step): \(winner) won \(prefix)")
                #expect(m.arbiter.shadowedBy[winner] == nil)
            }
            for (loser, winner) in m.arbiter.shadowedBy {
                #expect(loser.destination == winner.destination && loser != winner)
            }
            // A destination with an installable HA set that is up is installed.
            for key in m.selection.keys {
                guard case .network(let prefix) = key.destination, case .up? = m.selection.standing(of: key),
                      m.choices.applies(key, candidates: m.selection.candidates(of: key)) else { continue }
                #expect(installed[prefix] != nil, "seed \(seed) step \(step): \(key) is up but \(prefix) is not installed")
            }
        }
    }
}
