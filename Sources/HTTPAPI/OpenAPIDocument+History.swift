import Foundation

/// The history part of the OpenAPI document: `as_of` on every read of routes, groups and peers (with the
/// `Routeplane-As-Of-Sequence` answer header), a peer's route view, and `GET /api/history/diff`.
extension OpenAPIDocument {
    static let historyPoint = "a tenant sequence number (1 … the last event) or an RFC 3339 time (the last event recorded at or before it); "
        + "422 naming the parameter for anything else, 0, a sequence beyond the last event, a time in the future or before the tenant's first event"

    static var asOfParameter: [String: Any] {
        ["name": "as_of", "in": "query", "required": false, "schema": historyPointSchema,
         "description": "Answer the state as of this point: " + historyPoint]
    }

    /// A point in a tenant's history as JSON Schema can say it: a positive sequence number or an RFC 3339 time.
    /// Whether it lies inside the tenant's history depends on the tenant (422 then, naming the parameter).
    static var historyPointSchema: [String: Any] {
        ["anyOf": [["type": "string", "pattern": "^[1-9][0-9]{0,17}$"], ["type": "string", "format": "date-time"]]]
    }

    static var asOfHeader: [String: Any] {
        ["Routeplane-As-Of-Sequence": ["schema": integer, "description": "with as_of: the tenant sequence the answer is the state of"]]
    }

    /// The reads that take `as_of`.
    static let asOfPaths = ["/api/routes", "/api/routes/{id}", "/api/groups", "/api/groups/{id}", "/api/peers", "/api/peers/{id}", "/api/peers/{id}/view"]

    /// `paths` with the history endpoints, and `as_of` on the reads.
    static func withHistory(_ base: [String: [String: Any]]) -> [String: [String: Any]] {
        var paths = base
        paths["/api/peers/{id}/view"] = [
            "parameters": idParameter,
            "get": op("The peer's route view (what its agent installs and forwards), now or as_of a past point", json(ref("PeerView"))),
        ]
        paths["/api/history/diff"] = ["get": op(
            "What changed between two points: routes, groups and peers added, removed and changed (field by field, old → new), and each peer whose route view differs",
            json(ref("HistoryDiff")),
            query: [q("from", historyPointSchema, "default: the tenant's first event. " + historyPoint),
                   q("to", historyPointSchema, "default: the last event; not before from. " + historyPoint)])]
        for path in asOfPaths {
            guard var item = paths[path], var get = item["get"] as? [String: Any] else { continue }
            get["parameters"] = (get["parameters"] as? [[String: Any]] ?? []) + [asOfParameter]
            if var responses = get["responses"] as? [String: Any], var ok = responses["200"] as? [String: Any] {
                ok["headers"] = asOfHeader
                responses["200"] = ok
                get["responses"] = responses
            }
            item["get"] = get
            paths[path] = item
        }
        return paths
    }

    static var fieldChange: [String: Any] {
        ["type": "object", "required": ["field", "old", "new"], "properties": [
            "field": string,
            "old": ["nullable": true, "description": "the value before (any JSON); null when the field was absent"],
            "new": ["nullable": true, "description": "the value after (any JSON); null when the field is absent"],
        ]]
    }

    /// The schemas of the history answers.
    static var historySchemas: [String: Any] { [
        "PeerView": ["type": "object", "required": ["peer_id", "sequence", "digest", "view"], "properties": [
            "peer_id": string,
            "sequence": ["type": "integer", "format": "int64", "description": "the tenant sequence the view is computed at"],
            "digest": ["type": "string", "description": "SHA-256 (hex) of the view's canonical JSON, as agents verify it"],
            "view": ["type": "object", "description": "ha_sets (routes the peer installs, with their candidate routing peers) and forwards (routes it routes)"],
        ]],
        "ObjectChange": ["type": "object", "required": ["kind", "id", "change", "fields"], "properties": [
            "kind": ["type": "string", "enum": ["route", "group", "peer"]],
            "id": string,
            "change": ["type": "string", "enum": ["added", "removed", "changed"]],
            "fields": ["type": "array", "items": fieldChange,
                       "description": "by field name, as the event log writes the object; every field for added and removed objects"],
        ]],
        "ViewDiff": ["type": "object", "required": ["peer_id", "added", "removed", "changed"], "properties": [
            "peer_id": string,
            "added": ["type": "array", "items": ["type": "object"]],
            "removed": ["type": "array", "items": ["type": "object"]],
            "changed": ["type": "array", "items": ["type": "object"]],
        ]],
        "HistoryDiff": ["type": "object", "required": ["from", "to", "objects", "views"], "properties": [
            "from": ["type": "integer", "format": "int64"], "to": ["type": "integer", "format": "int64"],
            "objects": array(ref("ObjectChange")),
            "views": ["type": "array", "items": ref("ViewDiff"), "description": "the peers whose route view differs, by peer id"],
        ]],
    ] }
}
