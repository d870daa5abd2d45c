import Dispatch
import Foundation

/// A minimal HTTP/1.1 client for the fault-injection run: one fresh loopback connection per request
/// (`Connection: close`), blocking sockets with `poll` deadlines on a Dispatch thread.
///
/// Why not URLSession: libcurl silently re-sends a request whose reused connection died before any
/// answer byte, and its errors do not say whether the request left this process. Here the outcome of
/// every request is exact: `notSent` (the connect was refused: the controller never saw it), `answered`,
/// or `unknown` (connected and sent, then the connection broke or the deadline passed: it may have committed).
enum ChaosHTTP {
    struct Request: Sendable {
        var method: String
        var path: String
        var headers: [(String, String)] = []
        var body: [UInt8]? = nil

        /// The bytes on the wire.
        func encoded(port: Int) -> [UInt8] {
            var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            if let body {
                head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
            } else if method == "POST" || method == "PUT" {
                head += "Content-Length: 0\r\n"
            }
            head += "\r\n"
            return Array(head.utf8) + (body ?? [])
        }
    }

    struct Response: Sendable, Equatable {
        var status: Int
        /// Header names lower-cased; the last value wins.
        var headers: [String: String]
        var body: [UInt8]

        func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    enum Outcome: Sendable, Equatable {
        case answered(Response)
        /// Nothing reached the server (connection refused or no listener).
        case notSent(String)
        /// Sent (or partly sent), but no complete answer: the connection broke.
        case broken(String)
        /// No complete answer before the deadline.
        case timedOut

        var response: Response? {
            if case .answered(let r) = self { return r }
            return nil
        }
    }

    /// Runs each request's blocking socket work on a thread of its own (the callers bound how many run at once): not on
    /// the cooperative pool, and not on Dispatch's shared pool either, where the in-process agents' blocking NATS
    /// requests (hundreds at once after a NATS restart) would hold up the workload and so distort its timings.
    final class Client: Sendable {
        let timeout: Duration

        init(timeout: Duration) { self.timeout = timeout }

        func send(_ request: Request, port: Int, timeout: Duration? = nil) async -> Outcome {
            let deadline = timeout ?? self.timeout
            return await withCheckedContinuation { continuation in
                let thread = Thread { continuation.resume(returning: ChaosHTTP.exchange(request, port: port, timeout: deadline)) }
                thread.stackSize = 256 * 1024
                thread.start()
            }
        }
    }

    /// One request on a fresh connection to 127.0.0.1:`port`.
    static func exchange(_ request: Request, port: Int, timeout: Duration) -> Outcome {
        let deadline = DispatchTime.now().uptimeNanoseconds &+ UInt64(max(0, timeout.components.seconds * 1_000_000_000
            + timeout.components.attoseconds / 1_000_000_000))
        func remainingMs() -> Int32 {
            let now = DispatchTime.now().uptimeNanoseconds
            return now >= deadline ? 0 : Int32(min(UInt64(Int32.max), (deadline - now) / 1_000_000 + 1))
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return .notSent("socket: errno \(errno)") }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            guard errno == EINPROGRESS else { return .notSent("connect: errno \(errno)") }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let n = poll(&p, 1, remainingMs())
            // Not connected by the deadline: the server never accepted it, so never saw the request.
            if n <= 0 { return .notSent("connect timed out") }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 { return .notSent("connect: errno \(error)") }
        }
        let bytes = request.encoded(port: port)
        var written = 0
        while written < bytes.count {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let n = poll(&p, 1, remainingMs())
            if n == 0 { return .timedOut }
            if n < 0 { if errno == EINTR { continue }; return .broken("poll: errno \(errno)") }
            let k = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + written, $0.count - written, Int32(MSG_NOSIGNAL)) }
            if k < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .broken("send: errno \(errno)")
            }
            written += k
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&p, 1, remainingMs())
            if n == 0 { return .timedOut }
            if n < 0 { if errno == EINTR { continue }; return .broken("poll: errno \(errno)") }
            let k = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if k < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .broken("recv: errno \(errno)")
            }
            if k > 0 { received += buffer[0..<k] }
            switch ResponseParser.parse(received, atEOF: k == 0) {
            case .complete(let response): return .answered(response)
            case .invalid(let why): return .broken("unparseable answer: \(why)")
            case .incomplete:
                if k == 0 { return .broken(received.isEmpty ? "connection closed without an answer" : "connection closed mid-answer") }
            }
        }
    }
}

/// HTTP/1.1 response parsing (status line, headers, Content-Length / chunked / until-close body). Pure.
enum ResponseParser {
    enum Result: Equatable {
        case incomplete
        case complete(ChaosHTTP.Response)
        case invalid(String)
    }

    static func parse(_ bytes: [UInt8], atEOF: Bool) -> Result {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let headEnd = firstIndex(of: separator, in: bytes, from: 0) else { return .incomplete }
        let head = String(decoding: bytes[0..<headEnd], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            return .invalid("status line \(statusLine.joined(separator: " ").prefix(60))")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return .invalid("header line \(line.prefix(60))") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let bodyStart = headEnd + 4
        let rest = Array(bytes[bodyStart...])
        if let lengthText = headers["content-length"] {
            guard let length = Int(lengthText), length >= 0 else { return .invalid("content-length \(lengthText)") }
            guard rest.count >= length else { return .incomplete }
            return .complete(.init(status: status, headers: headers, body: Array(rest[0..<length])))
        }
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            var body: [UInt8] = []
            var i = 0
            while true {
                guard let lineEnd = firstIndex(of: [13, 10], in: rest, from: i) else { return .incomplete }
                let sizeText = String(decoding: rest[i..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return .invalid("chunk size \(sizeText)") }
                let dataStart = lineEnd + 2
                if size == 0 { return .complete(.init(status: status, headers: headers, body: body)) }
                guard rest.count >= dataStart + size + 2 else { return .incomplete }
                body += rest[dataStart..<(dataStart + size)]
                i = dataStart + size + 2
            }
        }
        if status == 204 || status == 304 || (100..<200).contains(status) {
            return .complete(.init(status: status, headers: headers, body: []))
        }
        // No length: the body runs until the server closes.
        return atEOF ? .complete(.init(status: status, headers: headers, body: rest)) : .incomplete
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var i = start
        while i <= haystack.count - needle.count {
            if haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}
