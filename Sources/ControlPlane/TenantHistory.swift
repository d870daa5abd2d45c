import EventStore
import Foundation
import Logging
import PostgresClient
import Projections
import RouteModel

/// A point in a tenant's history, as a client writes it: a tenant sequence number (`42`) or an RFC 3339 time
/// (`2026-12-05T14:02:00Z`, fractional seconds and offsets allowed).
public enum HistoryPoint: Sendable, Equatable, CustomStringConvertible {
    case sequence(Int64)
    case time(Date)

    /// Nil when `text` is neither an integer nor an RFC 3339 time.
    public static func parse(_ text: String) -> HistoryPoint? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let n = Int64(t) { return .sequence(n) }
        if let d = ISO8601.parse(t) { return .time(d) }
        if let d = try? Date(t, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return .time(d) }
        return nil
    }

    public var description: String {
        switch self {
        case .sequence(let n): "sequence \(n)"
        case .time(let d): ISO8601.format(d)
        }
    }
}

/// How as-of reads are served: from a snapshot of the tenant stored every `snapshotInterval` events plus the events
/// after it (`useSnapshots`), or (the benchmark's baseline) by folding every event from the first.
public struct HistorySettings: Sendable {
    /// A snapshot every this many events: an as-of read folds at most this many events after loading one.
    public var snapshotInterval: Int64 = 1000
    public var useSnapshots = true

    public init(snapshotInterval: Int64 = 1000, useSnapshots: Bool = true) {
        self.snapshotInterval = max(1, snapshotInterval)
        self.useSnapshots = useSnapshots
    }
}

/// A tenant snapshot as `tenant_snapshots.body` holds it (JSON). `format` is `TenantHistory.snapshotFormat` of the code
/// that wrote it: a reader ignores rows of another format (and rebuilds them from events), so a change to what a
/// snapshot holds only needs the constant raised.
struct StoredTenantSnapshot: Codable {
    struct Version: Codable {
        var kind: String
        var id: String
        var sequence: Int64
    }
    var format: Int
    var sequence: Int64
    var state: StoredTenantState
    var objectVersions: [Version]
    var creationSequences: [Version]
    var peerEnrolledAt: [String: Int64]

    init(_ s: TenantSnapshot) {
        format = TenantHistory.snapshotFormat
        sequence = s.version
        state = StoredTenantState(s.state)
        func versions(_ d: [ObjectRef: Int64]) -> [Version] {
            d.map { Version(kind: $0.key.kind.rawValue, id: $0.key.id, sequence: $0.value) }
                .sorted { ($0.kind, $0.id) < ($1.kind, $1.id) }
        }
        objectVersions = versions(s.objectVersions)
        creationSequences = versions(s.creationSequences)
        peerEnrolledAt = Dictionary(uniqueKeysWithValues: s.peerEnrolledAt.map { ($0.key.rawValue, $0.value) })
    }

    /// Nil when a kind is unknown (a snapshot written by other code: rebuilt instead).
    var snapshot: TenantSnapshot? {
        func versions(_ vs: [Version]) -> [ObjectRef: Int64]? {
            var out: [ObjectRef: Int64] = [:]
            for v in vs {
                guard let kind = ObjectRef.Kind(rawValue: v.kind) else { return nil }
                out[ObjectRef(kind, v.id)] = v.sequence
            }
            return out
        }
        guard let ov = versions(objectVersions), let cs = versions(creationSequences) else { return nil }
        return TenantSnapshot(state: state.state, version: sequence, objectVersions: ov, creationSequences: cs,
                              peerEnrolledAt: Dictionary(uniqueKeysWithValues: peerEnrolledAt.map { (PeerID($0.key), $0.value) }))
    }

    func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    static func decode(_ text: String) -> StoredTenantSnapshot? {
        try? JSONDecoder().decode(StoredTenantSnapshot.self, from: Data(text.utf8))
    }
}

/// A tenant's state at any past point: resolves a `HistoryPoint` to a sequence and rebuilds the `TenantSnapshot` as of
/// that sequence from the nearest stored snapshot at or before it plus the events after it — exactly the fold the
/// live snapshot (`TenantCache`) does, so `as of k` equals a fold of events 1...k. Snapshots missing on the way (every
/// `snapshotInterval` events) are written as a side effect, so the first read of an old tenant pays for the next ones.
public final class TenantHistory: Sendable {
    /// What a stored snapshot holds (see `StoredTenantSnapshot`); raise it when that changes.
    public static let snapshotFormat = 1

    let store: EventStore
    public let settings: HistorySettings
    let logger: Logger

    public init(store: EventStore, settings: HistorySettings = HistorySettings(), logger: Logger = Logger(label: "routeplane.history")) {
        self.store = store
        self.settings = settings
        self.logger = logger
    }

    /// The sequence `point` names, or a validation error naming `field`: a sequence must be 1...head; a time must not be
    /// in the future (later than `now`) nor before the tenant's first event. A time resolves to the last event recorded
    /// at or before it (events recorded at the same instant: the highest sequence).
    public func resolve(_ point: HistoryPoint, tenant: String, field: String = "as_of", now: Date = Date()) async throws -> Int64 {
        let head = try await store.version(tenant: tenant)
        switch point {
        case .sequence(let k):
            if k < 1 { throw ControlPlaneError.validation(field: field, message: "\(field) must be a sequence number of 1 or more, or an RFC 3339 time") }
            if k > head { throw ControlPlaneError.validation(field: field, message: "\(field) \(k) is beyond the tenant's last event (\(head))") }
            return k
        case .time(let t):
            if t > now { throw ControlPlaneError.validation(field: field, message: "\(field) \(ISO8601.format(t)) is in the future") }
            let stamp = Self.postgresTime(t)
            let rows = try await store.pool.withSession { s in
                try s.query("""
                    SELECT seq FROM events WHERE tenant_id = $1 AND recorded_at <= timestamptz 'epoch' + $2::bigint * interval '1 microsecond'
                     ORDER BY recorded_at DESC, seq DESC LIMIT 1
                    """, [tenant, stamp])
            }
            guard let k = rows.first?.int64("seq") else {
                throw ControlPlaneError.validation(field: field, message: "\(field) \(ISO8601.format(t)) is before the tenant's first event")
            }
            return min(k, head)
        }
    }

