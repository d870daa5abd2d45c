import CSpawn
import Foundation

/// Starting a child process with `posix_spawn` — the one place the project does it (the agent's `ip`/`nft` commands,
/// the fault-injection run's controllers, the tests' servers and scripts). Foundation's `Process` is avoided: it hung
/// in the test runner and waits on Dispatch internally.
///
/// The child gets an empty signal mask and the default disposition of SIGPIPE, SIGINT, SIGTERM and SIGHUP (a parent
/// that ignores or handles them through Dispatch must not pass that on), the parent's environment plus `environment`,
/// and exactly the descriptors 0, 1 and 2 described by `stdin`, `stdout` and `stderr`: every other descriptor is closed
/// in the child (`posix_spawn_file_actions_addclosefrom_np`). Close-on-exec cannot be relied on: SwiftNIO accepts
/// connections without it, so a child started while a server held a connection kept that connection open after the
/// server closed it (a client dropped for a slow request stayed connected until the unrelated child exited).
public enum ProcessSpawn {
    /// Where one of the child's standard descriptors comes from.
    public enum Stream: Sendable, Equatable {
        case null
        /// A file opened for writing (created 0644): appended to, or truncated first.
        case file(String, append: Bool)
        /// A descriptor of the parent (e.g. a pipe end), duplicated onto the child's.
        case descriptor(Int32)
        /// The same as the child's stdout (for stderr only).
        case stdout
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let errno: Int32
        public let description: String
    }

    /// Starts `arguments[0]` (an absolute path) with `arguments`; returns its pid. The caller reaps it.
    public static func start(_ arguments: [String], environment: [String: String] = [:], stdin: Stream = .null,
                             stdout: Stream = .null, stderr: Stream = .stdout) throws(Failure) -> pid_t {
        precondition(!arguments.isEmpty, "no program")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (fd, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .null: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
            case let .file(path, append):
                posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o644)
            case .descriptor(let source): posix_spawn_file_actions_adddup2(&actions, source, fd)
            case .stdout: posix_spawn_file_actions_adddup2(&actions, 1, fd)
            }
        }
        // After the dup2s above (file actions run in order), so a `.descriptor` source is closed too.
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let cArgs = arguments.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cEnv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, &attributes, cArgs, cEnv)
        guard rc == 0 else { throw Failure(errno: rc, description: "cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Blocks the calling thread until `pid` ends and returns its wait status (never on Swift's cooperative pool).
    public static func waitBlocking(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// The wait status if `pid` has ended (reaping it), nil while it runs.
    public static func exited(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid ? status : nil
    }
}
