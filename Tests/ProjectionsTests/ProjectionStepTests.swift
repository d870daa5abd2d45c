@testable import Projections
import PostgresClient
import EventStore
import RouteModel
import TestSupport
import Testing

/// The pure projection step, without a database.
@Suite(.timeLimit(.minutes(10))) struct ProjectionStepTests {
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

    /// `TenantState.apply` updates a route in place when its index keys did not change (metric, description…)
    /// and by remove + insert otherwise: either way the indexes stay those rebuilt from the entities, and the
    /// state and views equal a fold of the same events from zero.
    @Test(arguments: Array(UInt64(1)...4))
    func routeUpdatesInPlaceKeepTheIndexes(seed: UInt64) throws {
        var script = TenantScript(tenant: "t", seed: seed)
        var rng = SplitMix64(seed: seed &+ 1000)
        for step in 0..<600 {
            _ = script.nextEvents()
            let routes = script.state.routes.keys.sorted()
            if !routes.isEmpty, let r = script.state.route(routes[Int(rng.next() % UInt64(routes.count))]) {
                let input = RouteInput(networkID: r.networkID, description: "d\(step)", network: r.destination.network?.description,
                                       domains: r.destination.domains, peer: r.routingPeers.peer, peerGroups: r.routingPeers.peerGroups,
                                       metric: 1 + Int(rng.next() % 9000), masquerade: rng.next() % 2 == 0, groups: r.groups,
                                       enabled: rng.next() % 5 != 0, keepRoute: r.keepRoute, accessControlGroups: r.accessControlGroups,
                                       skipAutoApply: r.skipAutoApply)
                if case .success(let evs) = decide(.updateRoute(id: r.id, input), script.state) {
                    for e in evs {
                        script.state.apply(e)
                        script.events.append(SequencedEvent(sequence: Int64(script.events.count + 1), event: e))
                    }
                }
            }
            if step % 50 == 0 { #expect(script.state.indexesAreConsistent, "seed \(seed) step \(step)") }
        }
        #expect(script.state.indexesAreConsistent)
        var fold = TenantFold(tenant: "t")
        try fold.fold(script.events)
        #expect(fold.state == script.state && fold.state.indexesAreConsistent)
        let fresh = TenantState(events: script.events.map(\.event))
        for p in fresh.peers.keys { #expect(view(for: p, in: fresh) == view(for: p, in: fold.state)) }
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

@Suite(.timeLimit(.minutes(10))) struct ProjectionSQLTests {
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

/// The rebuild's binary COPY against the real PostgreSQL: a failing COPY (duplicate key, invalid JSON)
/// throws the server's error and leaves the session usable for the ROLLBACK and what follows.
@Suite(.timeLimit(.minutes(10))) struct CopyTests {
    @Test func failedCopyThrowsAndLeavesTheSessionUsable() async throws {
        let db = try await TestDatabase.create()
        do {
            let view = ViewUpdate(peer: "p1", version: 3, digest: "d", body: Array(#"{"a":"\"x\\y","ü":[1,2]}"#.utf8), removed: false)
            let results = try await db.store.pool.withSession { s -> [String] in
                var out: [String] = []
                for views in [[view, view], [ViewUpdate(peer: "p2", version: 1, digest: "d", body: Array("{not json".utf8), removed: false)]] {
                    try s.query("BEGIN")
                    do {
                        try ProjectionSQL.replaceAll(s, tenant: "t", views: views, readModels: [])
                        out.append("no error")
                    } catch let EventStoreError.server(sqlState, _, _) {
                        out.append(sqlState)
                    }
                    try s.query("ROLLBACK")
                }
                // A good one commits, byte for byte.
                try s.query("BEGIN")
                let model = ReadModelUpdate(key: ReadModelKey(.peer, "p1"), version: 2, body: #"{"name":"tab\tquote\" ☃"}"#)
                try ProjectionSQL.replaceAll(s, tenant: "t", views: [view], readModels: [model])
                try s.query("COMMIT")
                let row = try s.query("SELECT version, digest, body::text FROM peer_views WHERE tenant_id = 't' AND peer_id = 'p1'").rows
                let peer = try s.query("SELECT version, body::text FROM projected_peers WHERE tenant_id = 't' AND peer_id = 'p1'").rows
                out.append((row.first ?? []).map { $0 ?? "NULL" }.joined(separator: "|"))
                out.append((peer.first ?? []).map { $0 ?? "NULL" }.joined(separator: "|"))
                return out
            }
            #expect(results == ["23505", "22P02", #"3|d|{"a":"\"x\\y","ü":[1,2]}"#, "2|{\"name\":\"tab\\tquote\\\" ☃\"}"])
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }
}
