// What ops/fuzz-api (schemathesis) relies on, checked without it: a known path asked with a method it does not serve
// answers 405 with Allow (an unknown path stays 404), and the document links each create to its get/put/delete.
import Foundation
import HTTPAPI
import HTTPTypes
import Testing
import TestSupport

@Suite("OpenAPI conformance the fuzzer relies on", .timeLimit(.minutes(10)), .serialized)
struct OpenAPIConformanceTests {
    @Test("a known path with a method it does not serve answers 405 naming the allowed methods; an unknown path 404")
    func methodNotAllowed() async throws {
        #expect(OpenAPIDocument.methods(servingPath: "/api/routes") == ["GET", "POST"])
        #expect(OpenAPIDocument.methods(servingPath: "/api/routes/abc") == ["DELETE", "GET", "PUT"])
        #expect(OpenAPIDocument.methods(servingPath: "/api/routes/abc/x").isEmpty)
        try await LiveAPI.run { api in
            let t = try await api.tenant("fuzz-405")
            let wrong = try await api.send(.patch, "/api/routes", token: t.token)
            #expect(wrong.status == 405, "\(wrong.text)")
            #expect(wrong.headers[.allow] == "GET, POST")
            #expect(wrong.object["code"] as? Int == 405)
            let item = try await api.send(.post, "/api/groups/some-id", token: t.token, json: ["name": "x"])
            #expect(item.status == 405 && item.headers[.allow] == "DELETE, GET, PUT", "\(item.text)")
            #expect(try await api.send(.get, "/api/nothing-here", token: t.token).status == 404)
        }
    }

    @Test("each create links to the get, put and delete of what it made, by the answer's id")
    func createLinks() throws {
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? [String: Any])
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        for (collection, item) in [("/api/routes", "/api/routes/{id}"), ("/api/groups", "/api/groups/{id}"), ("/api/setup-keys", "/api/setup-keys/{id}")] {
            let post = try #require(paths[collection]?["post"] as? [String: Any])
            let ok = try #require((post["responses"] as? [String: Any])?["200"] as? [String: Any])
            let links = try #require(ok["links"] as? [String: [String: Any]], "\(collection)")
            let pointer = "#/paths/" + item.replacingOccurrences(of: "/", with: "~1")
            #expect(Set(links.values.compactMap { $0["operationRef"] as? String }) == [pointer + "/get", pointer + "/put", pointer + "/delete"])
            for link in links.values { #expect(link["parameters"] as? [String: String] == ["id": "$response.body#/id"]) }
        }
    }
}
