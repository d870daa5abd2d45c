import Dispatch
import Foundation
import RouteModel
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Answers health probes: every agent runs one on its mesh address (UDP, default port 51821).
/// A probe comes back as an echo with the same nonce and timestamp; anything else is ignored.
///
/// One dedicated thread blocked in `poll` (never Swift's cooperative pool). `stop()` wakes it,
/// waits for it to end and closes the socket.
public final class HealthResponder: Sendable {
    public let address: IPAddress
    /// The bound port (the one asked for, or the kernel's pick for 0).
    public let port: UInt16
    private let shared: Shared

    final class Shared: Sendable {
        struct State {
            var lifecycle = ThreadLifecycle.idle
            var answered: UInt64 = 0
            var ignored: UInt64 = 0
        }
        let socket: UDPSocket
        let wake: WakePipe
        let state = Mutex(State())
        let finished = DispatchSemaphore(value: 0)
        init(socket: UDPSocket, wake: WakePipe) {
            self.socket = socket
            self.wake = wake
        }
    }

    /// Binds at once (so a port conflict is reported here); `start()` begins answering.
    public init(address: IPAddress, port: UInt16 = HealthProbeConfiguration.defaultPort) throws {
        let socket = try UDPSocket.bind(address, port: port)
        let wake: WakePipe
        do {
            wake = try WakePipe()
        } catch {
            socket.close()
            throw error
        }
        self.address = address
        self.port = socket.localPort
        shared = Shared(socket: socket, wake: wake)
    }

    deinit { stop() }

    public func start() {
        guard shared.state.withLock({ $0.lifecycle.start() }) else { return }
        let shared = self.shared
        let thread = Thread { HealthResponder.loop(shared) }
        thread.name = "routeplane-health-responder"
        thread.start()
    }

    /// Stops answering; returns when the thread has ended and the socket is closed. Idempotent.
    public func stop() {
        let (wasRunning, first) = shared.state.withLock { $0.lifecycle.stop() }
        guard first else { return }
        if wasRunning {
            shared.wake.wake()
            shared.finished.wait()
        }
        shared.socket.close()
        shared.wake.close()
    }

    /// Probes answered and datagrams ignored so far.
    public var statistics: (answered: UInt64, ignored: UInt64) {
        shared.state.withLock { ($0.answered, $0.ignored) }
    }

    static func loop(_ shared: Shared) {
        defer { shared.finished.signal() }
        var buffer = [UInt8](repeating: 0, count: 2048)
        while !shared.state.withLock({ $0.lifecycle.isStopped }) {
            var fds = [pollfd(fd: shared.socket.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: shared.wake.readFD, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 2, 1000)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { shared.wake.drain() }
            guard fds[0].revents != 0 else { continue }
            var answered: UInt64 = 0
            var ignored: UInt64 = 0
            for _ in 0..<256 { // bounded per wake-up, so stop() is never starved
                guard let (count, from, port) = shared.socket.receive(into: &buffer) else { break }
                if let packet = ProbePacket(decoding: buffer[0..<count]), packet.kind == .probe {
                    shared.socket.send(packet.echo.encoded(), to: from, port: port)
                    answered += 1
                } else {
                    ignored += 1
                }
            }
            shared.state.withLock {
                $0.answered += answered
                $0.ignored += ignored
            }
        }
    }
}

/// Probes candidate routing peers and reports their reachability and RTT.
///
/// A thin shell over `HealthProbeStateMachine`: one thread sleeps in `poll` until the machine's next
/// deadline or a datagram, feeds it, sends what it says. ProbeReachability changes arrive on `events`;
/// `health()` gives the current picture (RTT included) at any time.
public final class HealthProber: Sendable {
    public let configuration: HealthProbeConfiguration
    /// Every reachability change (unknown → reachable, reachable → unreachable, …), in order.
    public let events: AsyncStream<ProbeHealth>
    private let shared: Shared

    final class Shared: Sendable {
        let machine: Mutex<HealthProbeStateMachine>
        let lifecycle = Mutex(ThreadLifecycle.idle)
        let v4: UDPSocket?
        let v6: UDPSocket?
        let wake: WakePipe
        let continuation: AsyncStream<ProbeHealth>.Continuation
        let finished = DispatchSemaphore(value: 0)

        init(machine: HealthProbeStateMachine, v4: UDPSocket?, v6: UDPSocket?, wake: WakePipe,
             continuation: AsyncStream<ProbeHealth>.Continuation) {
            self.machine = Mutex(machine)
            self.v4 = v4
            self.v6 = v6
            self.wake = wake
            self.continuation = continuation
        }
    }

