#if canImport(Glibc)
import Glibc
#endif

/// Where one relay batch's wall time went: CLOCK_MONOTONIC timestamps (system-wide, so another process's receive
/// times compare with them) taken by the batch transaction as it passes each stage. For profiles
/// (`routeplane-bench propagation --stages`) and the relay's debug log; costs five clock reads per batch.
public struct RelayBatchTiming: Sendable, Equatable {
    /// Before BEGIN and the claim.
    public var began: UInt64
    /// Candidates claimed (peer locks taken) and their newest rows read.
    public var claimed: UInt64
    /// Every message built: envelope encoded, signed, message id keyed.
    public var signed: UInt64
    /// The last acknowledgement (or the timeout).
    public var acknowledged: UInt64
    /// Rows marked sent and COMMIT answered.
    public var committed: UInt64
    /// Candidate rows claimed and messages sent.
    public var claimedRows: Int
    public var messages: Int

    public init(began: UInt64, claimed: UInt64 = 0, signed: UInt64 = 0, acknowledged: UInt64 = 0, committed: UInt64 = 0,
                claimedRows: Int = 0, messages: Int = 0) {
        self.began = began
        self.claimed = claimed
        self.signed = signed
        self.acknowledged = acknowledged
        self.committed = committed
        self.claimedRows = claimedRows
        self.messages = messages
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
