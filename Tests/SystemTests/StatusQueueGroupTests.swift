import EventStore
import PostgresClient
import ControlPlane
import Foundation
import Logging
import NATSAuth
import NATSClient
import Testing
import TestSupport
import ViewDistribution

/// Agents' status messages with two controllers: each message is recorded by one of them (NATS queue group), never by
/// both — N messages, N receptions in all.
@Suite("status recorder queue group", .timeLimit(.minutes(5)), .serialized)
struct StatusQueueGroupTests {
    @Test("two recorders share the messages: N published, N received in all, both took some")
    func oneRecorderPerMessage() async throws {
        try await System.with { system in
            let a = try await PropagationTests().tenant(system, "qg", clients: 2, bystanders: 0)
            for agent in [a.router] + a.clients { await agent.stop() }
            var recorders: [PeerStatusRecorder] = []
            var connections: [NATSConnection] = []
            var tasks: [Task<Void, Never>] = []
            for i in 0..<2 {
                var configuration = NATSConfiguration(url: system.nats.url, name: "status-\(i)")
                configuration.failIfUnreachable = true
                configuration.userCredentials = ControllerBusUser(keys: system.nats.keys!).credentials
                let connection = try await NATSConnection.connect(configuration, logger: system.logger)
                let recorder = PeerStatusRecorder(store: system.db.store, connection: connection, flushInterval: .milliseconds(200), logger: system.logger)
                connections.append(connection)
                recorders.append(recorder)
                tasks.append(Task { await recorder.run() })
                #expect(await eventually(timeout: .seconds(10)) { recorder.isSubscribed })
            }
            let peers = [await a.router.peerID] + (await withTaskGroup(of: String.self) { g in
                for c in a.clients { g.addTask { await c.peerID } }
                return await g.reduce(into: [String]()) { $0.append($1) }
            })
            let admin = try await system.adminConnection()
            let n = 90
            for i in 0..<n {
                let peer = peers[i % peers.count]
                try admin.publish(BusPermissions.statusSubject(tenant: a.id, peer: peer),
                                  payload: Array(#"{"tenant_id":"\#(a.id)","peer_id":"\#(peer)","applied_version":\#(i + 1)}"#.utf8))
            }
            try await admin.flush()
            func received() -> [Int] { recorders.map { $0.metrics.received } }
            #expect(await eventually(timeout: .seconds(20)) { received().reduce(0, +) >= n }, "\(received())")
            // Everything the server routed to each recorder was delivered before the answer to a round trip on its connection.
            for c in connections { try await c.flush() }
            #expect(!(await eventually(timeout: .seconds(2)) { received().reduce(0, +) > n }), "a message was received twice: \(received())")
            #expect(received().reduce(0, +) == n)
            #expect(received().allSatisfy { $0 > 0 }, "both recorders took part: \(received())")
            // And the rows hold the newest version per peer.
            #expect(await eventually(timeout: .seconds(10)) {
                let rows = try? await system.db.store.pool.withSession { s in
                    try s.query("SELECT max(applied_version) AS v FROM peer_status WHERE tenant_id = $1", [a.id])
                }
                return rows?.first?.int64("v") == Int64(n)
            })
            for t in tasks { t.cancel() }
            for t in tasks { await t.value }
            for c in connections { await c.close() }
            await admin.close()
        }
    }
}
