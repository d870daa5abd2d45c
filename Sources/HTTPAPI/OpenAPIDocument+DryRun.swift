import Foundation

/// The document's part for dry runs (`dry_run` on the writes of routes, groups, peers and setup keys, and their answer)
/// and the audit export, merged into `paths` and the schemas with one call each.
extension OpenAPIDocument {
    /// The paths whose POST, PUT and DELETE take `dry_run`.
    static let dryRunPaths: Set<String> = ["/api/routes", "/api/routes/{id}", "/api/groups", "/api/groups/{id}", "/api/peers/{id}",
                                           "/api/setup-keys", "/api/setup-keys/{id}", "/api/policies", "/api/policies/{id}"]

    /// `paths` with `dry_run` on every write of `dryRunPaths` (the 200 answer is then a `DryRunAnswer`) and the export path.
    static func withDryRun(_ paths: [String: [String: Any]]) -> [String: [String: Any]] {
        var out = paths
        for path in dryRunPaths {
            guard var item = out[path] else { continue }
            for method in ["post", "put", "delete"] {
                guard var o = item[method] as? [String: Any] else { continue }
                var parameters = o["parameters"] as? [[String: Any]] ?? []
                parameters.append(q("dry_run", boolean,
                                    "true: validate and decide the change exactly as for real (same errors, 412 on a stale If-Match, 403 for a read-only token) "
                                    + "and append nothing; the answer is a DryRunAnswer (the events it would append, the affected peers and their view diffs)"))
                o["parameters"] = parameters
                var responses = o["responses"] as? [String: Any] ?? [:]
                if var ok = responses["200"] as? [String: Any],
                   let content = ok["content"] as? [String: Any], let media = content["application/json"] as? [String: Any],
                   let schema = media["schema"] as? [String: Any] {
                    ok["content"] = ["application/json": ["schema": ["anyOf": [schema, ref("DryRunAnswer")]]]]
                    ok["description"] = "The object (or {} for a delete); with dry_run=true, a DryRunAnswer"
                    responses["200"] = ok
                }
                o["responses"] = responses
                item[method] = o
            }
            out[path] = item
        }
        out["/api/events/audit/export"] = ["get": exportOperation]
        return out
    }

    static var exportOperation: [String: Any] {
        var o = op("The whole audit log (or what the filters select), streamed as NDJSON (one Event per line) or CSV (RFC 4180, a header row, "
                   + "meta and details as JSON text); oldest first unless order=desc; no limit. Resume after a cut with cursor=<the id of the last line or row read>. "
                   + "Read-only tokens may export.", ["description": "The entries, streamed", "content": [
                        "application/x-ndjson": ["schema": string],
                        "text/csv": ["schema": string],
                   ]], query: [
            q("format", ["type": "string", "enum": ["ndjson", "csv"]], "default ndjson"),
            q("cursor", ["type": "string", "pattern": #"^[0-9]{1,18}(-[1-9][0-9]{0,8})?$"#],
              "the id of the last entry read (its event's sequence, <seq>-<n> for an event's further entries): the export continues right after it"),
            q("order", ["type": "string", "enum": ["asc", "desc"]], "default asc (oldest first)"),
            q("start_date", ["type": "string", "format": "date-time"], "entries at or after"),
            q("end_date", ["type": "string", "format": "date-time"], "entries before"),
            q("initiator_id", string, "e.g. token:<id>, setup_key:<id>"),
            q("target_id", string, "id of the route, group, peer, setup key or token"),
            q("activity_code", string, "NetBird activity code, e.g. route.add"),
            q("search", ["type": "string", "maxLength": 200, "pattern": #"^$|^[\s\S]{3,}$"#],
              "text contained in the entry's data (3..200 characters); each batch takes a slot of the account's search share and has the search time limit"),
        ])
        var responses = o["responses"] as? [String: Any] ?? [:]
        responses["422"] = json(ref("Error"), "A parameter breaks a rule; `field` names it (limit is refused: the export has none)")
        responses["429"] = json(ref("Error"), "With search: the account's search share stayed busy for 30 s; see Retry-After")
        o["responses"] = responses
        return o
    }

    static var dryRunSchemas: [String: Any] {
        let viewRouteProperties: [String: Any] = [
            "role": ["type": "string", "enum": ["client", "forward"], "description": "client: the peer installs the route towards via; forward: the peer is its routing peer"],
            "route_id": string, "network_id": string,
            "via": ["type": "string", "description": "client routes: the candidate routing peer"],
            "network_type": ["type": "string", "enum": ["IPv4", "IPv6", "Domain"]], "network": string, "domains": strings,
            "masquerade": boolean, "mesh_ip": string, "metric": ["type": "integer"], "keep_route": boolean, "skip_auto_apply": boolean,
            "draining": boolean,
        ]
        return [
            "DryRunAnswer": ["type": "object", "required": ["dry_run", "base_sequence", "events", "affected_peers", "views"], "properties": [
                "dry_run": ["type": "boolean", "enum": [true]],
                "base_sequence": ["type": "integer", "format": "int64", "description": "the tenant sequence the change was decided against (also X-Routeplane-Sequence)"],
                "events": array(ref("DryRunEvent")),
                "affected_peers": ["type": "array", "items": string, "description": "the peers whose views the projection would recompute"],
                "views": ["type": "array", "items": ref("ViewDiff"), "description": "one per affected peer whose route view would change"],
            ]],
            "DryRunEvent": ["type": "object", "required": ["sequence", "type", "target_id", "data"], "properties": [
                "sequence": ["type": "integer", "format": "int64", "description": "the sequence it would take if appended now"],
                "type": string, "target_id": string, "data": ["type": "object", "description": "the event's payload as it would be stored"],
            ]],
            "ViewDiff": ["type": "object", "required": ["peer_id", "added", "removed", "changed"], "properties": [
                "peer_id": string, "added": array(ref("ViewRoute")), "removed": array(ref("ViewRoute")), "changed": array(ref("ViewRouteChange")),
            ]],
            "ViewRoute": ["type": "object", "required": ["role", "route_id", "network_id", "network_type", "masquerade"], "properties": viewRouteProperties],
            "ViewRouteChange": ["type": "object", "required": ["role", "route_id", "network_id", "fields"], "properties": [
                "role": ["type": "string", "enum": ["client", "forward"]], "route_id": string, "network_id": string, "via": string,
                "fields": array(ref("ViewFieldChange")),
            ]],
            "ViewFieldChange": ["type": "object", "required": ["field", "old", "new"], "properties": [
                "field": string,
                "old": ["nullable": true, "description": "the value before (string, integer, boolean or list of strings); null when absent"],
                "new": ["nullable": true, "description": "the value after; null when absent"],
            ]],
        ]
    }
}
