import Foundation
import PostgresClient
import EventStore
import RouteModel

/// A value in an audit entry's `meta`.
public indirect enum MetaValue: Hashable, Sendable, Encodable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case strings([String])
    case object([String: MetaValue])
    case null

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .bool(let b): try c.encode(b)
        case .strings(let s): try c.encode(s)
        case .object(let o): try c.encode(o)
        case .null: try c.encodeNil()
        }
    }
}

/// How an event reads in the audit log: NetBird's activity code and text where NetBird has one
/// (`management/server/activity/codes.go`), and `meta` with every field — for changes, each changed
/// field as `{"old": …, "new": …}` under `changes` (NetBird records only a few names).
public struct AuditDescription: Hashable, Sendable {
    public var code: String
    public var activity: String
    public var meta: [String: MetaValue]
}

public enum AuditLog {
    public static func describe(_ event: RouteEvent) -> AuditDescription {
        switch event {
        case .routeCreated(let e):
            var meta = routeFields(e.route)
            if !e.skippedRoutingPeers.isEmpty { meta["skipped_routing_peers"] = skipped(e.skippedRoutingPeers) }
            return AuditDescription(code: "route.add", activity: "Route created", meta: meta)
        case .routeUpdated(let e):
            var meta = context(of: e.new)
            meta["changes"] = .object(changes(routeFields(e.old), routeFields(e.new)))
            if !e.skippedRoutingPeers.isEmpty { meta["skipped_routing_peers"] = skipped(e.skippedRoutingPeers) }
            return AuditDescription(code: "route.update", activity: "Route updated", meta: meta)
        case .routeDeleted(let e):
            return AuditDescription(code: "route.delete", activity: "Route deleted", meta: routeFields(e.route))
        case .groupCreated(let e):
            return AuditDescription(code: "group.add", activity: "Group created",
                                    meta: ["name": .string(e.group.name), "peers": .strings(e.group.peers.map(\.rawValue))])
        case .groupUpdated(let e):
            return AuditDescription(code: "group.update", activity: "Group updated",
                                    meta: ["name": .string(e.name), "changes": .object(["name": change(.string(e.oldName), .string(e.name))])])
        case .groupMembersChanged(let e):
            return AuditDescription(code: "group.update", activity: "Group updated",
                                    meta: ["added_peers": .strings(e.added.map(\.rawValue)), "removed_peers": .strings(e.removed.map(\.rawValue))])
        case .groupDeleted(let e):
            return AuditDescription(code: "group.delete", activity: "Group deleted",
                                    meta: ["name": .string(e.group.name), "peers": .strings(e.group.peers.map(\.rawValue))])
        case .peerEnrolled(let e):
            var meta: [String: MetaValue] = ["name": .string(e.peer.name), "ip": .string(e.peer.meshIP.description), "os": .string(e.peer.os)]
            if let k = e.setupKeyID { meta["setup_key_id"] = .string(k.rawValue) }
            return AuditDescription(code: e.setupKeyID == nil ? "user.peer.add" : "setupkey.peer.add", activity: "Peer added", meta: meta)
        case .peerRenamed(let e):
            return AuditDescription(code: "peer.rename", activity: "Peer renamed",
                                    meta: ["name": .string(e.name), "changes": .object(["name": change(.string(e.oldName), .string(e.name))])])
        case .peerDrainingChanged(let e):
            return AuditDescription(code: "peer.drain.update", activity: "Peer drain mode changed",
                                    meta: ["draining": .bool(e.draining), "changes": .object(["draining": change(.bool(!e.draining), .bool(e.draining))])])
        case .peerRemoved(let e):
            return AuditDescription(code: "user.peer.delete", activity: "Peer deleted",
                                    meta: ["name": .string(e.peer.name), "ip": .string(e.peer.meshIP.description),
                                           "removed_from_groups": .strings(e.groups.map(\.rawValue))])
        case .tenantCreated(let e):
            return AuditDescription(code: "account.create", activity: "Account created", meta: ["name": .string(e.name)])
        case .tokenCreated(let e):
            return AuditDescription(code: "personal.access.token.create", activity: "Personal access token created", meta: ["name": .string(e.name)])
        case .tokenRevoked(let e):
            return AuditDescription(code: "personal.access.token.delete", activity: "Personal access token deleted", meta: ["name": .string(e.name)])
        case .setupKeyCreated(let e):
            return AuditDescription(code: "setupkey.add", activity: "Setup key created", meta: setupKeyFields(e.setupKey))
        case .setupKeyUpdated(let e):
            let revoked = e.new.revoked && !e.old.revoked
            var meta: [String: MetaValue] = ["name": .string(e.new.name)]
            meta["changes"] = .object(changes(setupKeyFields(e.old), setupKeyFields(e.new)))
            return AuditDescription(code: revoked ? "setupkey.revoke" : "setupkey.update",
                                    activity: revoked ? "Setup key revoked" : "Setup key updated", meta: meta)
        case .setupKeyDeleted(let e):
            return AuditDescription(code: "setupkey.delete", activity: "Setup key deleted", meta: setupKeyFields(e.setupKey))
        }
    }

