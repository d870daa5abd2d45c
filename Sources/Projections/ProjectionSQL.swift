import PostgresClient
import EventStore
import RouteModel

/// The SQL of the projections: synchronous calls on a session, used inside one `withSession` closure
/// (one transaction). Every value is a parameter; arrays travel as one text-array parameter each.
enum ProjectionSQL {
    /// The advisory lock key of a tenant's projection (the runner, rebuild and verify agree on it).
    static let lockKey = "hashtextextended('routeplane.projection:' || $1, 0)"

    /// Tries the tenant's projection lock for this transaction; false when another runner holds it.
    static func tryLock(_ s: PostgresSession, tenant: String) throws -> Bool {
        let rows = try s.query("SELECT pg_try_advisory_xact_lock(\(lockKey)) AS locked", [tenant])
        return rows.first?.bool("locked") == true
    }

    /// Waits for the tenant's projection lock (rebuild).
    static func lock(_ s: PostgresSession, tenant: String) throws {
        try s.query("SELECT pg_advisory_xact_lock(\(lockKey))", [tenant])
    }

    /// The checkpoint, locked for this transaction (created at 0 when missing).
    static func checkpointForUpdate(_ s: PostgresSession, tenant: String) throws -> Int64 {
        try s.query("INSERT INTO projection_checkpoints (tenant_id, seq) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING", [tenant])
        let rows = try s.query("SELECT seq FROM projection_checkpoints WHERE tenant_id = $1 FOR UPDATE", [tenant])
        guard let seq = rows.first?.int64("seq") else {
            throw ProjectionError.invalidResponse("no checkpoint row for tenant \(tenant)")
        }
        return seq
    }

    static func checkpoint(_ s: PostgresSession, tenant: String) throws -> Int64 {
        let rows = try s.query("SELECT seq FROM projection_checkpoints WHERE tenant_id = $1", [tenant])
        return rows.first?.int64("seq") ?? 0
    }

    static func setCheckpoint(_ s: PostgresSession, tenant: String, sequence: Int64) throws {
        try s.query("UPDATE projection_checkpoints SET seq = $2, updated_at = now() WHERE tenant_id = $1", [tenant, String(sequence)])
        // Delivered at commit: wakes `waitUntilProjected` in other controllers.
        try s.query("SELECT pg_notify('routeplane_projected', $1)", [tenant])
    }

    /// For this transaction, compresses large values (view bodies) with LZ4 instead of pglz where the
    /// server supports it: several times faster to write, read back transparently. A no-op elsewhere.
    static func preferFastCompression(_ s: PostgresSession) throws {
        try s.query("""
            SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings
             WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)
            """)
    }

    /// Events of `tenant` with `after < seq <= upTo`, at most `limit`, decoded (straight from the result).
    static func readEvents(_ s: PostgresSession, tenant: String, after: Int64, upTo: Int64 = .max, limit: Int) throws -> [SequencedEvent] {
        try EventRowReader.read(
            s, "SELECT seq, type, data FROM events WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
            [tenant, String(after), String(upTo), String(limit)], tenant: tenant)
    }

    /// Folds every event of `tenant` up to `upTo` (paged, inside the caller's transaction).
    static func fold(_ s: PostgresSession, tenant: String, upTo: Int64, pageSize: Int = 10_000) throws -> TenantFold {
        var fold = TenantFold(tenant: tenant)
        while fold.sequence < upTo {
            let page = try readEvents(s, tenant: tenant, after: fold.sequence, upTo: upTo, limit: pageSize)
            if page.isEmpty { break }
            try fold.fold(page)
        }
        return fold
    }

    /// (version, digest) of every stored view of `tenant`.
    static func storedRefs(_ s: PostgresSession, tenant: String) throws -> [PeerID: StoredViewRef] {
        try refs(s.query("SELECT peer_id, version, digest FROM peer_views WHERE tenant_id = $1", [tenant]), tenant: tenant)
    }

    /// (version, digest) of the views of `tenant` stored after `sequence` (by another runner's batches).
    static func storedRefs(_ s: PostgresSession, tenant: String, after sequence: Int64) throws -> [PeerID: StoredViewRef] {
        try refs(s.query("SELECT peer_id, version, digest FROM peer_views WHERE tenant_id = $1 AND version > $2", [tenant, String(sequence)]),
                 tenant: tenant)
    }

    /// Rows of (peer_id, version, digest) by peer.
    private static func refs(_ rows: PostgresRows, tenant: String) throws -> [PeerID: StoredViewRef] {
        var out: [PeerID: StoredViewRef] = [:]
        out.reserveCapacity(rows.count)
        for row in rows {
            guard let p = row.string("peer_id"), let v = row.int64("version"), let d = row.string("digest") else {
                throw ProjectionError.invalidResponse("malformed peer_views row of tenant \(tenant)")
            }
            out[PeerID(p)] = StoredViewRef(version: v, digest: d)
        }
        return out
    }

