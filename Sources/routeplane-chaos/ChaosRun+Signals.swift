// The fault-injection run's end: shutdown (agents, then controllers with SIGTERM) and what SIGINT/SIGTERM and the
// run's time bound do (kill the controllers at once).
import ChaosKit
import PostgresClient
import Dispatch
import EventStore
import Foundation
import Synchronization

extension ChaosRun {
    // MARK: - Shutdown

    /// Stops the agents, then every controller with SIGTERM (graceful shutdown must exit 0).
    func shutDown() async -> ChaosCheck {
        stopping.store(true, ordering: .relaxed)
        await agents.stopAll()
        await stopNetnsAgents()
        var statuses: [String] = []
        var clean = true
        for c in controllers {
            if let status = await c.stop(timeout: .seconds(20)) {
                statuses.append("\(c.index + 1): \(ChaosSpawn.describe(status))")
                if !ChaosSpawn.exitedCleanly(status) { clean = false }
            }
        }
        await store.shutdown()
        lockReader.shutdown()
        if let folder = settings.agentStateDir { try? FileManager.default.removeItem(atPath: folder) }
        return ChaosCheck(name: "controllers stop gracefully on SIGTERM (exit 0)", passed: clean, detail: statuses.joined(separator: ", "))
    }

    // MARK: - Signals

    func killEverything() {
        for c in controllers { c.killNow() }
        netnsAgents.killNow()
        if let folder = settings.agentStateDir { try? FileManager.default.removeItem(atPath: folder) }
    }

    func installSignalHandlers() {
        for s in [SIGINT, SIGTERM] {
            signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler {
                self.say("routeplane-chaos: interrupted; killing the controllers")
                self.killEverything()
                exit(130)
            }
            source.resume()
            chaosSignalSources.append(source)
        }
    }
}

/// The signal sources must live as long as the process. Written only by `installSignalHandlers`, once, from the run's
/// single setup path before any other task exists; never read: `nonisolated(unsafe)` is safe for that.
nonisolated(unsafe) private var chaosSignalSources: [any DispatchSourceSignal] = []
