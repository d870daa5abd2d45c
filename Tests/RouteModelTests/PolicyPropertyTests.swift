@testable import RouteModel
import TestSupport
import Testing

/// The brute-force affected-peer check of `PropertyTests`, with policies in the mix: random route, group, peer and
/// policy commands; after every event, every peer whose recomputed view (forward rules included) changed must be in
/// `affectedPeers`, the in-place set must equal it, and the stored events must rebuild the state.
@Suite struct PolicyPropertyTests {
    static let seeds: [UInt64] = Array(101...124)

    enum AnyCommand {
        case route(Command)
        case policy(PolicyCommand)
    }

    struct Generator {
        var base: CommandGenerator
        let policyIDs: [PolicyID] = (0..<4).map { PolicyID("pol\($0)") }
        var ruleSerial = 0

        init(seed: UInt64) { base = CommandGenerator(seed: seed) }

        mutating func groups(_ state: TenantState, max: Int) -> [GroupID] {
            (0..<Int.random(in: 1...max, using: &base.rng)).map { _ in base.existingGroup(state) }
        }

        mutating func rule(_ state: TenantState) -> PolicyRuleInput {
            let proto = base.pick(["all", "tcp", "udp", "icmp", "tcp"])
            let ports: [String]? = (proto == "tcp" || proto == "udp") && base.chance(0.6) ? [base.pick(["22", "80", "443"])] : nil
            return PolicyRuleInput(id: nil, name: "r", enabled: base.chance(0.85), action: base.chance(0.8) ? "accept" : "drop",
                                   bidirectional: base.chance(0.3), protocol: proto, sources: groups(state, max: 2),
                                   destinations: groups(state, max: 2), ports: ports)
        }

        mutating func policyInput(_ state: TenantState) -> PolicyInput {
            PolicyInput(name: "p", enabled: base.chance(0.85), rules: (0..<Int.random(in: 1...2, using: &base.rng)).map { _ in rule(state) })
        }

        mutating func freshRuleIDs() -> [String] {
            ruleSerial += 2
            return ["rule\(ruleSerial - 1)", "rule\(ruleSerial)"]
        }

        mutating func next(_ state: TenantState) -> AnyCommand {
            let roll = Int.random(in: 0..<100, using: &base.rng)
            if roll < 12 { return .policy(.createPolicy(id: base.pick(policyIDs), policyInput(state), newRuleIDs: freshRuleIDs())) }
            if roll < 20 { return .policy(.updatePolicy(id: base.pick(policyIDs), policyInput(state), newRuleIDs: freshRuleIDs())) }
            if roll < 23 { return .policy(.deletePolicy(id: base.pick(policyIDs))) }
            if roll < 35 {
                // A route with access-control groups (the generator's own routes have them only now and then).
                var input = base.routeInput(state)
                input.accessControlGroups = [base.existingGroup(state)]
                input.enabled = true
                return .route(.createRoute(id: base.pick(base.routeIDs), input))
            }
            return .route(base.next(state))
        }
    }

    @Test(arguments: seeds)
    func impactNeverMissesAForwardRuleChange(seed: UInt64) throws {
        var gen = Generator(seed: seed)
        let universe = Set(gen.base.peerIDs)
        var state = TenantState()
        var log: [(type: String, json: [UInt8])] = []
        var views = allViews(state, peers: universe)
        var policyEvents = 0
        var viewsWithRules = 0
        for step in 0..<260 {
            let result: Result<[RouteEvent], ValidationError>
            switch gen.next(state) {
            case .route(let c): result = decide(c, state)
            case .policy(let c): result = decide(c, state)
            }
            guard case .success(let evs) = result else { continue }
            for e in evs {
                if case .policyCreated = e { policyEvents += 1 }
                if case .policyUpdated = e { policyEvents += 1 }
                if case .policyDeleted = e { policyEvents += 1 }
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
                viewsWithRules += after.values.count { v in v.forwards.contains { ($0.rules?.isEmpty == false) } }
                views = after
            }
            if step % 20 == 0 { #expect(state.indexesAreConsistent, "seed \(seed) step \(step)") }
        }
        #expect(policyEvents > 5, "too few policy events: \(policyEvents)")
        #expect(viewsWithRules > 0, "no view ever carried a forward rule")
        let rebuilt = TenantState(events: try log.map { try RouteEvent.decode(type: $0.type, json: $0.json) })
        #expect(rebuilt == state)
        #expect(rebuilt.indexesAreConsistent)
        for p in universe { #expect(view(for: p, in: rebuilt).canonicalJSON() == views[p]!.canonicalJSON()) }
    }
}