    static func storedViews(_ s: PostgresSession, tenant: String) throws -> [PeerID: StoredView] {
        let rows = try s.query("SELECT peer_id, version, digest, body FROM peer_views WHERE tenant_id = $1", [tenant])
        var out: [PeerID: StoredView] = [:]
        for row in rows {
            guard let p = row.string("peer_id"), let v = row.int64("version"), let d = row.string("digest"), let b = row.string("body") else {
                throw ProjectionError.invalidResponse("malformed peer_views row of tenant \(tenant)")
            }
            out[PeerID(p)] = StoredView(version: v, digest: d, body: Array(b.utf8))
        }
        return out
    }

    static func storedReadModels(_ s: PostgresSession, tenant: String) throws -> [ReadModelKey: ReadModelUpdate] {
        var out: [ReadModelKey: ReadModelUpdate] = [:]
        for kind in ReadModelKind.allCases {
            let (table, idColumn) = kind.table
            let rows = try s.query("SELECT \(idColumn), version, body FROM \(table) WHERE tenant_id = $1", [tenant])
            for row in rows {
                guard let id = row.string(idColumn), let v = row.int64("version"), let b = row.string("body") else {
                    throw ProjectionError.invalidResponse("malformed \(table) row of tenant \(tenant)")
                }
                let key = ReadModelKey(kind, id)
                out[key] = ReadModelUpdate(key: key, version: v, body: b)
            }
        }
        return out
    }

    /// Upserts the views that exist and deletes those of removed peers.
    static func writeViews(_ s: PostgresSession, tenant: String, _ updates: [ViewUpdate]) throws {
        let live = updates.filter { !$0.removed }
        let gone = updates.filter(\.removed)
        if !live.isEmpty {
            try s.query(
                """
                INSERT INTO peer_views (tenant_id, peer_id, version, digest, body)
                SELECT $1, u.p, u.v, u.d, u.b FROM unnest($2::text[], $3::bigint[], $4::text[], $5::json[]) AS u(p, v, d, b)
                ON CONFLICT (tenant_id, peer_id) DO UPDATE
                   SET version = EXCLUDED.version, digest = EXCLUDED.digest, body = EXCLUDED.body, updated_at = now()
                """,
                [tenant, PostgresArray.literal(live.map(\.peer.rawValue)), PostgresArray.literal(live.map { String($0.version) }),
                 PostgresArray.literal(live.map(\.digest)), PostgresArray.literal(bytes: live.map(\.body))])
        }
        if !gone.isEmpty {
            try s.query("DELETE FROM peer_views WHERE tenant_id = $1 AND peer_id = ANY($2::text[])",
                        [tenant, PostgresArray.literal(gone.map(\.peer.rawValue))])
        }
    }

    /// One outbox row per update, in the updates' order (by peer). A (peer, version) already in the outbox is an
    /// error: nothing ever publishes two contents under one version.
    /// Binary COPY, not `INSERT … unnest($n::json[]) ORDER BY peer`: a route change reaching 10,000 peers wrote
    /// ~4.5 MB of bodies per batch, and the array literal (built here, parsed by `array_in`), the unnest tuplestore
    /// and the sort both spilled to temp files on the server (auto_explain, `bench propagation --agents 10000`).
    static func writeOutbox(_ s: PostgresSession, tenant: String, _ updates: [ViewUpdate]) throws {
        guard !updates.isEmpty else { return }
        _ = try PostgresCopyIn.run(s, "COPY outbox (tenant_id, peer_id, version, digest, body, removed) FROM STDIN (FORMAT binary)") { copy in
            for u in updates {
                try copy.row(6)
                copy.text(tenant)
                copy.text(u.peer.rawValue)
                copy.int64(u.version)
                copy.text(u.digest)
                copy.bytes(u.body)
                copy.bool(u.removed)
            }
        }
        // Delivered at commit: wakes the relay.
        try s.query("SELECT pg_notify('routeplane_outbox', $1)", [tenant])
    }

    /// A batch at least this large (views, or bytes of bodies) goes through `writeStaged`; smaller ones take
    /// the literal upsert and the COPY into the outbox (no temporary table to create for a one-view change).
    static let stagedViews = 64
    static let stagedBytes = 1 << 20

    static func usesStaging(views: Int, bodyBytes: Int) -> Bool { views >= stagedViews || bodyBytes >= stagedBytes }

