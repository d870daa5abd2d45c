import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// What the HTTP layer allows a client and how it spares the database: connection timeouts, the negative token cache,
/// how often `/metrics` and `/healthz` may touch the database. Defaults are safe for a controller on the internet.
public struct HTTPServerSettings: Sendable, Equatable {
    /// A connection with no request for this long is closed (Hummingbird's `idleTimeout`: counted from the connection's
    /// start or the end of the last response until the next request head).
    public var idleTimeout: Duration
    /// From a request's first byte to its complete head (request line and headers): a client trickling its headers is
    /// dropped after this (slow-loris).
    public var headTimeout: Duration
    /// From a request's head to the end of its body: a client trickling its body is dropped after this.
    public var bodyTimeout: Duration
    /// How long an unknown token is answered 401 from memory, without a database lookup.
    public var negativeTokenTTL: Duration
    /// Most unknown tokens remembered at once (oldest forgotten first).
    public var negativeTokenEntries: Int
    /// `/metrics` reads its database gauges (outbox depth, projection lag) at most this often.
    public var metricsRefresh: Duration
    /// `/healthz` asks the database (and NATS) at most this often.
    public var healthRefresh: Duration
    /// On graceful shutdown, how long requests in flight may still run before they are answered 503 with Retry-After.
    public var shutdownGrace: Duration

    public init(idleTimeout: Duration = .seconds(30), headTimeout: Duration = .seconds(10), bodyTimeout: Duration = .seconds(30),
                negativeTokenTTL: Duration = .seconds(10), negativeTokenEntries: Int = 10_000, metricsRefresh: Duration = .seconds(5),
                healthRefresh: Duration = .seconds(1), shutdownGrace: Duration = .seconds(10)) {
        self.idleTimeout = idleTimeout
        self.headTimeout = headTimeout
        self.bodyTimeout = bodyTimeout
        self.negativeTokenTTL = negativeTokenTTL
        self.negativeTokenEntries = negativeTokenEntries
        self.metricsRefresh = metricsRefresh
        self.healthRefresh = healthRefresh
        self.shutdownGrace = shutdownGrace
    }
}

/// The deadlines of one HTTP/1.1 connection's request being read, as a value: the head must be complete within
/// `headTimeout` of its first byte, the body within `bodyTimeout` of the head. Between requests no deadline of ours runs
/// (the idle timeout is Hummingbird's). The channel handler feeds it events and carries out its actions.
struct RequestDeadlines: Equatable {
    enum Phase: String, Equatable { case head, body }

    enum State: Equatable {
        /// No byte of a next request yet.
        case betweenRequests
        case reading(Phase, deadline: ContinuousClock.Instant)
        case closed
    }

    enum Action: Equatable {
        case none
        /// Run `timerFired` at this instant (replacing any timer set before).
        case schedule(ContinuousClock.Instant)
        case cancelTimer
        /// Close the connection: the client took too long for this phase.
        case close(Phase)
    }

    let headTimeout: Duration
    let bodyTimeout: Duration
    private(set) var state: State = .betweenRequests

    init(headTimeout: Duration, bodyTimeout: Duration) {
        self.headTimeout = headTimeout
        self.bodyTimeout = bodyTimeout
    }

    /// Bytes arrived: the first byte of a request starts its head's clock; later bytes change nothing (a trickle does
    /// not extend a deadline).
    mutating func bytesRead(now: ContinuousClock.Instant) -> Action {
        guard case .betweenRequests = state else { return .none }
        let deadline = now + headTimeout
        state = .reading(.head, deadline: deadline)
        return .schedule(deadline)
    }

    /// The head is complete: the body's clock starts.
    mutating func headRead(now: ContinuousClock.Instant) -> Action {
        if case .closed = state { return .none }
        let deadline = now + bodyTimeout
        state = .reading(.body, deadline: deadline)
        return .schedule(deadline)
    }

    /// The request is read in full: no deadline until the next request's first byte.
    mutating func endRead() -> Action {
        if case .closed = state { return .none }
        state = .betweenRequests
        return .cancelTimer
    }

    mutating func timerFired(now: ContinuousClock.Instant) -> Action {
        guard case .reading(let phase, let deadline) = state else { return .none }
        guard now >= deadline else { return .schedule(deadline) }
        state = .closed
        return .close(phase)
    }

    mutating func connectionClosed() -> Action {
        state = .closed
        return .cancelTimer
    }
}

/// Tells `RequestDeadlineHandler` (ahead of the HTTP decoder) where the decoder is in a request.
enum RequestProgressEvent: Sendable { case headRead, endRead }

/// Sits ahead of the HTTP decoder (after TLS, when there is TLS): sees a request's first bytes, hears from
/// `RequestProgressObserver` when its head and end were decoded, and closes the connection when `RequestDeadlines` says so.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    private var deadlines: RequestDeadlines
    private var timer: Scheduled<Void>?
    private let metrics: ControllerMetrics
    private let logger: Logger

    init(settings: HTTPServerSettings, metrics: ControllerMetrics, logger: Logger) {
        deadlines = RequestDeadlines(headTimeout: settings.headTimeout, bodyTimeout: settings.bodyTimeout)
        self.metrics = metrics
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if unwrapInboundIn(data).readableBytes > 0 {
            perform(deadlines.bytesRead(now: .now), context)
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let progress = event as? RequestProgressEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch progress {
        case .headRead: perform(deadlines.headRead(now: .now), context)
        case .endRead: perform(deadlines.endRead(), context)
        }
        promise?.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(deadlines.connectionClosed(), context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func perform(_ action: RequestDeadlines.Action, _ context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .schedule(let deadline):
            timer?.cancel()
            let delay = max(deadline - .now, .zero)
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds)) { [self] in
                timer = nil
                perform(deadlines.timerFired(now: .now), context)
            }
        case .cancelTimer:
            timer?.cancel()
            timer = nil
        case .close(let phase):
            timer = nil
            let limit = phase == .head ? deadlines.headTimeout : deadlines.bodyTimeout
            logger.notice("closing a connection: the client did not send the request \(phase.rawValue) in time",
                          metadata: ["remote": "\(context.channel.remoteAddress?.description ?? "?")", "limit": "\(limit)"])
            metrics.requestTimedOut(phase: phase.rawValue)
            context.close(promise: nil)
        }
    }
}

/// Behind the HTTP decoder: tells `RequestDeadlineHandler` when a request's head and end were decoded.
final class RequestProgressObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: context.triggerUserOutboundEvent(RequestProgressEvent.headRead, promise: nil)
        case .end: context.triggerUserOutboundEvent(RequestProgressEvent.endRead, promise: nil)
        case .body: break
        }
        context.fireChannelRead(data)
    }
}

/// Hummingbird's HTTP/1.1 child channel with our request deadlines in front of its decoder.
struct DeadlineHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let base: HTTP1Channel
    let settings: HTTPServerSettings
    let metrics: ControllerMetrics
    let logger: Logger

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let (settings, metrics, ownLogger) = (settings, metrics, self.logger)
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RequestDeadlineHandler(settings: settings, metrics: metrics, logger: ownLogger))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with the idle timeout and the request head and body deadlines of `settings` (wrap it in `.tls(…)` for TLS).
    static func http1(settings: HTTPServerSettings, metrics: ControllerMetrics, logger: Logger) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            let configuration = HTTP1Channel.Configuration(additionalChannelHandlers: [RequestProgressObserver()],
                                                           idleTimeout: .nanoseconds(settings.idleTimeout.nanoseconds))
            return DeadlineHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: configuration),
                                        settings: settings, metrics: metrics, logger: logger)
        }
    }
}
