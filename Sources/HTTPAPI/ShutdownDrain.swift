import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// Requests in flight when the controller shuts down gracefully (SIGTERM): they get `HTTPServerSettings.shutdownGrace`
/// to finish; then each still running is cancelled on its own (not its connection, which must stay writable) and
/// answered 503 with Retry-After by `APIMiddleware`, as is any request that starts after that. Never a 500.
final class RequestDrain: Sendable {
    private struct State {
        var next = 0
        var running: [Int: Task<Response, any Error>] = [:]
        var cutOff = false
    }

    private let state = Mutex(State())

    /// Runs one request's handling in a task of its own, so the drain can cancel it without cancelling the connection.
    func run(_ respond: @escaping @Sendable () async throws -> Response) async throws -> Response {
        let task = Task { try await respond() }
        let (id, cutOff) = state.withLock { s in
            s.next += 1
            s.running[s.next] = task
            return (s.next, s.cutOff)
        }
        if cutOff { task.cancel() }
        defer { _ = state.withLock { $0.running.removeValue(forKey: id) } }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// The grace is over: cancels every request still running, and each later one as it starts.
    func cutOff() {
        let tasks = state.withLock { s in
            s.cutOff = true
            return Array(s.running.values)
        }
        for task in tasks { task.cancel() }
    }

    var inFlight: Int { state.withLock { $0.running.count } }
}

/// The router's responder behind `RequestDrain`.
struct DrainingResponder<Base: HTTPResponder>: HTTPResponder where Base.Context == APIRequestContext {
    let base: Base
    let drain: RequestDrain

    func respond(to request: Request, context: APIRequestContext) async throws -> Response {
        try await drain.run { try await base.respond(to: request, context: context) }
    }
}

/// The HTTP application as a service: on graceful shutdown Hummingbird stops accepting and closes idle connections,
/// and after `grace` the drain cuts the requests still running.
struct DrainingService<App: ApplicationProtocol>: Service {
    let app: App
    let drain: RequestDrain
    let grace: Duration
    let logger: Logger

    func run() async throws {
        let (drain, grace, logger) = (drain, grace, logger)
        try await withGracefulShutdownHandler {
            try await app.run()
        } onGracefulShutdown: {
            logger.notice("shutting down: requests in flight get the grace period, then 503 with Retry-After",
                          metadata: ["in_flight": "\(drain.inFlight)", "grace": "\(grace)"])
            Task {
                try? await Task.sleep(for: grace)
                drain.cutOff()
            }
        }
    }
}
