import RouteModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Socket errors of the health probe: what failed and errno's text.
public struct SocketError: Error, Hashable, Sendable, CustomStringConvertible {
    public var operation: String
    public var code: Int32
    public var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

/// A non-blocking, close-on-exec UDP socket: the only place the health probe touches sockaddr.
struct UDPSocket: Sendable {
    let fd: Int32
    let family: IPAddress.Family

    /// Binds to `address:port` (port 0: the kernel picks one).
    static func bind(_ address: IPAddress, port: UInt16) throws(SocketError) -> UDPSocket {
        let domain = address.isV4 ? AF_INET : AF_INET6
        #if canImport(Glibc)
        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let type = SOCK_DGRAM
        #endif
        let fd = socket(domain, type, 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", code: errno) }
        #if !canImport(Glibc)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        #endif
        if address.isV6 {
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc = withSockaddr(address, port: port) { sa, len in Glibc_bind(fd, sa, len) }
        guard rc == 0 else {
            let e = errno
            _ = Glibc_close(fd)
            throw SocketError(operation: "bind \(address) port \(port)", code: e)
        }
        return UDPSocket(fd: fd, family: address.family)
    }

    /// The port the socket is bound to.
    var localPort: UInt16 {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return 0 }
        return UDPSocket.decode(storage)?.1 ?? 0
    }

    /// Sends one datagram; false when the kernel refused it (no route, buffer full, …).
    @discardableResult
    func send(_ bytes: [UInt8], to address: IPAddress, port: UInt16) -> Bool {
        guard address.family == family else { return false }
        let n = bytes.withUnsafeBytes { raw in
            UDPSocket.withSockaddr(address, port: port) { sa, len in
                sendto(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL), sa, len)
            }
        }
        return n == bytes.count
    }

    /// One datagram, or nil when none is waiting (or on error). Datagrams longer than the buffer are truncated
    /// (and then fail the packet's size check).
    func receive(into buffer: inout [UInt8]) -> (count: Int, address: IPAddress, port: UInt16)? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = buffer.withUnsafeMutableBytes { raw in
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &len) }
            }
        }
        guard n >= 0, let (address, port) = UDPSocket.decode(storage) else { return nil }
        return (n, address, port)
    }

    func close() { _ = Glibc_close(fd) }

    // MARK: - sockaddr

    static func withSockaddr<R>(_ address: IPAddress, port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        if address.isV4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = UInt32(truncatingIfNeeded: address.low).bigEndian
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { raw in
            withUnsafeBytes(of: address.high.bigEndian) { raw.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 8) }
            withUnsafeBytes(of: address.low.bigEndian) { (raw.baseAddress! + 8).copyMemory(from: $0.baseAddress!, byteCount: 8) }
        }
        return withUnsafePointer(to: &sin6) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }

    static func decode(_ storage: sockaddr_storage) -> (IPAddress, UInt16)? {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    (IPAddress(v4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr)), UInt16(bigEndian: $0.pointee.sin_port))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                    var a = p.pointee.sin6_addr
                    let (high, low) = withUnsafeBytes(of: &a) { raw in
                        (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                         UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
                    }
                    return (IPAddress(v6High: high, low: low), UInt16(bigEndian: p.pointee.sin6_port))
                }
            }
        default:
            return nil
        }
    }
}

/// A pipe that wakes a `poll` loop from another thread.
struct WakePipe: Sendable {
    let readFD: Int32
    let writeFD: Int32

    init() throws(SocketError) {
        var fds: [Int32] = [-1, -1]
        #if canImport(Glibc)
        guard fds.withUnsafeMutableBufferPointer({ linux_pipe2($0.baseAddress!, O_CLOEXEC | O_NONBLOCK) }) == 0 else {
            throw SocketError(operation: "pipe", code: errno)
        }
        #else
        guard fds.withUnsafeMutableBufferPointer({ pipe($0.baseAddress!) }) == 0 else {
            throw SocketError(operation: "pipe", code: errno)
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        #endif
        readFD = fds[0]
        writeFD = fds[1]
    }

    func wake() {
        var b: UInt8 = 1
        _ = write(writeFD, &b, 1)
    }

    func drain() {
        var buf = [UInt8](repeating: 0, count: 64)
        while buf.withUnsafeMutableBytes({ read(readFD, $0.baseAddress!, $0.count) }) > 0 {}
    }

    func close() {
        _ = Glibc_close(readFD)
        _ = Glibc_close(writeFD)
    }
}

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC), the health probe's clock.
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

// Free functions shadowed by methods of the same name.
@inline(__always) private func Glibc_bind(_ fd: Int32, _ sa: UnsafePointer<sockaddr>, _ len: socklen_t) -> Int32 {
    bind(fd, sa, len)
}

@inline(__always) private func Glibc_close(_ fd: Int32) -> Int32 { close(fd) }
