import CommandSupport
import ArgumentParser
import PostgresClient
import EventStore
import Foundation
import Projections
import RouteModel
import Synchronization

/// `routeplane projections …`: run, rebuild, verify and inspect the projections.
struct ProjectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections",
        abstract: "Per-peer route views, read models and the outbox: run, rebuild, verify, status.",
        subcommands: [Rebuild.self, Verify.self, Run.self, Status.self]
    )

    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay every event from zero and swap the result in (per tenant, atomically); publish the views that differ.")

        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only this tenant.") var tenant: String?

        func run() async throws {
            let store = try database.makeStore(maxConnections: 3)
            let bar = ProgressPrinter()
            let report = try await ProjectionMaintenance(store: store).rebuild(tenant: tenant) { bar.update($0) }
            bar.finish()
            let seconds = max(projectionSeconds(report.elapsed), 1e-9)
            print("rebuilt \(report.tenants) tenant(s): \(report.events) events in \(String(format: "%.2f", seconds)) s "
                  + "(\(Int(Double(report.events) / seconds)) events/s); \(report.views) views, \(report.readModels) read-model rows; "
                  + "\(report.changedViews) view(s) differed from the stored ones and were published")
            print(String(format: "  phases (overlapping): read+decode+fold %.2f s, views+read models %.2f s, swap SQL %.2f s",
                         projectionSeconds(report.foldTime), projectionSeconds(report.viewTime), projectionSeconds(report.writeTime)))
            for (t, peers) in report.unpublishable.sorted(by: { $0.key < $1.key }) {
                print("tenant \(t): \(peers.count) view(s) repaired but not republished (their stored version is the tenant's head; "
                      + "they go out with the next change): \(peers.prefix(10).map(\.rawValue).joined(separator: ", "))")
            }
            await store.shutdown()
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild in memory and compare with the stored views and read models byte for byte; exit 1 on any difference.")

        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only this tenant.") var tenant: String?
        @Option(help: "Print at most this many differences per tenant.") var limit = 20

        func run() async throws {
            let store = try database.makeStore(maxConnections: 2)
            let results = try await ProjectionMaintenance(store: store).verify(tenant: tenant)
            await store.shutdown()
            var bad = 0
            for r in results {
                let behind = r.head > r.checkpoint ? " (\(r.head - r.checkpoint) event(s) not projected yet)" : ""
                if r.differences.isEmpty {
                    print("ok    \(r.tenant): \(r.views) views, \(r.readModels) read-model rows equal a rebuild up to \(r.checkpoint)\(behind)")
                } else {
                    bad += 1
                    print("DIFF  \(r.tenant): \(r.differences.count) difference(s) at checkpoint \(r.checkpoint)\(behind)")
                    for d in r.differences.prefix(limit) { print("  " + d.description.replacingOccurrences(of: "\n", with: "\n  ")) }
                    if r.differences.count > limit { print("  … \(r.differences.count - limit) more") }
                }
            }
            print(bad == 0 ? "verify: \(results.count) tenant(s), no difference" : "verify: \(bad) of \(results.count) tenant(s) differ")
            if bad > 0 { throw ExitCode(1) }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the projection runner alone (serve runs it too); stop with Ctrl-C (an interrupted batch rolls back).")

        @OptionGroup var database: DatabaseOptions
        @Option(help: "Events per batch.") var batchSize = 1_000
        @Option(help: "Tenants processed concurrently.") var workers = 2
        @Option(help: "Seconds between sweeps of tenant_heads against the checkpoints.") var sweepSeconds = 2.0

        func run() async throws {
            let store = try database.makeStore(maxConnections: workers + 2)
            let runner = ProjectionRunner(store: store, configuration: .init(
                batchSize: batchSize, sweepInterval: .milliseconds(Int(sweepSeconds * 1000)), workers: workers))
            await runner.run()
            await store.shutdown()
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Head and checkpoint of every tenant, and the unsent outbox rows.")

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let store = try database.makeStore(maxConnections: 1)
            let rows = try await store.pool.withSession { s in
                try s.query("""
                    SELECT t.tenant_id, coalesce(h.seq, 0) AS head, coalesce(c.seq, 0) AS projected,
                           (SELECT count(*) FROM outbox o WHERE o.tenant_id = t.tenant_id AND o.sent_at IS NULL) AS unsent
                      FROM (SELECT tenant_id FROM tenant_heads UNION SELECT tenant_id FROM projection_checkpoints) t
                      LEFT JOIN tenant_heads h USING (tenant_id) LEFT JOIN projection_checkpoints c USING (tenant_id)
                     ORDER BY 1
                    """)
            }
            await store.shutdown()
            print(pad("tenant", 40) + pad("head", 10) + pad("projected", 11) + "unsent outbox")
            for r in rows {
                print(pad(r.string("tenant_id") ?? "", 40) + pad(r.string("head") ?? "", 10) + pad(r.string("projected") ?? "", 11) + (r.string("unsent") ?? ""))
            }
        }
    }
}

/// Seconds of a duration, as a Double.


/// A progress bar with events/s and ETA on a terminal; a plain line every few seconds otherwise.
final class ProgressPrinter: Sendable {
    private let tty = isatty(STDOUT_FILENO) == 1
    private let last = Mutex<(printed: Double, width: Int)>((-10, 0))

    func update(_ p: ProjectionMaintenance.Progress) {
        let elapsed = projectionSeconds(p.elapsed)
        let done = p.totalEvents > 0 && p.events >= p.totalEvents && p.tenants == p.totalTenants
        let interval = tty ? 0.1 : 2.0
        let shouldPrint = last.withLock { state -> Bool in
            guard done || elapsed - state.printed >= interval else { return false }
            state.printed = elapsed
            return true
        }
        guard shouldPrint else { return }
        let rate = elapsed > 0 ? Double(p.events) / elapsed : 0
        let fraction = p.totalEvents > 0 ? min(1, Double(p.events) / Double(p.totalEvents)) : 1
        let eta = rate > 0 ? Double(p.totalEvents - p.events) / rate : 0
        let figures = "\(p.events)/\(p.totalEvents) events, tenant \(p.tenants)/\(p.totalTenants), \(Int(rate)) events/s, ETA \(String(format: "%.0f", eta)) s"
        if tty {
            let width = 30
            let filled = Int(fraction * Double(width))
            let line = "\r[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] "
                + String(format: "%3.0f%% ", fraction * 100) + figures
            FileHandle.standardOutput.write(Data(line.utf8))
        } else {
            print("rebuild: " + String(format: "%.0f%% ", fraction * 100) + figures)
        }
    }

    func finish() {
        if tty { print("") }
    }
}
