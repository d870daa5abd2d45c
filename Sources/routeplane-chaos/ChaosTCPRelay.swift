// A TCP relay from the root side of the partition's veth to a loopback port of this machine: how the namespaced agents
// reach the NATS servers and the controllers, which listen on 127.0.0.1 only (a namespace has a loopback of its own, so
// 127.0.0.1 there is not the services'). Plain sockets and one thread per direction: a handful of connections, bytes
// passed as they come, a half-close passed on (EOF becomes shutdown(SHUT_WR)), an error closing both sides.
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class ChaosTCPRelay: Sendable {
    let address: String
    let port: Int
    let targetPort: Int
    private let listener: Int32
    private let closed = Atomic<Bool>(false)
    /// Connections relayed so far (reported).
    let accepted = Atomic<Int>(0)

    /// Listens on `address:port`; connections go to 127.0.0.1:`targetPort`.
    init(address: String, port: Int, targetPort: Int) throws {
        self.address = address
        self.port = port
        self.targetPort = targetPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ChaosSpawn.Failure(description: "relay \(address):\(port): socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard var addr = Self.inet(address, port) else {
            close(fd)
            throw ChaosSpawn.Failure(description: "relay: \(address) is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 64) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw ChaosSpawn.Failure(description: "relay \(address):\(port): bind/listen: \(why)")
        }
        listener = fd
    }

    static func inet(_ address: String, _ port: Int) -> sockaddr_in? {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else { return nil }
        return addr
    }

    func start() {
        Thread { [self] in
            while !closed.load(ordering: .relaxed) {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if closed.load(ordering: .relaxed) { return }
                    if errno != EINTR { usleep(50_000) }
                    continue
                }
                accepted.add(1, ordering: .relaxed)
                Thread { self.relay(client) }.start()
            }
        }.start()
    }

    /// Stops accepting (connections already relayed end with their peers, or with the process).
    func stop() {
        closed.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func relay(_ client: Int32) {
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard upstream >= 0, var addr = Self.inet("127.0.0.1", targetPort) else {
            close(client)
            return
        }
        let connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else {
            // The service is down (killed, restarting): the client sees its connection closed, as it would the refusal.
            close(upstream)
            close(client)
            return
        }
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(upstream, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let done = DispatchSemaphore(value: 0)
        Thread {
            Self.pump(from: client, to: upstream)
            done.signal()
        }.start()
        Self.pump(from: upstream, to: client)
        done.wait()
        close(client)
        close(upstream)
    }

    /// Copies until EOF (passed on as a half-close) or an error (both sockets shut down, which ends the other direction).
    private static func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if n == 0 {
                shutdown(destination, Int32(SHUT_WR))
                return
            }
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            var sent = 0
            var failed = false
            while sent < n {
                let w = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if w < 0 {
                    if errno == EINTR { continue }
                    failed = true
                    break
                }
                sent += w
            }
            if failed { break }
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(destination, Int32(SHUT_RDWR))
    }
}
