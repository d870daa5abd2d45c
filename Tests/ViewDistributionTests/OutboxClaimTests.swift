@testable import NATSClient
@testable import ViewDistribution
@testable import ViewTransport
import PostgresClient
import EventStore
import Testing
import TestSupport

/// The relay's pure claim helpers and the acknowledgement fast path (no I/O).
@Suite(.timeLimit(.minutes(10))) struct OutboxClaimTests {
    @Test func lockedPeersKeepFirstAppearanceOrderAndLowestVersion() {
        let c = { (t: String, p: String, v: Int64) in OutboxClaim.Candidate(tenant: t, peer: p, version: v) }
        let peers = OutboxClaim.lockedPeers([c("t1", "b", 4), c("t1", "a", 2), c("t1", "b", 5), c("t2", "b", 1), c("t1", "a", 3)])
        #expect(peers == [.init(tenant: "t1", peer: "b", fromVersion: 4), .init(tenant: "t1", peer: "a", fromVersion: 2),
                          .init(tenant: "t2", peer: "b", fromVersion: 1)])
        #expect(OutboxClaim.lockedPeers([]).isEmpty)
    }

    @Test func planPublishesEachPeersNewestUnsentRowAndSupersedesTheRest() {
        let r = { (p: String, id: Int64, v: Int64, unsent: Bool) in OutboxClaim.PeerRow(tenant: "t", peer: p, id: id, version: v, unsent: unsent) }
        let plan = OutboxClaim.plan([
            r("a", 12, 7, true), r("a", 9, 5, true),  // a: two unsent versions, newest 7
            r("b", 13, 7, true),                       // b: one
            r("c", 14, 7, false), r("c", 8, 5, true),  // c: newest out already (another relay): 5 superseded
            r("d", 15, 7, false),                      // d: nothing left to do
        ])
        #expect(plan.publish == [.init(newest: r("a", 12, 7, true), markOnAck: [12, 9]), .init(newest: r("b", 13, 7, true), markOnAck: [13])])
        #expect(plan.superseded == [8])
        #expect(OutboxClaim.plan([]) == .init())
    }

    @Test func usualAcknowledgementsAreReadInPlace() {
        func ack(_ s: String) -> PublishResult? { JetStreamPublisher.quickAck(Array(s.utf8)) }
        #expect(ack(#"{"stream":"ROUTEPLANE_VIEWS","seq":42}"#) == .stored(sequence: 42, duplicate: false))
        #expect(ack(#"{"stream":"ROUTEPLANE_VIEWS", "seq":7,"duplicate":true}"#) == .stored(sequence: 7, duplicate: true))
        #expect(ack(#"{"stream":"S","domain":"hub","seq":1,"duplicate":false}"#) == .stored(sequence: 1, duplicate: false))
        // Anything else takes the general path.
        #expect(ack(#"{"error":{"code":503,"err_code":10039,"description":"x"},"stream":"S"}"#) == nil)
        #expect(ack(#"{"stream":"S"}"#) == nil)
        #expect(ack(#"{"stream":"S","seq":"1"}"#) == nil)
        #expect(ack("not json") == nil)
        #expect(JetStreamPublisher.parseAck(NATSMessage(subject: "x", payload: Array(#"{"error":{"code":400,"err_code":10060,"description":"wrong stream"}}"#.utf8)))
                == .failed(.rejected(code: 10060, description: "wrong stream")))
    }
}

/// The claim against PostgreSQL: a peer held by another transaction is skipped, and rows whose newer version is
/// out already are marked superseded without being published.
@Suite(.timeLimit(.minutes(10))) struct OutboxClaimDatabaseTests {
    @Test func lockedPeersAreSkippedAndSupersededRowsMarkedWithoutPublishing() async throws {
        try await withServices { db, nats in
            let connection = try await connect(nats)
            let relay = OutboxRelay(store: db.store, connection: connection, signer: testSigner, configuration: .init(
                machine: .init(batchSize: 10), publishTimeout: .seconds(3), name: "claim-test"))
            try await relay.ensureStream()
            for peer in ["p1", "p2"] { try await insertOutbox(db.store, tenant: "t1", peer: peer, version: 1) }
            // p3: an unsent row behind a newer version that was published already.
            try await insertOutbox(db.store, tenant: "t1", peer: "p3", version: 1)
            try await insertOutbox(db.store, tenant: "t1", peer: "p3", version: 2)
            _ = try await db.store.pool.withSession { try $0.query("UPDATE outbox SET sent_at = now() WHERE peer_id = 'p3' AND version = 2") }

            // Another relay's transaction holds p1's lock: this batch takes p2 and settles p3, and leaves p1.
            let holder = try await db.store.pool.dedicatedConnection(label: "holder")
            _ = try await holder.withSession { s in
                try s.query("BEGIN")
                try s.query("SELECT pg_advisory_xact_lock(hashtextextended('routeplane.outbox:t1:p1', 0))")
            }
            let first = await relay.runBatch()
            #expect(first.failure == nil)
            #expect(first.published == 1)
            let js = try JetStream(connection: connection)
            #expect(try await lastVersion(js, tenant: "t1", peer: "p2") == 1)
            #expect(try await lastVersion(js, tenant: "t1", peer: "p3") == nil, "superseded, not published")
            #expect(try await unsentCount(db.store) == 1)

            _ = try await holder.withSession { try $0.query("COMMIT") }
            holder.close()
            let second = await relay.runBatch()
            #expect(second.published == 1)
            #expect(try await lastVersion(js, tenant: "t1", peer: "p1") == 1)
            #expect(try await unsentCount(db.store) == 0)
            await connection.close()
        }
    }
}
