@testable import Projections
import EventStore
import RouteModel
import TestSupport
import Testing

/// The pure projection step, without a database.
@Suite struct ProjectionStepTests {
    /// Random batch sizes: after every batch the stored digests equal a rebuild from zero; read models
    /// equal the rebuild's (bodies and versions); the baseline (every view after every event) publishes
    /// the same views with the same digests.
    @Test(arguments: Array(UInt64(1)...8))
    func batchesOfAnySizeEqualARebuild(seed: UInt64) throws {
        var script = TenantScript(tenant: "t", seed: seed)
        for _ in 0..<400 { _ = script.nextEvents() }
        let events = script.events
        var rng = SplitMix64(seed: seed &* 31)
        var incremental = TenantProjection(tenant: "t")
        var baseline = TenantProjection(tenant: "t")
        var readModels: [ReadModelKey: ReadModelUpdate] = [:]
        var published = 0
        var i = 0
        while i < events.count {
            let n = min(events.count - i, Int.random(in: 1...40, using: &rng))
            let batch = Array(events[i..<i + n])
            i += n
            let a = try incremental.apply(batch, mode: .incremental)
            let b = try baseline.apply(batch, mode: .fullRecompute)
            #expect(a.views.map { [$0.peer.rawValue, $0.digest, "\($0.removed)"] } == b.views.map { [$0.peer.rawValue, $0.digest, "\($0.removed)"] })
            #expect(a.readModels == b.readModels)
            #expect(a.viewsComputed <= b.viewsComputed)
            for u in a.views {
                #expect(u.version >= a.firstSequence && u.version <= a.lastSequence)
                #expect(PeerRouteView.digest(of: u.body) == u.digest)
            }
            published += a.views.count
            for r in a.readModels { readModels[r.key] = r.body == nil ? nil : r }

            var fold = TenantFold(tenant: "t")
            try fold.fold(Array(events[..<i]))
            let rebuilt = fold.result()
            #expect(Set(incremental.stored.keys) == Set(rebuilt.views.keys))
            for (p, v) in rebuilt.views { #expect(incremental.stored[p]?.digest == v.digest, "seed \(seed) after \(i): view of \(p)") }
            #expect(readModels == rebuilt.readModels)
        }
        #expect(published > 50)
        #expect(incremental.state == script.state)
    }

    @Test func unchangedViewPublishesNothingRemovedPeerGetsATombstone() throws {
        var p = TenantProjection(tenant: "t")
        let commands: [Command] = [
            .enrollPeer(id: "r1", name: "r1", os: "linux", meshIP: "100.64.0.1"),
            .enrollPeer(id: "c1", name: "c1", os: "windows", meshIP: "100.64.0.2"),
            .enrollPeer(id: "c2", name: "c2", os: "darwin", meshIP: "100.64.0.3"),
            .createGroup(id: "clients", name: "clients", peers: ["c1", "c2"]),
            .createRoute(id: "lan", RouteInput(networkID: "lan", network: "10.0.0.0/24", peer: "r1", metric: 100, groups: ["clients"])),
        ]
        var state = TenantState()
        var seq: Int64 = 0
        func run(_ c: Command) throws -> ProjectionBatch {
            guard case .success(let evs) = decide(c, state) else { Issue.record("refused \(c)"); return try p.apply([]) }
            var batch: [SequencedEvent] = []
            for e in evs { seq += 1; state.apply(e); batch.append(SequencedEvent(sequence: seq, event: e)) }
            return try p.apply(batch)
        }
        var all: [ViewUpdate] = []
        for c in commands { all += try run(c).views }
        #expect(Set(all.map(\.peer)) == ["r1", "c1", "c2"])

        // A rename is in no view: no view update, one read-model update.
        let rename = try run(.renamePeer(id: "c1", name: "laptop"))
        #expect(rename.views.isEmpty)
        #expect(rename.readModels.map(\.key) == [ReadModelKey(.peer, "c1")])

        // A description change is in no view either.
        let describe = try run(.updateRoute(id: "lan", RouteInput(networkID: "lan", description: "x", network: "10.0.0.0/24", peer: "r1", metric: 100, groups: ["clients"])))
        #expect(describe.views.isEmpty)
        #expect(describe.readModels.map(\.key) == [ReadModelKey(.route, "lan")])

        // A metric change reaches the two clients, not the routing peer (its forwards carry no metric).
        let metric = try run(.updateRoute(id: "lan", RouteInput(networkID: "lan", network: "10.0.0.0/24", peer: "r1", metric: 50, groups: ["clients"])))
        #expect(metric.views.map(\.peer) == ["c1", "c2"])
        #expect(metric.views.allSatisfy { $0.version == seq })

        // Removing a client: a tombstone (its empty view), its group changes in the read model.
        let removed = try run(.removePeer(id: "c2"))
        #expect(removed.views.map(\.peer) == ["c2"])
        #expect(removed.views.first?.removed == true)
        #expect(removed.views.first?.body == PeerRouteView.empty("c2").canonicalJSON())
        #expect(p.stored["c2"] == nil)
        #expect(removed.readModels.contains { $0.key == ReadModelKey(.peer, "c2") && $0.body == nil })
        #expect(removed.readModels.contains { $0.key == ReadModelKey(.group, "clients") && $0.body != nil })
    }

    @Test func gapsAreRefusedAndLeaveTheProjectionUnchanged() throws {
        var script = TenantScript(tenant: "t", seed: 99)
        for _ in 0..<10 { _ = script.nextEvents() }
        var p = TenantProjection(tenant: "t")
        _ = try p.apply(Array(script.events.prefix(3)))
        #expect(throws: ProjectionError.gap(tenant: "t", expected: 4, got: 5)) {
            _ = try p.apply(Array(script.events[4...]))
        }
        #expect(p.sequence == 3)
        _ = try p.apply(Array(script.events[3...]))
        #expect(p.sequence == Int64(script.events.count))
    }
}

@Suite struct ProjectionSQLTests {
    /// The byte-level array literal (view bodies go through it) equals the plain one and a straightforward reference.
    @Test func arrayLiteralsAgree() {
        let cases: [[String]] = [[], [""], ["a"], ["\"", "\\", "\\\""], ["{\"a\":\"b\\\"c\"}", "é😀", "x,y", "{}"],
                                 [String(repeating: "\"q\\", count: 100)]]
        for elements in cases {
            let expected = Self.arrayLiteralReference(elements)
            #expect(PostgresArray.literal(elements) == expected)
            #expect(PostgresArray.literal(bytes: elements.map { Array($0.utf8) }) == expected)
        }
    }

    static func arrayLiteralReference(_ elements: [String]) -> String {
        var out = "{"
        for (i, element) in elements.enumerated() {
            if i > 0 { out += "," }
            out += "\""
            for scalar in element.unicodeScalars {
                if scalar == "\"" || scalar == "\\" { out += "\\" }
                out.unicodeScalars.append(scalar)
            }
            out += "\""
        }
        return out + "}"
    }
}
