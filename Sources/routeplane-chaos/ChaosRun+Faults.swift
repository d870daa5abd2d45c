// The fault-injection run's faults: the plan executed (controller kills and restarts, PostgreSQL and NATS outages,
// agent restarts), controllers brought up and watched for crashes.
import ChaosKit
import Foundation
import Synchronization

extension ChaosRun {
    // MARK: - Faults

    func execute(_ plan: ChaosPlan, from chaosStart: Double) async {
        await withTaskGroup(of: Void.self) { group in
            for step in plan.steps {
                let wait = chaosStart + step.at - now
                if wait > 0 { await chaosSleep(.milliseconds(Int(wait * 1000))) }
                switch step.fault {
                case .killController(let index, let downFor):
                    // The planned one, or another if it is not up; never the last one up. When fewer than two are up
                    // (a restart is slow), wait for a second one (up to 15 s); a kill still not possible then is recorded
                    // and fails the faults check, never skipped silently.
                    var up = controllers.filter(\.isUp)
                    let waitFrom = now
                    while up.count < 2 && now - waitFrom < 15 && !stopping.load(ordering: .relaxed) {
                        await chaosSleep(.milliseconds(100))
                        up = controllers.filter(\.isUp)
                    }
                    guard up.count >= 2 else {
                        let line = "kill planned at \(at(chaosStart + step.at).trimmingCharacters(in: .whitespaces)) not done: "
                            + "\(up.count) controller(s) up for 15 s"
                        say("\(at(now))  SKIPPED \(line)")
                        faults.withLock { $0.skippedKills.append(line) }
                        continue
                    }
                    let victim = controllers[index].isUp ? controllers[index] : up[Int(step.at * 1000) % up.count]
                    // Its partitions just before the kill; the handover is timed from here (ChaosRun+Handover).
                    let held = await partitionLocksBeforeKill()
                    let killedAt = now
                    await victim.kill9()
                    group.addTask { await self.measureHandover(of: victim, killedAt: killedAt, heldBefore: held) }
                    faults.withLock { $0.kills += 1 }
                    say("\(at(now))  kill -9 controller \(victim.index + 1) (port \(victim.port)); restart in \(String(format: "%.1f", downFor)) s")
                    group.addTask {
                        await chaosSleep(.milliseconds(Int(downFor * 1000)))
                        do {
                            try victim.start()
                            try await self.bringUp(victim, initial: false)
                            self.faults.withLock { $0.controllerRestarts += 1; $0.lastHealed = max($0.lastHealed, self.now) }
                        } catch {
                            self.faults.withLock { $0.serviceErrors.append("controller \(victim.index + 1) did not come back: \(error)") }
                        }
                    }
                case .postgresOutage(let hold):
                    group.addTask { await self.outage("postgres", name: "PostgreSQL", hold: hold) }
                case .natsOutage(let hold):
                    group.addTask { await self.outage("nats", name: "NATS", hold: hold) }
                case .restartAgent(let index):
                    group.addTask { await self.agents.restart(index) }
                }
            }
        }
    }

    /// `ops/services stop <service>`, `hold` seconds down, `ops/services start <service>`.
    func outage(_ service: String, name: String, hold: Double) async {
        let log = settings.workDir + "/services.log"
        say("\(at(now))  stop \(name) (ops/services stop \(service)); \(String(format: "%.0f", hold)) s down")
        let down = now
        do {
            let stopped = try await ChaosSpawn.run(["/bin/bash", settings.servicesScript, "stop", service], log: log, timeout: .seconds(60))
            if !ChaosSpawn.exitedCleanly(stopped) { throw ChaosSpawn.Failure(description: "ops/services stop \(service): \(ChaosSpawn.describe(stopped))") }
            await chaosSleep(.milliseconds(Int(hold * 1000)))
            var started = try await ChaosSpawn.run(["/bin/bash", settings.servicesScript, "start", service], log: log, timeout: .seconds(90))
            for _ in 0..<2 where !ChaosSpawn.exitedCleanly(started) {
                say("\(at(now))  ops/services start \(service) failed (\(ChaosSpawn.describe(started))); trying again (see \(log))")
                await chaosSleep(.seconds(1))
                started = try await ChaosSpawn.run(["/bin/bash", settings.servicesScript, "start", service], log: log, timeout: .seconds(90))
            }
            if !ChaosSpawn.exitedCleanly(started) { throw ChaosSpawn.Failure(description: "ops/services start \(service): \(ChaosSpawn.describe(started))") }
            say("\(at(now))  \(name) up again")
            let back = now
            if service == "postgres" { faults.withLock { $0.postgresBack = back; $0.postgresDown.append(down...back) } }
            if service == "nats", let versions = try? await viewVersions() { faults.withLock { $0.natsBack = (back, versions) } }
            faults.withLock {
                if service == "postgres" { $0.postgresRestarts += 1 } else { $0.natsRestarts += 1 }
                $0.lastHealed = max($0.lastHealed, now)
            }
        } catch {
            say("\(at(now))  \(name) restart failed: \(error) (see \(log))")
            faults.withLock { $0.serviceErrors.append("\(name): \(error)") }
        }
    }

    /// Waits until `controller` answers /healthz 200; a process that exits while starting (e.g. its migrations could
    /// not reach the database) is started again, every second, for up to 90 s.
    func bringUp(_ controller: ChaosController, initial: Bool) async throws {
        let deadline = now + 90
        while now < deadline {
            if let status = controller.ended() {
                faults.withLock { $0.startFailures += 1 }
                say("\(at(now))  controller \(controller.index + 1) exited while starting (\(ChaosSpawn.describe(status))); starting it again")
                await chaosSleep(.seconds(1))
                try controller.start()
                continue
            }
            let r = await http.send(ChaosHTTP.Request(method: "GET", path: "/healthz"), port: controller.port, timeout: .seconds(2))
            if r.response?.status == 200 {
                controller.markUp()
                return
            }
            await chaosSleep(.milliseconds(100))
        }
        throw ChaosSpawn.Failure(description: "controller \(controller.index + 1) not healthy within 90 s (log \(controller.log))")
    }

    /// A controller that exits on its own while up is a crash: recorded (a failed check) and started again.
    func watchCrashes() async {
        while !Task.isCancelled && !stopping.load(ordering: .relaxed) {
            for c in controllers {
                if let status = c.crashed() {
                    let line = "controller \(c.index + 1) exited on its own at \(at(now)) (\(ChaosSpawn.describe(status))); log \(c.log)"
                    say("\(at(now))  CRASH: " + line)
                    faults.withLock { $0.crashes.append(line) }
                    do {
                        try c.start()
                        try await bringUp(c, initial: false)
                    } catch {
                        faults.withLock { $0.serviceErrors.append("controller \(c.index + 1) did not come back after a crash: \(error)") }
                    }
                }
            }
            await chaosSleep(.milliseconds(250))
        }
    }
}
