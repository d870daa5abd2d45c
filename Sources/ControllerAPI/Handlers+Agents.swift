import ControlPlane
import HTTPTypes
import Hummingbird

extension Controller {
    /// `POST /api/agent/nats-credentials` `{"nats_public_key": "U…"}` (agent credential): a fresh user JWT for the
    /// agent's registered key.
    func renewAgentBusCredentials(_ request: Request) async throws -> Response {
        guard case .agent(let tenant, let peer) = try await authenticate(request, as: .peer) else {
            throw APIError(.forbidden, "an agent credential is required", field: "Authorization")
        }
        guard configuration.bus != nil else { throw ControlPlane.noBusCredentials }
        var request = request
        let body = try await request.jsonBody(limit: configuration.maxBodyBytes)
        let key = try body.requiredString("nats_public_key")
        return jsonResponse(try await controlPlane.renewBusCredentials(tenant: tenant, peer: peer, publicKey: key))
    }

    /// `GET /api/events/audit`: see `AuditQuery`. A full page links the next one (`Link`, `X-Next-Cursor`).
    func audit(_ request: Request) async throws -> Response {
        let principal = try await authenticate(request)
        let query = try AuditQuery { request.query($0) }
        let entries = try await controlPlane.audit(tenant: principal.tenant, query)
        var response = jsonResponse(entries)
        if entries.count == query.limit, let last = entries.last {
            response.headers[.nextCursor] = last.id
            var query = request.uri.queryParameters.filter { $0.key != "cursor" }.map { "\($0.key)=\($0.value)" }
            query.append("cursor=\(last.id)")
            response.headers[HTTPField.Name("Link")!] = "</api/events/audit?\(query.joined(separator: "&"))>; rel=\"next\""
        }
        return response
    }
}
