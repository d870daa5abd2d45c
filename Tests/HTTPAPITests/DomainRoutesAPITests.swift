import Foundation
import HTTPTypes
import Testing
import TestSupport

/// Domain routes at the API: wildcards are refused (the agent resolves exact names only), exact names pass, and the refusal
/// names its field; the dry run refuses the same way.
@Suite("Domain routes: what the agent cannot honour is refused", .timeLimit(.minutes(10)), .serialized)
struct DomainRoutesAPITests {
    @Test("a wildcard domain: 422 naming domains, on create, update and dry run; exact names are accepted")
    func wildcardRefused() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let g = try await api.group(token, "clients")
            let r = try await api.enroll(token, names: ["r1"])[0]
            let exact: [String: Any] = ["network_id": "web", "domains": ["api.example.com", "WWW.Example.com"], "peer": r, "metric": 100,
                                        "groups": [g], "enabled": true, "masquerade": true, "keep_route": true]
            let created = try await api.send(.post, "/api/routes", token: token, json: exact)
            #expect(created.status == 200, "\(created.text)")
            for domains in [["*.example.com"], ["api.example.com", "*.corp.example.com"], ["*"]] {
                let wild = exact.merging(["network_id": "wild", "domains": domains]) { $1 }
                for (method, path) in [(HTTPRequest.Method.post, "/api/routes"), (.post, "/api/routes?dry_run=true"), (.put, "/api/routes/\(created.id)")] {
                    let refused = try await api.send(method, path, token: token, json: wild)
                    #expect(refused.status == 422, "\(method) \(path) \(domains): \(refused.text)")
                    #expect(refused.object["field"] as? String == "domains")
                    #expect((refused.object["message"] as? String)?.contains("wildcard") == true, "\(refused.text)")
                }
            }
            let list = try await api.send(.get, "/api/routes", token: token)
            #expect(list.text.contains("api.example.com") && !list.text.contains("*."), "nothing with a wildcard was stored")
        }
    }
}
