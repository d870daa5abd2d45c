/// Figures of one `bench propagation` run, for `bench all`'s table, JSON report and plot.
/// `BenchPropagation.measure()` produces it; `run()` prints it.
struct PropagationFigures: Codable, Sendable {
    var agents: Int
    var changes: Int
    /// Route change committed → view received and verified, one entry per (agent, change), in milliseconds.
    var latenciesMs: [Double]
    /// Raw libnats publish → receive of messages of the same size on the same subjects, same run, in milliseconds.
    var baselineMs: [Double]
    /// Average size of one view message in bytes.
    var messageBytes: Int
    /// Views delivered per second over the changes.
    var messagesPerSecond: Double
    /// Messages that failed decoding or digest verification.
    var rejected: Int
    /// What the simulated agents themselves cost (CPU seconds per received message), so the load generator is seen.
    var agentCPUSecondsPerMessage: Double?
    /// CPU seconds of the bench process (the controller pipeline: append, projection, outbox, relay) per view message.
    var controllerCPUSecondsPerMessage: Double? = nil
    /// NATS connections the simulated agents share.
    var agentConnections: Int? = nil
    /// true: the simulated agents ran in a child process, not next to the controller pipeline.
    var agentsInSeparateProcess: Bool? = nil
    /// Outbox relay workers (batch loops sharing the outbox) in the pipeline, and peers claimed per batch.
    var relayWorkers: Int? = nil
    var relayBatch: Int? = nil
    var cores: Int? = nil
    /// Sum over the changes of commit start → last agent received, in seconds.
    var changeWallSeconds: Double? = nil
    /// Per change: commit → the first agent received it, in milliseconds (projection plus the relay's first batch).
    var firstReceiptMs: [Double]? = nil
}
