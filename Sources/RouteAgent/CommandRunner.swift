import Dispatch
import Foundation
import ProcessSpawn
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The outcome of an external command.
public struct CommandResult: Hashable, Sendable {
    /// Exit status; `128 + signal` when the command was killed by a signal.
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var succeeded: Bool { status == 0 }

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

public enum CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    case notFound(String)
    case spawnFailed(command: String, errno: Int32)
    case timedOut(command: String, after: Duration)
    case io(command: String, errno: Int32)

    public var description: String {
        switch self {
        case .notFound(let c): return "\(c): command not found"
        case .spawnFailed(let c, let e): return "cannot start \(c): \(String(cString: strerror(e)))"
        case .timedOut(let c, let d): return "\(c) did not finish within \(d); killed"
        case .io(let c, let e): return "\(c): pipe error: \(String(cString: strerror(e)))"
        }
    }
}

/// Runs external programs. A protocol so the Linux applier can be driven by a script in tests.
public protocol CommandRunning: Sendable {
    /// Runs `arguments[0]` with `input` on its standard input; kills it after `timeout`.
    func run(_ arguments: [String], input: String?, timeout: Duration) async throws -> CommandResult
}

/// Runs a program with `posix_spawn` (Foundation's `Process` is avoided: it hangs in the test runner),
/// feeding stdin and capturing stdout/stderr through pipes on a Dispatch thread, never on Swift's
/// cooperative pool. A command still running at the timeout is killed with SIGKILL.
public struct CommandRunner: CommandRunning {
    public init() {}

