import ControlPlane
import EventStore
import Foundation
import HTTPAPI
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A controller served the way `routeplane serve` serves it (`APIServer.service`: our HTTP/1.1 channel with its
/// timeouts, the shutdown drain), on loopback, stopped gracefully as SIGTERM stops it.
final class ServedController: Sendable {
    let controller: APIServer
    let port: Int
    private let task: Task<Void, any Error>
    private let stopSignal: AsyncStream<Void>.Continuation

    private init(controller: APIServer, port: Int, task: Task<Void, any Error>, stopSignal: AsyncStream<Void>.Continuation) {
        self.controller = controller
        self.port = port
        self.task = task
        self.stopSignal = stopSignal
    }

    /// Starts `controller` (with `routes` added to its router when given, e.g. test routes) and waits until it listens.
    /// `eventLoopGroup`: a group of the test's own, so that the server's deadline timers do not wait behind the I/O of
    /// the other suites' servers on NIO's shared group (2 threads on this machine) — which, on a loaded machine, kept a
    /// 1 s head timeout from firing for over 10 s.
    static func start(_ controller: APIServer, routes: (@Sendable (Router<APIRequestContext>) -> Void)? = nil,
                      eventLoopGroup: (any EventLoopGroup)? = nil) async throws -> ServedController {
        var logger = Logger(label: "test.http-limits")
        logger.logLevel = ProcessInfo.processInfo.environment["HTTP_LIMITS_LOG"] == nil ? .critical : .trace
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let (stop, stopSignal) = AsyncStream<Void>.makeStream()
        let task = Task {
            let router = controller.makeRouter().router
            routes?(router)
            try await controller.run(host: "127.0.0.1", port: 0, router: router, eventLoopGroup: eventLoopGroup, logger: logger, onRunning: { port in
                portContinuation.yield(port ?? 0)
                portContinuation.finish()
            }, until: {
                for await _ in stop {}
            })
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw TestSetupError("the controller did not start")
        }
        return ServedController(controller: controller, port: port, task: task, stopSignal: stopSignal)
    }

    /// Shuts the server down gracefully and waits for it to end (cancelling it if that takes over 15 s).
    func stop() async {
        stopSignal.finish()
        let task = self.task
        let watchdog = Task {
            try await Task.sleep(for: .seconds(15))
            task.cancel()
        }
        _ = try? await task.value
        watchdog.cancel()
    }
}

/// A plain TCP connection with blocking POSIX calls, run off Swift's cooperative threads (the server under test shares
/// them): what a slow or hostile client does, byte by byte.
final class RawConnection: Sendable {
    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    static func open(port: Int) async throws -> RawConnection {
        try await offPoolThrowing {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw TestSetupError("socket: \(errno)") }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 else {
                close(fd)
                throw TestSetupError("connect: \(errno)")
            }
            return RawConnection(fd: fd)
        }
    }

    /// Sends `text`; false when the server has closed the connection.
    @discardableResult
    func send(_ text: String) async -> Bool {
        let fd = self.fd
        return await offPool {
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
        }
    }

    /// What arrives until the server closes the connection or `limit` passes: the bytes, whether it closed, and when.
    func readUntilClosed(limit: Duration) async -> (text: String, closed: Bool, after: Duration) {
        let fd = self.fd
        return await offPool {
            let start = ContinuousClock.now
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now - start < limit {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let left = limit - (ContinuousClock.now - start)
                let ms = Int32(max(1, min(100, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
                guard poll(&poller, 1, ms) > 0 else { continue }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return (String(decoding: received, as: UTF8.self), true, ContinuousClock.now - start) }
                received += buffer[0..<n]
            }
            return (String(decoding: received, as: UTF8.self), false, ContinuousClock.now - start)
        }
    }

    /// Reads until one whole response head and `Content-Length` body arrived (or `limit`).
    func readResponse(limit: Duration) async -> String {
        let fd = self.fd
        return await offPool {
            let start = ContinuousClock.now
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now - start < limit {
                let text = String(decoding: received, as: UTF8.self)
                if let end = text.range(of: "\r\n\r\n") {
                    let head = text[..<end.lowerBound].lowercased()
                    let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                    if text.utf8.count - text[..<end.upperBound].utf8.count >= length { return text }
                }
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 50) > 0 else { continue }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                received += buffer[0..<n]
            }
            return String(decoding: received, as: UTF8.self)
        }
    }

    /// Sends `text` one byte every `interval` until the server closes the connection or `limit` passes; true when closed.
    func trickle(_ text: String, every interval: Duration, limit: Duration) async -> (closed: Bool, after: Duration) {
        // One thread of its own sends and watches, and keeps the time: a loop that went back to Swift's cooperative pool
        // between bytes measured the pool instead (on a loaded machine, other suites kept its two threads for over 10 s,
        // and the loop ended at its limit without having looked at a connection the server had closed at 1 s).
        let fd = self.fd
        return await offPool {
            let start = ContinuousClock.now
            var bytes = Array(text.utf8)[...]
            var buffer = [UInt8](repeating: 0, count: 4096)
            let intervalMS = Int32(max(1, interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000))
            while ContinuousClock.now - start < limit {
                if let byte = bytes.popFirst() {
                    var one = byte
                    if Glibc.send(fd, &one, 1, Int32(MSG_NOSIGNAL)) != 1 { return (true, ContinuousClock.now - start) }
                }
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, intervalMS) > 0 else { continue }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return (true, ContinuousClock.now - start) }
            }
            return (false, ContinuousClock.now - start)
        }
    }

    deinit { close(fd) }
}

/// Runs blocking work on a thread of its own (not Dispatch's pool, which other tests in the process may keep busy with
/// their own blocking waits: a socket timing measured there would measure the pool).
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

func offPoolThrowing<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
