import ChaosKit
import CommandSupport
import Foundation
import Logging
import RouteAgent
import Synchronization

/// Every view each simulated agent applied (from `AgentConfiguration.viewApplied`), with the time.
final class ChaosAgentLog: Sendable {
    private let views = Mutex<[Int: [ChaosAppliedView]]>([:])
    let start: ContinuousClock.Instant

    init(start: ContinuousClock.Instant) { self.start = start }

    func record(agent: Int, _ update: AgentStateMachine.ViewUpdate) {
        let at = chaosSeconds(ContinuousClock.now - start)
        views.withLock { $0[agent, default: []].append(ChaosAppliedView(version: update.version, digest: update.digest, source: update.source.rawValue, at: at)) }
    }

    func history(agent: Int) -> [ChaosAppliedView] { views.withLock { $0[agent] ?? [] } }
    var total: Int { views.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}

/// The simulated agents: real `AgentRunner`s (the library `routeplane agent` runs) with dry-run appliers, one NATS
/// connection and one state folder each, hosted in this process. A few hundred `routeplane agent` processes would not
/// fit next to three controllers, PostgreSQL and NATS on a small machine; in one process they still enroll over HTTP,
/// follow their own subjects, fall back to HTTP while NATS is down, persist their views and restart from them.
actor ChaosAgents {
    struct Agent {
        var tenantIndex: Int
        var tenantID: String
        var name: String
        var folder: String
        var controller: String
        var setupKey: String
        var peerID: String = ""
        var runner: AgentRunner?
        var task: Task<Void, Never>?
    }

    private(set) var agents: [Agent] = []
    let log: ChaosAgentLog
    let logger: Logger
    private(set) var restarts = 0

    init(log: ChaosAgentLog) {
        self.log = log
        var logger = Logger(label: "routeplane.chaos.agent")
        // ROUTEPLANE_CHAOS_AGENT_LOG=debug|info|… shows what the agents log (on standard error); errors only by default.
        logger.logLevel = ProcessInfo.processInfo.environment["ROUTEPLANE_CHAOS_AGENT_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        self.logger = logger
    }

    func add(tenantIndex: Int, tenantID: String, name: String, folder: String, controller: String, setupKey: String) -> Int {
        agents.append(Agent(tenantIndex: tenantIndex, tenantID: tenantID, name: name, folder: folder, controller: controller, setupKey: setupKey))
        return agents.count - 1
    }

    private func makeRunner(_ index: Int, controller: String) throws -> AgentRunner {
        let a = agents[index]
        let log = self.log
        var configuration = AgentConfiguration(controller: controller, setupKey: a.setupKey, stateFolder: a.folder, name: a.name,
                                               machine: .init(assumeCandidatesUp: true), probe: nil, answerProbes: false)
        configuration.viewApplied = { update in log.record(agent: index, update) }
        return try AgentRunner(configuration: configuration, applier: DryRunApplier(), logger: logger)
    }

    /// Enrolls agent `index` (over HTTP, with its setup key), trying the given controllers in turn.
    func enroll(_ index: Int, controllers: [String]) async throws -> String {
        var lastError: (any Error)?
        for attempt in 0..<(controllers.count * 3) {
            let controller = controllers[(index + attempt) % controllers.count]
            do {
                let runner = try makeRunner(index, controller: controller)
                let identity = try await runner.loadOrEnroll()
                agents[index].runner = runner
                agents[index].peerID = identity.peerID
                agents[index].controller = controller
                return identity.peerID
            } catch {
                lastError = error
                await chaosSleep(.milliseconds(200))
            }
        }
        throw ChaosSpawn.Failure(description: "agent \(agents[index].name) could not enroll: \(lastError.map { "\($0)" } ?? "?")")
    }

    func start(_ index: Int) {
        guard let runner = agents[index].runner else { return }
        agents[index].task = Task { _ = try? await runner.run() }
    }

    /// Cancels the agent and starts a new runner on the same state folder (it re-applies its persisted view first).
    func restart(_ index: Int) async {
        // Taken out before the await: a second restart of the same agent meanwhile (actor reentrancy) finds no task and
        // does nothing, instead of starting a second runner on the same state folder (a run once showed both applying).
        guard index < agents.count, let task = agents[index].task else { return }
        agents[index].task = nil
        task.cancel()
        _ = await task.value
        do {
            agents[index].runner = try makeRunner(index, controller: agents[index].controller)
            restarts += 1
        } catch {
            logger.error("agent restart failed", metadata: ["agent": "\(agents[index].name)", "error": "\(error)"])
        }
        start(index)
    }

    func stopAll() async {
        for i in agents.indices { agents[i].task?.cancel() }
        for i in agents.indices { _ = await agents[i].task?.value }
    }

    /// What each agent applied and holds now.
    func histories() async -> [ChaosAgentHistory] {
        var out: [ChaosAgentHistory] = []
        for (i, a) in agents.enumerated() {
            let applied = log.history(agent: i)
            let version = await a.runner?.appliedVersion ?? 0
            let digest = applied.last(where: { $0.version == version })?.digest
            out.append(ChaosAgentHistory(tenant: a.tenantID, peer: a.peerID, applied: applied, finalVersion: version,
                                         finalDigest: version == 0 ? nil : digest))
        }
        return out
    }

    var count: Int { agents.count }
}