    /// Every activity code `describe` can produce, with the SQL condition selecting its events.
    /// Fixed text: no request value is ever put into SQL.
    static let codeConditions: [String: String] = [
        "route.add": "type = 'RouteCreated'",
        "route.update": "type = 'RouteUpdated'",
        "route.delete": "type = 'RouteDeleted'",
        "group.add": "type = 'GroupCreated'",
        "group.update": "type IN ('GroupUpdated', 'GroupMembersChanged')",
        "group.delete": "type = 'GroupDeleted'",
        "setupkey.peer.add": "(type = 'PeerEnrolled' AND data->>'setup_key_id' IS NOT NULL)",
        "user.peer.add": "(type = 'PeerEnrolled' AND data->>'setup_key_id' IS NULL)",
        "peer.rename": "type = 'PeerRenamed'",
        "peer.drain.update": "type = 'PeerDrainingChanged'",
        "user.peer.delete": "type = 'PeerRemoved'",
        "account.create": "type = 'TenantCreated'",
        "personal.access.token.create": "type = 'TokenCreated'",
        "personal.access.token.delete": "type = 'TokenRevoked'",
        "setupkey.add": "type = 'SetupKeyCreated'",
        "setupkey.revoke": "(type = 'SetupKeyUpdated' AND (data->'new'->>'revoked') = 'true' AND (data->'old'->>'revoked') = 'false')",
        "setupkey.update": "(type = 'SetupKeyUpdated' AND NOT ((data->'new'->>'revoked') = 'true' AND (data->'old'->>'revoked') = 'false'))",
        "setupkey.delete": "type = 'SetupKeyDeleted'",
    ]

    static func routeFields(_ r: Route) -> [String: MetaValue] {
        var m: [String: MetaValue] = [
            "network_id": .string(r.networkID),
            "name": .string(r.networkID),
            "description": .string(r.description),
            "network_type": .string(r.destination.networkType),
            "network_range": .string(r.destination.description),
            "metric": .int(Int64(r.metric)),
            "masquerade": .bool(r.masquerade),
            "groups": .strings(r.groups.map(\.rawValue)),
            "enabled": .bool(r.enabled),
            "keep_route": .bool(r.keepRoute),
            "access_control_groups": .strings(r.accessControlGroups.map(\.rawValue)),
            "skip_auto_apply": .bool(r.skipAutoApply),
        ]
        switch r.routingPeers {
        case .peer(let p): m["peer"] = .string(p.rawValue)
        case .peerGroups(let g): m["peer_groups"] = .strings(g.map(\.rawValue))
        }
        return m
    }

    /// Non-Linux members of a route's peer groups, which forward nothing: "<id> <name> (<os>)" each.
    static func skipped(_ peers: [SkippedRoutingPeer]) -> MetaValue {
        .strings(peers.map { "\($0.id.rawValue) \($0.name) (\($0.os))" })
    }

    static func context(of r: Route) -> [String: MetaValue] {
        ["name": .string(r.networkID), "network_range": .string(r.destination.description)]
    }

    static func setupKeyFields(_ k: SetupKey) -> [String: MetaValue] {
        [
            "name": .string(k.name), "type": .string(k.type.rawValue), "revoked": .bool(k.revoked),
            "auto_groups": .strings(k.autoGroups.map(\.rawValue)), "usage_limit": .int(Int64(k.usageLimit)),
            "expires_at": k.expiresAt.map { .int($0) } ?? .null,
        ]
    }

    static func change(_ old: MetaValue, _ new: MetaValue) -> MetaValue {
        .object(["old": old, "new": new])
    }

    /// The fields whose values differ (a field only on one side has `null` on the other).
    static func changes(_ old: [String: MetaValue], _ new: [String: MetaValue]) -> [String: MetaValue] {
        var out: [String: MetaValue] = [:]
        for key in Set(old.keys).union(new.keys) where key != "name" || old["network_id"] == nil {
            let a = old[key] ?? .null, b = new[key] ?? .null
            if a != b { out[key] = change(a, b) }
        }
        return out
    }
}

/// One audit log entry, in NetBird's `api.Event` shape (plus `request_id`): the HTTP API answers it as is.
public struct AuditEntry: Encodable, Sendable {
    public var id: String
    public var timestamp: String
    public var activity: String
    public var activity_code: String
    public var initiator_id: String
    public var initiator_name: String
    public var initiator_email: String
    public var target_id: String
    public var request_id: String?
    public var meta: [String: MetaValue]
}

