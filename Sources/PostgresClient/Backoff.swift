/// Retry delays after failures in a row, shared by the connection-keeping state machines (LISTEN, partition ownership).
public enum Backoff {
    /// `first` after one failure, doubled after each further failure, at most `limit`.
    public static func doubling(afterFailures failures: Int, first: Duration, limit: Duration) -> Duration {
        var delay = first
        for _ in 1..<max(failures, 1) {
            delay = delay * 2
            if delay >= limit { return limit }
        }
        return min(delay, limit)
    }
}
