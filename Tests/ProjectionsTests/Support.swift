import EventStore
import Foundation
import Projections
import RouteModel
import Testing

/// SplitMix64: small, fast, seeded.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random valid-looking commands over a small universe (adapted from RouteModelTests/PropertyTests), so
/// HA sets, shared groups, removals and re-enrolments happen often; `decide` refuses the invalid ones.
struct CommandGenerator {
    var rng: SplitMix64
    let peerIDs: [PeerID] = (0..<14).map { PeerID("p\($0)") }
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

/// Generates accepted commands for one tenant and remembers the events (pure).
struct TenantScript {
    let tenant: String
    var generator: CommandGenerator
    var state = TenantState()
    var events: [SequencedEvent] = []

    init(tenant: String, seed: UInt64) {
        self.tenant = tenant
        generator = CommandGenerator(seed: seed)
    }

    /// The events of the next accepted command.
    mutating func nextEvents() -> [RouteEvent] {
        while true {
            if case .success(let evs) = decide(generator.next(state), state), !evs.isEmpty {
                for e in evs {
                    state.apply(e)
                    events.append(SequencedEvent(sequence: Int64(events.count + 1), event: e))
                }
                return evs
            }
        }
    }

    /// Appends the next accepted command's events to the store (expected version checked).
    mutating func appendNext(to store: EventStore) async throws {
        let version = Int64(events.count)
        let evs = nextEvents()
        let range = try await store.append(tenant: tenant, expected: version == 0 ? .noEvents : .exactly(version), events: Self.newEvents(evs))
        #expect(range.upperBound == Int64(events.count))
    }

    static func newEvents(_ evs: [RouteEvent]) -> [NewEvent] {
        evs.map { e in
            let (type, json) = e.encode()
            return NewEvent(type: type, data: String(decoding: json, as: UTF8.self), metadata: EventMetadata(actor: "test"))
        }
    }
}

struct OutboxRow: Sendable {
    var id: Int64
    var peer: String
    var version: Int64
    var digest: String
    var body: String
    var removed: Bool
}

func outboxRows(_ store: EventStore, tenant: String) async throws -> [OutboxRow] {
    let rows = try await store.pool.withSession { s in
        try s.query("SELECT id, peer_id, version, digest, body, removed FROM outbox WHERE tenant_id = $1 ORDER BY id", [tenant])
    }
    return rows.rows.map { r in
        OutboxRow(id: Int64(r[0]!)!, peer: r[1]!, version: Int64(r[2]!)!, digest: r[3]!, body: r[4]!, removed: r[5] == "t")
    }
}

/// Checks the outbox of `tenant` against its stored views: per peer, versions strictly increase in id
/// order (one row per version), consecutive rows differ in digest (an unchanged view is never
/// published; a tombstone, and a re-enrolled peer's first view, may carry the same empty view), the last row is the stored view
/// (or a tombstone when the peer has none), and every row's digest is the SHA-256 of its body.
func checkOutbox(_ store: EventStore, tenant: String, allowRepublished: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let outbox = try await outboxRows(store, tenant: tenant)
    let viewRows = try await store.pool.withSession { s in
        try s.query("SELECT peer_id, version, digest, body FROM peer_views WHERE tenant_id = $1", [tenant])
    }
    var views: [String: (version: Int64, digest: String, body: String)] = [:]
    for r in viewRows.rows { views[r[0]!] = (Int64(r[1]!)!, r[2]!, r[3]!) }
    var byPeer: [String: [OutboxRow]] = [:]
    for row in outbox { byPeer[row.peer, default: []].append(row) }
    for (peer, rows) in byPeer {
        for (a, b) in zip(rows, rows.dropFirst()) {
            #expect(a.version < b.version, "tenant \(tenant) peer \(peer): outbox versions \(a.version) then \(b.version)", sourceLocation: sourceLocation)
            if !a.removed && !b.removed && !allowRepublished {
                #expect(a.digest != b.digest, "tenant \(tenant) peer \(peer): unchanged view published again at \(b.version)", sourceLocation: sourceLocation)
            }
        }
        for r in rows {
            #expect(PeerRouteView.digest(of: Array(r.body.utf8)) == r.digest, sourceLocation: sourceLocation)
        }
        let last = rows.last!
        if let v = views[peer] {
            #expect(!last.removed && last.version == v.version && last.digest == v.digest && last.body == v.body,
                    "tenant \(tenant) peer \(peer): last outbox row is not the stored view", sourceLocation: sourceLocation)
        } else {
            #expect(last.removed, "tenant \(tenant) peer \(peer): no view but last outbox row is not a tombstone", sourceLocation: sourceLocation)
        }
    }
    for peer in views.keys {
        #expect(byPeer[peer] != nil, "tenant \(tenant) peer \(peer): stored view never published", sourceLocation: sourceLocation)
    }
}

func checkpoint(_ store: EventStore, tenant: String) async throws -> Int64 {
    try await ProjectionCheckpoints(store: store).sequence(tenant: tenant)
}