    /// Microseconds since 1970 (PostgreSQL's `timestamptz` precision), rounded down.
    static func postgresTime(_ d: Date) -> String {
        String(Int64((d.timeIntervalSince1970 * 1_000_000).rounded(.down)))
    }

    /// The tenant as of `sequence` (which `resolve` returned). `base`, when given and not after `sequence`, is folded
    /// forward if it is closer than the nearest stored snapshot (a diff's second point after its first).
    public func snapshot(tenant: String, at sequence: Int64, base: TenantSnapshot? = nil) async throws -> TenantSnapshot {
        var snap = TenantSnapshot()
        if settings.useSnapshots, let stored = try await nearestStored(tenant: tenant, atOrBefore: sequence) { snap = stored }
        if let base, base.version <= sequence, base.version > snap.version { snap = base }
        var pending: [(Int64, String)] = []
        let interval = settings.snapshotInterval
        while snap.version < sequence {
            let batch = try await store.read(tenant: tenant, fromSequence: snap.version + 1, limit: Int(min(2000, sequence - snap.version)))
            if batch.isEmpty { break }
            for recorded in batch where recorded.sequence <= sequence {
                snap.apply(try TenantCache.decode(recorded, tenant: tenant), sequence: recorded.sequence)
                if settings.useSnapshots && recorded.sequence % interval == 0 {
                    pending.append((recorded.sequence, StoredTenantSnapshot(snap).encoded()))
                }
            }
            if pending.count >= 20 { try await save(tenant: tenant, pending); pending.removeAll() }
        }
        if !pending.isEmpty { try await save(tenant: tenant, pending) }
        guard snap.version == sequence else {
            throw ControlPlaneError.corrupt("tenant \(tenant): history read stopped at event \(snap.version), asked for \(sequence)")
        }
        return snap
    }

    /// The stored snapshot of this format closest to `sequence` from below; one that does not decode is skipped (logged).
    func nearestStored(tenant: String, atOrBefore sequence: Int64) async throws -> TenantSnapshot? {
        let rows = try await store.pool.withSession { s in
            try s.query("""
                SELECT seq, body FROM tenant_snapshots WHERE tenant_id = $1 AND format = $2 AND seq <= $3
                 ORDER BY seq DESC LIMIT 1
                """, [tenant, String(Self.snapshotFormat), String(sequence)])
        }
        guard let row = rows.first, let seq = row.int64("seq"), let body = row.string("body") else { return nil }
        guard let stored = StoredTenantSnapshot.decode(body), stored.format == Self.snapshotFormat, stored.sequence == seq,
              let snap = stored.snapshot else {
            logger.warning("history snapshot does not decode: ignored, the state is folded from events instead",
                           metadata: ["tenant": "\(tenant)", "sequence": "\(seq)"])
            return nil
        }
        return snap
    }

    /// Stores snapshots (idempotent: another reader may have written the same ones).
    func save(tenant: String, _ snapshots: [(Int64, String)]) async throws {
        let seqs = "{" + snapshots.map { String($0.0) }.joined(separator: ",") + "}"
        let bodies = try String(decoding: JSONEncoder().encode(snapshots.map(\.1)), as: UTF8.self)
        _ = try await store.pool.withSession { s in
            try s.query("""
                INSERT INTO tenant_snapshots (tenant_id, format, seq, body)
                SELECT $1, $2, s.seq, s.body
                  FROM unnest($3::bigint[], ARRAY(SELECT json_array_elements_text($4::json))) AS s(seq, body)
                ON CONFLICT DO NOTHING
                """, [tenant, String(Self.snapshotFormat), seqs, bodies])
        }
        logger.debug("history snapshots stored", metadata: ["tenant": "\(tenant)", "count": "\(snapshots.count)",
                                                           "last": "\(snapshots.last?.0 ?? 0)"])
    }
}

/// What changed between two points of a tenant's history: routes, groups and peers added, removed or changed (field by
/// field, old → new), and each peer whose route view differs, with its view diff (a peer that did not exist on one side
/// has the empty view there).
public struct HistoryDiff: Encodable, Sendable {
    public var from: Int64
    public var to: Int64
    public var objects: [ObjectChange]
    public var views: [ViewDiff]

    public init(from a: TenantSnapshot, to b: TenantSnapshot) {
        from = a.version
        to = b.version
        objects = ObjectDiff.between(a.state, b.state)
        views = Set(a.state.peers.keys).union(b.state.peers.keys).sorted().compactMap { p in
            let d = ViewDiff(from: view(for: p, in: a.state), to: view(for: p, in: b.state))
            return d.isEmpty ? nil : d
        }
    }
}

extension TenantHistory {
    /// The diff between sequences `from` ≤ `to` (both resolved); `to` is folded on from `from` when that is closer.
    public func diff(tenant: String, from: Int64, to: Int64) async throws -> HistoryDiff {
        let a = try await snapshot(tenant: tenant, at: from)
        let b = try await snapshot(tenant: tenant, at: to, base: a)
        return HistoryDiff(from: a, to: b)
    }
}