    /// The changed views of a batch and their outbox rows: `writeViews` + `writeOutbox` for a small batch,
    /// `writeStaged` for a large one.
    static func writeViewsAndOutbox(_ s: PostgresSession, tenant: String, _ updates: [ViewUpdate]) throws {
        guard !updates.isEmpty else { return }
        var bytes = 0
        for u in updates { bytes += u.body.count }
        if usesStaging(views: updates.count, bodyBytes: bytes) {
            try writeStaged(s, tenant: tenant, updates)
        } else {
            try writeViews(s, tenant: tenant, updates)
            try writeOutbox(s, tenant: tenant, updates)
        }
    }

    /// A large batch's views and outbox rows with each body sent once, streamed: binary COPY into a temporary
    /// table dropped at commit, then the `peer_views` upsert and the outbox rows (in the updates' order) are
    /// `INSERT … SELECT`s over it. The literal upsert held every body three times in the controller (the
    /// array literal, libpq's copy of the parameter, its send buffer): 10,000 views of one route change were
    /// the controller's memory peak (`routeplane-bench memory`). COPY hands libpq 1 MiB at a time.
    static func writeStaged(_ s: PostgresSession, tenant: String, _ updates: [ViewUpdate]) throws {
        try s.query("CREATE TEMPORARY TABLE routeplane_view_stage (n int, peer_id text, version bigint, digest text, body json, removed boolean) ON COMMIT DROP")
        _ = try PostgresCopyIn.run(s, "COPY routeplane_view_stage (n, peer_id, version, digest, body, removed) FROM STDIN (FORMAT binary)") { copy in
            for (n, u) in updates.enumerated() {
                try copy.row(6)
                copy.int32(Int32(n))
                copy.text(u.peer.rawValue)
                copy.int64(u.version)
                copy.text(u.digest)
                copy.bytes(u.body)
                copy.bool(u.removed)
            }
        }
        try s.query(
            """
            INSERT INTO peer_views (tenant_id, peer_id, version, digest, body)
            SELECT $1, peer_id, version, digest, body FROM routeplane_view_stage WHERE NOT removed
            ON CONFLICT (tenant_id, peer_id) DO UPDATE
               SET version = EXCLUDED.version, digest = EXCLUDED.digest, body = EXCLUDED.body, updated_at = now()
            """, [tenant])
        if updates.contains(where: \.removed) {
            try s.query("DELETE FROM peer_views WHERE tenant_id = $1 AND peer_id IN (SELECT peer_id FROM routeplane_view_stage WHERE removed)", [tenant])
        }
        try s.query(
            """
            INSERT INTO outbox (tenant_id, peer_id, version, digest, body, removed)
            SELECT $1, peer_id, version, digest, body, removed FROM routeplane_view_stage ORDER BY n
            """, [tenant])
        // The table goes at commit; dropping it now frees its buffers for the rest of the transaction.
        try s.query("DROP TABLE routeplane_view_stage")
        // Delivered at commit: wakes the relay.
        try s.query("SELECT pg_notify('routeplane_outbox', $1)", [tenant])
    }

    static func writeReadModels(_ s: PostgresSession, tenant: String, _ updates: [ReadModelUpdate]) throws {
        for kind in ReadModelKind.allCases {
            let (table, idColumn) = kind.table
            let live = updates.filter { $0.key.kind == kind && $0.body != nil }
            let gone = updates.filter { $0.key.kind == kind && $0.body == nil }
            if !live.isEmpty {
                try s.query(
                    """
                    INSERT INTO \(table) (tenant_id, \(idColumn), version, body)
                    SELECT $1, u.i, u.v, u.b FROM unnest($2::text[], $3::bigint[], $4::json[]) AS u(i, v, b)
                    ON CONFLICT (tenant_id, \(idColumn)) DO UPDATE SET version = EXCLUDED.version, body = EXCLUDED.body
                    """,
                    [tenant, PostgresArray.literal(live.map(\.key.id)), PostgresArray.literal(live.map { String($0.version) }), PostgresArray.literal(live.map { $0.body! })])
            }
            if !gone.isEmpty {
                try s.query("DELETE FROM \(table) WHERE tenant_id = $1 AND \(idColumn) = ANY($2::text[])", [tenant, PostgresArray.literal(gone.map(\.key.id))])
            }
        }
    }

