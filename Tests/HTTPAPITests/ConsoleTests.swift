import EventStore
import Foundation
import HTTPTypes
import PostgresClient
import TestSupport
import Testing

/// The web console served by the controller: its page and assets need no credentials, carry a strict
/// Content-Security-Policy and caching headers, and only the current version's assets exist; the API it calls still
/// needs a token. Also the peers' `route_selections` (which routing peer each agent uses), which the console shows.
@Suite("Web console", .timeLimit(.minutes(2)))
struct ConsoleTests {
    @Test("GET / serves the console without credentials: HTML, CSP without inline script, revalidated; its assets are versioned and immutable")
    func pageAndAssets() async throws {
        try await LiveAPI.run { api in
            let page = try await api.send(.get, "/")
            #expect(page.status == 200)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.headers[.cacheControl] == "no-cache")
            let csp = page.headers[.contentSecurityPolicy] ?? ""
            #expect(csp.contains("script-src 'self'") && csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"))
            #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"))
            #expect(page.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            // No inline script: every <script> names a source on this origin, and no on… attributes.
            #expect(!page.text.contains("<script>") && !page.text.contains("onclick") && !page.text.contains("http://") && !page.text.contains("https://"))
            let match = page.text.firstMatch(of: /\/console\/([0-9a-f]{16})\/app\.js/)
            let version = try #require(match.map { String($0.1) }, "the page names its versioned script: \(page.text)")
            #expect(page.etag == "\"\(version)\"")

            let script = try await api.send(.get, "/console/\(version)/app.js")
            #expect(script.status == 200 && script.headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(script.headers[.cacheControl] == "public, max-age=31536000, immutable")
            #expect(script.headers[.contentSecurityPolicy] == csp)
            #expect(script.text.contains("sessionStorage"))
            for file in ["api.js", "ui.js", "routes.js", "pages.js", "audit.js", "history.js", "dryrun.js"] {
                let r = try await api.send(.get, "/console/\(version)/\(file)")
                #expect(r.status == 200 && r.headers[.contentType] == "text/javascript; charset=utf-8", "\(file)")
                // Nothing fetched from elsewhere at run time.
                #expect(!r.text.contains("http://") && !r.text.contains("https://") && !r.text.contains("innerHTML"), "\(file)")
            }
            let css = try await api.send(.get, "/console/\(version)/console.css")
            #expect(css.status == 200 && css.headers[.contentType] == "text/css; charset=utf-8")
            #expect(!css.text.contains("@import") && !css.text.contains("url("))

            // Another version's path, an unknown file: 404 (a stale page reloads instead of mixing versions).
            #expect(try await api.send(.get, "/console/0000000000000000/app.js").status == 404)
            #expect(try await api.send(.get, "/console/\(version)/nope.js").status == 404)
            #expect(try await api.send(.get, "/console/\(version)/..%2Fapp.js").status == 404)

            // Revalidation: the same ETag answers 304 without a body.
            let again = try await api.send(.get, "/", headers: [.ifNoneMatch: "\"\(version)\""])
            #expect(again.status == 304 && again.text.isEmpty)
            #expect(try await api.send(.get, "/", headers: [.ifNoneMatch: "\"other\""]).status == 200)

            // The console is static: the API it calls still answers nothing without a token.
            for path in ["/api/routes", "/api/peers", "/api/groups", "/api/setup-keys", "/api/events/audit", "/api/users"] {
                #expect(try await api.send(.get, path).status == 401, "\(path)")
            }
        }
    }

    @Test("peers carry route_selections from their agent's last status; another tenant's token sees none of them")
    func routeSelections() async throws {
        try await LiveAPI.run { api in
            let (a, tokenA) = try await api.tenant("acme")
            let (_, tokenB) = try await api.tenant("other")
            let peers = try await api.enroll(tokenA, names: ["router-a", "laptop"])
            let status = """
                {"status_version":1,"tenant_id":"\(a)","peer_id":"\(peers[1])","applied_version":7,
                 "selections":[{"network_id":"office","network":"10.0.0.0/24","peer_id":"\(peers[0])","status":"active"},
                               {"broken":true}]}
                """
            _ = try await api.db.store.pool.withSession { s in
                try s.query("INSERT INTO peer_status (tenant_id, peer_id, applied_version, status) VALUES ($1, $2, 7, $3::jsonb)", [a, peers[1], status])
            }
            let list = try await api.send(.get, "/api/peers", token: tokenA)
            let laptop = try #require(list.array.first { $0["id"] as? String == peers[1] })
            let selections = laptop["route_selections"] as? [[String: Any]] ?? []
            #expect(selections.count == 1, "the malformed entry is left out: \(selections)")
            #expect(selections.first?["network_id"] as? String == "office" && selections.first?["peer_id"] as? String == peers[0])
            #expect(selections.first?["status"] as? String == "active" && selections.first?["network"] as? String == "10.0.0.0/24")
            let router = try #require(list.array.first { $0["id"] as? String == peers[0] })
            #expect((router["route_selections"] as? [Any])?.isEmpty == true, "no status: an empty list")
            let one = try await api.send(.get, "/api/peers/\(peers[1])", token: tokenA)
            #expect((one.object["route_selections"] as? [Any])?.count == 1)

            // Tenant isolation: B sees no peer of A, and A's peer is 404 for B.
            #expect(try await api.send(.get, "/api/peers", token: tokenB).array.isEmpty)
            #expect(try await api.send(.get, "/api/peers/\(peers[1])", token: tokenB).status == 404)
        }
    }
}
