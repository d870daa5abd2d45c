import ControlPlane
import Hummingbird
import Logging
import RouteModel

/// `?dry_run=true` on the writes of routes, groups, peers, setup keys and policies: the handler builds its decision as for the
/// real call (body decoded and checked by the same code) and hands it here first; a dry run decides it through
/// `CommandWriter.dryRun` (same snapshot, same `If-Match` check, same quotas) and answers the preview, a real call
/// gets nil and goes on to `write`.
///
/// Read-only tokens get 403 on a dry run, as on the real call: the scope is checked by method before any handler runs
/// (`ResourceAccess.requireScope`), and a query parameter never widens what a token may do. A dry run is how an admin
/// checks a change before making it; an auditor reads the state and the history instead.
extension ResourceAccess {
    func dryRun(_ request: Request, _ context: APIRequestContext, ifMatch object: ObjectRef? = nil,
                decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent]) async throws -> Response? {
        guard try request.isDryRun() else { return nil }
        let principal = try context.caller()
        var precondition: (ObjectRef, Int64)?
        if let object, let v = try request.ifMatchVersion() { precondition = (object, v) }
        let preview = try await controlPlane.writer.dryRun(tenant: principal.tenant, ifMatch: precondition, decide: decide)
        controlPlane.logger.debug("dry run", metadata: [
            "tenant": "\(principal.tenant)", "request_id": "\(context.requestID)", "method": "\(request.method)",
            "path": "\(request.uri.path)", "events": "\(preview.events.count)", "affected_peers": "\(preview.affectedPeers.count)",
        ])
        return jsonResponse(preview, sequence: preview.baseSequence)
    }
}

extension Request {
    /// `dry_run=true|false` (also 1/0); absent is false; anything else is 400 naming `dry_run`.
    func isDryRun() throws(APIError) -> Bool {
        guard let value = query("dry_run") else { return false }
        switch value.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw APIError(.badRequest, "dry_run must be true or false, got \(value)", field: "dry_run")
        }
    }
}

/// A write's decision: the events of a command against the snapshot it lands on (what `write` and `dryRun` take).
typealias Decision = @Sendable (TenantSnapshot) throws -> [RouteEvent]
