extension SelectionStateMachine {
    /// Anti-flap settings. Forced moves (the current peer is down, gone from the view, or draining) ignore
    /// all of them: they happen in the same evaluation.
    public struct Configuration: Hashable, Sendable {
        /// A challenger at the same metric and path kind must be faster than the current choice by more
        /// than this to take over (NetBird: 10 ms).
        public var latencyHysteresis: Duration
        /// A voluntary switch (better metric, direct path, lower latency) waits until the current choice
        /// has been in place this long, so a flapping link cannot flap the route faster than this.
        public var minimumDwell: Duration
        /// A peer that came up must stay connected this long before it may replace a working choice
        /// (hold-down for a flapping peer). It may still be chosen at once when nothing else is up.
        public var minimumUptime: Duration
        /// Latency assumed for a connected peer not measured yet (NetBird: 999 ms).
        public var unmeasuredLatency: Duration

        public init(latencyHysteresis: Duration = .milliseconds(10), minimumDwell: Duration = .seconds(5),
                    minimumUptime: Duration = .zero, unmeasuredLatency: Duration = .seconds(1)) {
            precondition(latencyHysteresis >= .zero && minimumDwell >= .zero && minimumUptime >= .zero,
                         "selection durations must not be negative")
            self.latencyHysteresis = latencyHysteresis
            self.minimumDwell = minimumDwell
            self.minimumUptime = minimumUptime
            self.unmeasuredLatency = unmeasuredLatency
        }

        public static let `default` = Configuration()
    }
}
