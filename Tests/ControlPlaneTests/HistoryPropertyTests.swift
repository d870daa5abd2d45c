@testable import ControlPlane
import Projections
import RouteModel
import Testing
import TestSupport

/// As-of reads as `TenantHistory` serves them — the nearest stored snapshot at or before k (encoded and decoded as the
/// database holds it) plus the events after it — against a rebuild that folds the stored events 1...k from nothing.
@Suite struct HistoryPropertyTests {
    /// Random accepted commands until `count` events, each encoded and decoded as the store gives it back.
    static func events(seed: UInt64, count: Int) throws -> [RouteEvent] {
        var gen = CommandGenerator(seed: seed)
        var state = TenantState()
        var out: [RouteEvent] = []
        while out.count < count {
            guard case .success(let evs) = decide(gen.next(state), state) else { continue }
            for e in evs { state.apply(e) }
            out += evs
        }
        return try out.map { e in
            let (type, json) = e.encode()
            return try RouteEvent.decode(type: type, json: json)
        }
    }

    static func fold(_ events: ArraySlice<RouteEvent>, onto base: TenantSnapshot = TenantSnapshot()) -> TenantSnapshot {
        var s = base
        for (i, e) in zip(events.indices, events) { s.apply(e, sequence: Int64(i + 1)) }
        return s
    }

