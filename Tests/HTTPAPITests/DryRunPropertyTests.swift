import ControlPlane
import EventStore
import Foundation
import HTTPAPI
import HTTPTypes
import PostgresClient
import Projections
import RouteModel
import Testing
import TestSupport

/// The property: for random sequences of writes over the HTTP API, a dry run's answer equals what the real call made
/// right after it does — the same status and error, the same events (type, sequence, payload; a create's new id, which
/// each call draws afresh, is compared by substitution), every peer whose stored view the projection then changes is
/// among the affected peers, and each view diff is the diff of the projection's stored views before and after.
@Suite("Dry runs: property", .serialized, .timeLimit(.minutes(8)))
struct DryRunPropertyTests {
    struct World {
        var routers: [String] = []
        var clients: [String] = []
        var groups: [String] = []
        var routes: [String] = []
        var drained: Set<String> = []
        var removedPeer = false
    }

    @Test(arguments: [UInt64(11), 12])
    func dryRunEqualsTheRealCall(seed: UInt64) async throws {
        try await LiveAPI.run { api in
            let (tenant, token) = try await api.tenant("prop")
            var world = World()
            for name in ["g0", "g1", "g2"] { world.groups.append(try await api.send(.post, "/api/groups", token: token, json: ["name": name]).id) }
            world.routers = try await api.enroll(token, names: ["r0", "r1", "r2"], autoGroups: [world.groups[0]])
            world.clients = try await api.enroll(token, names: ["c0", "c1", "c2"], autoGroups: [world.groups[1]])
            let projection = ProjectionRunnerHandle(store: api.db.store)
            try await projection.catchUp(tenant: tenant)
            var rng = SplitMix64(seed: seed)
            var compared = 0, changedViews = 0
            for step in 0..<36 {
                let (method, path, body) = Self.nextWrite(&world, &rng)
                let viewsBefore = try await api.storedViews(tenant)
                let trace = try await DryRunTrace.read(api)
                let dry = try await api.send(method, path + "?dry_run=true", token: token, json: body)
                #expect(try await DryRunTrace.read(api) == trace, "step \(step): the dry run left a trace")
                let real = try await api.send(method, path, token: token, json: body)
                #expect(dry.status == real.status, "step \(step) \(method) \(path): dry \(dry.status) \(dry.text) / real \(real.status) \(real.text)")
                guard dry.status == 200, real.status == 200 else {
                    #expect(dry.message == real.message, "step \(step)")
                    continue
                }
                let answer = try dry.decode(DryRunAnswer.self)
                // A create draws its id per call: the dry run's id stands for the real one.
                let previewID = answer.events.first { $0.type.hasSuffix("Created") }?.target_id
                let realID = method == .post ? real.id : nil
                let stored = try await api.storedEvents(tenant, after: answer.base_sequence)
                #expect(stored.map(\.type) == answer.events.map(\.type), "step \(step) \(method) \(path)")
                #expect(stored.map(\.sequence) == answer.events.map(\.sequence), "step \(step)")
                for (s, e) in zip(stored, answer.events) {
                    let storedTree = try JSONDecoder().decode(JSONTree.self, from: Data(s.data.utf8))
                    let previewTree = previewID.flatMap { from in realID.map { e.data.replacing(from, with: $0) } } ?? e.data
                    #expect(storedTree == previewTree, "step \(step) \(s.type): stored \(s.data)")
                }
                if method == .post, let realID { Self.remember(realID, path: path, in: &world) }
                try await projection.catchUp(tenant: tenant)
                let viewsAfter = try await api.storedViews(tenant)
                var changed = Set<String>()
                for p in Set(viewsBefore.keys).union(viewsAfter.keys) {
                    let id = PeerID(p)
                    if (viewsBefore[p] ?? .empty(id)) != (viewsAfter[p] ?? .empty(id)) { changed.insert(p) }
                }
                #expect(Set(answer.views.map(\.peerID.rawValue)) == changed, "step \(step) \(method) \(path)")
                #expect(changed.isSubset(of: Set(answer.affected_peers)), "step \(step): the projection changed a peer the dry run did not name")
                for diff in answer.views {
                    let p = diff.peerID
                    let expected = ViewDiff(from: viewsBefore[p.rawValue] ?? .empty(p), to: viewsAfter[p.rawValue] ?? .empty(p))
                    let previewed = previewID.flatMap { from in realID.map { try? Self.tree(diff).replacing(from, with: $0) } } ?? (try? Self.tree(diff))
                    #expect(try Self.tree(expected) == previewed, "step \(step) peer \(p)")
                }
                compared += 1
                changedViews += changed.count
            }
            // The sequence exercised what it is meant to: accepted writes that changed views.
            #expect(compared >= 12, "only \(compared) accepted writes")
            #expect(changedViews >= 6, "only \(changedViews) view changes")
        }
    }

