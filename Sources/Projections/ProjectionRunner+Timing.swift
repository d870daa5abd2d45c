#if canImport(Glibc)
import Glibc
#endif

/// Where one projection batch's wall time went: CLOCK_MONOTONIC timestamps (system-wide, comparable across
/// processes) taken by the batch transaction at each stage. For profiles (`routeplane-bench propagation --stages`);
/// four clock reads per batch when a hook is set, none otherwise.
public struct ProjectionBatchTiming: Sendable, Equatable {
    public var tenant: String
    /// Before BEGIN.
    public var began: UInt64
    /// Events read and applied: the changed views computed (canonical JSON, digests).
    public var applied: UInt64
    /// Views, outbox rows, read models and the checkpoint written (before COMMIT).
    public var written: UInt64
    /// COMMIT answered (the outbox rows are visible to relays from here on).
    public var committed: UInt64
    public var lastSequence: Int64
    public var viewsChanged: Int

    /// CLOCK_MONOTONIC in nanoseconds.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