    /// For every sampled k (and every k near a snapshot boundary): the state, object versions (ETags), creation order,
    /// enrollment times and every peer's view bytes equal the rebuild's; the restored state's indexes are consistent
    /// (views and validation read them); a snapshot re-encodes to the bytes it was stored as; a diff between equal
    /// points is empty and a diff to k lists exactly the objects that differ.
    @Test(arguments: Array(UInt64(1)...12))
    func asOfEqualsARebuild(seed: UInt64) throws {
        let events = try Self.events(seed: seed, count: 260)
        var rng = SplitMix64(seed: seed &* 977)
        let interval = Int.random(in: 3...40, using: &rng)
        var stored: [Int: String] = [:]
        var live = TenantSnapshot()
        for (i, e) in events.enumerated() {
            live.apply(e, sequence: Int64(i + 1))
            if (i + 1) % interval == 0 { stored[i + 1] = StoredTenantSnapshot(live).encoded() }
        }
        #expect(stored.count >= 5)
        var samples = Set((0..<30).map { _ in Int.random(in: 1...events.count, using: &rng) })
        for b in stored.keys.sorted().prefix(3) { samples.formUnion([b - 1, b, b + 1].filter { $0 >= 1 && $0 <= events.count }) }
        samples.insert(events.count)
        let universe = CommandGenerator(seed: seed).peerIDs
        for k in samples.sorted() {
            let base = stored.keys.filter { $0 <= k }.max()
            var restored = TenantSnapshot()
            if let base {
                let body = try #require(stored[base])
                let decoded = try #require(StoredTenantSnapshot.decode(body))
                restored = try #require(decoded.snapshot)
                #expect(StoredTenantSnapshot(restored).encoded() == body, "seed \(seed): snapshot \(base) re-encodes differently")
            }
            let asOf = Self.fold(events[(base ?? 0)..<k], onto: restored)
            let rebuilt = Self.fold(events[0..<k])
            let rebuiltState = TenantState(events: events[0..<k])
            #expect(asOf.version == Int64(k))
            #expect(asOf.state == rebuiltState, "seed \(seed) k \(k) (snapshot \(base ?? 0))")
            #expect(asOf.state.indexesAreConsistent, "seed \(seed) k \(k)")
            #expect(asOf.objectVersions == rebuilt.objectVersions, "seed \(seed) k \(k): object versions")
            #expect(asOf.creationSequences == rebuilt.creationSequences, "seed \(seed) k \(k): creation order")
            #expect(asOf.peerEnrolledAt == rebuilt.peerEnrolledAt, "seed \(seed) k \(k): enrollment times")
            for p in universe {
                #expect(view(for: p, in: asOf.state).canonicalJSON() == view(for: p, in: rebuiltState).canonicalJSON(),
                        "seed \(seed) k \(k): view of \(p)")
            }
            #expect(HistoryDiff(from: asOf, to: rebuilt).objects.isEmpty)
            #expect(HistoryDiff(from: asOf, to: rebuilt).views.isEmpty)
        }
    }

    /// A diff from j to k: an object is listed iff it differs, a peer's view iff its bytes differ.
    @Test(arguments: Array(UInt64(1)...6))
    func diffListsExactlyWhatDiffers(seed: UInt64) throws {
        let events = try Self.events(seed: seed &+ 100, count: 200)
        var rng = SplitMix64(seed: seed)
        for _ in 0..<10 {
            let j = Int.random(in: 1...events.count, using: &rng)
            let k = Int.random(in: j...events.count, using: &rng)
            let (a, b) = (Self.fold(events[0..<j]), Self.fold(events[0..<k]))
            let d = HistoryDiff(from: a, to: b)
            #expect(d.from == Int64(j) && d.to == Int64(k))
            let listed = Set(d.objects.map { "\($0.kind.rawValue) \($0.id)" })
            var differing = Set<String>()
            for id in Set(a.state.routes.keys).union(b.state.routes.keys) where a.state.route(id) != b.state.route(id) { differing.insert("route \(id.rawValue)") }
            for id in Set(a.state.groups.keys).union(b.state.groups.keys) where a.state.group(id) != b.state.group(id) { differing.insert("group \(id.rawValue)") }
            for id in Set(a.state.peers.keys).union(b.state.peers.keys) where a.state.peer(id) != b.state.peer(id) { differing.insert("peer \(id.rawValue)") }
            #expect(listed == differing, "seed \(seed) \(j)→\(k)")
            let peers = Set(a.state.peers.keys).union(b.state.peers.keys)
            let changedViews = Set(peers.filter { view(for: $0, in: a.state).canonicalJSON() != view(for: $0, in: b.state).canonicalJSON() })
            #expect(Set(d.views.map(\.peerID)) == changedViews, "seed \(seed) \(j)→\(k): view diffs")
        }
    }

    /// What the command generator never makes: the tenant's name, tokens (scopes, expiry, revocation), setup keys and
    /// their usage survive a snapshot's round trip too.
    @Test func tokensSetupKeysAndUsageSurviveASnapshot() throws {
        let key = SetupKey(id: SetupKeyID("k1"), name: "ci", type: .reusable, expiresAt: 2_000_000_000, autoGroups: [],
                           usageLimit: 5, createdAt: 1_700_000_000, keySecret: "hash", updatedAt: 1_700_000_100)
        let events: [RouteEvent] = [
            .tenantCreated(TenantCreated(name: "acme")),
            .tokenCreated(TokenCreated(tokenID: TokenID("t1"), name: "ops", scope: .readOnly, expiresAt: 1_800_000_000,
                                       createdAt: 1_700_000_000, createdBy: "cli")),
            .tokenCreated(TokenCreated(tokenID: TokenID("t2"), name: "old")),
            .tokenRevoked(TokenRevoked(tokenID: TokenID("t2"), name: "old")),
            .setupKeyCreated(SetupKeyCreated(setupKey: key)),
            .peerEnrolled(PeerEnrolled(peer: Peer(id: PeerID("p1"), name: "a", os: "linux", meshIP: try IPAddress(parsing: "100.64.0.1")),
                                       setupKeyID: SetupKeyID("k1"), enrolledAt: 1_700_000_200)),
            .peerEnrolled(PeerEnrolled(peer: Peer(id: PeerID("p2"), name: "b", os: "linux", meshIP: try IPAddress(parsing: "100.64.0.2"), draining: true),
                                       setupKeyID: SetupKeyID("k1"), enrolledAt: 1_700_000_300)),
        ]
        let live = Self.fold(events[...])
        #expect(live.state.setupKeyUsage[SetupKeyID("k1")]?.usedTimes == 2)
        let restored = try #require(StoredTenantSnapshot.decode(StoredTenantSnapshot(live).encoded())?.snapshot)
        #expect(restored.state == live.state)
        #expect(restored.state.tokens == live.state.tokens && restored.state.setupKeyUsage == live.state.setupKeyUsage)
        #expect(restored.state.tenantName == "acme" && restored.state.peer(PeerID("p2"))?.draining == true)
        #expect(restored.peerEnrolledAt == live.peerEnrolledAt && restored.objectVersions == live.objectVersions)
    }
}
