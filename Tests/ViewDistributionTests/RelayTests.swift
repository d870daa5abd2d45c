import PostgresClient
import EventStore
import Foundation
import NATSClient
import ViewDistribution
import Synchronization
import Testing
import TestSupport

/// The outbox relay against the real PostgreSQL (a fresh database per test) and a private nats-server.
@Suite(.timeLimit(.minutes(3))) struct RelayTests {
    func relayConfiguration(batch: Int = 8, name: String = "relay",
                            afterPublish: (@Sendable ([OutboxRelay.PublishedRow], PostgresSession) throws -> Void)? = nil) -> OutboxRelay.Configuration {
        OutboxRelay.Configuration(
            machine: .init(batchSize: batch, pollInterval: .milliseconds(200), initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(500)),
            publishTimeout: .seconds(3), name: name, afterPublish: afterPublish)
    }

    /// Runs batches until the outbox has no claimable row left (bounded).
    func drain(_ relay: OutboxRelay) async throws {
        for _ in 0..<100 {
            let outcome = await relay.runBatch()
            if let failure = outcome.failure { throw TestSetupError("batch failed: \(failure)") }
            if outcome.claimed == 0 { return }
        }
        throw TestSetupError("outbox not drained after 100 batches")
    }

    @Test func publishesEveryRowOnceInEffect() async throws {
        try await withServices { db, nats in
            let connection = try await connect(nats)
            let relay = OutboxRelay(store: db.store, connection: connection, signer: testSigner, configuration: relayConfiguration(batch: 3))
            try await relay.ensureStream()
            let peers = (1...5).map { "p\($0)" }
            for version in Int64(1)...3 { for peer in peers { try await insertOutbox(db.store, tenant: "t1", peer: peer, version: version) } }
            try await insertOutbox(db.store, tenant: "t2", peer: "p1", version: 7, removed: true)
            // An id that cannot be a subject token: never claimed, never blocks anyone.
            try await insertOutbox(db.store, tenant: "t1", peer: "bad.peer", version: 1)

            try await drain(relay)
            #expect(try await unsentCount(db.store) == 1)
            #expect(try await relay.depth().pending == 1)
            let js = try JetStream(connection: connection)
            for peer in peers { #expect(try await lastVersion(js, tenant: "t1", peer: peer) == 3) }
            #expect(try await lastVersion(js, tenant: "t2", peer: "p1") == 7)
            let tombstone = try #require(try await js.lastMessage(stream: StreamSpec.views.name, subject: "routeplane.t2.peer.p1.routes"))
            #expect(try ViewEnvelope.decode(tombstone.payload).removed)
            // One message per peer: the newest version superseded the older unsent ones.
            let state = try #require(try await js.streamState(StreamSpec.views.name))
            #expect(state.messages == 6 && state.lastSequence == 6)
            let metrics = relay.metrics
            #expect(metrics.published == 6 && metrics.duplicates == 0 && metrics.superseded == 10)
            #expect(metrics.lastPublishLatency != nil)

            // Publishing the same rows again (as after a crash): acknowledged as duplicates, nothing new stored.
            _ = try await db.store.pool.withSession { try $0.query("UPDATE outbox SET sent_at = NULL WHERE version >= 3") }
            try await drain(relay)
            #expect(relay.metrics.duplicates == 6)
            #expect(try await js.streamState(StreamSpec.views.name)?.lastSequence == 6)
            #expect(try await unsentCount(db.store) == 1)
            await connection.close()
        }
    }

    @Test func twoRelaysKeepPerPeerOrder() async throws {
        try await withServices { db, nats in
            let watcherConnection = try await connect(nats, name: "watcher")
            let received = Locked<[String: [Int64]]>([:])
            let subscription = try watcherConnection.subscribe(ViewSubjects.wildcard, bufferingNewest: 100_000)
            let watcher = Task {
                for await message in subscription.messages {
                    if let e = try? ViewEnvelope.decode(message.payload) { received.withLock { $0[message.subject, default: []].append(e.version) } }
                }
            }
            try await watcherConnection.flush()
            let connections = [try await connect(nats, name: "relay-a"), try await connect(nats, name: "relay-b")]
            let relays = connections.enumerated().map { i, c in
                OutboxRelay(store: db.store, connection: c, signer: testSigner, configuration: relayConfiguration(batch: 3, name: "relay-\(i)"))
            }
            let running = relays.map { relay in Task { await relay.run() } }

            let peers = (1...6).map { "p\($0)" }
            let rounds: Int64 = 25
            var rng = SystemRandomNumberGenerator()
            for version in Int64(1)...rounds {
                for peer in peers.shuffled(using: &rng) {
                    try await insertOutbox(db.store, tenant: "t1", peer: peer, version: version)
                }
                if Bool.random(using: &rng) { try await Task.sleep(for: .milliseconds(Int.random(in: 0...15, using: &rng))) }
            }
            let js = try JetStream(connection: watcherConnection)
            let done = try await eventually(timeout: .seconds(30)) {
                guard try await unsentCount(db.store) == 0 else { return false }
                for peer in peers where try await lastVersion(js, tenant: "t1", peer: peer) != rounds { return false }
                return true
            }
            #expect(done)
            try await Task.sleep(for: .milliseconds(200))
            running.forEach { $0.cancel() }
            for task in running { await task.value }
            subscription.unsubscribe()
            watcher.cancel()

            let seen = received.value
            for peer in peers {
                let versions = seen["routeplane.t1.peer.\(peer).routes"] ?? []
                #expect(versions.last == rounds, "\(peer): \(versions)")
                #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 < $1 }, "\(peer) received out of order: \(versions)")
            }
            let total = relays.map(\.metrics.published).reduce(0, +)
            #expect(total >= UInt64(peers.count))
            #expect(relays.allSatisfy { $0.metrics.duplicates == 0 })
            for c in connections { await c.close() }
            await watcherConnection.close()
        }
    }

    @Test func aDeletedStreamIsCreatedAgain() async throws {
        try await withServices { db, nats in
            let connection = try await connect(nats)
            let relay = OutboxRelay(store: db.store, connection: connection, signer: testSigner, configuration: relayConfiguration())
            let running = Task { await relay.run() }
            let js = try JetStream(connection: connection)
            try await insertOutbox(db.store, tenant: "t1", peer: "p1", version: 1)
            #expect(try await eventually(timeout: .seconds(10)) { try await unsentCount(db.store) == 0 })
            try await js.deleteStream(StreamSpec.views.name)
            try await insertOutbox(db.store, tenant: "t1", peer: "p1", version: 2)
            #expect(try await eventually(timeout: .seconds(10)) { try await unsentCount(db.store) == 0 })
            #expect(try await lastVersion(js, tenant: "t1", peer: "p1") == 2)
            #expect(try await js.streamState(StreamSpec.views.name)?.maxMessagesPerSubject == 1)
            running.cancel()
            await running.value
            await connection.close()
        }
    }

    @Test func relayKilledBetweenPublishAndMarkSentIsDeduplicated() async throws {
        try await withServices { db, nats in
            let connection = try await connect(nats)
            let killed = Locked(0)
            let dying = OutboxRelay(store: db.store, connection: connection, signer: testSigner, configuration: relayConfiguration(afterPublish: { rows, session in
                killed.withLock { $0 += rows.count }
                // The relay's database session dies after the acknowledgements, before mark-sent and COMMIT.
                try session.query("SELECT pg_terminate_backend(pg_backend_pid())")
            }))
            try await dying.ensureStream()
            for peer in ["p1", "p2", "p3"] { try await insertOutbox(db.store, tenant: "t1", peer: peer, version: 4) }
            let outcome = await dying.runBatch()
            #expect(outcome.published == 0)
            guard case .database? = outcome.failure else { Issue.record("\(outcome)"); return }
            #expect(killed.value == 3)
            #expect(try await unsentCount(db.store) == 3)
            let js = try JetStream(connection: connection)
            #expect(try await js.streamState(StreamSpec.views.name)?.lastSequence == 3)

            let survivor = OutboxRelay(store: db.store, connection: connection, signer: testSigner, configuration: relayConfiguration())
            try await drain(survivor)
            #expect(try await unsentCount(db.store) == 0)
            #expect(survivor.metrics.published == 3 && survivor.metrics.duplicates == 3)
            // Nothing was stored twice.
            #expect(try await js.streamState(StreamSpec.views.name)?.lastSequence == 3)
            for peer in ["p1", "p2", "p3"] { #expect(try await lastVersion(js, tenant: "t1", peer: peer) == 4) }
            await connection.close()
        }
    }

    @Test func natsDownRowsWaitThenFlowInOrder() async throws {
        try await withServices { db, nats in
            let connection = try await connect(nats, name: "relay")
            let relay = OutboxRelay(store: db.store, connection: connection, signer: testSigner, configuration: relayConfiguration(batch: 2))
            let running = Task { await relay.run() }
            let peers = ["p1", "p2", "p3", "p4"]
            for peer in peers { try await insertOutbox(db.store, tenant: "t1", peer: peer, version: 1) }
            let agentConnection = try await connect(nats, name: "agent")
            let js = try JetStream(connection: agentConnection)
            #expect(try await eventually(timeout: .seconds(10)) { try await unsentCount(db.store) == 0 })
            let feed = try await ViewFeed.follow(connection: agentConnection, tenant: "t1", peer: "p1", resyncInterval: nil)
            let applied = Locked<Int64>(0)
            let agent = Task {
                for await event in feed.events {
                    if case let .view(envelope, _) = event { applied.withLock { $0 = max($0, envelope.version) } }
                }
            }
            #expect(try await eventually(timeout: .seconds(5)) { applied.value == 1 })

            await nats.stop()
            for version in Int64(2)...5 { for peer in peers { try await insertOutbox(db.store, tenant: "t1", peer: peer, version: version) } }
            // Wait until the relay has failed against the stopped server (not a guessed delay).
            #expect(try await eventually(timeout: .seconds(20)) { relay.metrics.health == .natsDown && relay.metrics.failedAttempts > 0 },
                    "the relay never noticed NATS was down")
            #expect(try await unsentCount(db.store) == 16, "rows wait while NATS is down")
            let failedWhileDown = relay.metrics.failedAttempts

            try await nats.restart()
            #expect(try await eventually(timeout: .seconds(20)) { try await unsentCount(db.store) == 0 })
            for peer in peers { #expect(try await lastVersion(js, tenant: "t1", peer: peer) == 5) }
            // Version 1 and then only the newest version of each peer were stored.
            #expect(try await js.streamState(StreamSpec.views.name)?.lastSequence == 8)
            #expect(relay.metrics.health == .running)
            #expect(failedWhileDown < 40, "back-off keeps the attempts few: \(failedWhileDown)")
            // The agent's feed re-read the last message after the reconnect.
            #expect(try await eventually(timeout: .seconds(10)) { applied.value == 5 })

            running.cancel()
            await running.value
            feed.cancel()
            agent.cancel()
            await connection.close()
            await agentConnection.close()
        }
    }
}
