import ArgumentParser
import CommandSupport
import ControlPlane
import EventStore
import Foundation

/// `routeplane history export`: a tenant's audit log to stdout as NDJSON or CSV, the API's export without a token
/// (`GET /api/events/audit/export`, same filters, same lines and rows, same cursor). Reads keyset batches of events, so
/// memory does not grow with the log; `--stats` reports on stderr what it wrote, how fast, and its peak resident set.
struct HistoryExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a tenant's audit log to stdout (NDJSON or CSV), oldest first, resumable with --cursor.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tenant id (from `routeplane tenants create`).") var tenant: String
    @Option(help: "ndjson (one entry per line) or csv (RFC 4180, with a header row).") var format = "ndjson"
    @Option(help: "The id of the last entry already read (its line's or row's id): continue right after it.") var cursor: String?
    @Option(help: "asc (oldest first) or desc.") var order = "asc"
    @Option(help: "Entries at or after this ISO 8601 time.") var startDate: String?
    @Option(help: "Entries before this ISO 8601 time.") var endDate: String?
    @Option(help: "Only this initiator (token:<id>, setup_key:<id>, cli).") var initiatorId: String?
    @Option(help: "Only this object (route, group, peer, setup key or token id).") var targetId: String?
    @Option(help: "Only this NetBird activity code (route.add, peer.group.add, ...).") var activityCode: String?
    @Option(help: "Only entries whose data contains this text (3..200 characters).") var search: String?
    @Option(help: "Events read per statement.") var batchSize = AuditExport.defaultBatchSize
    @Flag(help: "On stderr at the end: entries, events per second, peak resident set (VmHWM).") var stats = false

    func run() async throws {
        let parameters: [String: String?] = [
            "format": format, "cursor": cursor, "order": order, "start_date": startDate, "end_date": endDate,
            "initiator_id": initiatorId, "target_id": targetId, "activity_code": activityCode, "search": search,
        ]
        let export: AuditExport
        do {
            export = try AuditExport({ parameters[$0] ?? nil }, batchSize: batchSize)
        } catch {
            throw ValidationError("--\(error.field?.replacingOccurrences(of: "_", with: "-") ?? "option"): \(error.message)")
        }
        let store = try database.makeStore(maxConnections: 2)
        let controlPlane = ControlPlane(store: store)
        let output = FileHandle.standardOutput
        let start = ContinuousClock.now
        var reader = AuditExportReader(tenant: tenant, export: export)
        do {
            output.write(Data(export.header))
            while let entries = try await reader.next(controlPlane) {
                if !entries.isEmpty { output.write(Data(export.render(entries))) }
            }
        } catch {
            await store.shutdown()
            FileHandle.standardError.write(Data("export stopped after \(reader.entries) entries (last id \(reader.lastID ?? "none")): \(error); resume with --cursor \(reader.lastID ?? "<none>")\n".utf8))
            throw ExitCode.failure
        }
        await store.shutdown()
        if stats {
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            FileHandle.standardError.write(Data(("export: entries=\(reader.entries) seconds=\(String(format: "%.3f", seconds)) "
                + "entries_per_second=\(Int(Double(reader.entries) / max(seconds, 0.001))) peak_rss_bytes=\(Self.peakRSS() ?? 0)\n").utf8))
        }
    }

    /// VmHWM of this process, bytes.
    static func peakRSS() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}
