import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// The fault-injection run's HTTP requests to the controllers, over AsyncHTTPClient: one fresh loopback connection per
/// request, no retries, and an exact outcome for each: `notSent` (no connection: the controller never saw it),
/// `answered`, or, once the request went out on a connection, `broken` (the connection broke before a complete answer)
/// or `timedOut` (no complete answer before the deadline) — either may have committed.
///
/// Why not URLSession: libcurl silently re-sends a request whose reused connection died before any answer byte, and its
/// errors do not say whether the request left this process. AsyncHTTPClient does not re-send, and its delegate says
/// when the request head went out on a connection.
enum ChaosHTTP {
    struct Request: Sendable {
        var method: String
        var path: String
        var headers: [(String, String)] = []
        var body: [UInt8]? = nil
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
        /// Nothing reached the server (connection refused, no listener, or not connected by the deadline).
        case notSent(String)
        /// Sent, but no complete answer: the connection broke.
        case broken(String)
        /// Sent, but no complete answer before the deadline.
        case timedOut

        var response: Response? {
            if case .answered(let r) = self { return r }
            return nil
        }
    }

    /// The client's settings: a connection per request (never reused, so never one that a killed controller left
    /// behind), a refused connection fails at once (no retries), and no limit below the workload's concurrency.
    static var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.maximumUsesPerConnection = 1
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1_024
        configuration.httpVersion = .http1Only
        return configuration
    }

    /// Sends requests to 127.0.0.1 on `http`, which the caller shuts down (`HTTPClient.withHTTPClient`).
    struct Client: Sendable {
        let http: HTTPClient
        let timeout: Duration
        /// Hosts by port where a controller listens elsewhere than 127.0.0.1 (one in a network namespace).
        let hosts: [Int: String]

        init(_ http: HTTPClient, timeout: Duration, hosts: [Int: String] = [:]) {
            self.http = http
            self.timeout = timeout
            self.hosts = hosts
        }

        func send(_ request: Request, port: Int, timeout: Duration? = nil) async -> Outcome {
            let deadline = NIODeadline.now() + TimeAmount(timeout ?? self.timeout)
            let prepared: HTTPClient.Request
            do {
                let headers = request.headers + (request.body == nil ? [] : [("Content-Type", "application/json")])
                prepared = try HTTPClient.Request(url: "http://\(hosts[port] ?? "127.0.0.1"):\(port)\(request.path)", method: HTTPMethod(rawValue: request.method),
                                                  headers: HTTPHeaders(headers), body: request.body.map { .bytes($0) })
            } catch {
                return .notSent("bad request: \(error)")
            }
            let exchange = Exchange()
            let task = http.execute(request: prepared, delegate: exchange, deadline: deadline)
            do {
                return .answered(try await task.futureResult.get())
            } catch {
                return exchange.outcome(of: error)
            }
        }
    }

    /// One request's answer as it arrives, and whether its head went out on a connection (called on the connection's
    /// event loop; the state is behind a Mutex because the failure is read from the caller's task).
    final class Exchange: HTTPClientResponseDelegate {
        typealias Response = ChaosHTTP.Response

        private struct State {
            var sent = false
            var head: HTTPResponseHead?
            var body: [UInt8] = []
        }
        private let state = Mutex(State())

        func didSendRequestHead(task: HTTPClient.Task<Response>, _ head: HTTPRequestHead) {
            state.withLock { $0.sent = true }
        }

        func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
            state.withLock { $0.head = head }
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
            state.withLock { $0.body += buffer.readableBytesView }
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
            try state.withLock { s in
                guard let head = s.head else { throw HTTPClientError.remoteConnectionClosed }
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                return Response(status: Int(head.status.code), headers: headers, body: s.body)
            }
        }

        /// What a failed request amounts to: not sent when its head never went out on a connection.
        func outcome(of error: any Error) -> Outcome {
            let sent = state.withLock { $0.sent }
            return ChaosHTTP.outcome(of: error, sent: sent)
        }
    }

    static func outcome(of error: any Error, sent: Bool) -> Outcome {
        let timedOut = (error as? HTTPClientError).map { [.deadlineExceeded, .readTimeout, .connectTimeout].contains($0) } ?? false
        guard sent else { return .notSent(timedOut ? "connect timed out" : "connect: \(error)") }
        return timedOut ? .timedOut : .broken("\(error)")
    }
}
