@testable import RouteModel
import Testing

/// Random command sequences over a small universe (so that HA sets, conflicts, refusals and
/// shared groups happen often), driven by a seeded generator.
struct CommandGenerator {
    var rng: SplitMix64
    let peerIDs: [PeerID] = (0..<12).map { PeerID("p\($0)") }
    let groupIDs: [GroupID] = (0..<6).map { GroupID("g\($0)") }
    let routeIDs: [RouteID] = (0..<12).map { RouteID("rt\($0)") }
    let networks = ["10.0.0.0/24", "10.0.0.0/16", "10.1.0.0/24", "fd00::/64", "0.0.0.0/0"]
    let domainLists = [["a.example.com"], ["a.example.com", "*.b.example.com"], ["c.example.org"]]
    let networkIDs = ["lan", "dc", "office"]
    let oses = ["linux", "linux", "linux", "windows", "darwin"]

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func subset<T>(_ xs: [T], max: Int) -> [T] {
        let n = Int.random(in: 0...max, using: &rng)
        return (0..<n).map { _ in pick(xs) }
    }

    /// Mostly ids that exist (so most commands are accepted), sometimes any id (refusals).
    mutating func existingPeers(_ state: TenantState, max: Int) -> [PeerID] {
        let known = state.peers.keys.sorted()
        return known.isEmpty || chance(0.1) ? subset(peerIDs, max: max) : subset(known, max: max)
    }
    mutating func existingGroup(_ state: TenantState) -> GroupID {
        let known = state.groups.keys.sorted()
        return known.isEmpty || chance(0.1) ? pick(groupIDs) : pick(known)
    }
    mutating func routingPeer(_ state: TenantState) -> PeerID {
        let linux = state.peers.values.filter(\.canRoute).map(\.id).sorted()
        return linux.isEmpty || chance(0.1) ? pick(peerIDs) : pick(linux)
    }

    mutating func routeInput(_ state: TenantState) -> RouteInput {
        let useDomains = chance(0.2)
        let usePeer = chance(0.5)
        var groups = (0..<Int.random(in: 1...2, using: &rng)).map { _ in existingGroup(state) }
        if chance(0.03) { groups = [] }
        return RouteInput(
            networkID: pick(networkIDs), description: chance(0.3) ? "note \(Int.random(in: 0..<3, using: &rng))" : "",
            network: useDomains ? nil : pick(networks), domains: useDomains ? pick(domainLists) : nil,
            peer: usePeer ? routingPeer(state) : nil, peerGroups: usePeer ? nil : [existingGroup(state)],
            metric: pick([1, 100, 100, 200, 9999]), masquerade: chance(0.5), groups: groups, enabled: chance(0.85),
            keepRoute: chance(0.2), accessControlGroups: chance(0.2) ? [existingGroup(state)] : nil, skipAutoApply: chance(0.1))
    }

    mutating func next(_ state: TenantState) -> Command {
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<14:
            let p = pick(peerIDs)
            let n = Int(p.rawValue.dropFirst())!
            return .enrollPeer(id: p, name: p.rawValue, os: pick(oses), meshIP: chance(0.8) ? "100.64.0.\(n)" : "fd7a::\(n)")
        case 14..<17: return .removePeer(id: existingPeers(state, max: 1).first ?? pick(peerIDs))
        case 17..<19: return .renamePeer(id: pick(peerIDs), name: "n\(Int.random(in: 0..<3, using: &rng))")
        case 19..<27:
            let g = pick(groupIDs)
            return .createGroup(id: g, name: g.rawValue, peers: existingPeers(state, max: 5))
        case 27..<33:
            let g = existingGroup(state)
            return .updateGroup(id: g, name: chance(0.8) ? g.rawValue : g.rawValue + "x", peers: existingPeers(state, max: 5))
        case 33..<45: return .addGroupPeers(id: existingGroup(state), peers: existingPeers(state, max: 3))
        case 45..<53:
            let g = existingGroup(state)
            let members = state.group(g)?.peers ?? []
            return .removeGroupPeers(id: g, peers: members.isEmpty ? [pick(peerIDs)] : subset(members, max: 2))
        case 53..<56: return .deleteGroup(id: existingGroup(state))
        case 56..<78: return .createRoute(id: pick(routeIDs), routeInput(state))
        case 78..<94:
            let known = state.routes.keys.sorted()
            return .updateRoute(id: known.isEmpty || chance(0.1) ? pick(routeIDs) : pick(known), routeInput(state))
        default:
            let known = state.routes.keys.sorted()
            return .deleteRoute(id: known.isEmpty || chance(0.1) ? pick(routeIDs) : pick(known))
        }
    }
}

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