    /// Opens the probing sockets (an ephemeral port on `bindIPv4` / `bindIPv6`; IPv6 is skipped when
    /// the host has none). `seed` defaults to a random one (nonces must not be guessable).
    public init(configuration: HealthProbeConfiguration = HealthProbeConfiguration(),
                bindIPv4: IPAddress = IPAddress(v4: 0), bindIPv6: IPAddress? = IPAddress(v6High: 0, low: 0),
                seed: UInt64 = UInt64.random(in: .min ... .max)) throws {
        let v4 = try UDPSocket.bind(bindIPv4, port: 0)
        let v6 = bindIPv6.flatMap { try? UDPSocket.bind($0, port: 0) }
        let wake: WakePipe
        do {
            wake = try WakePipe()
        } catch {
            v4.close()
            v6?.close()
            throw error
        }
        self.configuration = configuration
        let (stream, continuation) = AsyncStream<ProbeHealth>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        events = stream
        shared = Shared(machine: HealthProbeStateMachine(configuration: configuration, seed: seed), v4: v4, v6: v6,
                        wake: wake, continuation: continuation)
    }

    deinit { stop() }

    /// The candidates to probe from now on (new ones are probed at once).
    public func setTargets(_ targets: [ProbeTarget]) {
        let now = monotonicNanoseconds()
        shared.machine.withLock { $0.setTargets(targets, now: now) }
        shared.wake.wake()
    }

    public func health(of id: String) -> ProbeHealth? { shared.machine.withLock { $0.health(of: id) } }

    public func health() -> [ProbeHealth] { shared.machine.withLock { $0.allHealth } }

    public func start() {
        guard shared.lifecycle.withLock({ $0.start() }) else { return }
        let shared = self.shared
        let thread = Thread { HealthProber.loop(shared) }
        thread.name = "routeplane-health-prober"
        thread.start()
    }

    /// Stops probing; returns when the thread has ended and the sockets are closed; ends `events`.
    public func stop() {
        let (wasRunning, first) = shared.lifecycle.withLock { $0.stop() }
        guard first else { return }
        if wasRunning {
            shared.wake.wake()
            shared.finished.wait()
        }
        shared.v4?.close()
        shared.v6?.close()
        shared.wake.close()
        shared.continuation.finish()
    }

    static func loop(_ shared: Shared) {
        defer { shared.finished.signal() }
        var buffer = [UInt8](repeating: 0, count: 2048)
        func perform(_ actions: [HealthProbeStateMachine.Action]) {
            for action in actions {
                switch action {
                case .send(let packet, let target):
                    let socket = target.address.isV4 ? shared.v4 : shared.v6
                    // A refused send (no route, …) is simply a probe that will not be answered.
                    socket?.send(packet.encoded(), to: target.address, port: target.port)
                case .reachabilityChanged(let health):
                    shared.continuation.yield(health)
                }
            }
        }
        while !shared.lifecycle.withLock({ $0.isStopped }) {
            let now = monotonicNanoseconds()
            let (actions, deadline) = shared.machine.withLock { m in (m.tick(now: now), m.nextDeadline) }
            perform(actions)
            let waitNs = deadline.map { $0 > now ? $0 - now : 0 } ?? 1_000_000_000
            // Round up to whole milliseconds so a wake-up is never early (and never spins).
            let waitMs = Int32(min(1000, (waitNs + 999_999) / 1_000_000))
            var fds = [pollfd(fd: shared.wake.readFD, events: Int16(POLLIN), revents: 0)]
            for s in [shared.v4, shared.v6] { if let s { fds.append(pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)) } }
            let n = poll(&fds, nfds_t(fds.count), waitMs)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[0].revents != 0 { shared.wake.drain() }
            for p in fds.dropFirst() where p.revents != 0 {
                let socket = p.fd == shared.v4?.fd ? shared.v4 : shared.v6
                guard let socket else { continue }
                for _ in 0..<256 {
                    guard let (count, from, port) = socket.receive(into: &buffer) else { break }
                    guard let packet = ProbePacket(decoding: buffer[0..<count]) else { continue }
                    let t = monotonicNanoseconds()
                    let actions = shared.machine.withLock { $0.receive(packet, from: from, port: port, now: t) }
                    perform(actions)
                }
            }
        }
    }
}

/// The responder's and the prober's thread: not started yet, running, or stopped (for good: a stopped one does not
/// start again).
enum ThreadLifecycle: Sendable {
    case idle
    case running
    case stopped

    /// Returns whether to start the thread now (only from `idle`).
    mutating func start() -> Bool {
        guard case .idle = self else { return false }
        self = .running
        return true
    }

    /// `wasRunning`: a thread is to be waited for; `first`: the first stop (which closes the sockets).
    mutating func stop() -> (wasRunning: Bool, first: Bool) {
        defer { self = .stopped }
        switch self {
        case .idle: return (false, true)
        case .running: return (true, true)
        case .stopped: return (false, false)
        }
    }

    var isStopped: Bool {
        if case .stopped = self { return true }
        return false
    }
}
