/// `LISTEN` on a dedicated connection as an async sequence: the I/O shell around `ListenStateMachine`.
///
/// Iterating opens a connection outside the pool and LISTENs on `channels`, then yields each NOTIFY. It never
/// ends by itself (only when the task is cancelled): a broken connection is replaced, a failed connect retried
/// with back-off, and each time it listens again it yields `.listening`, because notifications sent while
/// nobody listened are lost and the reader must re-read what it follows. Every event is also a wake-up: a
/// reader that polls gets `.idle` at least every poll interval, also while the database is down.
///
/// Pull-based: the connection is only read while the reader waits in `next()`; notifications arriving
/// meanwhile queue in the server session (and libpq) until the next wait.
public struct PostgresNotifications: AsyncSequence, Sendable {
    public typealias Element = PostgresListenEvent
    public typealias Failure = Never

    let pool: ConnectionPool
    let channels: [String]
    let label: String
    let configuration: ListenStateMachine.Configuration

    public func makeAsyncIterator() -> Iterator {
        Iterator(pool: pool, channels: channels, label: label, machine: ListenStateMachine(configuration: configuration))
    }

    public struct Iterator: AsyncIteratorProtocol {
        let pool: ConnectionPool
        let channels: [String]
        let label: String
        var machine: ListenStateMachine
        let listener = Listener()

        /// The next event; nil once the task is cancelled (the connection is then closed).
        public mutating func next() async -> PostgresListenEvent? {
            var action = machine.next()
            while true {
                if Task.isCancelled {
                    listener.close()
                    return nil
                }
                switch action {
                case .connect:
                    do {
                        let connection = try await pool.dedicatedConnection(label: label)
                        listener.connection = connection
                        let statements = channels.map { "LISTEN \($0)" }
                        _ = try await connection.withSession { session in
                            for statement in statements { try session.query(statement) }
                        }
                        action = machine.connected()
                    } catch {
                        listener.close()
                        action = machine.connectFailed(reason: "\(error)")
                    }
                case let .waitForNotifications(timeout):
                    guard let connection = listener.connection else { preconditionFailure("waiting without a connection") }
                    do {
                        let received = try await connection.withSession { try $0.waitForNotifications(timeout: timeout) }
                        action = machine.received(received.map { PostgresNotification(channel: $0.channel, payload: $0.payload) })
                    } catch {
                        listener.close()
                        action = machine.connectionLost(reason: "\(error)")
                    }
                case let .sleep(duration):
                    do {
                        try await Task.sleep(for: duration)
                    } catch {
                        return nil
                    }
                    action = machine.slept(duration)
                case let .deliver(event):
                    return event
                }
            }
        }
    }

    /// Owns the iterator's connection: closed when the connection breaks, the task is cancelled, or the
    /// iterator is dropped.
    final class Listener {
        var connection: PostgresConnection?

        func close() {
            connection?.close()
            connection = nil
        }

        deinit { connection?.close() }
    }
}

extension ConnectionPool {
    /// LISTENs on `channels` (plain identifiers, not quoted) on a dedicated connection labelled `label`; see
    /// `PostgresNotifications`.
    public func notifications(channels: [String], label: String,
                              configuration: ListenStateMachine.Configuration = .init()) -> PostgresNotifications {
        for channel in channels {
            precondition(!channel.isEmpty && channel.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") },
                         "LISTEN channel must be a plain identifier: \(channel)")
        }
        return PostgresNotifications(pool: self, channels: channels, label: label, configuration: configuration)
    }
}
