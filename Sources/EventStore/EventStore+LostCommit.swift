import Foundation
import Logging
import PostgresClient

extension EventStore {
    /// After the connection of an append broke during its transaction: did it commit? The COMMIT may have reached the
    /// server — or, with a synchronous standby, the standby promoted when the primary died — before the answer was lost,
    /// and answering "failed" then would leave a write the client was told did not happen (and a retry would write it
    /// twice). Looks for the append's event ids (chosen by the writer, so they identify it on any server); while they are
    /// absent, the answer is final only once the server process that ran the transaction (`backendPID`) is gone or idle —
    /// on a live server it may still be committing. Bounded (`within`): nil means not committed, or not knowable in
    /// time (the caller answers the original error, as before).
    func outcomeAfterLostConnection(tenant: String, ids: [UUID], backendPID: Int32?,
                                    within limit: Duration = .seconds(10)) async -> ClosedRange<Int64>? {
        let start = ContinuousClock.now
        var attempts = 0
        while ContinuousClock.now - start < limit {
            attempts += 1
            do {
                if let committed = try await storedSequences(tenant: tenant, ids: ids) {
                    logger.warning("an append whose connection broke had committed: answered as committed",
                                   metadata: ["tenant": "\(tenant)", "sequences": "\(committed)", "checks": "\(attempts)"])
                    return committed
                }
                var running = false
                if let backendPID {
                    running = try await pool.withSession { session in
                        try !session.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state IS DISTINCT FROM 'idle'",
                                           [String(backendPID)]).isEmpty
                    }
                }
                if !running {
                    // Gone: whatever it did is done. It may have committed between the two reads: one last look.
                    let committed = try await storedSequences(tenant: tenant, ids: ids)
                    logger.notice("an append whose connection broke: \(committed == nil ? "not committed" : "committed after all"); answered accordingly",
                                  metadata: ["tenant": "\(tenant)", "checks": "\(attempts)"])
                    return committed
                }
            } catch {
                // The database is not back yet (or a failover is under way): look again until the limit.
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        logger.error("an append whose connection broke: its outcome is unknown after \(limit); answered as failed",
                     metadata: ["tenant": "\(tenant)", "checks": "\(attempts)"])
        return nil
    }
}
