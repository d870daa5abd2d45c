import Foundation
import ControlPlane
import RouteModel

/// `GET /api/openapi.json`: the API described for clients and tools (schemathesis, generators).
/// Kept in step with the router by a test that compares its paths and methods with the endpoints
/// the router registers (`APIServer.makeRouter().endpoints`).
public enum OpenAPIDocument {
    public static let bytes: [UInt8] = {
        let data = try! JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
        return Array(data)
    }()

    /// (method, path) pairs the document describes.
    public static var endpoints: [Endpoint] {
        var out: [Endpoint] = []
        for (path, item) in paths {
            for method in item.keys where method != "parameters" { out.append(Endpoint(method: method.uppercased(), path: path)) }
        }
        return out.sorted()
    }

    /// The methods the document (so the router) serves on a concrete path, matching `{…}` templates segment by
    /// segment; empty for an unknown path.
    public static func methods(servingPath path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        var out: Set<String> = []
        for endpoint in endpointsByPath where endpoint.template.count == segments.count {
            if zip(endpoint.template, segments).allSatisfy({ $0.hasPrefix("{") || $0 == $1 }) { out.formUnion(endpoint.methods) }
        }
        return out.sorted()
    }

    private static let endpointsByPath: [(template: [Substring], methods: [String])] =
        Dictionary(grouping: endpoints, by: \.path).map { path, e in
            (template: path.split(separator: "/", omittingEmptySubsequences: false), methods: e.map(\.method))
        }

    static func ref(_ name: String) -> [String: Any] { ["$ref": "#/components/schemas/\(name)"] }
    static func array(_ items: [String: Any]) -> [String: Any] { ["type": "array", "items": items] }
    static var string: [String: Any] { ["type": "string"] }
    static var strings: [String: Any] { array(string) }
    /// A group's, setup key's or peer's name: 1 to `Limits.nameMaxScalars` Unicode scalars (JSON Schema counts code points).
    static var name: [String: Any] { ["type": "string", "minLength": 1, "maxLength": Limits.nameMaxScalars] }
    static var boolean: [String: Any] { ["type": "boolean"] }
    static var integer: [String: Any] { ["type": "integer", "format": "int64"] }

    static func json(_ schema: [String: Any], _ description: String = "OK") -> [String: Any] {
        ["description": description, "content": ["application/json": ["schema": schema]]]
    }

    static func body(_ schema: String) -> [String: Any] {
        ["required": true, "content": ["application/json": ["schema": ref(schema)]]]
    }

    static var errors: [String: Any] { [
        "400": json(ref("Error"), "Unparseable JSON or a field of the wrong type"),
        "401": json(ref("Error"), "Missing, invalid, revoked or expired token (\"token expired at …\"); checked before the body is read"),
        "403": json(ref("Error"), "A read-only token on a write (POST, PUT, DELETE): \"permission denied\"; or a tenant quota is reached (`field` names the kind: peers, routes, groups, setup_keys, tokens, policies)"),
        "404": json(ref("Error"), "Not found (also another tenant's object)"),
        "409": json(ref("Error"), "Already exists, still in use, or concurrent change"),
        "412": json(ref("Error"), "If-Match does not match the object's version"),
        "422": json(ref("Error"), "A field breaks a rule; `field` names it"),
        "503": json(ref("Error"), "Database unavailable, busy (no pool connection within the wait) or too slow (statement timeout), or the controller shutting down; see Retry-After"),
    ] }

