import Logging
import PostgresClient

/// Follows the event stream of every tenant: catches up from a position, then waits for NOTIFY
/// (or a poll interval) and reads again. Pull-based: the reader's pace is the subscription's pace,
/// so a slow consumer never makes it buffer without bound. Delivers each event exactly once, in
/// global order, including events committed late by slow transactions.
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent

    let store: EventStore
    let start: GlobalPosition
    let batchSize: Int
    let pollInterval: Duration

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, position: start, batchSize: batchSize, pollInterval: pollInterval)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: EventStore
        var position: GlobalPosition
        let batchSize: Int
        var buffer: [RecordedEvent] = []
        var bufferIndex = 0
        /// NOTIFY `routeplane_events`, reconnects, and a wake-up every poll interval (also while LISTEN is down).
        var wakeUps: PostgresNotifications.Iterator
        var listened = false

        init(store: EventStore, position: GlobalPosition, batchSize: Int, pollInterval: Duration) {
            self.store = store
            self.position = position
            self.batchSize = batchSize
            self.wakeUps = store.pool.notifications(channels: ["routeplane_events"], label: "listen",
                                                    configuration: .init(pollInterval: pollInterval)).makeAsyncIterator()
        }

        public mutating func next() async throws -> RecordedEvent? {
            while true {
                if bufferIndex < buffer.count {
                    let event = buffer[bufferIndex]
                    bufferIndex += 1
                    position = event.globalPosition
                    return event
                }
                try Task.checkCancellation()
                // Listen before the first read, so an append committed between the read and the wait still wakes us.
                if !listened {
                    listened = true
                    await wakeUp()
                }
                let batch = try await store.readAll(after: position, limit: batchSize)
                if !batch.isEmpty {
                    buffer = batch
                    bufferIndex = 0
                    continue
                }
                await wakeUp()
            }
        }

        /// Waits for the next wake-up (any event: each one means "read again").
        private mutating func wakeUp() async {
            switch await wakeUps.next() {
            case let .listening(recovered)?:
                if recovered { store.logger.notice("event subscription listening again") }
            case let .unavailable(reason)?:
                store.logger.warning("event subscription cannot LISTEN; polling", metadata: ["error": "\(reason)"])
            case let .lost(reason)?:
                store.logger.warning("event subscription lost its LISTEN connection", metadata: ["error": "\(reason)"])
            case .notification?, .idle?, nil:
                break
            }
        }
    }
}
