import ArgumentParser
import ControlPlane
import Foundation

/// `routeplane serve` options for history reads (`?as_of=`, `/api/history/diff`).
struct HistoryServeOptions: ParsableArguments {
    @Option(name: .customLong("history-snapshot-interval"),
            help: "Store a tenant snapshot every this many events, so an as-of read folds at most this many events (default: $ROUTEPLANE_HISTORY_SNAPSHOT_INTERVAL or 1000).")
    var snapshotInterval: Int64?

    func validate() throws {
        if let snapshotInterval, snapshotInterval < 1 {
            throw ValidationError("--history-snapshot-interval must be at least 1, got \(snapshotInterval)")
        }
    }

    func settings() throws -> HistorySettings {
        if let snapshotInterval { return HistorySettings(snapshotInterval: snapshotInterval) }
        if let env = ProcessInfo.processInfo.environment["ROUTEPLANE_HISTORY_SNAPSHOT_INTERVAL"], !env.isEmpty {
            guard let n = Int64(env), n >= 1 else {
                throw ValidationError("ROUTEPLANE_HISTORY_SNAPSHOT_INTERVAL must be a whole number of events, at least 1, got \(env)")
            }
            return HistorySettings(snapshotInterval: n)
        }
        return HistorySettings()
    }
}
