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
        let pollInterval: Duration
        var buffer: [RecordedEvent] = []
        var bufferIndex = 0
        let listener: Listener

        init(store: EventStore, position: GlobalPosition, batchSize: Int, pollInterval: Duration) {
            self.store = store
            self.position = position
            self.batchSize = batchSize
            self.pollInterval = pollInterval
            self.listener = Listener(store: store)
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
                // Listen before reading, so an append committed between the read and the wait still wakes us.
                await listener.ensureListening()
                let batch = try await store.readAll(after: position, limit: batchSize)
                if !batch.isEmpty {
                    buffer = batch
                    bufferIndex = 0
                    continue
                }
                await listener.waitForNotification(timeout: pollInterval)
            }
        }
    }

    /// Holds the LISTEN connection of one iterator. If it breaks, waits fall back to plain polling
    /// until it can be reopened.
    actor Listener {
        let store: EventStore
        var connection: PostgresConnection?
        var lastAttempt: ContinuousClock.Instant?
        var loggedDown = false

        init(store: EventStore) { self.store = store }

        deinit { connection?.close() }

        func ensureListening() async {
            if connection != nil { return }
            let now = ContinuousClock.now
            if let lastAttempt, now - lastAttempt < .seconds(1) { return }
            lastAttempt = now
            do {
                let connection = try await store.pool.dedicatedConnection(label: "listen")
                _ = try await connection.withSession { try $0.query("LISTEN routeplane_events") }
                self.connection = connection
                if loggedDown { store.logger.notice("event subscription listening again") }
                loggedDown = false
            } catch {
                if !loggedDown { store.logger.warning("event subscription cannot LISTEN; polling", metadata: ["error": "\(error)"]) }
                loggedDown = true
            }
        }

        func waitForNotification(timeout: Duration) async {
            guard let connection else {
                try? await Task.sleep(for: timeout)
                return
            }
            do {
                _ = try await connection.withSession { try $0.waitForNotifications(timeout: timeout) }
            } catch {
                store.logger.warning("event subscription lost its LISTEN connection", metadata: ["error": "\(error)"])
                connection.close()
                self.connection = nil
                loggedDown = true
            }
        }
    }
}
