import Dispatch
import Foundation
import ProcessSpawn
import Synchronization

/// Child processes of the fault-injection run, started with `posix_spawn` (output appended to a log file) so
/// they can be killed with SIGKILL by pid and reaped without Foundation's `Process` machinery.
enum ChaosSpawn {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `arguments` (absolute path first) with the current environment plus `environment`,
    /// stdin from /dev/null, stdout and stderr appended to `log`. Every pid is also appended to `pidFile`
    /// (one per line), so the shell wrapper can kill what is left if this process dies.
    static func start(_ arguments: [String], environment: [String: String] = [:], log: String, errorLog: String? = nil,
                      pidFile: String?) throws -> pid_t {
        let pid: pid_t
        do {
            pid = try ProcessSpawn.start(arguments, environment: environment, stdout: .file(log, append: true),
                                         stderr: errorLog.map { .file($0, append: true) } ?? .stdout)
        } catch {
            throw Failure(description: error.description)
        }
        if let pidFile, let handle = FileHandle(forWritingAtPath: pidFile) ?? {
            _ = FileManager.default.createFile(atPath: pidFile, contents: nil)
            return FileHandle(forWritingAtPath: pidFile)
        }() {
            handle.seekToEndOfFile()
            handle.write(Data("\(pid)\n".utf8))
            try? handle.close()
        }
        return pid
    }

    /// The exit status if `pid` has ended (reaping it), nil while it runs.
    static func exited(_ pid: pid_t) -> Int32? { ProcessSpawn.exited(pid) }

    /// Waits (off the cooperative pool) until `pid` ends; SIGKILL after `timeout`. Returns the wait status.
    static func wait(_ pid: pid_t, timeout: Duration) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = exited(pid) { return status }
            if ContinuousClock.now >= deadline {
                kill(pid, SIGKILL)
                return await withCheckedContinuation { continuation in
                    DispatchQueue.global().async { continuation.resume(returning: ProcessSpawn.waitBlocking(pid)) }
                }
            }
            await chaosSleep(.milliseconds(20))
        }
    }

    /// Runs a program to its end (bounded by `timeout`); its output goes to `log` (stderr to `errorLog` if given).
    static func run(_ arguments: [String], environment: [String: String] = [:], log: String, errorLog: String? = nil,
                    timeout: Duration) async throws -> Int32 {
        let pid = try start(arguments, environment: environment, log: log, errorLog: errorLog, pidFile: nil)
        return await wait(pid, timeout: timeout)
    }

    /// "exit 0", "exit 3", "signal 9".
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        return signal == 0 ? "exit \((status >> 8) & 0xff)" : "signal \(signal)"
    }

    static func exitedCleanly(_ status: Int32) -> Bool { status & 0x7f == 0 && (status >> 8) & 0xff == 0 }
}

/// One `routeplane serve` of the run: started, killed with SIGKILL, restarted, stopped with SIGTERM.
/// Its generation counts starts, so a request can tell whether its controller was killed meanwhile.
final class ChaosController: Sendable {
    enum Phase: Sendable { case stopped, starting, up }
    let index: Int
    let port: Int
    let arguments: [String]
    /// Added to the inherited environment (the run's shared view signing seed).
    let environment: [String: String]
    let log: String
    let pidFile: String
    private struct State {
        var pid: pid_t?
        var generation = 0
        var phase = Phase.stopped
    }
    private let state = Mutex(State())

    init(index: Int, port: Int, arguments: [String], environment: [String: String] = [:], log: String, pidFile: String) {
        self.index = index
        self.port = port
        self.arguments = arguments
        self.environment = environment
        self.log = log
        self.pidFile = pidFile
    }

    var generation: Int { state.withLock { $0.generation } }
    var phase: Phase { state.withLock { $0.phase } }
    var isUp: Bool { phase == .up }

    /// Starts the process (phase `starting` until `markUp`).
    func start() throws {
        let note = "\n==== routeplane-chaos: start \(Date()) ====\n"
        if let handle = FileHandle(forWritingAtPath: log) ?? {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            return FileHandle(forWritingAtPath: log)
        }() {
            handle.seekToEndOfFile()
            handle.write(Data(note.utf8))
            try? handle.close()
        }
        let pid = try ChaosSpawn.start(arguments, environment: environment, log: log, pidFile: pidFile)
        state.withLock {
            $0.pid = pid
            $0.generation += 1
            $0.phase = .starting
        }
    }

    func markUp() { state.withLock { if $0.pid != nil { $0.phase = .up } } }

    /// The wait status if the process has ended (reaping it); the phase becomes `stopped`.
    func ended() -> Int32? {
        state.withLock { s in
            guard let pid = s.pid, let status = ChaosSpawn.exited(pid) else { return nil }
            s.pid = nil
            s.phase = .stopped
            return status
        }
    }

    /// The wait status if the process ended on its own while it was up (a crash).
    func crashed() -> Int32? {
        state.withLock { s in
            guard s.phase == .up, let pid = s.pid, let status = ChaosSpawn.exited(pid) else { return nil }
            s.pid = nil
            s.phase = .stopped
            return status
        }
    }

    /// SIGKILL without waiting (interrupt and watchdog paths).
    func killNow() {
        if let pid = state.withLock({ $0.pid }) { kill(pid, SIGKILL) }
    }

    /// kill -9, then reap.
    func kill9() async {
        guard let pid = state.withLock({ s -> pid_t? in
            s.phase = .stopped
            return s.pid
        }) else { return }
        kill(pid, SIGKILL)
        _ = await ChaosSpawn.wait(pid, timeout: .seconds(10))
        state.withLock { $0.pid = nil }
    }

    /// SIGTERM (graceful shutdown), SIGKILL after `timeout`; the wait status (nil when it was not running).
    func stop(timeout: Duration) async -> Int32? {
        guard let pid = state.withLock({ s -> pid_t? in
            s.phase = .stopped
            return s.pid
        }) else { return nil }
        kill(pid, SIGTERM)
        let status = await ChaosSpawn.wait(pid, timeout: timeout)
        state.withLock { $0.pid = nil }
        return status
    }
}
