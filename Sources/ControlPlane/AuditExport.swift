import Foundation
import JSONKit

/// The whole audit log of a tenant (or the part the filters select), as NDJSON or CSV, read in keyset batches of events
/// so memory stays the same whatever the log's length. The filters are `/api/events/audit`'s (`start_date`, `end_date`,
/// `initiator_id`, `target_id`, `activity_code`, `search`, `order`), the order is oldest first unless `order=desc`, and
/// there is no `limit`: a reader stops when it has enough.
///
/// Resuming: every line (NDJSON) and row (CSV) carries the entry's `id` — the event's tenant sequence number, `<seq>-<n>`
/// for an event's further entries. `cursor=<the last id read>` continues right after that entry, also in the middle of
/// an event that reads as several entries (a cut connection loses nothing and repeats nothing).
public struct AuditExport: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case ndjson, csv

        public var contentType: String {
            switch self {
            case .ndjson: "application/x-ndjson"
            case .csv: "text/csv; charset=utf-8"
            }
        }
    }

    public var format: Format
    /// The filters and order; `limit` is the batch size (events per statement).
    var query: AuditQuery
    /// Resume after this entry id (of event `resumeSequence`).
    var resumeAfter: String?
    var resumeSequence: Int64?

    /// Events read per statement: one batch is one statement, one statement budget, one write to the output.
    public static let defaultBatchSize = 1000

    /// The export from its named parameters (`format`, `cursor` and the audit log's filters), each checked; messages name
    /// the parameter.
    public init(_ parameter: (String) -> String?, batchSize: Int = defaultBatchSize) throws(ControlPlaneError) {
        if parameter("limit") != nil {
            throw .validation(field: "limit", message: "the export has no limit: read as far as you need, and resume with cursor=<the last id you read>")
        }
        let formatText = parameter("format") ?? Format.ndjson.rawValue
        guard let format = Format(rawValue: formatText) else {
            throw .validation(field: "format", message: "format must be ndjson or csv, got \(formatText)")
        }
        self.format = format
        query = try AuditQuery { name in
            switch name {
            case "cursor", "limit": nil                      // read here, not as a page's
            case "order": parameter("order") ?? "asc"        // an export reads oldest first by default
            default: parameter(name)
            }
        }
        query.limit = max(1, batchSize)
        if let cursor = parameter("cursor") {
            guard let position = Self.entryPosition(cursor) else {
                throw .validation(field: "cursor", message: "cursor must be the id of the last line or row read (like 42 or 42-1), got \(cursor)")
            }
            resumeSequence = position.sequence
            resumeAfter = cursor
        }
    }

    /// An entry id's event sequence and index within the event (`42` → (42, 0), `42-3` → (42, 3)); nil when malformed.
    static func entryPosition(_ id: String) -> (sequence: Int64, index: Int)? {
        let parts = id.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let sequence = Int64(first), sequence >= 0 else { return nil }
        if parts.count == 1 { return (sequence, 0) }
        guard let index = Int(parts[1]), index >= 1 else { return nil }
        return (sequence, index)
    }

    /// The bytes the output starts with (CSV's header row).
    public var header: [UInt8] {
        format == .csv ? Array((AuditCSV.columns.joined(separator: ",") + "\r\n").utf8) : []
    }

    /// `entries` in the export's format.
    public func render(_ entries: [AuditEntry]) -> [UInt8] {
        switch format {
        case .ndjson:
            let encoder = AuditCSV.encoder()
            var out: [UInt8] = []
            for entry in entries {
                out += Array((try? encoder.encode(entry)) ?? Data("{}".utf8))
                out.append(UInt8(ascii: "\n"))
            }
            return out
        case .csv:
            return AuditCSV.rows(entries)
        }
    }
}

/// Reads an export batch by batch (a keyset on the tenant sequence: each batch continues after the last event of the one
/// before, so concurrent appends never shift or repeat entries).
public struct AuditExportReader: Sendable {
    public let tenant: String
    public let export: AuditExport
    /// The last event read (the keyset).
    private var after: Int64?
    private var first = true
    public private(set) var finished = false
    /// Entries handed out so far; the id of the last one (where a resumed export would continue).
    public private(set) var entries = 0
    public private(set) var lastID: String?

    public init(tenant: String, export: AuditExport) {
        self.tenant = tenant
        self.export = export
    }

    /// The next batch's entries (possibly none, when entry-level filters drop a whole batch), or nil at the end.
    public mutating func next(_ controlPlane: ControlPlane) async throws -> [AuditEntry]? {
        if finished { return nil }
        var query = export.query
        let ascending = query.ascending
        if first, let resume = export.resumeSequence {
            // The resumed event itself is read again: entries of it after the cursor are still due.
            query.parameters.append(String(resume))
            query.conditions.append(ascending ? "seq >= $\(query.parameters.count + 1)" : "seq <= $\(query.parameters.count + 1)")
        } else if let after {
            query.parameters.append(String(after))
            query.conditions.append(ascending ? "seq > $\(query.parameters.count + 1)" : "seq < $\(query.parameters.count + 1)")
        }
        let page = try await controlPlane.audit(tenant: tenant, query)
        var batch = page.entries
        if first, let resume = export.resumeSequence, let cursor = export.resumeAfter {
            // The resumed event's entries come first; drop those up to and including the cursor.
            let ofEvent = batch.prefix { AuditExport.entryPosition($0.id)?.sequence == resume }
            let drop = ofEvent.firstIndex { $0.id == cursor }.map { $0 + 1 } ?? ofEvent.count
            batch.removeFirst(drop)
        }
        first = false
        if let next = page.nextCursor, let n = Int64(next) { after = n } else { finished = true }
        entries += batch.count
        if let last = batch.last { lastID = last.id }
        return batch
    }
}

/// The CSV form of audit entries (RFC 4180: comma-separated, CRLF line ends, a field with a comma, quote, CR or LF
/// enclosed in double quotes with its quotes doubled). `meta` and `details` are JSON text in one field each.
public enum AuditCSV {
    public static let columns = ["id", "timestamp", "activity_code", "activity", "initiator_id", "initiator_name",
                                 "initiator_email", "target_id", "request_id", "meta", "details"]

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    static func rows(_ entries: [AuditEntry]) -> [UInt8] {
        let encoder = encoder()
        func json<T: Encodable>(_ value: T) -> String {
            String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
        }
        var out = ""
        for e in entries {
            let fields = [e.id, e.timestamp, e.activity_code, e.activity, e.initiator_id, e.initiator_name, e.initiator_email,
                          e.target_id, e.request_id ?? "", json(e.meta), json(e.details)]
            out += fields.map(field).joined(separator: ",")
            out += "\r\n"
        }
        return Array(out.utf8)
    }

    /// One field, quoted when it must be.
    public static func field(_ value: String) -> String {
        let mustQuote = value.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 13 || $0 == 10 }
        guard mustQuote else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