/// What to read of a tenant's audit log: newest first (or ascending), keyset pages of `limit` (≤ 1000) after
/// `cursor` (the last entry's id: the tenant sequence number, which only grows and never has a gap filled later, so
/// concurrent appends cannot shift or repeat entries), filtered by time, initiator, target, activity code and text.
public struct AuditQuery: Sendable {
    public var limit = 100
    public var ascending = false
    var conditions: [String] = []
    var parameters: [String?] = []

    /// The query from its named parameters (`limit`, `order`, `cursor`, `start_date`, `end_date` (ISO 8601),
    /// `initiator_id`, `target_id`, `activity_code`, `search`), each checked; messages name the parameter.
    public init(_ parameter: (String) -> String?) throws(ControlPlaneError) {
        limit = try Self.int(parameter, "limit", default: 100, range: 1...1000)
        switch parameter("order") ?? "desc" {
        case "desc": ascending = false
        case "asc": ascending = true
        case let other: throw .validation(field: "order", message: "order must be asc or desc, got \(other)")
        }
        let ascending = self.ascending
        if let cursor = parameter("cursor") {
            guard let c = Int64(cursor), c >= 0 else {
                throw .validation(field: "cursor", message: "cursor must be an entry id from a previous page")
            }
            add({ ascending ? "seq > $\($0)" : "seq < $\($0)" }, String(c))
        }
        for (name, op) in [("start_date", ">="), ("end_date", "<")] {
            guard let text = parameter(name) else { continue }
            guard let date = ISO8601.parse(text) else {
                throw .validation(field: name, message: "\(name) must be an ISO 8601 time like 2026-11-26T10:00:00Z, got \(text)")
            }
            add({ "recorded_at \(op) to_timestamp($\($0)::double precision)" }, String(date.timeIntervalSince1970))
        }
        if let initiator = parameter("initiator_id") { add({ "metadata->>'actor' = $\($0)" }, initiator) }
        if let target = parameter("target_id") { add({ "metadata->>'target' = $\($0)" }, target) }
        if let code = parameter("activity_code") {
            guard let condition = AuditLog.codeConditions[code] else {
                throw .validation(field: "activity_code",
                                  message: "unknown activity_code \(code); known: \(AuditLog.codeConditions.keys.sorted().joined(separator: ", "))")
            }
            conditions.append(condition)
        }
        if let search = parameter("search"), !search.isEmpty {
            guard search.count <= 200 else { throw .validation(field: "search", message: "search must be at most 200 characters") }
            let escaped = search.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            add({ "data::text ILIKE $\($0)" }, "%" + escaped + "%")
        }
    }

    /// Parameters are numbered after the tenant (`$1`).
    private mutating func add(_ condition: (Int) -> String, _ value: String) {
        parameters.append(value)
        conditions.append(condition(parameters.count + 1))
    }

    static func int(_ parameter: (String) -> String?, _ name: String, default value: Int, range: ClosedRange<Int>) throws(ControlPlaneError) -> Int {
        guard let text = parameter(name) else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw .validation(field: name, message: "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got \(text)")
        }
        return n
    }
}

extension ControlPlane {
    /// One page of `tenant`'s audit log.
    public func audit(tenant: String, _ query: AuditQuery) async throws -> [AuditEntry] {
        let conditions = ["tenant_id = $1"] + query.conditions
        let parameters: [String?] = [tenant] + query.parameters + [String(query.limit)]
        let sql = """
            SELECT seq, type, data, metadata->>'actor' AS actor, metadata->>'actor_name' AS actor_name,
                   metadata->>'request_id' AS request_id, metadata->>'target' AS target,
                   to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at
            FROM events WHERE \(conditions.joined(separator: " AND "))
            ORDER BY seq \(query.ascending ? "ASC" : "DESC") LIMIT $\(parameters.count)
            """
        let rows = try await store.pool.withSession { s in try s.query(sql, parameters) }
        var entries: [AuditEntry] = []
        entries.reserveCapacity(rows.count)
        for row in rows {
            guard let seq = row.string("seq"), let type = row.string("type"), let data = row.string("data") else { continue }
            let description: AuditDescription
            if let event = try? RouteEvent.decode(type: type, json: data) {
                description = AuditLog.describe(event)
            } else {
                description = AuditDescription(code: "unknown", activity: type, meta: [:])
            }
            entries.append(AuditEntry(id: seq, timestamp: row.string("recorded_at") ?? "", activity: description.activity, activity_code: description.code,
                                      initiator_id: row.string("actor") ?? "", initiator_name: row.string("actor_name") ?? "", initiator_email: "",
                                      target_id: row.string("target") ?? "", request_id: row.string("request_id"), meta: description.meta))
        }
        return entries
    }
}