    static func op(_ summary: String, _ ok: [String: Any], body: String? = nil, query: [[String: Any]] = [], ifMatch: Bool = false) -> [String: Any] {
        var responses = errors
        responses["200"] = ok
        var o: [String: Any] = ["summary": summary, "responses": responses]
        var parameters = query
        if ifMatch {
            parameters.append(["name": "If-Match", "in": "header", "required": false,
                               "schema": ["type": "string", "pattern": #"^[ \t]*(\*|(W/)?"?[0-9]{1,18}"?)?[ \t]*$"#],
                               "description": "ETag of the version the change was based on; 412 when the object moved on"])
        }
        if !parameters.isEmpty { o["parameters"] = parameters }
        if let body { o["requestBody"] = Self.body(body) }
        return o
    }

    /// A create operation whose 200 answer links (by `$response.body#/id`) to the item path's get, put and delete,
    /// so clients and schemathesis's stateful phase go from a create to what it made.
    static func linked(_ o: [String: Any], item path: String) -> [String: Any] {
        var o = o
        var responses = o["responses"] as? [String: Any] ?? [:]
        var ok = responses["200"] as? [String: Any] ?? [:]
        let pointer = "#/paths/" + path.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
        var links: [String: Any] = [:]
        for (name, method) in [("Get", "get"), ("Replace", "put"), ("Delete", "delete")] {
            links[name] = ["operationRef": "\(pointer)/\(method)", "parameters": ["id": "$response.body#/id"]]
        }
        ok["links"] = links
        responses["200"] = ok
        o["responses"] = responses
        return o
    }

    /// Request bodies (…Request, …Update) decode a null field as an absent one (Go's zero value in NetBird, or
    /// "unchanged"): their optional properties say `nullable`, and an enum among them lists null.
    static func requestsTakingNull(_ schemas: [String: Any]) -> [String: Any] {
        var out = schemas
        for (name, value) in schemas where name.hasSuffix("Request") || name.hasSuffix("Update") {
            guard var schema = value as? [String: Any], var properties = schema["properties"] as? [String: Any] else { continue }
            let required = Set(schema["required"] as? [String] ?? [])
            for (field, p) in properties where !required.contains(field) {
                guard var property = p as? [String: Any], property["$ref"] == nil else { continue }
                property["nullable"] = true
                if let values = property["enum"] as? [Any] { property["enum"] = values + [NSNull()] }
                properties[field] = property
            }
            schema["properties"] = properties
            out[name] = schema
        }
        return out
    }

    static var idParameter: [[String: Any]] { [["name": "id", "in": "path", "required": true, "schema": string]] }
    static var userParameter: [[String: Any]] { [["name": "userId", "in": "path", "required": true, "schema": string,
                                                  "description": "the tenant's service user: the tenant id (GET /api/users); any other answers 404"]] }

    static func q(_ name: String, _ schema: [String: Any], _ description: String) -> [String: Any] {
        ["name": name, "in": "query", "required": false, "schema": schema, "description": description]
    }

    static var paths: [String: [String: Any]] { withIdempotency(withHistory(withDryRun(([
        "/healthz": ["get": ["summary": "Dependencies (database, projections, NATS): ok or degraded, no details", "security": [],
                                "responses": ["200": json(ref("Health"), "Serving; `status` ok or degraded"),
                                              "503": json(ref("Health"), "The database does not answer, or the controller is starting (status starting: `waiting_for` says what for); see Retry-After")]]],
        "/metrics": ["get": ["summary": "Prometheus metrics", "security": [], "responses": ["200": ["description": "Prometheus text format", "content": ["text/plain": ["schema": string]]]]]],
        "/api/openapi.json": ["get": ["summary": "This document", "security": [], "responses": ["200": json(["type": "object"])]]],
        "/api/routes": [
            "get": op("List routes, in creation order", json(array(ref("Route")))),
            "post": linked(op("Create a route", json(ref("Route")), body: "RouteRequest"), item: "/api/routes/{id}"),
        ],
        "/api/routes/{id}": [
            "parameters": idParameter,
            "get": op("Get a route", json(ref("Route"))),
            "put": op("Replace a route (every field)", json(ref("Route")), body: "RouteRequest", ifMatch: true),
            "delete": op("Delete a route", json(["type": "object"]), ifMatch: true),
        ],
        "/api/groups": [
            "get": op("List groups, the built-in \"All\" first, then in creation order", json(array(ref("Group"))), query: [
                q("name", string, "exact, case-sensitive name: a list of that one group, or 404 \"group: <name> not found\""),
            ]),
            "post": linked(op("Create a group", json(ref("Group")), body: "GroupRequest"), item: "/api/groups/{id}"),
        ],
        "/api/groups/{id}": [
            "parameters": idParameter,
            "get": op("Get a group", json(ref("Group"))),
            "put": op("Replace a group's name and peers (422 for the built-in \"All\")", json(ref("Group")), body: "GroupRequest", ifMatch: true),
            "delete": op("Delete a group (400 for \"All\" and while a route, a policy or a setup key's auto_groups use it)", json(["type": "object"]), ifMatch: true),
        ],
        "/api/peers": ["get": op("List peers, in creation order", json(array(ref("Peer"))), query: [
            q("name", string, "peers whose name contains this (ASCII case-insensitive); no match is an empty list"),
            q("ip", string, "peers whose mesh IP contains this"),
        ])],
        "/api/peers/{id}": [
            "parameters": idParameter,
            "get": op("Get a peer", json(ref("Peer"))),
            "put": op("Rename a peer and/or set its drain mode", json(ref("Peer")), body: "PeerRequest", ifMatch: true),
            "delete": op("Remove a peer; routes it was the single routing peer of stay, disabled and with peer \"\"", json(["type": "object"]), ifMatch: true),
        ],
        "/api/setup-keys": [
            "get": op("List setup keys", json(array(ref("SetupKey")))),
            "post": linked(op("Create a setup key (the key is answered once)", json(ref("SetupKey")), body: "SetupKeyRequest"), item: "/api/setup-keys/{id}"),
        ],
        "/api/setup-keys/{id}": [
            "parameters": idParameter,
            "get": op("Get a setup key", json(ref("SetupKey"))),
            "put": op("Revoke a setup key or change its auto groups", json(ref("SetupKey")), body: "SetupKeyUpdate", ifMatch: true),
            "delete": op("Delete a setup key", json(["type": "object"]), ifMatch: true),
        ],
        "/api/agent/enroll": ["post": [
            "summary": "Enroll a peer with a setup key", "security": [], "requestBody": body("EnrollRequest"),
            "responses": ["201": json(ref("Enrollment"), "Enrolled"),
                          "400": json(ref("Error"), "Unparseable JSON or a field of the wrong type"),
                          "403": json(ref("Error"), "Setup key invalid, revoked, expired or used up, or the tenant's peer quota is reached (field peers)"),
                          "409": json(ref("Error"), "ip, nats_public_key or wireguard_public_key is taken by another peer"),
                          "412": json(ref("Error"), "The tenant's mesh range has no free address"),
                          "422": json(ref("Error"), "A field breaks a rule (ip outside the tenant's mesh range, name or os too long, a malformed wireguard_public_key or wireguard_endpoints entry)"),
                          "429": json(ref("Error"), "Too many enrollments from this address or with this setup key; see Retry-After (seconds)"),
                          "503": json(ref("Error"), "Database unavailable, busy or too slow, or the controller shutting down; see Retry-After")],
        ]],
        "/api/agent/nats-credentials": ["post": [
            "summary": "A fresh NATS user JWT for the calling agent's registered key (agent credential); registers the key once for agents enrolled without one",
            "requestBody": body("AgentBusCredentialsRequest"),
            "responses": ["200": json(ref("AgentBusCredentials")), "400": json(ref("Error"), "Unparseable JSON or a field of the wrong type"),
                          "401": json(ref("Error"), "Not an agent credential"),
                          "403": json(ref("Error"), "The peer's NATS user is revoked"), "404": json(ref("Error"), "The controller issues no NATS credentials"),
                          "409": json(ref("Error"), "Another key is registered for this peer, or this key for another peer"),
                          "422": json(ref("Error"), "nats_public_key is not a user nkey")],
        ]],
        "/api/agent/view": ["get": [
            "summary": "The calling agent's current route view (agent credential)",
            "responses": ["200": json(ref("AgentView")), "401": json(ref("Error"), "Not an agent credential"), "404": json(ref("Error"), "No view yet")],
        ]],
        "/api/users": ["get": op("The tenant's one service user (its id is the tenant id; every API token is its token)", json(array(ref("User"))), query: [
            q("service_user", boolean, "NetBird's filter: true lists the service user, false nothing"),
        ])],
        "/api/users/{userId}/tokens": [
            "parameters": userParameter,
            "get": op("List the tenant's API tokens (never their secrets), in creation order", json(array(ref("PersonalAccessToken")))),
            "post": {
                var o = op("Create an API token: the secret is answered once, as plain_token", json(ref("PersonalAccessTokenGenerated")),
                           body: "PersonalAccessTokenRequest")
                var responses = o["responses"] as? [String: Any] ?? [:]
                var ok = responses["200"] as? [String: Any] ?? [:]
                let token = ["userId": "$request.path.userId", "tokenId": "$response.body#/personal_access_token/id"]
                ok["links"] = [
                    "GetToken": ["operationRef": "#/paths/~1api~1users~1{userId}~1tokens~1{tokenId}/get", "parameters": token],
                    "DeleteToken": ["operationRef": "#/paths/~1api~1users~1{userId}~1tokens~1{tokenId}/delete", "parameters": token],
                ]
                responses["200"] = ok
                o["responses"] = responses
                return o
            }(),
        ],
        "/api/users/{userId}/tokens/{tokenId}": [
            "parameters": userParameter + [["name": "tokenId", "in": "path", "required": true, "schema": string]],
            "get": op("Get an API token (never its secret)", json(ref("PersonalAccessToken"))),
            "delete": op("Delete (revoke) an API token, the calling one included: it answers 401 from the next request on", json(["type": "object"]), ifMatch: true),
        ],
        "/api/events": ["get": op("NetBird's event list: the newest 10 000 audit entries, newest first, no parameters", json(array(ref("Event"))))],
        "/api/events/audit": ["get": op("The audit log, newest first, keyset pages", json(array(ref("Event"))), query: [
            q("limit", ["type": "integer", "format": "int64", "minimum": 1, "maximum": 1000], "1..1000 events per page, default 100 (an event that reads as several entries is never split, so a page may hold more entries)"),
            q("cursor", ["type": "string", "pattern": #"^$|^[0-9]{1,18}(-[0-9]{1,9})?$"#],
              "id of the last entry of the previous page (also in X-Next-Cursor and Link); empty = the first page"),
            q("order", ["type": "string", "enum": ["desc", "asc"]], "default desc"),
            q("start_date", ["type": "string", "format": "date-time"], "entries at or after"),
            q("end_date", ["type": "string", "format": "date-time"], "entries before"),
            q("initiator_id", string, "e.g. token:<id>, setup_key:<id>"),
            q("target_id", string, "id of the route, group, peer, setup key or token"),
            q("activity_code", ["type": "string", "enum": [""] + AuditLog.activityCodes], "NetBird activity code, e.g. route.add; empty = every code"),
            q("search", ["type": "string", "maxLength": 200, "pattern": #"^$|^[\s\S]{3,}$"#],
              "text contained in the entry's data (3..200 characters, empty = no search; served by a trigram index; a few run at once per account: 429 with Retry-After "
              + "beyond that; a search cut by its time limit answers 503 naming `search`)"),
        ]).merging(["responses": Self.errors.merging(["200": json(array(ref("Event"))),
                                                       "429": json(ref("Error"), "Too many audit searches at once for this account; see Retry-After")]) { $1 }]) { $1 }],
    ] as [String: [String: Any]]).merging(policyPaths) { mine, _ in mine }))) }

    static var document: [String: Any] { [
        "openapi": "3.0.3",
        "info": ["title": "Routeplane controller API", "version": "1.0.0",
                 "description": "NetBird-compatible management API for network routes, groups, peers, setup keys and the audit log."],
        "servers": [["url": "/"]],
        "security": [["TokenAuth": []]],
        "paths": paths,
        "components": [
            "securitySchemes": ["TokenAuth": ["type": "apiKey", "in": "header", "name": "Authorization",
                                              "description": "\"Token <token>\" (from `routeplane tokens create` or POST /api/users/{userId}/tokens)"]],
            "schemas": requestsTakingNull(([
                "Error": ["type": "object", "required": ["message", "code"],
                          "properties": ["message": string, "code": ["type": "integer"], "field": string]],
                "Health": ["type": "object", "required": ["status", "checks"], "properties": [
                    "status": ["type": "string", "enum": ["ok", "degraded", "unavailable", "starting"]],
                    "checks": ["type": "object", "additionalProperties": ["type": "string", "enum": ["ok", "degraded", "starting"]]],
                    "waiting_for": ["type": "string", "description": "while starting: what the controller waits for (e.g. PostgreSQL)"]]],
                "RouteRequest": ["type": "object", "description": "absent or null fields take Go's zero values as in NetBird (false, 0, \"\", no groups); network_type is ignored (derived)",
                                 "properties": [
                    "network_id": ["type": "string", "minLength": 1, "maxLength": 40], "description": string,
                    "network": ["type": "string", "pattern": #"^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$|^[0-9a-fA-F:.]{2,45}/[0-9]{1,3}$"#,
                                "description": "CIDR (IPv4 or IPv6); exclusive with domains"],
                    "domains": ["type": "array", "items": ["type": "string", "pattern": "^[^*]"], "maxItems": 32,
                                "description": "exact names: letters, digits, hyphens, underscores; answered as written. Wildcards (*.example.com) are refused (422, field domains): the agent resolves exact names with the system resolver and installs one host route per address"],
                    "network_type": ["type": "string", "description": "ignored"],
                    "peer": ["type": "string", "description": "routing peer; exclusive with peer_groups"],
                    "peer_groups": ["type": "array", "items": string, "description": "[] = no routing peer"],
                    "metric": ["type": "integer", "minimum": 1, "maximum": 9999], "masquerade": boolean, "groups": strings,
                    "enabled": boolean,
                    "keep_route": ["type": "boolean", "description": "the route stays when the agent exits; for domains, addresses of earlier answers stay routed"],
                    "skip_auto_apply": ["type": "boolean", "description": "offered to clients, installed only once selected there (routeplane agent routes select); exit nodes (0.0.0.0/0, ::/0) always wait for a select, at most one at a time"],
                    "access_control_groups": ["type": "array", "items": string,
                                              "description": "destination groups of policies (/api/policies): when set, the routing peers forward to the range only what a policy allows; empty = open to the distribution groups"],
                ]],
                "Route": ["type": "object", "required": ["id", "network_id", "description", "network_type", "network", "domains", "peer", "metric",
                                                         "masquerade", "groups", "enabled", "keep_route", "skip_auto_apply"],
                          "properties": [
                    "id": string, "network_id": string, "description": string, "network_type": ["type": "string", "enum": ["IPv4", "IPv6", "Domain"]],
                    "network": ["type": "string", "description": "192.0.2.0/32 (NetBird's placeholder) for a domain route"],
                    "domains": ["type": "array", "items": string, "nullable": true, "description": "as written; null for a network route"],
                    "peer": ["type": "string", "description": "\"\" when the route has peer_groups or no routing peer"],
                    "peer_groups": strings, "metric": ["type": "integer"],
                    "masquerade": boolean, "groups": strings, "enabled": boolean, "keep_route": boolean,
                    "access_control_groups": strings, "skip_auto_apply": boolean,
                    "skipped_routing_peers": ["type": "array", "description": "Routeplane: members of peer_groups that cannot route (not Linux); they forward nothing",
                                              "items": ["type": "object", "properties": ["id": string, "name": string, "os": string]]],
                ]],
                "GroupRequest": ["type": "object", "required": ["name"], "properties": ["name": name, "peers": strings]],
                "PeerMinimum": ["type": "object", "properties": ["id": string, "name": string]],
                "Group": ["type": "object", "required": ["id", "name", "peers_count", "resources_count", "peers", "resources"], "properties": [
                    "id": string, "name": string, "peers_count": ["type": "integer"], "resources_count": ["type": "integer"],
                    "issued": string, "peers": array(ref("PeerMinimum")), "resources": strings,
                ]],
                "GroupMinimum": ["type": "object", "properties": ["id": string, "name": string, "peers_count": ["type": "integer"]]],
                "PeerRequest": ["type": "object", "required": ["name"], "properties": [
                    "name": name, "ssh_enabled": boolean, "login_expiration_enabled": boolean,
                    "draining": ["type": "boolean", "description": "operator drain mode of a routing peer: clients choose it only when no other candidate is up; absent = unchanged"],
                ]],
                "Peer": ["type": "object", "required": [
                    "id", "name", "city_name", "connected", "connection_ip", "country_code", "created_at", "dns_label", "geoname_id", "groups",
                    "hostname", "ip", "kernel_version", "last_login", "last_seen", "login_expiration_enabled", "login_expired",
                    "inactivity_expiration_enabled", "os", "ssh_enabled", "user_id", "version", "ui_version", "approval_required",
                    "serial_number", "extra_dns_labels", "ephemeral", "accessible_peers_count",
                ], "properties": [
                    "id": string, "name": string, "created_at": ["type": "string", "format": "date-time"], "ip": string, "connection_ip": string,
                    "connected": boolean, "last_seen": ["type": "string", "format": "date-time"],
                    "os": string, "kernel_version": string, "geoname_id": ["type": "integer"], "version": string, "hostname": string,
                    "ui_version": string, "dns_label": string, "groups": array(ref("GroupMinimum")), "user_id": string,
                    "ssh_enabled": boolean, "login_expiration_enabled": boolean, "login_expired": boolean, "approval_required": boolean,
                    "last_login": ["type": "string", "format": "date-time"], "inactivity_expiration_enabled": boolean,
                    "country_code": string, "city_name": string, "serial_number": string, "extra_dns_labels": strings, "ephemeral": boolean,
                    "accessible_peers_count": ["type": "integer"], "applied_view_version": integer,
                    "draining": ["type": "boolean", "description": "operator drain mode (Routeplane)"],
                    "shadowed_routes": ["type": "array", "items": ref("ShadowedRoute"),
                                        "description": "Routeplane: HA sets the peer's agent does not install because the HA set of another network id with the same destination is installed instead (from its last status message; empty when none or not reported)"],
                    "route_selections": ["type": "array", "items": ref("RouteSelection"),
                                         "description": "Routeplane: the routing peer the peer's agent uses now for each HA set of its view (from its last status message; empty when not reported)"],
                ]],
                "RouteSelection": ["type": "object", "required": ["network_id", "network", "peer_id", "status"], "properties": [
                    "network_id": string, "network": ["type": "string", "description": "the HA set's range, or its domains"],
                    "peer_id": ["type": "string", "description": "the routing peer in use"],
                    "status": ["type": "string", "description": "active, or allDown (every candidate down: kept on the last choice)"],
                ]],
                "ShadowedRoute": ["type": "object", "required": ["network_id", "route_ids", "shadowed_by_network_id"], "properties": [
                    "network_id": string, "network": string, "domains": strings,
                    "route_ids": ["type": "array", "items": string, "description": "the routes of the shadowed HA set"],
                    "shadowed_by_network_id": ["type": "string", "description": "the network id of the HA set installed instead"],
                    "shadowed_by_route_id": ["type": "string", "description": "the route whose routing peer that HA set uses now"],
                ]],
                "SetupKeyRequest": ["type": "object", "required": ["name", "type"], "properties": [
                    "name": name, "type": ["type": "string", "enum": ["reusable", "one-off"]],
                    "expires_in": ["type": "integer", "minimum": 0, "maximum": 31_536_000,
                                   "description": "seconds; absent = 30 days (2592000), 0 = never expires"], "auto_groups": strings,
                    "usage_limit": ["type": "integer", "format": "int64", "minimum": 0, "maximum": Int64.max, "description": "0 = unlimited; a one-off key takes 0 or 1 (stored as 1)"],
                    "ephemeral": ["type": "boolean", "description": "stored and answered; peers enrolled with the key are not yet removed after inactivity"],
                ]],
                "SetupKeyUpdate": ["type": "object", "required": ["auto_groups"], "properties": [
                    "revoked": ["type": "boolean", "nullable": true, "description": "absent or null = false; a revoked key cannot be un-revoked"], "auto_groups": strings]],
                "SetupKey": ["type": "object", "properties": [
                    "id": string, "key": ["type": "string", "description": "the whole key only in the creation answer; then its first 5 characters and ****"],
                    "name": string, "expires": string, "type": string, "valid": boolean, "revoked": boolean,
                    "used_times": ["type": "integer"], "last_used": string, "state": ["type": "string", "enum": ["valid", "revoked", "expired", "overused"]],
                    "auto_groups": strings, "updated_at": ["type": "string", "format": "date-time", "description": "time of the last revoke or auto-group change (creation time before any)"],
                    "usage_limit": ["type": "integer"], "ephemeral": boolean, "allow_extra_dns_labels": boolean,
                ]],
                "EnrollRequest": ["type": "object", "required": ["setup_key", "name", "os"], "properties": [
                    "setup_key": ["type": "string", "maxLength": 256], "name": ["type": "string", "minLength": 1, "maxLength": 255],
                    "os": ["type": "string", "minLength": 1, "maxLength": 64, "description": "stored lower-case; routing peers must be linux"],
                    "ip": ["type": "string", "maxLength": 64,
                           "description": "mesh IP the peer has: a free host address of the tenant's mesh range (default 100.64.0.0/10); the lowest free one is allocated when absent"],
                    "nats_public_key": ["type": "string", "pattern": "^U[A-Z2-7]{55}$",
                                        "description": "the agent's own NATS user nkey (U…, with its checksum); its seed never leaves the agent"],
                    "wireguard_public_key": ["type": "string", "pattern": "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$",
                                             "description": "the agent's WireGuard public key (base64 of 32 bytes); its private key never leaves the agent; unique in the tenant"],
                    "wireguard_endpoints": ["type": "array", "maxItems": 8, "items": ["type": "string", "maxLength": 64],
                                            "description": "underlay addresses other peers send WireGuard to: a.b.c.d:port or [v6]:port; needs wireguard_public_key"],
                ]],
                "AgentBusCredentialsRequest": ["type": "object", "required": ["nats_public_key"], "properties": ["nats_public_key": string]],
                "AgentBusCredentials": ["type": "object", "properties": [
                    "nats_jwt": ["type": "string", "description": "user JWT limited to this peer's subjects"],
                    "nats_jwt_expires_at": ["type": "integer", "description": "Unix seconds; renew at half of the lifetime"],
                    "nats_inbox_prefix": ["type": "string", "description": "the only reply-subject prefix this user may subscribe to"],
                ]],
                "Enrollment": ["type": "object", "properties": [
                    "peer_id": string, "tenant_id": string, "ip": string, "credential": ["type": "string", "description": "shown once; the agent's Token"],
                    "routes_subject": string, "status_subject": string, "nats_url": string,
                    "nats_jwt": string, "nats_jwt_expires_at": integer, "nats_inbox_prefix": string,
                    "view_signing_key": ["type": "string", "description": "the controller's Ed25519 view signing public key (base64url, 32 bytes); the agent accepts only views it signed"],
                    "mesh_range": ["type": "string", "description": "the deployment's mesh range (the agent's WireGuard address takes its prefix length)"],
                ]],
                "AgentView": ["type": "object", "properties": [
                    "tenant_id": string, "peer_id": string, "version": integer, "digest": string, "stale": boolean, "removed": boolean,
                    "key": ["type": "string", "description": "signing public key (base64url)"],
                    "signature": ["type": "string", "description": "Ed25519 signature (base64url) over routeplane-view-signature-v1\\n<tenant>\\n<peer>\\n<version>\\n<removed>\\n<digest>"],
                    "endorsement": ["type": "object", "description": "during a key rotation: the previous key's signature over routeplane-view-key-endorsement-v1\\n<key>",
                                    "properties": ["key": string, "signature": string]],
                    "view": ["type": "object"],
                ]],
                "User": ["type": "object", "required": ["id", "email", "name", "role", "auto_groups", "status", "is_blocked", "pending_approval"],
                         "properties": [
                    "id": ["type": "string", "description": "the tenant id"], "email": string, "name": ["type": "string", "description": "the tenant's name"],
                    "role": ["type": "string", "enum": ["admin"]], "status": ["type": "string", "enum": ["active"]], "auto_groups": strings,
                    "is_current": boolean, "is_service_user": boolean, "is_blocked": boolean, "pending_approval": boolean, "issued": string,
                ]],
                "PersonalAccessTokenRequest": ["type": "object", "required": ["name", "expires_in"], "properties": [
                    "name": ["type": "string", "minLength": 1, "maxLength": 255],
                    "expires_in": ["type": "integer", "minimum": 1, "maximum": 365, "description": "days until the token expires"],
                    "scope": ["type": "string", "enum": TokenScope.allCases.map(\.rawValue),
                              "description": "Routeplane: admin (default) reads and changes everything; read_only reads everything and every write answers 403. A token cannot create a token with more rights than its own"],
                ]],
                "PersonalAccessToken": ["type": "object", "required": ["id", "name", "expiration_date", "created_by", "created_at", "scope"], "properties": [
                    "id": string, "name": string,
                    "expiration_date": ["type": "string", "format": "date-time", "description": "from then on the token answers 401 \"token expired\""],
                    "created_by": ["type": "string", "description": "the creating token (token:<id>) or cli; empty for tokens made before it was recorded"],
                    "created_at": ["type": "string", "format": "date-time"],
                    "scope": ["type": "string", "enum": TokenScope.allCases.map(\.rawValue), "description": "Routeplane: what the token may do"],
                ]],
                "PersonalAccessTokenGenerated": ["type": "object", "required": ["plain_token", "personal_access_token"], "properties": [
                    "plain_token": ["type": "string", "description": "the secret, shown only in this answer; send it as \"Authorization: Token <plain_token>\""],
                    "personal_access_token": ref("PersonalAccessToken"),
                ]],
                "Event": ["type": "object", "required": ["id", "timestamp", "activity", "activity_code", "initiator_id", "initiator_name",
                                                          "initiator_email", "target_id", "meta"], "properties": [
                    "id": ["type": "string", "description": "the event's tenant sequence number; an event that reads as several entries (one per peer of a membership change) numbers the further ones <seq>-1, <seq>-2, …"],
                    "timestamp": ["type": "string", "format": "date-time"], "activity": string,
                    "activity_code": ["type": "string", "description": "NetBird's code (route.add, peer.setupkey.add, peer.group.add, …); Routeplane's own: peer.drain.enable, peer.drain.disable"],
                    "initiator_id": string, "initiator_name": string, "initiator_email": ["type": "string", "description": "always empty (tokens have no e-mail)"],
                    "target_id": string, "request_id": string,
                    "meta": ["type": "object", "additionalProperties": string,
                             "description": "NetBird's meta: every value a string (lists as JSON text); a changed field as old_<field> and new_<field>"],
                    "details": ["type": "object", "description": "Routeplane: the event's structured record, typed values; for changes, changes.<field> = {old, new}"],
                ]],
            ] as [String: Any]).merging(policySchemas) { mine, _ in mine }).merging(historySchemas) { a, _ in a }.merging(dryRunSchemas) { a, _ in a },
        ] as [String: Any],
    ] }
}