    /// Replaces every projected row of `tenant` (rebuild's swap): deletes them, then loads the new ones
    /// with binary COPY (`views` must hold no removed peer).
    static func replaceAll(_ s: PostgresSession, tenant: String, views: [ViewUpdate], readModels: [ReadModelUpdate]) throws {
        try s.query("DELETE FROM peer_views WHERE tenant_id = $1", [tenant])
        for kind in ReadModelKind.allCases {
            try s.query("DELETE FROM \(kind.table.name) WHERE tenant_id = $1", [tenant])
        }
        if !views.isEmpty {
            _ = try PostgresCopyIn.run(s, "COPY peer_views (tenant_id, peer_id, version, digest, body) FROM STDIN (FORMAT binary)") { copy in
                for v in views {
                    precondition(!v.removed, "replaceAll loads existing views only")
                    try copy.row(5)
                    copy.text(tenant)
                    copy.text(v.peer.rawValue)
                    copy.int64(v.version)
                    copy.text(v.digest)
                    copy.bytes(v.body)
                }
            }
        }
        for kind in ReadModelKind.allCases {
            let rows = readModels.filter { $0.key.kind == kind && $0.body != nil }
            guard !rows.isEmpty else { continue }
            let (table, idColumn) = kind.table
            _ = try PostgresCopyIn.run(s, "COPY \(table) (tenant_id, \(idColumn), version, body) FROM STDIN (FORMAT binary)") { copy in
                for r in rows {
                    try copy.row(4)
                    copy.text(tenant)
                    copy.text(r.key.id)
                    copy.int64(r.version)
                    copy.text(r.body!)
                }
            }
        }
    }

    /// The outbox rows of a swap, after `replaceAll`: a live view's row copies its body from the `peer_views`
    /// row just written (the body is not sent, parsed and compressed a second time); a tombstone brings its
    /// own. One row per update, in peer order, as `writeOutbox`.
    static func writeOutboxFromViews(_ s: PostgresSession, tenant: String, _ updates: [ViewUpdate]) throws {
        guard !updates.isEmpty else { return }
        try s.query(
            """
            INSERT INTO outbox (tenant_id, peer_id, version, digest, body, removed)
            SELECT $1, u.p, u.v, u.d, CASE WHEN u.r THEN u.b::json ELSE pv.body END, u.r
              FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::boolean[]) AS u(p, v, d, b, r)
              LEFT JOIN peer_views pv ON NOT u.r AND pv.tenant_id = $1 AND pv.peer_id = u.p
             ORDER BY u.p
            """,
            [tenant, PostgresArray.literal(updates.map(\.peer.rawValue)), PostgresArray.literal(updates.map { String($0.version) }),
             PostgresArray.literal(updates.map(\.digest)), PostgresArray.literal(bytes: updates.map { $0.removed ? $0.body : [] }),
             PostgresArray.literal(updates.map { $0.removed ? "t" : "f" })])
        // Delivered at commit: wakes the relay.
        try s.query("SELECT pg_notify('routeplane_outbox', $1)", [tenant])
    }

    /// The outbox rows of `tenant` at the given `(peer, version)`s: digest, tombstone or not, and whether the relay sent it.
    static func outboxAt(_ s: PostgresSession, tenant: String, _ keys: [(peer: PeerID, version: Int64)]) throws -> [PeerID: (digest: String, removed: Bool, sent: Bool)] {
        guard !keys.isEmpty else { return [:] }
        let rows = try s.query(
            """
            SELECT o.peer_id, o.digest, o.removed, o.sent_at IS NOT NULL AS sent FROM outbox o
              JOIN unnest($2::text[], $3::bigint[]) AS k(p, v) ON o.tenant_id = $1 AND o.peer_id = k.p AND o.version = k.v
            """,
            [tenant, PostgresArray.literal(keys.map(\.peer.rawValue)), PostgresArray.literal(keys.map { String($0.version) })])
        var out: [PeerID: (digest: String, removed: Bool, sent: Bool)] = [:]
        for row in rows {
            guard let p = row.string("peer_id"), let d = row.string("digest"), !row.isNull("removed"), !row.isNull("sent") else {
                throw ProjectionError.invalidResponse("malformed outbox row of tenant \(tenant)")
            }
            out[PeerID(p)] = (d, row.bool("removed") == true, row.bool("sent") == true)
        }
        return out
    }

    /// Replaces the content of the unsent outbox row at `(peer, version)`; false when there is none (any more:
    /// the relay may have sent it meanwhile).
    static func replaceUnsentOutbox(_ s: PostgresSession, tenant: String, _ update: ViewUpdate) throws -> Bool {
        let rows = try s.query(
            "UPDATE outbox SET digest = $4, body = $5::json, removed = $6 WHERE tenant_id = $1 AND peer_id = $2 AND version = $3 AND sent_at IS NULL RETURNING id",
            [tenant, update.peer.rawValue, String(update.version), update.digest, String(decoding: update.body, as: UTF8.self), update.removed ? "t" : "f"])
        return rows.count > 0
    }
}
