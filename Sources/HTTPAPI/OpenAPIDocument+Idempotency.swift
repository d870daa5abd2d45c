import Foundation

/// The document's part for `Idempotency-Key` (see `IdempotencyGate`): the header on every write an API token makes
/// whose answer can be stored, the replay header on its 200, and what 400/409/422 then also mean. Merged into `paths`
/// with one call.
extension OpenAPIDocument {
    /// Writes whose answer holds a secret shown once: the key is refused there (400), so it is not offered.
    static let writesWithoutIdempotency: Set<String> = ["POST /api/setup-keys", "POST /api/users/{userId}/tokens"]

    static var idempotencyKeyParameter: [String: Any] {
        ["name": "Idempotency-Key", "in": "header", "required": false,
         "schema": ["type": "string", "pattern": #"^[ \t]*[!-~]{1,255}[ \t]*$"#],
         "description": "Makes a retry safe (Stripe's semantics): 1..255 printable ASCII characters without spaces, e.g. a UUID, new for each "
            + "intended change. A retry with the same key and the same method, path, query and body answers the first 2xx again (with "
            + "Idempotent-Replayed: true) and changes nothing; the same key with another request is 422, while the first is still running 409. "
            + "Errors are not stored (a retry runs again). Keys belong to the calling token and are kept 24 h. Ignored with dry_run=true."]
    }

    static func withIdempotency(_ paths: [String: [String: Any]]) -> [String: [String: Any]] {
        var out = paths
        for (path, item) in paths where path.hasPrefix("/api/") && !path.hasPrefix("/api/agent/") {
            var item = item
            for method in ["post", "put", "delete", "patch"] {
                guard var o = item[method] as? [String: Any], !writesWithoutIdempotency.contains("\(method.uppercased()) \(path)") else { continue }
                o["parameters"] = (o["parameters"] as? [[String: Any]] ?? []) + [idempotencyKeyParameter]
                var responses = o["responses"] as? [String: Any] ?? [:]
                if var ok = responses["200"] as? [String: Any] {
                    ok["headers"] = ["Idempotent-Replayed": ["description": "true when this is the stored answer of an earlier request with the same Idempotency-Key",
                                                             "schema": ["type": "string", "enum": ["true"]]]]
                    responses["200"] = ok
                }
                responses["400"] = json(ref("Error"), "Unparseable JSON, a field of the wrong type, or a malformed Idempotency-Key (`field` names it)")
                responses["409"] = json(ref("Error"), "Already exists, still in use, or concurrent change; or a request with the same Idempotency-Key "
                                        + "is still running (`field`: Idempotency-Key; see Retry-After)")
                responses["422"] = json(ref("Error"), "A field breaks a rule (`field` names it); or the Idempotency-Key was used with another request "
                                        + "(`field`: Idempotency-Key)")
                o["responses"] = responses
                item[method] = o
            }
            out[path] = item
        }
        return out
    }
}
