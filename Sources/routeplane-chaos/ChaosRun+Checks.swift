// The fault-injection run's checks: the pure ones of `ChaosChecks` over the records and the log, `routeplane
// projections verify`, convergence, and the faults' own bookkeeping.
import ChaosKit
import Foundation
import Synchronization

extension ChaosRun {
    // MARK: - Checks

    /// `routeplane projections verify` (all tenants): stored views and read models equal a rebuild.
    func verifyProjections() async -> ChaosCheck {
        let out = settings.workDir + "/verify.out"
        do {
            let status = try await ChaosSpawn.run([settings.binary, "projections", "verify", "--database-url", settings.databaseURL], log: out,
                                                  timeout: .seconds(300))
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            let lines = text.split(separator: "\n").map(String.init)
            let summary = lines.last(where: { $0.hasPrefix("verify:") }) ?? lines.last ?? "(no output)"
            return ChaosCheck(name: "routeplane projections verify: stored views equal a rebuild, every tenant",
                              passed: ChaosSpawn.exitedCleanly(status), detail: summary,
                              problems: ChaosSpawn.exitedCleanly(status) ? [] : Array(lines.filter { !$0.hasPrefix("ok") }.prefix(ChaosChecks.maxProblems)))
        } catch {
            return ChaosCheck(name: "routeplane projections verify", passed: false, detail: "\(error)")
        }
    }

    func check(records: [ChaosRequestRecord], convergence: ChaosConvergence, plannedKills: Int) async -> [ChaosCheck] {
        let m = ChaosMinimums.forRun(settings)
        var checks: [ChaosCheck] = []
        let logged: [String: ChaosLoggedWrite]
        do {
            logged = try await loggedWrites()
        } catch {
            return [ChaosCheck(name: "read the event log", passed: false, detail: "\(error)")]
        }
        checks.append(ChaosChecks.acknowledgedWrites(records, logged: logged, minimum: m.acknowledgedWrites))
        // Writes in flight at a primary's kill -9 included: a controller looks up an append whose connection broke before
        // answering (EventStore+LostCommit), so an error answer must leave no trace there either.
        checks.append(ChaosChecks.failedWrites(records, logged: logged, minimum: m.failedWrites))
        let unknown = ChaosChecks.unknownOutcomes(records, logged: logged)
        unknownCommitted.withLock { $0 = (unknown.total, unknown.committed) }
        checks.append(unknown.check)
        checks.append(ChaosChecks.conditionalBursts(records, logged: logged, minimum: m.bursts))
        checks.append(exactlyOnceCheck(logged: logged, plannedKills: plannedKills))
        checks.append(ChaosChecks.answers(records, minimum: m.requests))
        checks.append(ChaosChecks.unsent(records, minimums: m))
        checks.append(await verifyProjections())
        checks.append(ChaosCheck(name: "converged: projections at head, outbox sent, agents on their views", passed: convergence.reached,
                                 detail: convergence.detail))
        checks.append(ChaosChecks.agentsMatchProjection(convergence.histories, projected: convergence.projected, minimum: m.agents))
        checks.append(ChaosChecks.agentsNeverWentBack(convergence.histories, minimum: m.appliedViews))
        do {
            checks.append(try await appliedViewsWerePublished(convergence.histories))
        } catch {
            checks.append(ChaosCheck(name: "agents applied only views the projection produced", passed: false, detail: "\(error)"))
        }
        let f = faults.withLock { $0 }
        checks.append(ChaosCheck(name: "no controller exited on its own", passed: f.crashes.isEmpty,
                                 detail: "\(f.crashes.count) crash(es)", problems: f.crashes))
        checks.append(ChaosChecks.faultsInjected(f, plannedKills: plannedKills, minimums: m))
        checks.append(ChaosChecks.handovers(f.handovers, disturbed: ChaosChecks.handoverDisturbances(cluster.withLock { $0 }, postgresDown: f.postgresDown)))
        return checks
    }
}