    /// A value as a JSON tree (to compare with ids substituted).
    static func tree<T: Encodable>(_ value: T) throws -> JSONTree {
        try JSONDecoder().decode(JSONTree.self, from: JSONEncoder().encode(value))
    }

    static func pick<T>(_ xs: [T], _ rng: inout SplitMix64) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }

    static func routeBody(_ world: World, _ rng: inout SplitMix64) -> [String: Any] {
        var body: [String: Any] = [
            "network_id": pick(["lan", "dc"], &rng), "network": pick(["10.0.0.0/24", "10.1.0.0/16", "fd00::/64"], &rng),
            "metric": pick([10, 100, 200], &rng), "masquerade": Bool.random(using: &rng), "enabled": Int.random(in: 0..<6, using: &rng) > 0,
            "groups": [pick(world.groups, &rng)], "description": "",
        ]
        if Bool.random(using: &rng), !world.routers.isEmpty {
            body["peer"] = pick(world.routers, &rng)
        } else {
            body["peer_groups"] = [pick(world.groups, &rng)]
        }
        return body
    }

    /// A random write over what exists (sometimes one that is refused: a conflict, a group in use).
    static func nextWrite(_ world: inout World, _ rng: inout SplitMix64) -> (HTTPRequest.Method, String, [String: Any]?) {
        let peers = world.routers + world.clients
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<30:
            return (.post, "/api/routes", routeBody(world, &rng))
        case 30..<48 where !world.routes.isEmpty:
            return (.put, "/api/routes/\(pick(world.routes, &rng))", routeBody(world, &rng))
        case 48..<56 where !world.routes.isEmpty:
            let id = pick(world.routes, &rng)
            world.routes.removeAll { $0 == id }
            return (.delete, "/api/routes/\(id)", nil)
        case 56..<64:
            return (.post, "/api/groups", ["name": "n\(Int.random(in: 0..<1000, using: &rng))", "peers": Array(Set((0..<2).map { _ in pick(peers, &rng) }))])
        case 64..<82:
            let g = pick(world.groups, &rng)
            let members = Array(Set((0..<Int.random(in: 0...3, using: &rng)).map { _ in pick(peers, &rng) }))
            return (.put, "/api/groups/\(g)", ["name": "g-\(g.prefix(4))", "peers": members])
        case 82..<86:
            return (.delete, "/api/groups/\(pick(world.groups, &rng))", nil)
        case 86..<97:
            let p = pick(world.routers, &rng)
            let draining = !world.drained.contains(p)
            if draining { world.drained.insert(p) } else { world.drained.remove(p) }
            return (.put, "/api/peers/\(p)", ["name": "router-\(p.prefix(4))", "draining": draining])
        default:
            guard !world.removedPeer, world.routers.count > 1 else { return (.post, "/api/routes", routeBody(world, &rng)) }
            world.removedPeer = true
            let p = world.routers.removeLast()
            return (.delete, "/api/peers/\(p)", nil)
        }
    }

    static func remember(_ id: String, path: String, in world: inout World) {
        if path == "/api/routes" { world.routes.append(id) }
        if path == "/api/groups" { world.groups.append(id) }
    }
}

extension JSONTree {
    /// Every string equal to `from` replaced by `to`.
    func replacing(_ from: String, with to: String) -> JSONTree {
        switch self {
        case .string(let s): return .string(s == from ? to : s)
        case .array(let a): return .array(a.map { $0.replacing(from, with: to) })
        case .object(let o): return .object(o.mapValues { $0.replacing(from, with: to) })
        default: return self
        }
    }
}
