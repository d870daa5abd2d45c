import ControlPlane
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresClient

/// `GET /api/events/audit/export?format=ndjson|csv`: the tenant's audit log with `/api/events/audit`'s filters, streamed
/// (see `AuditExport`). Read-only tokens may export (it is a read).
///
/// The first batch is read before the answer starts, so a bad filter, a busy pool or a timeout still answers with its
/// status; the rest is read batch by batch while the body is written, each batch one statement under a budget of its
/// own (the request's statement timeout, the search timeout for `search`), never one budget for the whole stream. The
/// writer waits for the client to take each batch (the channel's back-pressure), so memory holds one batch at a time.
/// A failure mid-stream cuts the connection (a chunked body without its last chunk, which clients report as
/// incomplete) and is logged with the request id and the last id written; the client resumes with `cursor=<that id>`.
struct AuditExportController: Sendable {
    let access: ResourceAccess
    let limits: DatabaseLimits
    /// The audit log's search share (`AuditController.searches`): an export with `search` takes a slot per batch.
    let searches: AuditSearchGate

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get(use: export)
    }

    @Sendable func export(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let principal = try context.caller()
        let export = try AuditExport { request.query($0) }
        let hasSearch = request.query("search").map { !$0.isEmpty } ?? false
        let controlPlane = access.controlPlane
        let tenant = principal.tenant
        var reader = AuditExportReader(tenant: tenant, export: export)
        let first = try await batch(&reader, hasSearch: hasSearch, label: "audit export request_id=\(context.requestID)")
        let head = export.header + export.render(first ?? [])
        let logger = controlPlane.logger
        let requestID = context.requestID
        let started = reader
        let body = ResponseBody { [self] writer in
            var reader = started
            try await writer.write(ByteBuffer(bytes: head))
            do {
                while let entries = try await batch(&reader, hasSearch: hasSearch, label: "audit export request_id=\(requestID)") {
                    if !entries.isEmpty { try await writer.write(ByteBuffer(bytes: export.render(entries))) }
                }
            } catch {
                logger.error("audit export cut mid-stream; the client can resume with cursor=<last id>", metadata: [
                    "tenant": "\(tenant)", "request_id": "\(requestID)", "entries_written": "\(reader.entries)",
                    "last_id": "\(reader.lastID ?? "none")", "error": "\(error)"])
                throw error
            }
            try await writer.finish(nil)
            logger.debug("audit export done", metadata: ["tenant": "\(tenant)", "request_id": "\(requestID)", "entries": "\(reader.entries)"])
        }
        let filename = "audit-\(tenant).\(export.format == .csv ? "csv" : "ndjson")"
        return Response(status: .ok, headers: [.contentType: export.format.contentType,
                                               .contentDisposition: "attachment; filename=\"\(filename)\""], body: body)
    }

    /// One batch under a statement budget of its own (and a search slot when the export searches: a busy share is
    /// waited for between batches, not refused mid-stream).
    private func batch(_ reader: inout AuditExportReader, hasSearch: Bool, label: String) async throws -> [AuditEntry]? {
        var budget = limits.budget(label: label)
        if hasSearch { budget.read = min(budget.read, limits.searchTimeout) }
        let controlPlane = access.controlPlane
        var copy = reader
        let result: [AuditEntry]?
        do {
            if hasSearch {
                result = try await searchSlot(tenant: reader.tenant) { try await budget.run { try await copy.next(controlPlane) } }
            } else {
                result = try await budget.run { try await copy.next(controlPlane) }
            }
        } catch let error as PostgresError where error.isStatementTimeout && hasSearch {
            throw APIError(.unavailable, "a batch of the search ran longer than \(limits.searchTimeout) and was stopped; retry later, or "
                           + "narrow it with a longer search text or start_date/end_date", field: "search", retryAfter: 5)
        }
        reader = copy
        return result
    }

    /// Waits (up to 30 s, in 100 ms steps) for a search slot of the tenant's share.
    private func searchSlot<T>(tenant: String, _ body: () async throws -> T) async throws -> T {
        var waited = 0
        while true {
            do {
                return try await searches.run(tenant: tenant, body)
            } catch let error as APIError where error.status == .tooManyRequests && waited < 300 {
                waited += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}
