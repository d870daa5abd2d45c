import RouteModel


/// Random command sequences over a small universe (so that HA sets, conflicts, refusals and
/// shared groups happen often), driven by a seeded generator.
public struct CommandGenerator: Sendable {
    public var rng: SplitMix64
    public let peerIDs: [PeerID]
    public let groupIDs: [GroupID] = (0..<6).map { GroupID("g\($0)") }
    public let routeIDs: [RouteID] = (0..<12).map { RouteID("rt\($0)") }
    public let networks = ["10.0.0.0/24", "10.0.0.0/16", "10.1.0.0/24", "fd00::/64", "0.0.0.0/0"]
    public let domainLists = [["a.example.com"], ["a.example.com", "*.b.example.com"], ["c.example.org"]]
    public let networkIDs = ["lan", "dc", "office"]
    public let oses = ["linux", "linux", "linux", "windows", "darwin"]

    /// `peers`: how many peer ids the commands draw from (12 for the model's property tests).
    public init(seed: UInt64, peers: Int = 12) {
        rng = SplitMix64(seed: seed)
        peerIDs = (0..<peers).map { PeerID("p\($0)") }
    }

    public mutating func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }
    public mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    public mutating func subset<T>(_ xs: [T], max: Int) -> [T] {
        let n = Int.random(in: 0...max, using: &rng)
        return (0..<n).map { _ in pick(xs) }
    }

    /// Mostly ids that exist (so most commands are accepted), sometimes any id (refusals).
    public mutating func existingPeers(_ state: TenantState, max: Int) -> [PeerID] {
        let known = state.peers.keys.sorted()
        return known.isEmpty || chance(0.1) ? subset(peerIDs, max: max) : subset(known, max: max)
    }
    public mutating func existingGroup(_ state: TenantState) -> GroupID {
        let known = state.groups.keys.sorted()
        return known.isEmpty || chance(0.1) ? pick(groupIDs) : pick(known)
    }
    public mutating func routingPeer(_ state: TenantState) -> PeerID {
        let linux = state.peers.values.filter(\.canRoute).map(\.id).sorted()
        return linux.isEmpty || chance(0.1) ? pick(peerIDs) : pick(linux)
    }

    public mutating func routeInput(_ state: TenantState) -> RouteInput {
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

    public mutating func next(_ state: TenantState) -> Command {
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
        case 56..<76: return .createRoute(id: pick(routeIDs), routeInput(state))
        case 76..<90:
            let known = state.routes.keys.sorted()
            return .updateRoute(id: known.isEmpty || chance(0.1) ? pick(routeIDs) : pick(known), routeInput(state))
        case 90..<94:
            // Mostly Linux peers (the ones that can be candidates), sometimes any id (404).
            return .setPeerDraining(id: routingPeer(state), draining: chance(0.6))
        default:
            let known = state.routes.keys.sorted()
            return .deleteRoute(id: known.isEmpty || chance(0.1) ? pick(routeIDs) : pick(known))
        }
    }
}
