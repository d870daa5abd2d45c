import PostgresClient
import EventStore
import Foundation
import ViewDistribution
import NATSAuth
import NATSClient
import Synchronization
import Testing
import TestSupport

func withServices(_ body: (TestDatabase, PrivateNATS) async throws -> Void) async throws {
    let db = try await TestDatabase.create()
    do {
        try await PrivateNATS.with { nats in try await body(db, nats) }
    } catch {
        await db.drop()
        throw error
    }
    await db.drop()
}

extension PrivateNATS {
    /// Credentials of a user without permission limits (the tests play the controller).
    func adminCredentials(name: String = "test-admin") -> NATSUserCredentials {
        let (jwt, key) = adminUser(name: name)
        return NATSUserCredentials(jwt: { jwt }, sign: { key.sign($0) })
    }
}

func connect(_ nats: PrivateNATS, name: String = "test") async throws -> NATSConnection {
    var configuration = NATSConfiguration(url: nats.url, name: name)
    configuration.userCredentials = nats.adminCredentials(name: name)
    configuration.reconnectWait = .milliseconds(100)
    configuration.reconnectJitter = .milliseconds(50)
    let connection = try await NATSConnection.connect(configuration)
    // failIfUnreachable is false: wait for the first connection.
    _ = try await eventually(timeout: .seconds(10)) { connection.isConnected }
    return connection
}

/// Polls `condition` every 20 ms until it holds; returns false after `timeout`.
@discardableResult
func viewBody(peer: String, version: Int64) -> String {
    #"{"peer":"\#(peer)","routes":[{"network":"10.\#(version % 250).0.0/16","metric":\#(version)}]}"#
}

/// Inserts one outbox row (as the projection runner would) and NOTIFYs the relay.
func insertOutbox(_ store: EventStore, tenant: String, peer: String, version: Int64, removed: Bool = false) async throws {
    let body = viewBody(peer: peer, version: version)
    _ = try await store.pool.withSession { s in
        try s.query("INSERT INTO outbox (tenant_id, peer_id, version, digest, body, removed) VALUES ($1, $2, $3, $4, $5::json, $6)",
                    [tenant, peer, String(version), SHA256Digest.hex(Array(body.utf8)), body, removed ? "t" : "f"])
        try s.query("SELECT pg_notify('routeplane_outbox', $1)", [tenant])
    }
}

func unsentCount(_ store: EventStore) async throws -> Int {
    let rows = try await store.pool.withSession { try $0.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL") }
    return Int(rows.rows[0][0]!)!
}

/// The relays' view signing key in these tests (a fixed seed: message ids are stable across runs).
let testSigner = try! ViewSigner(seed: [UInt8](repeating: 7, count: 32))

/// The version of the stream's last message on the peer's subject (decoded, digest- and signature-checked), nil if none.
func lastVersion(_ js: JetStream, tenant: String, peer: String) async throws -> Int64? {
    guard let message = try await js.lastMessage(stream: StreamSpec.views.name, subject: try ViewSubjects.subject(tenant: tenant, peer: peer)) else {
        return nil
    }
    let envelope = try ViewEnvelope.decode(message.payload, expectedTenant: tenant, expectedPeer: peer)
    #expect(message.messageID == envelope.messageID(using: testSigner))
    #expect(throws: Never.self) { try ViewVerifier(pinnedKey: testSigner.publicKey).verify(envelope) }
    #expect(envelope.view == Array(viewBody(peer: peer, version: envelope.version).utf8))
    return envelope.version
}

final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}
