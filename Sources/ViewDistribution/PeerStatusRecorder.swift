import PostgresClient
import EventStore
import Foundation
import Logging
import NATSClient
import Synchronization

/// Records agents' status messages (`routeplane.<tenant>.peer.<peer>.status`) in `peer_status`, so
/// `GET /api/peers/{id}` shows `connected`, `last_seen` and the applied view version. Runs in every
/// controller, subscribed in one queue group, so each message is recorded by one controller of the deployment;
/// rows are upserted in batches per flush to keep PostgreSQL calm with thousands of agents reporting every few
/// seconds.
///
/// Only the peer's own NATS user may publish its status subject (operator-mode permissions); still, the recorder
/// trusts nothing in a message: the subject must name a live peer of that tenant (checked in the upsert against
/// `credentials`), the body must be a JSON object of at most `maxBodyBytes` whose tenant and peer match the subject,
/// and no string in it may hold U+0000 (PostgreSQL's jsonb refuses it). The stored JSON is re-encoded from the parsed
/// object. A batch the database refuses anyway is written again row by row, so one bad row never drops the others.
public final class PeerStatusRecorder: Sendable {
    public static let subject = BusPermissions.statusWildcard
    /// The queue group every controller's recorder joins.
    public static let queueGroup = "routeplane-status"
    public static let maxBodyBytes = 64 * 1024

    let store: EventStore
    let connection: NATSConnection
    let logger: Logger
    let flushInterval: Duration
    let counters = Mutex(Counters())

    public struct Counters: Sendable, Equatable {
        /// Well-formed messages this recorder received (a message goes to one recorder of the queue group).
        public var received = 0
        public var recorded = 0
        /// Refused before the database: malformed subject or body, too large, NUL, tenant/peer mismatch.
        public var refused = 0
        /// Refused by the upsert: no live peer of that id in that tenant.
        public var unknownPeer = 0
        /// Rows the database refused when written one by one.
        public var failedRows = 0
    }

    public var metrics: Counters { counters.withLock { $0 } }
    private let subscribed = Mutex(false)
    /// The subscription is known to the server (after `run` subscribed and a flush round trip).
    public var isSubscribed: Bool { subscribed.withLock { $0 } }

    public init(store: EventStore, connection: NATSConnection, flushInterval: Duration = .milliseconds(500),
                logger: Logger = Logger(label: "routeplane.status")) {
        self.store = store
        self.connection = connection
        self.flushInterval = flushInterval
        self.logger = logger
    }

    struct Report: Sendable, Equatable {
        var tenant: String
        var peer: String
        var appliedVersion: Int64
        var json: String
    }

    enum Refusal: Error, Equatable, CustomStringConvertible {
        case subject, tooLarge(Int), notAnObject, mismatch, nul, tooDeep

        var description: String {
            switch self {
            case .subject: "subject is not routeplane.<tenant>.peer.<peer>.status"
            case .tooLarge(let n): "body of \(n) bytes exceeds \(PeerStatusRecorder.maxBodyBytes)"
            case .notAnObject: "body is not a JSON object"
            case .mismatch: "tenant_id/peer_id in the body do not match the subject"
            case .nul: "body contains U+0000"
            case .tooDeep: "body is nested too deeply"
            }
        }
    }

