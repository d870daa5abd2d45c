import EventStore
import Foundation
import Logging
import Synchronization

/// Records agents' status messages (`routeplane.<tenant>.peer.<peer>.status`) in `peer_status`, so
/// `GET /api/peers/{id}` shows `connected`, `last_seen` and the applied view version. Runs in every
/// controller; rows are upserted (the last report wins), batched per flush to keep PostgreSQL calm
/// with thousands of agents reporting every few seconds.
public final class PeerStatusRecorder: Sendable {
    public static let subject = "routeplane.*.peer.*.status"

    let store: EventStore
    let connection: NATSConnection
    let logger: Logger
    let flushInterval: Duration

    public init(store: EventStore, connection: NATSConnection, flushInterval: Duration = .milliseconds(500),
                logger: Logger = Logger(label: "routeplane.status")) {
        self.store = store
        self.connection = connection
        self.flushInterval = flushInterval
        self.logger = logger
    }

    struct Report: Sendable {
        var tenant: String
        var peer: String
        var appliedVersion: Int64
        var json: String
    }

    /// The report a message carries, if its subject and body agree and parse.
    static func report(subject: String, payload: [UInt8]) -> Report? {
        let parts = subject.split(separator: ".")
        guard parts.count == 5, parts[0] == "routeplane", parts[2] == "peer", parts[4] == "status", payload.count <= 64 * 1024,
              let object = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else { return nil }
        let tenant = String(parts[1]), peer = String(parts[3])
        guard object["tenant_id"] as? String == tenant, object["peer_id"] as? String == peer else { return nil }
        let version = (object["applied_version"] as? NSNumber)?.int64Value ?? 0
        return Report(tenant: tenant, peer: peer, appliedVersion: version, json: String(decoding: payload, as: UTF8.self))
    }

    /// Follows status messages until cancelled; what arrived is written every `flushInterval`.
    public func run() async {
        let subscription: NATSSubscription
        do {
            subscription = try connection.subscribe(Self.subject, bufferingNewest: 16_384)
        } catch {
            logger.error("cannot subscribe to agent status", metadata: ["error": "\(error)"])
            return
        }
        let pending = Pending()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in subscription.messages {
                    if let r = Self.report(subject: message.subject, payload: message.payload) {
                        pending.reports.withLock { $0[r.tenant + "/" + r.peer] = r }
                    } else {
                        let n = pending.ignored.withLock { n in n += 1; return n }
                        if n == 1 || n % 1000 == 0 { self.logger.warning("ignored malformed status messages", metadata: ["count": "\(n)"]) }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.flushInterval)
                    await self.flush(pending.reports.withLock { p in defer { p.removeAll(keepingCapacity: true) }; return p })
                }
            }
            await withTaskCancellationHandler {
                await group.next()
            } onCancel: {
                subscription.unsubscribe()
            }
            group.cancelAll()
        }
        await flush(pending.reports.withLock { $0 })
    }

    /// Reports received and not yet written, shared by the receiving and the flushing task.
    final class Pending: Sendable {
        let reports = Mutex<[String: Report]>([:])
        let ignored = Mutex(0)
    }

    func flush(_ reports: [String: Report]) async {
        guard !reports.isEmpty else { return }
        // In key order: every controller records every report, and upserts taking the same rows' locks in different
        // orders deadlock each other (40P01, found by ops/chaos with 3 controllers); one order cannot.
        let rows = reports.sorted { $0.key < $1.key }.map(\.value)
        do {
            _ = try await store.pool.withSession { s in
                try s.query("""
                    INSERT INTO peer_status (tenant_id, peer_id, applied_version, status, last_seen)
                    SELECT t, p, v, s::jsonb, now() FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS u(t, p, v, s)
                    ON CONFLICT (tenant_id, peer_id) DO UPDATE
                      SET applied_version = EXCLUDED.applied_version, status = EXCLUDED.status, last_seen = EXCLUDED.last_seen
                    """, [PostgresArray.literal(rows.map(\.tenant)), PostgresArray.literal(rows.map(\.peer)),
                          PostgresArray.literal(rows.map { String($0.appliedVersion) }), PostgresArray.literal(rows.map(\.json))])
            }
        } catch {
            logger.warning("could not record agent status", metadata: ["reports": "\(rows.count)", "error": "\(error)"])
        }
    }
}