    /// Where a bare program name is looked for, after `$PATH` (ip/nft/sysctl live in /usr/sbin,
    /// which a non-login PATH may lack).
    public static let fallbackPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    /// The absolute path of `name`, or nil.
    public static func resolve(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in path + fallbackPath where !dir.isEmpty {
            let candidate = dir + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    public func run(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(10)) async throws -> CommandResult {
        guard let first = arguments.first, let path = CommandRunner.resolve(first) else {
            throw CommandError.notFound(arguments.first ?? "(empty command)")
        }
        let inputBytes = input.map { Array($0.utf8) }
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    continuation.resume(returning: try CommandRunner.runBlocking(path: path, arguments: arguments,
                                                                                 input: inputBytes, timeout: timeout))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// The blocking part: spawn, pump the pipes with `poll`, reap.
    static func runBlocking(path: String, arguments: [String], input: [UInt8]?, timeout: Duration) throws(CommandError) -> CommandResult {
        let name = arguments.joined(separator: " ")
        var stdinPipe: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        func closeAll() {
            for fd in stdinPipe + stdoutPipe + stderrPipe where fd >= 0 { close(fd) }
        }
        guard makePipe(&stdoutPipe), makePipe(&stderrPipe), input == nil || makePipe(&stdinPipe) else {
            let e = errno
            closeAll()
            throw .io(command: name, errno: e)
        }
        // Only our ends are non-blocking (the flag lives on the open file, which dup2 shares).
        for fd in [stdinPipe[1], stdoutPipe[0], stderrPipe[0]] where fd >= 0 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }

        // Every pipe end is O_CLOEXEC: the child keeps only the dup2'ed 0/1/2.
        var pid: pid_t = 0
        var rc: Int32 = 0
        do {
            pid = try ProcessSpawn.start([path] + arguments.dropFirst(), stdin: input != nil ? .descriptor(stdinPipe[0]) : .null,
                                         stdout: .descriptor(stdoutPipe[1]), stderr: .descriptor(stderrPipe[1]))
        } catch {
            rc = error.errno
        }
        // The child's ends are not ours to keep.
        for fd in [stdinPipe[0], stdoutPipe[1], stderrPipe[1]] where fd >= 0 { close(fd) }
        stdinPipe[0] = -1; stdoutPipe[1] = -1; stderrPipe[1] = -1
        guard rc == 0 else {
            closeAll()
            throw .spawnFailed(command: name, errno: rc)
        }

        // A write to a pipe whose reader is gone raises SIGPIPE in the writing thread: block it
        // here (the write then fails with EPIPE), drain it, restore the mask.
        var pipeSet = sigset_t()
        sigemptyset(&pipeSet)
        sigaddset(&pipeSet, SIGPIPE)
        var oldMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSet, &oldMask)
        defer {
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 {
                var zero = timespec(tv_sec: 0, tv_nsec: 0)
                _ = sigtimedwait(&pipeSet, nil, &zero)
            }
            pthread_sigmask(SIG_SETMASK, &oldMask, nil)
        }

        let deadline = DispatchTime.now().uptimeNanoseconds &+ UInt64(max(0, timeout.nanoseconds))
        var out: [UInt8] = []
        var err: [UInt8] = []
        var written = 0
        var inFD = stdinPipe[1]
        var outFD = stdoutPipe[0]
        var errFD = stderrPipe[0]
        if inFD >= 0, input?.isEmpty ?? true { close(inFD); inFD = -1 }
        stdinPipe[1] = -1; stdoutPipe[0] = -1; stderrPipe[0] = -1
        var buffer = [UInt8](repeating: 0, count: 65536)
        var timedOut = false

        while inFD >= 0 || outFD >= 0 || errFD >= 0 {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline { timedOut = true; break }
            var fds: [pollfd] = []
            if inFD >= 0 { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
            if outFD >= 0 { fds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
            if errFD >= 0 { fds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
            let waitMs = Int32(min(UInt64(1000), (deadline - now) / 1_000_000 + 1))
            let n = poll(&fds, nfds_t(fds.count), waitMs)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                for fd in [inFD, outFD, errFD] where fd >= 0 { close(fd) }
                kill(pid, SIGKILL)
                reap(pid)
                throw .io(command: name, errno: e)
            }
            for p in fds where p.revents != 0 {
                if p.fd == inFD, let input {
                    let k = input.withUnsafeBytes { raw in
                        write(inFD, raw.baseAddress! + written, raw.count - written)
                    }
                    if k > 0 { written += k }
                    if (k < 0 && errno != EAGAIN && errno != EINTR) || written == input.count {
                        close(inFD)
                        inFD = -1
                    }
                } else if p.fd == outFD || p.fd == errFD {
                    let k = buffer.withUnsafeMutableBytes { read(p.fd, $0.baseAddress!, $0.count) }
                    if k > 0 {
                        if p.fd == outFD { out += buffer[0..<k] } else { err += buffer[0..<k] }
                    } else if k == 0 || (errno != EAGAIN && errno != EINTR) {
                        close(p.fd)
                        if p.fd == outFD { outFD = -1 } else { errFD = -1 }
                    }
                }
            }
        }
        for fd in [inFD, outFD, errFD] where fd >= 0 { close(fd) }

        // Wait for the exit, still bounded by the deadline.
        var status: Int32 = 0
        while !timedOut {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { break }
            if DispatchTime.now().uptimeNanoseconds >= deadline { timedOut = true; break }
            usleep(2000)
        }
        if timedOut {
            kill(pid, SIGKILL)
            reap(pid)
            throw .timedOut(command: name, after: timeout)
        }
        let exitStatus: Int32
        if status & 0x7f == 0 {
            exitStatus = (status >> 8) & 0xff
        } else {
            exitStatus = 128 + (status & 0x7f)
        }
        return CommandResult(status: exitStatus, stdout: String(decoding: out, as: UTF8.self),
                             stderr: String(decoding: err, as: UTF8.self))
    }

    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        #if canImport(Glibc)
        let rc = fds.withUnsafeMutableBufferPointer { linux_pipe2($0.baseAddress!, O_CLOEXEC) }
        return rc == 0
        #else
        guard fds.withUnsafeMutableBufferPointer({ pipe($0.baseAddress!) }) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
        #endif
    }

    private static func reap(_ pid: pid_t) {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}

#if canImport(Glibc)
/// glibc's `pipe2` (Swift's Glibc module hides it behind _GNU_SOURCE). Creating the pipe with
/// O_CLOEXEC atomically keeps it out of children that other threads spawn meanwhile.
@_silgen_name("pipe2")
func linux_pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32
#endif

extension Duration {
    /// Whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (s, a) = components
        let (m, o) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if o { return s < 0 ? .min : .max }
        return m.addingReportingOverflow(a / 1_000_000_000).partialValue
    }
}
