import PostgresClient
import EventStore
import Foundation
@testable import Projections
import RouteModel
import Testing
import TestSupport

/// Large batches write their views and outbox rows through a staging table filled by binary COPY (each body sent
/// once, streamed) instead of one array-literal upsert: the rows stored are exactly those of the small path.
@Suite(.timeLimit(.minutes(5))) struct StagedViewWriteTests {
    @Test func largeBatchesAreStaged() {
        #expect(!ProjectionSQL.usesStaging(views: 1, bodyBytes: 12_000))
        #expect(!ProjectionSQL.usesStaging(views: ProjectionSQL.stagedViews - 1, bodyBytes: 100))
        #expect(ProjectionSQL.usesStaging(views: ProjectionSQL.stagedViews, bodyBytes: 100))
        #expect(ProjectionSQL.usesStaging(views: 3, bodyBytes: ProjectionSQL.stagedBytes))
    }

    /// The same updates (new views, replaced views, tombstones; bodies with quotes, backslashes, non-ASCII and one
    /// larger than a TOAST page) through the staged path into one tenant and through the literal path into
    /// another: `peer_views` and the outbox (rows in the updates' order) hold the same values.
    @Test func stagedWritesStoreWhatTheLiteralPathStores() async throws {
        let db = try await TestDatabase.create()
        do {
            func body(_ i: Int, _ version: Int64) -> [UInt8] {
                let pad = i == 63 ? String(repeating: "x", count: 20_000) : ""
                return Array(#"{"peer":"p\#(i)","v":\#(version),"note":"q\"b\\é\#(pad)"}"#.utf8)
            }
            func update(_ i: Int, _ version: Int64, removed: Bool = false) -> ViewUpdate {
                let b = removed ? Array(#"{"removed":true}"#.utf8) : body(i, version)
                return ViewUpdate(peer: PeerID(String(format: "p%03d", i)), version: version, digest: PeerRouteView.digest(of: b), body: b, removed: removed)
            }
            let first = (0..<100).map { update($0, 1) }
            // Peers 0..<10 removed, 10..<50 changed, 100..<120 new; the rest unchanged (absent).
            let second = (0..<10).map { update($0, 2, removed: true) } + (10..<50).map { update($0, 2) } + (100..<120).map { update($0, 2) }
            for (tenant, staged) in [("staged", true), ("literal", false)] {
                try await db.store.pool.withSession { s in
                    try s.query("BEGIN")
                    for batch in [first, second] {
                        if staged {
                            try ProjectionSQL.writeStaged(s, tenant: tenant, batch)
                        } else {
                            try ProjectionSQL.writeViews(s, tenant: tenant, batch)
                            try ProjectionSQL.writeOutbox(s, tenant: tenant, batch)
                        }
                    }
                    try s.query("COMMIT")
                }
            }
            func rows(_ sql: String, _ tenant: String) async throws -> [[String?]] {
                try await db.store.pool.withSession { s in try s.query(sql, [tenant]).rows }
            }
            let viewsSQL = "SELECT peer_id, version, digest, body::text FROM peer_views WHERE tenant_id = $1 ORDER BY peer_id"
            let outboxSQL = "SELECT peer_id, version, digest, body::text, removed FROM outbox WHERE tenant_id = $1 ORDER BY id"
            let stagedViews = try await rows(viewsSQL, "staged")
            #expect(stagedViews.count == 110)
            #expect(stagedViews == (try await rows(viewsSQL, "literal")))
            let stagedOutbox = try await rows(outboxSQL, "staged")
            #expect(stagedOutbox.count == 170)
            #expect(stagedOutbox == (try await rows(outboxSQL, "literal")))
            #expect(stagedOutbox.filter { $0[4] == "t" }.count == 10)
            #expect(stagedViews.first { $0[0] == "p063" }?[3].map { Array($0.utf8) } == body(63, 1))
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    /// The runner on a tenant whose batches change more views than the staging threshold (a route to 150 peers,
    /// then 70 of them removed in one batch): the stored views equal a rebuild, and the outbox is consistent.
    @Test func runnerBatchesThroughStagingEqualARebuild() async throws {
        let db = try await TestDatabase.create()
        do {
            let store = db.store
            var script = TenantScript(tenant: "wide", seed: 1)
            let peers = (0..<150).map { PeerID("peer-\($0)") }
            for (i, p) in peers.enumerated() {
                try await script.append(.enrollPeer(id: p, name: "peer \(i)", os: "linux", meshIP: "100.64.\(i / 200).\(i % 200 + 1)"), to: store)
            }
            try await script.append(.createGroup(id: "clients", name: "clients", peers: Array(peers.dropFirst(2))), to: store)
            try await script.append(.createRoute(id: "r1", RouteInput(networkID: "lan", network: "10.1.0.0/16", peer: peers[0], groups: ["clients"])), to: store)
            let runner = ProjectionRunner(store: store, configuration: .init(batchSize: 1_000))
            let first = try await runner.catchUp(tenant: "wide")
            #expect(first.contains { $0.viewsChanged >= ProjectionSQL.stagedViews })
            for p in peers[80...] { try await script.append(.removePeer(id: p), to: store) }
            try await script.append(.updateRoute(id: "r1", RouteInput(networkID: "lan", network: "10.2.0.0/16", peer: peers[0], groups: ["clients"])), to: store)
            let second = try await runner.catchUp(tenant: "wide")
            #expect(second.contains { $0.viewsChanged >= ProjectionSQL.stagedViews })

            let report = try await ProjectionMaintenance(store: store).verify()
            #expect(report.count == 1)
            #expect(report.first?.differences.isEmpty == true, "\(report.first?.differences.prefix(5).map(\.description) ?? [])")
            #expect(report.first?.views == 80)
            try await checkOutbox(store, tenant: "wide")
            let tombstones = try await store.pool.withSession { s in
                try s.query("SELECT count(*) FROM outbox WHERE tenant_id = 'wide' AND removed").rows[0][0]
            }
            #expect(tombstones == "70")
        } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }
}