    /// The report a message carries, if its subject and body agree and parse; why not otherwise.
    static func report(subject: String, payload: [UInt8]) -> Result<Report, Refusal> {
        let parts = subject.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "routeplane", parts[2] == "peer", parts[4] == "status",
              ViewSubjects.isValidToken(String(parts[1])), ViewSubjects.isValidToken(String(parts[3])) else { return .failure(.subject) }
        guard payload.count <= maxBodyBytes else { return .failure(.tooLarge(payload.count)) }
        // A raw NUL byte is invalid JSON anyway; the escape is what JSON parsers turn into one.
        guard !payload.contains(0) else { return .failure(.nul) }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else { return .failure(.notAnObject) }
        let tenant = String(parts[1]), peer = String(parts[3])
        guard object["tenant_id"] as? String == tenant, object["peer_id"] as? String == peer else { return .failure(.mismatch) }
        switch check(object, depth: 0) {
        case .some(let refusal): return .failure(refusal)
        case .none: break
        }
        let version = (object["applied_version"] as? NSNumber)?.int64Value ?? 0
        guard let encoded = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return .failure(.notAnObject) }
        return .success(Report(tenant: tenant, peer: peer, appliedVersion: max(0, version), json: String(decoding: encoded, as: UTF8.self)))
    }

    /// nil when every key and string is free of U+0000 and nesting stays shallow.
    private static func check(_ value: Any, depth: Int) -> Refusal? {
        guard depth < 16 else { return .tooDeep }
        switch value {
        case let s as String: return s.unicodeScalars.contains("\u{0}") ? .nul : nil
        case let d as [String: Any]:
            for (k, v) in d {
                if k.unicodeScalars.contains("\u{0}") { return .nul }
                if let r = check(v, depth: depth + 1) { return r }
            }
            return nil
        case let a as [Any]:
            for v in a { if let r = check(v, depth: depth + 1) { return r } }
            return nil
        default: return nil
        }
    }

    /// Follows status messages until cancelled; what arrived is written every `flushInterval`.
    public func run() async {
        let subscription: NATSSubscription
        do {
            subscription = try connection.queueSubscribe(Self.subject, queue: Self.queueGroup, bufferingNewest: 16_384)
            if (try? await connection.flush()) != nil { subscribed.withLock { $0 = true } }
        } catch {
            logger.error("cannot subscribe to agent status", metadata: ["error": "\(error)"])
            return
        }
        let pending = Pending()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in subscription.messages {
                    switch Self.report(subject: message.subject, payload: message.payload) {
                    case .success(let r):
                        pending.reports.withLock { $0[r.tenant + "/" + r.peer] = r }
                        self.counters.withLock { $0.received += 1 }
                    case .failure(let refusal):
                        let n = self.counters.withLock { c in c.refused += 1; return c.refused }
                        if n == 1 || n % 1000 == 0 {
                            self.logger.warning("refused agent status messages", metadata: ["count": "\(n)", "last_reason": "\(refusal)",
                                                                                            "last_subject": "\(message.subject.prefix(200))"])
                        }
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
    }

    /// The upsert: only rows of live peers of that tenant (an agent credential not revoked); an older applied version
    /// never replaces a newer one (a late message), though `last_seen` still moves. Returns the rows written.
    static let upsert = """
        INSERT INTO peer_status (tenant_id, peer_id, applied_version, status, last_seen)
        SELECT u.t, u.p, u.v, u.s::jsonb, now()
          FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS u(t, p, v, s)
          JOIN credentials c ON c.tenant_id = u.t AND c.kind = 'peer' AND c.subject_id = u.p AND c.revoked_at IS NULL
        ON CONFLICT (tenant_id, peer_id) DO UPDATE
          SET applied_version = GREATEST(peer_status.applied_version, EXCLUDED.applied_version),
              status = CASE WHEN EXCLUDED.applied_version >= peer_status.applied_version THEN EXCLUDED.status ELSE peer_status.status END,
              last_seen = EXCLUDED.last_seen
        RETURNING tenant_id
        """

    func flush(_ reports: [String: Report]) async {
        guard !reports.isEmpty else { return }
        // In key order: upserts taking the same rows' locks in different orders deadlock each other (40P01, found by
        // ops/chaos with 3 controllers when every controller recorded every report); one order cannot.
        let rows = reports.sorted { $0.key < $1.key }.map(\.value)
        do {
            let written = try await write(rows)
            counters.withLock { c in
                c.recorded += written
                c.unknownPeer += rows.count - written
            }
        } catch {
            logger.warning("could not record agent status as one batch; writing row by row", metadata: ["reports": "\(rows.count)", "error": "\(error)"])
            for row in rows {
                do {
                    let written = try await write([row])
                    counters.withLock { c in
                        c.recorded += written
                        c.unknownPeer += 1 - written
                    }
                } catch {
                    counters.withLock { $0.failedRows += 1 }
                    logger.warning("could not record one agent's status", metadata: ["tenant_id": "\(row.tenant)", "peer_id": "\(row.peer)", "error": "\(error)"])
                }
            }
        }
    }

    private func write(_ rows: [Report]) async throws -> Int {
        try await store.pool.withSession { s in
            try s.query(Self.upsert, [PostgresArray.literal(rows.map(\.tenant)), PostgresArray.literal(rows.map(\.peer)),
                                      PostgresArray.literal(rows.map { String($0.appliedVersion) }), PostgresArray.literal(rows.map(\.json))]).count
        }
    }
}
