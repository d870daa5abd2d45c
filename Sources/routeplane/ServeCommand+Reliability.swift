import ArgumentParser
import EventStore
import Foundation
import HTTPAPI
import Logging
import PostgresClient
import ServiceLifecycle

/// `routeplane serve` options for retries: how long `Idempotency-Key`s are remembered, how long the controller waits
/// for PostgreSQL at start, and the hidden, test-only lost-write switch.
struct ReliabilityServeOptions: ParsableArguments {
    @Option(name: .customLong("idempotency-key-hours"),
            help: "How long an Idempotency-Key and its first answer are kept, in hours (default: $ROUTEPLANE_IDEMPOTENCY_KEY_HOURS or 24, Stripe's).")
    var idempotencyKeyHours: Int?

    @Option(name: .customLong("idempotency-lease-seconds"),
            help: "How long a request holds its Idempotency-Key before a retry may take it over (its controller died), in seconds (default: $ROUTEPLANE_IDEMPOTENCY_LEASE_SECONDS or 30). Safe at any value: an overtaken request cannot commit.")
    var idempotencyLeaseSeconds: Int?

    @Option(name: .customLong("database-wait-seconds"),
            help: "At start, how long to wait for PostgreSQL before giving up, in seconds; 0 waits forever (default: $ROUTEPLANE_DATABASE_WAIT_SECONDS or 0). Meanwhile the API answers 503.")
    var databaseWaitSeconds: Int?

    /// TEST ONLY (hidden): acknowledge the N-th write of this process with 2xx and commit nothing. Needs
    /// --i-know-this-loses-data too. Env: ROUTEPLANE_TEST_LOSE_WRITE and ROUTEPLANE_TEST_I_KNOW_THIS_LOSES_DATA=yes.
    @Option(name: .customLong("test-lose-write"), help: .hidden)
    var testLoseWrite: Int?

    @Flag(name: .customLong("i-know-this-loses-data"), help: .hidden)
    var iKnowThisLosesData = false

    static let environment = ProcessInfo.processInfo.environment

    func validate() throws {
        if let h = idempotencyKeyHours, h < 1 { throw ValidationError("--idempotency-key-hours must be at least 1, got \(h)") }
        if let s = idempotencyLeaseSeconds, s < 1 { throw ValidationError("--idempotency-lease-seconds must be at least 1, got \(s)") }
        if let s = databaseWaitSeconds, s < 0 { throw ValidationError("--database-wait-seconds must be 0 or more, got \(s)") }
    }

    /// How long to wait for PostgreSQL at start (nil = forever).
    func databaseWait() throws -> Duration? {
        var seconds = databaseWaitSeconds
        if seconds == nil, let text = Self.environment["ROUTEPLANE_DATABASE_WAIT_SECONDS"], !text.isEmpty {
            guard let n = Int(text), n >= 0 else { throw ValidationError("ROUTEPLANE_DATABASE_WAIT_SECONDS must be 0 or more, got \(text)") }
            seconds = n
        }
        return (seconds ?? 0) == 0 ? nil : .seconds(seconds!)
    }

    func settings(logger: Logger) throws -> ReliabilitySettings {
        var s = ReliabilitySettings()
        var hours = idempotencyKeyHours
        if hours == nil, let text = Self.environment["ROUTEPLANE_IDEMPOTENCY_KEY_HOURS"], !text.isEmpty {
            guard let n = Int(text), n >= 1 else { throw ValidationError("ROUTEPLANE_IDEMPOTENCY_KEY_HOURS must be at least 1, got \(text)") }
            hours = n
        }
        if let hours { s.idempotencyRetention = .seconds(hours * 3600) }
        var lease = idempotencyLeaseSeconds
        if lease == nil, let text = Self.environment["ROUTEPLANE_IDEMPOTENCY_LEASE_SECONDS"], !text.isEmpty {
            guard let n = Int(text), n >= 1 else { throw ValidationError("ROUTEPLANE_IDEMPOTENCY_LEASE_SECONDS must be at least 1, got \(text)") }
            lease = n
        }
        if let lease { s.idempotencyLease = .seconds(lease) }
        var lose = testLoseWrite
        if lose == nil, let text = Self.environment["ROUTEPLANE_TEST_LOSE_WRITE"], !text.isEmpty {
            guard let n = Int(text), n >= 1 else { throw ValidationError("ROUTEPLANE_TEST_LOSE_WRITE must be at least 1, got \(text)") }
            lose = n
        }
        if let lose {
            let confirmed = iKnowThisLosesData || Self.environment["ROUTEPLANE_TEST_I_KNOW_THIS_LOSES_DATA"] == "yes"
            guard confirmed else {
                throw ValidationError("--test-lose-write loses an acknowledged write on purpose (for the chaos run's own test); "
                                      + "it needs --i-know-this-loses-data (or ROUTEPLANE_TEST_I_KNOW_THIS_LOSES_DATA=yes) too. Never in production.")
            }
            for _ in 0..<3 {
                logger.critical("TEST SWITCH ON: this controller will acknowledge write number \(lose) WITHOUT committing it (--test-lose-write). Never in production.")
            }
            s.lostWrite = LostWriteSwitch(loseWrite: lose)
        }
        return s
    }
}

/// Waits for PostgreSQL at start: tries to migrate (or, with --no-migrate, one `SELECT 1`) with back-off (0.5 s
/// doubling to 5 s), logging what it waits for, until the database answers; then opens the start gate. A refusal that
/// is not about reaching the database (a migration that fails, a checksum that differs) stops the controller at once.
struct DatabaseStartService: Service {
    let store: EventStore
    let migrations: [Migrator.Migration]?
    let gate: StartGate
    let giveUpAfter: Duration?
    let logger: Logger

    func run() async throws {
        let started = ContinuousClock.now
        var delay = Duration.milliseconds(500)
        var attempt = 0
        while !Task.isCancelled {
            attempt += 1
            do {
                if let migrations {
                    _ = try await Migrator(store: store).migrate(migrations)
                } else {
                    _ = try await store.version(tenant: "")
                }
                if attempt > 1 { logger.notice("PostgreSQL answers; migrations applied, starting the API and the background work", metadata: ["attempts": "\(attempt)"]) }
                gate.open()
                return
            } catch let error as EventStoreError where error.isUnavailable {
                let waited = ContinuousClock.now - started
                if let giveUpAfter, waited >= giveUpAfter {
                    logger.critical("PostgreSQL did not answer within --database-wait-seconds; stopping", metadata: ["waited_s": "\(waited.components.seconds)"])
                    throw error
                }
                gate.update(waitingFor: "waiting for PostgreSQL (\(attempt) attempts, \(waited.components.seconds) s)")
                logger.warning("PostgreSQL does not answer yet; the API answers 503 until it does. Retrying",
                               metadata: ["attempt": "\(attempt)", "retry_in_ms": "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)",
                                          "error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}

/// A background service that starts once the start gate opened (the database answered and was migrated).
struct GatedService: Service {
    let gate: StartGate
    let base: any Service

    func run() async throws {
        await cancelWhenGracefulShutdown { await gate.wait() }
        guard gate.waitingFor == nil else { return }
        try await base.run()
    }
}
