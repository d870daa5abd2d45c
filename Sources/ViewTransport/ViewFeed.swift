import Logging
import NATSClient
import Synchronization

/// Where a received view came from.
public enum ViewOrigin: String, Sendable, Equatable {
    /// The stream's last message, read when the feed started.
    case last
    /// A live message on the subject.
    case live
    /// The last message read again after a reconnect (or periodically).
    case resync
}

public enum ViewFeedEvent: Sendable, Equatable {
    case view(ViewEnvelope, origin: ViewOrigin)
    /// A message that is not an acceptable view (tampered, unparseable, unknown envelope, someone else's).
    case rejected(ViewEnvelopeError, origin: ViewOrigin)
    /// The subject has no message yet (no view was ever published for this peer).
    case noView
    case disconnected
    case reconnected
}

/// One peer's view feed: a core NATS subscription on its subject for live messages, plus a direct get of the
/// stream's last message at start, after every reconnect and (optionally) periodically.
///
/// Why not a JetStream consumer: the stream keeps only the last message per subject and a view is the full state,
/// so "last message + live messages" is all an agent needs; a core subscription costs the server nothing per
/// agent (no consumer state, no flow control, no heartbeats; 1,000 agents = 1,000 plain subscriptions), and
/// per-agent permissions can name exactly `SUB <subject>` and `PUB $JS.API.DIRECT.GET.<stream>.<subject>`.
/// A message published while the agent was disconnected is not redelivered by core NATS, but the re-read after
/// the reconnect (which libnats reports after re-sending the subscription) returns it, or something newer.
/// Consumers may see a version more than once or an older one after a newer one (a re-read racing a live
/// message, a republish after a relay crash): apply a view only if its version is newer than the one applied.
public final class ViewFeed: Sendable {
    public let tenant: String
    public let peer: String
    public let subject: String
    public let events: AsyncStream<ViewFeedEvent>
    private let continuation: AsyncStream<ViewFeedEvent>.Continuation
    private let subscription: NATSSubscription
    private let tasks = Mutex<[Task<Void, Never>]>([])

    /// Subscribes first, then reads the last message, so nothing published in between is missed.
    public static func follow(connection: NATSConnection, stream: String = StreamSpec.views.name, tenant: String, peer: String,
                              resyncInterval: Duration? = .seconds(60), logger: Logger = Logger(label: "routeplane.view-feed")) async throws -> ViewFeed {
        let subject = try ViewSubjects.subject(tenant: tenant, peer: peer)
        let subscription = try connection.subscribe(subject)
        let jetStream = try JetStream(connection: connection)
        let feed = ViewFeed(tenant: tenant, peer: peer, subject: subject, subscription: subscription)
        let connectionEvents = connection.events()
        let continuation = feed.continuation
        /// True when the server answered (with the last view or with none).
        @Sendable func readLast(_ origin: ViewOrigin) async -> Bool {
            do {
                if let message = try await jetStream.lastMessage(stream: stream, subject: subject) {
                    continuation.yield(Self.event(message.payload, tenant: tenant, peer: peer, origin: origin))
                } else if origin == .last {
                    continuation.yield(.noView)
                }
                return true
            } catch {
                // Disconnected or NATS down: the next reconnect (or resync) reads again.
                logger.debug("view feed could not read the last message", metadata: ["subject": "\(subject)", "error": "\(error)"])
                return false
            }
        }
        /// A failed read while connected is tried again soon (0.25 s, doubling to 5 s, about half a minute in all), not
        /// only at the next periodic resync (60 s): right after a NATS restart hundreds of agents read at once and a read
        /// can fail, and a view published while the agent was disconnected reaches it only through this read.
        @Sendable func readLastRetrying(_ origin: ViewOrigin) async {
            var delay = Duration.milliseconds(250)
            for _ in 0..<10 {
                if await readLast(origin) { return }
                // Disconnected again: the next reconnect reads.
                if Task.isCancelled || !connection.isConnected { return }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        let live = Task {
            for await message in subscription.messages {
                continuation.yield(Self.event(message.payload, tenant: tenant, peer: peer, origin: .live))
            }
            continuation.finish()
        }
        let watcher = Task {
            for await event in connectionEvents {
                switch event {
                case .disconnected: continuation.yield(.disconnected)
                case .reconnected, .connected:
                    continuation.yield(.reconnected)
                    await readLastRetrying(.resync)
                case .closed: continuation.finish()
                case .error: break
                }
            }
        }
        var tasks = [live, watcher]
        if let resyncInterval {
            tasks.append(Task {
                while !Task.isCancelled {
                    // ±25 %: agents started together (a fleet after a restart) would otherwise all read at the same moment,
                    // every interval, forever (ops/chaos: 300 agents' reads at once, just as NATS went down).
                    try? await Task.sleep(for: resyncInterval * Double.random(in: 0.75...1.25))
                    if Task.isCancelled { break }
                    _ = await readLast(.resync)
                }
            })
        }
        feed.tasks.withLock { $0 = tasks }
        if !(await readLast(.last)) {
            let retry = Task {
                try? await Task.sleep(for: .milliseconds(250))
                await readLastRetrying(.last)
            }
            feed.tasks.withLock { $0.append(retry) }
        }
        return feed
    }

    private init(tenant: String, peer: String, subject: String, subscription: NATSSubscription) {
        self.tenant = tenant
        self.peer = peer
        self.subject = subject
        self.subscription = subscription
        (events, continuation) = AsyncStream<ViewFeedEvent>.makeStream(bufferingPolicy: .bufferingNewest(1_024))
    }

    static func event(_ payload: [UInt8], tenant: String, peer: String, origin: ViewOrigin) -> ViewFeedEvent {
        do {
            return .view(try ViewEnvelope.decode(payload, expectedTenant: tenant, expectedPeer: peer), origin: origin)
        } catch {
            return .rejected(error, origin: origin)
        }
    }

    /// Stops the feed: unsubscribes and ends `events`.
    public func cancel() {
        subscription.unsubscribe()
        let tasks = self.tasks.withLock { t in
            defer { t = [] }
            return t
        }
        tasks.forEach { $0.cancel() }
        continuation.finish()
    }

    deinit { cancel() }
}
