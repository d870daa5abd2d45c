@testable import RouteModel
import TestSupport
import Testing

@Suite struct PropertyTests {
    static let seeds: [UInt64] = Array(1...24)

    /// (1) Folding the (stored, i.e. encoded and decoded) events from zero gives the state that
    /// applying the commands gave, and the indexes kept incrementally equal rebuilt ones.
    /// (2) For every event, the peers whose brute-force recomputed view changed ⊆ affectedPeers.
    @Test(arguments: seeds)
    func eventsRebuildStateAndImpactNeverMissesAPeer(seed: UInt64) throws {
        var gen = CommandGenerator(seed: seed)
        let universe = Set(gen.peerIDs)
        var state = TenantState()
        var log: [(type: String, json: [UInt8])] = []
        var accepted = 0
        var views = allViews(state, peers: universe)
        for step in 0..<220 {
            let command = gen.next(state)
            guard case .success(let evs) = decide(command, state) else { continue }
            accepted += 1
            for e in evs {
                let before = state
                var inPlace = Set<PeerID>()
                state.apply(e, affected: &inPlace)
                log.append(e.encode())
                let affected = affectedPeers(e, before: before, after: state)
                #expect(inPlace == affected)
                let after = allViews(state, peers: universe)
                for p in universe where after[p] != views[p] {
                    #expect(affected.contains(p), "seed \(seed) step \(step): \(e.type) changed \(p)'s view but affectedPeers = \(affected.sorted())")
                }
                views = after
            }
            if step % 20 == 0 { #expect(state.indexesAreConsistent, "seed \(seed) step \(step)") }
        }
        #expect(accepted > 80, "generator too often refused: \(accepted)")
        let types = Set(log.map(\.type))
        #expect(types.count >= 8, "event types seen: \(types.sorted())")
        let decoded = try log.map { try RouteEvent.decode(type: $0.type, json: $0.json) }
        let rebuilt = TenantState(events: decoded)
        #expect(rebuilt == state)
        #expect(rebuilt.indexesAreConsistent && state.indexesAreConsistent)
        for p in universe { #expect(view(for: p, in: rebuilt).canonicalJSON() == views[p]!.canonicalJSON()) }
    }

    /// (3) Same state ⇒ same view bytes, whatever order things were inserted in.
    @Test(arguments: seeds.prefix(12))
    func viewEncodingIgnoresInsertionOrder(seed: UInt64) {
        var gen = CommandGenerator(seed: seed &* 7919)
        var state = TenantState()
        for _ in 0..<220 {
            if case .success(let evs) = decide(gen.next(state), state) { state = evolve(state, evs) }
        }
        // Recreate the same entities in a shuffled order, groups first with members added one by one.
        var rng = SplitMix64(seed: seed)
        var other = TenantState()
        for p in state.peers.values.shuffled(using: &rng) { other.apply(.peerEnrolled(PeerEnrolled(peer: p))) }
        for g in state.groups.values.shuffled(using: &rng) {
            other.apply(.groupCreated(GroupCreated(group: Group(id: g.id, name: g.name, peers: []))))
        }
        for g in state.groups.values.shuffled(using: &rng) {
            for p in g.peers.shuffled(using: &rng) {
                other.apply(.groupMembersChanged(GroupMembersChanged(groupID: g.id, added: [p], removed: [])))
            }
        }
        for r in state.routes.values.shuffled(using: &rng) { other.apply(.routeCreated(RouteCreated(route: r))) }
        #expect(other == state)
        for p in gen.peerIDs {
            let a = view(for: p, in: state).encoded()
            let b = view(for: p, in: other).encoded()
            #expect(a.json == b.json)
            #expect(a.digest == b.digest)
        }
    }
}
