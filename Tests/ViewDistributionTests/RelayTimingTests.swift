import EventStore
import NATSClient
import Synchronization
import Testing
import TestSupport
import ViewDistribution

/// `OutboxRelay.Configuration.onBatchTiming`: each batch that claimed peers reports its stage timestamps (the
/// profile of `routeplane-bench propagation --stages`) with its counts; an empty claim reports nothing; and
/// observing changes nothing about what is published.
@Suite(.timeLimit(.minutes(3))) struct RelayTimingTests {
    @Test func batchesReportTheirStagesInOrder() async throws {
        try await withServices { db, nats in
            let connection = try await connect(nats)
            let timings = Mutex<[RelayBatchTiming]>([])
            var configuration = OutboxRelay.Configuration(machine: .init(batchSize: 100), publishTimeout: .seconds(3), name: "timed")
            configuration.onBatchTiming = { t in timings.withLock { $0.append(t) } }
            let relay = OutboxRelay(store: db.store, connection: connection, signer: testSigner, configuration: configuration)
            try await relay.ensureStream()
            for i in 0..<150 { try await insertOutbox(db.store, tenant: "t1", peer: "p\(i)", version: 5) }
            for _ in 0..<10 {
                let outcome = await relay.runBatch()
                #expect(outcome.failure == nil)
                if outcome.claimed == 0 { break }
            }
            #expect(try await unsentCount(db.store) == 0)
            let js = try JetStream(connection: connection)
            #expect(try await js.streamState(StreamSpec.views.name)?.messages == 150)
            let verifier = try ViewVerifier(pinnedKey: testSigner.publicKey)
            let message = try #require(try await js.lastMessage(stream: StreamSpec.views.name, subject: "routeplane.t1.peer.p149.routes"))
            _ = try verifier.verify(try ViewEnvelope.decode(message.payload, expectedTenant: "t1", expectedPeer: "p149"))
            let reported = timings.withLock { $0 }
            #expect(reported.map(\.messages) == [100, 50])
            #expect(reported.map(\.claimedRows) == [100, 50])
            for t in reported {
                #expect(t.began > 0 && t.began <= t.claimed && t.claimed <= t.signed && t.signed <= t.acknowledged && t.acknowledged <= t.committed)
            }
            await connection.close()
        }
    }
}
