import ArgumentParser
import Logging
import Synchronization

/// The command-line tools' logging set-up (stderr, one level) and `--log-level` parsing: apart from CommandSupport so
/// that the lean agent executable links it without PostgreSQL (CommandSupport re-exports it).

extension Logger.Level: @retroactive ExpressibleByArgument {}

private let loggingBootstrapped = LoggingOnce()

final class LoggingOnce: Sendable {
    private let done = Mutex(false)
    func run(_ body: () -> Void) {
        let first = done.withLock { value in
            defer { value = true }
            return !value
        }
        if first { body() }
    }
}

public func bootstrapLogging(level: Logger.Level) {
    loggingBootstrapped.run {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
