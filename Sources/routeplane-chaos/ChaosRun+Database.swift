// What the fault-injection run reads from the database: view versions, convergence, the log entries of its request
// ids, and the outbox rows behind the views the agents applied.
import PostgresClient
import ChaosKit
import EventStore
import Foundation
import RouteModel
import Synchronization

extension ChaosRun {
    // MARK: - Database

    /// Every peer's projected view version now.
    func viewVersions() async throws -> [ChaosViewKey: Int64] {
        let ids = PostgresArray.literal(tenants.withLock { $0.map(\.id) })
        let rows = try await store.pool.withSession { s in
            try s.query("SELECT tenant_id, peer_id, version FROM peer_views WHERE tenant_id = ANY($1::text[])", [ids])
        }
        var out: [ChaosViewKey: Int64] = [:]
        for r in rows {
            if let t = r.string("tenant_id"), let p = r.string("peer_id"), let v = r.int64("version") { out[ChaosViewKey(tenant: t, peer: p)] = v }
        }
        return out
    }

    /// Polls until every tenant is projected up to its head, the outbox is sent, and every agent holds its projected view.
    func waitForConvergence(reference: Double) async -> ChaosConvergence {
        let ids = tenants.withLock { $0.map(\.id) }
        let array = PostgresArray.literal(ids)
        let deadline = now + settings.convergenceTimeout
        var detail = "not checked"
        var projected: [ChaosViewKey: ChaosProjectedView] = [:]
        var histories: [ChaosAgentHistory] = []
        while true {
            do {
                let heads = try await store.pool.withSession { s in
                    try s.query("""
                        SELECT h.tenant_id, h.seq AS head, coalesce(c.seq, 0) AS projected,
                               (SELECT count(*) FROM outbox o WHERE o.tenant_id = h.tenant_id AND o.sent_at IS NULL) AS unsent
                          FROM tenant_heads h LEFT JOIN projection_checkpoints c USING (tenant_id)
                         WHERE h.tenant_id = ANY($1::text[])
                        """, [array])
                }
                let views = try await store.pool.withSession { s in
                    try s.query("SELECT tenant_id, peer_id, version, digest FROM peer_views WHERE tenant_id = ANY($1::text[])", [array])
                }
                projected = [:]
                for r in views {
                    guard let t = r.string("tenant_id"), let p = r.string("peer_id"), let v = r.int64("version"), let d = r.string("digest") else { continue }
                    projected[ChaosViewKey(tenant: t, peer: p)] = ChaosProjectedView(version: v, digest: d)
                }
                histories = await agents.histories()
                let behind = heads.filter { $0.int64("head") != $0.int64("projected") }.count
                let unsent = heads.compactMap { $0.int64("unsent").map(Int.init) }.reduce(0, +)
                let mismatched = ChaosChecks.agentsMatchProjection(histories, projected: projected)
                detail = "\(behind) tenant(s) not projected to their head, \(unsent) unsent outbox row(s), "
                    + "\(histories.count - countMismatches(histories, projected)) of \(histories.count) agents on their projected view"
                if behind == 0 && unsent == 0 && mismatched.passed {
                    let seconds = ChaosChecks.convergenceTime(histories, reference: reference)
                    say("\(at(now))  converged: \(detail)")
                    return ChaosConvergence(reached: true, seconds: seconds, detail: detail, projected: projected, histories: histories)
                }
            } catch {
                detail = "database error: \(error)"
            }
            if now >= deadline {
                say("\(at(now))  NOT converged within \(Int(settings.convergenceTimeout)) s: \(detail)")
                return ChaosConvergence(reached: false, seconds: now - reference, detail: detail, projected: projected, histories: histories)
            }
            await chaosSleep(.milliseconds(250))
        }
    }

    func countMismatches(_ histories: [ChaosAgentHistory], _ projected: [ChaosViewKey: ChaosProjectedView]) -> Int {
        histories.filter { a in
            projected[ChaosViewKey(tenant: a.tenant, peer: a.peer)] != a.finalDigest.map { ChaosProjectedView(version: a.finalVersion, digest: $0) }
        }.count
    }

    /// The log entries of this run's request ids.
    func loggedWrites() async throws -> [String: ChaosLoggedWrite] {
        let pattern = ledger.runID + "-%"
        let rows = try await store.pool.withSession { s in
            try s.query("""
                SELECT metadata->>'request_id' AS request_id, tenant_id, count(*) AS events, count(DISTINCT tx_id) AS transactions,
                       min(seq) AS first_seq, max(seq) AS last_seq
                  FROM events WHERE metadata->>'request_id' LIKE $1 GROUP BY 1, 2
                """, [pattern])
        }
        var out: [String: ChaosLoggedWrite] = [:]
        for r in rows {
            guard let rid = r.string("request_id"), let tenant = r.string("tenant_id"), let n = r.int64("events").map(Int.init),
                  let tx = r.int64("transactions").map(Int.init), let lo = r.int64("first_seq"), let hi = r.int64("last_seq") else { continue }
            if var existing = out[rid] {
                existing.tenants.insert(tenant)
                existing.events += n
                existing.transactions += tx
                existing.minSequence = min(existing.minSequence, lo)
                existing.maxSequence = max(existing.maxSequence, hi)
                out[rid] = existing
            } else {
                out[rid] = ChaosLoggedWrite(tenants: [tenant], events: n, transactions: tx, minSequence: lo, maxSequence: hi)
            }
        }
        return out
    }

    /// Every view an agent applied was produced by the projection: an outbox row with its peer, version and digest.
    func appliedViewsWerePublished(_ histories: [ChaosAgentHistory]) async throws -> ChaosCheck {
        var missing: [String] = []
        var checked = 0
        for (tenant, agents) in Dictionary(grouping: histories, by: \.tenant) {
            var peers: [String] = [], versions: [String] = [], digests: [String] = []
            for a in agents {
                for v in a.applied {
                    peers.append(a.peer)
                    versions.append(String(v.version))
                    digests.append(v.digest)
                }
            }
            checked += peers.count
            var offset = 0
            while offset < peers.count {
                let end = min(offset + 20_000, peers.count)
                let p = PostgresArray.literal(Array(peers[offset..<end]))
                let v = PostgresArray.literal(Array(versions[offset..<end]))
                let d = PostgresArray.literal(Array(digests[offset..<end]))
                let rows = try await store.pool.withSession { s in
                    try s.query("""
                        SELECT a.p, a.v, a.d FROM unnest($2::text[], $3::bigint[], $4::text[]) AS a(p, v, d)
                          LEFT JOIN outbox o ON o.tenant_id = $1 AND o.peer_id = a.p AND o.version = a.v
                         WHERE o.id IS NULL OR o.digest <> a.d LIMIT 20
                        """, [tenant, p, v, d])
                }
                missing += rows.map { "\(tenant)/\($0.string("p") ?? "?") v\($0.string("v") ?? "?") \(($0.string("d") ?? "").prefix(12)) is in no outbox row" }
                offset = end
            }
        }
        return ChaosCheck(name: "agents applied only views the projection produced (outbox rows)", passed: missing.isEmpty,
                          detail: "\(checked) applied views", problems: Array(missing.prefix(ChaosChecks.maxProblems)))
    }
}
