import Foundation
import JSONKit
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

/// How an event reads in the audit log: NetBird's activity code and text (`management/server/activity/codes.go`, the
/// `Event.activity_code` enum of `shared/management/http/api/openapi.yml`), NetBird's `meta` (every value a string, as
/// `events_handler.go` toEventResponse formats it and the generated Go client decodes it: `map[string]string`), and
/// Routeplane's structured record of the event in `details` (typed values; for changes `changes.<field> = {old, new}`).
public struct AuditDescription: Hashable, Sendable {
    public var code: String
    public var activity: String
    /// The structured record: every field of the event, typed.
    public var details: [String: MetaValue]
    /// NetBird's own meta keys for this activity (`group`, `group_id`, `peer_ip`, `setup_key_name`, …), on top of the
    /// flattened `details`.
    public var extra: [String: String] = [:]
    /// The entry's target when it is not the event's object: a membership change is about the peer (NetBird's
    /// `peer.group.add` targets the peer), a setup key's group change about the key.
    public var target: String? = nil

    /// NetBird's `meta`: the scalar fields of `details` as strings, each changed field as `old_<field>`/`new_<field>`
    /// (NetBird's `group.update` meta is `old_name`/`new_name`), lists as JSON text, and `extra`.
    public var meta: [String: String] {
        var out: [String: String] = [:]
        for (key, value) in details {
            if key == "changes", case .object(let changes) = value {
                for (field, change) in changes {
                    guard case .object(let pair) = change else { continue }
                    out["old_" + field] = (pair["old"] ?? .null).metaString ?? ""
                    out["new_" + field] = (pair["new"] ?? .null).metaString ?? ""
                }
            } else if let text = value.metaString {
                out[key] = text
            }
        }
        return out.merging(extra) { _, netBird in netBird }
    }
}

extension MetaValue {
    /// The value as NetBird's string meta holds it: strings as is, numbers and booleans as text, lists and objects as
    /// JSON text (NetBird formats Go values with `%v`, e.g. `[a b]`; JSON keeps names with spaces readable); nil for null.
    var metaString: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .null: return nil
        case .strings(let list): return "[" + list.map(JSONString.quoted).joined(separator: ",") + "]"
        case .object:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) }
        }
    }
}

public enum AuditLog {
    /// The entries one event reads as, in the order they happened. Most events are one entry; as in NetBird, a group's
    /// membership change is one `peer.group.add`/`peer.group.delete` per peer (`group.go` prepareGroupEvents), a new group
    /// with peers is `group.add` and one `peer.group.add` per peer, and a setup key's auto groups are one
    /// `setupkey.group.add`/`setupkey.group.delete` per group (`setupkey.go` prepareSetupKeyEvents). `state` (the tenant's
    /// current state, when known) only adds names and addresses NetBird's meta carries (`group`, `peer_ip`, `setup_key_name`).
    public static func describe(_ event: RouteEvent, in state: TenantState? = nil) -> [AuditDescription] {
        switch event {
        case .routeCreated(let e):
            var details = routeFields(e.route)
            if !e.skippedRoutingPeers.isEmpty { details["skipped_routing_peers"] = skipped(e.skippedRoutingPeers) }
            return [AuditDescription(code: "route.add", activity: "Route created", details: details, extra: netBirdMeta(e.route))]
        case .routeUpdated(let e):
            var details = context(of: e.new)
            details["changes"] = .object(changes(routeFields(e.old), routeFields(e.new)))
            if !e.skippedRoutingPeers.isEmpty { details["skipped_routing_peers"] = skipped(e.skippedRoutingPeers) }
            return [AuditDescription(code: "route.update", activity: "Route updated", details: details, extra: netBirdMeta(e.new))]
        case .routeDeleted(let e):
            return [AuditDescription(code: "route.delete", activity: "Route deleted", details: routeFields(e.route), extra: netBirdMeta(e.route))]
        case .groupCreated(let e):
            let details: [String: MetaValue] = ["name": .string(e.group.name), "peers": .strings(e.group.peers.map(\.rawValue))]
            return [AuditDescription(code: "group.add", activity: "Group created", details: details)]
                + e.group.peers.map { membership(added: true, group: e.group.id, name: e.group.name, peer: $0, details: details, in: state) }
        case .groupUpdated(let e):
            return [AuditDescription(code: "group.update", activity: "Group updated",
                                     details: ["name": .string(e.name), "changes": .object(["name": change(.string(e.oldName), .string(e.name))])])]
        case .groupMembersChanged(let e):
            let details: [String: MetaValue] = ["group_id": .string(e.groupID.rawValue), "added_peers": .strings(e.added.map(\.rawValue)),
                                                "removed_peers": .strings(e.removed.map(\.rawValue))]
            let name = state?.group(e.groupID)?.name
            let entries = e.added.map { membership(added: true, group: e.groupID, name: name, peer: $0, details: details, in: state) }
                + e.removed.map { membership(added: false, group: e.groupID, name: name, peer: $0, details: details, in: state) }
            return entries.isEmpty ? [AuditDescription(code: "group.update", activity: "Group updated", details: details)] : entries
        case .groupDeleted(let e):
            return [AuditDescription(code: "group.delete", activity: "Group deleted",
                                     details: ["name": .string(e.group.name), "peers": .strings(e.group.peers.map(\.rawValue))])]
        case .peerEnrolled(let e):
            var details: [String: MetaValue] = ["name": .string(e.peer.name), "ip": .string(e.peer.meshIP.description), "os": .string(e.peer.os)]
            var extra = ["fqdn": ""]
            if let k = e.setupKeyID {
                details["setup_key_id"] = .string(k.rawValue)
                if let name = state?.setupKeys[k]?.name { extra["setup_key_name"] = name }
            }
            if let t = e.enrolledAt { extra["created_at"] = ISO8601.format(Date(timeIntervalSince1970: TimeInterval(t))) }
            return [AuditDescription(code: e.setupKeyID == nil ? "peer.user.add" : "peer.setupkey.add", activity: "Peer added",
                                     details: details, extra: extra)]
        case .peerRenamed(let e):
            return [AuditDescription(code: "peer.rename", activity: "Peer renamed",
                                     details: ["name": .string(e.name), "changes": .object(["name": change(.string(e.oldName), .string(e.name))])])]
        case .peerDrainingChanged(let e):
            // Routeplane only; named like NetBird's peer.ssh.enable/disable.
            return [AuditDescription(code: e.draining ? "peer.drain.enable" : "peer.drain.disable",
                                     activity: e.draining ? "Peer drain mode enabled" : "Peer drain mode disabled",
                                     details: ["draining": .bool(e.draining), "changes": .object(["draining": change(.bool(!e.draining), .bool(e.draining))])])]
        case .peerRemoved(let e):
            return [AuditDescription(code: "user.peer.delete", activity: "Peer deleted",
                                     details: ["name": .string(e.peer.name), "ip": .string(e.peer.meshIP.description),
                                               "removed_from_groups": .strings(e.groups.map(\.rawValue))])]
        case .tenantCreated(let e):
            return [AuditDescription(code: "account.create", activity: "Account created", details: ["name": .string(e.name)])]
        case .tokenCreated(let e):
            // NetBird's meta: name, is_service_user (every Routeplane token belongs to the tenant's service user).
            var details: [String: MetaValue] = ["name": .string(e.name)]
            if let scope = e.scope { details["scope"] = .string(scope.rawValue) }
            if let t = e.expiresAt { details["expires_at"] = .string(ISO8601.format(Date(timeIntervalSince1970: TimeInterval(t)))) }
            return [AuditDescription(code: "personal.access.token.create", activity: "Personal access token created", details: details,
                                     extra: ["is_service_user": "true"])]
        case .tokenRevoked(let e):
            return [AuditDescription(code: "personal.access.token.delete", activity: "Personal access token deleted", details: ["name": .string(e.name)])]
        case .setupKeyCreated(let e):
            let details = setupKeyFields(e.setupKey)
            return [AuditDescription(code: "setupkey.add", activity: "Setup key created", details: details, extra: netBirdMeta(e.setupKey))]
                + e.setupKey.autoGroups.map { setupKeyGroup(added: true, $0, of: e.setupKey, details: details, in: state) }
        case .setupKeyUpdated(let e):
            // NetBird records a save as `setupkey.revoke` (when revoked) and one entry per auto group added or removed.
            var details: [String: MetaValue] = ["name": .string(e.new.name)]
            details["changes"] = .object(changes(setupKeyFields(e.old), setupKeyFields(e.new)))
            var entries: [AuditDescription] = []
            if e.new.revoked && !e.old.revoked {
                entries.append(AuditDescription(code: "setupkey.revoke", activity: "Setup key revoked", details: details, extra: netBirdMeta(e.new)))
            }
            let old = Set(e.old.autoGroups), new = Set(e.new.autoGroups)
            entries += e.old.autoGroups.filter { !new.contains($0) }.map { setupKeyGroup(added: false, $0, of: e.new, details: details, in: state) }
            entries += e.new.autoGroups.filter { !old.contains($0) }.map { setupKeyGroup(added: true, $0, of: e.new, details: details, in: state) }
            return entries.isEmpty
                ? [AuditDescription(code: "setupkey.update", activity: "Setup key updated", details: details, extra: netBirdMeta(e.new))] : entries
        case .setupKeyDeleted(let e):
            return [AuditDescription(code: "setupkey.delete", activity: "Setup key deleted", details: setupKeyFields(e.setupKey),
                                     extra: netBirdMeta(e.setupKey))]
        // NetBird's codes and texts (activity/codes.go PolicyAdded/PolicyUpdated/PolicyRemoved), meta `name` (Policy.EventMeta).
        case .policyCreated(let e):
            return [AuditDescription(code: "policy.add", activity: "Access control policy added", details: policyFields(e.policy),
                                     extra: ["name": e.policy.name])]
        case .policyUpdated(let e):
            var details: [String: MetaValue] = ["name": .string(e.new.name)]
            details["changes"] = .object(changes(policyFields(e.old), policyFields(e.new)))
            return [AuditDescription(code: "policy.update", activity: "Access control policy updated", details: details,
                                     extra: ["name": e.new.name])]
        case .policyDeleted(let e):
            return [AuditDescription(code: "policy.delete", activity: "Access control policy deleted", details: policyFields(e.policy),
                                     extra: ["name": e.policy.name])]
        }
    }

    /// NetBird's `peer.group.add`/`peer.group.delete`: about the peer, meta `group`, `group_id`, `peer_ip`, `peer_fqdn`.
    static func membership(added: Bool, group: GroupID, name: String?, peer: PeerID, details: [String: MetaValue],
                           in state: TenantState?) -> AuditDescription {
        var extra = ["group_id": group.rawValue, "peer_fqdn": ""]
        if let name { extra["group"] = name }
        if let ip = state?.peer(peer)?.meshIP { extra["peer_ip"] = ip.description }
        return AuditDescription(code: added ? "peer.group.add" : "peer.group.delete",
                                activity: added ? "Group added to peer" : "Group removed from peer",
                                details: details, extra: extra, target: peer.rawValue)
    }

    /// NetBird's `setupkey.group.add`/`setupkey.group.delete`: meta `group`, `group_id`, `setupkey` (the key's name).
    static func setupKeyGroup(added: Bool, _ group: GroupID, of key: SetupKey, details: [String: MetaValue],
                              in state: TenantState?) -> AuditDescription {
        var extra = ["group_id": group.rawValue, "setupkey": key.name]
        if let name = state?.group(group)?.name { extra["group"] = name }
        // NetBird's text for the removal reads "Group removed from user setup key" (codes.go); the word "user" is a slip.
        return AuditDescription(code: added ? "setupkey.group.add" : "setupkey.group.delete",
                                activity: added ? "Group added to setup key" : "Group removed from setup key",
                                details: details, extra: extra, target: key.id.rawValue)
    }

    /// NetBird's route meta (`route.Route.EventMeta`): `name` (the network id), `network_range`, `domains`, `peer_id`, `peer_groups`.
    static func netBirdMeta(_ r: Route) -> [String: String] {
        var m = ["name": r.networkID, "network_range": r.destination.description, "domains": (r.destination.domains ?? []).joined(separator: ", "),
                 "peer_id": r.routingPeers.peer?.rawValue ?? ""]
        m["peer_groups"] = MetaValue.strings((r.routingPeers.peerGroups ?? []).map(\.rawValue)).metaString
        return m
    }

    /// NetBird's setup key meta (`types.SetupKey.EventMeta`): `name`, `type`, `key` (the masked key).
    static func netBirdMeta(_ k: SetupKey) -> [String: String] {
        ["name": k.name, "type": k.type.rawValue, "key": k.keySecret ?? "****"]
    }

    /// Every activity code `describe` can produce, with the SQL condition selecting the events that can give it
    /// (an event giving several entries is then filtered entry by entry). Fixed text: no request value is ever put into SQL.
    static let codeConditions: [String: String] = [
        "route.add": "type = 'RouteCreated'",
        "route.update": "type = 'RouteUpdated'",
        "route.delete": "type = 'RouteDeleted'",
        "group.add": "type = 'GroupCreated'",
        "group.update": "type = 'GroupUpdated' OR (type = 'GroupMembersChanged' AND json_array_length(data->'added_peers') = 0 AND json_array_length(data->'removed_peers') = 0)",
        "group.delete": "type = 'GroupDeleted'",
        "peer.group.add": "(type = 'GroupMembersChanged' AND json_array_length(data->'added_peers') > 0) OR (type = 'GroupCreated' AND json_array_length(data->'group'->'peers') > 0)",
        "peer.group.delete": "type = 'GroupMembersChanged' AND json_array_length(data->'removed_peers') > 0",
        "peer.setupkey.add": "type = 'PeerEnrolled' AND data->>'setup_key_id' IS NOT NULL",
        "peer.user.add": "type = 'PeerEnrolled' AND data->>'setup_key_id' IS NULL",
        "peer.rename": "type = 'PeerRenamed'",
        "peer.drain.enable": "type = 'PeerDrainingChanged' AND (data->>'draining') = 'true'",
        "peer.drain.disable": "type = 'PeerDrainingChanged' AND (data->>'draining') = 'false'",
        "user.peer.delete": "type = 'PeerRemoved'",
        "account.create": "type = 'TenantCreated'",
        "personal.access.token.create": "type = 'TokenCreated'",
        "personal.access.token.delete": "type = 'TokenRevoked'",
        "setupkey.add": "type = 'SetupKeyCreated'",
        "setupkey.group.add": "(type = 'SetupKeyCreated' AND json_array_length(data->'setup_key'->'auto_groups') > 0) OR (type = 'SetupKeyUpdated' AND NOT ((data->'old'->'auto_groups')::jsonb @> (data->'new'->'auto_groups')::jsonb))",
        "setupkey.group.delete": "type = 'SetupKeyUpdated' AND NOT ((data->'new'->'auto_groups')::jsonb @> (data->'old'->'auto_groups')::jsonb)",
        "setupkey.revoke": "type = 'SetupKeyUpdated' AND (data->'new'->>'revoked') = 'true' AND (data->'old'->>'revoked') = 'false'",
        "setupkey.update": "type = 'SetupKeyUpdated' AND NOT ((data->'new'->>'revoked') = 'true' AND (data->'old'->>'revoked') = 'false') AND (data->'new'->'auto_groups')::jsonb = (data->'old'->'auto_groups')::jsonb",
        "setupkey.delete": "type = 'SetupKeyDeleted'",
        "policy.add": "type = 'PolicyCreated'",
        "policy.update": "type = 'PolicyUpdated'",
        "policy.delete": "type = 'PolicyDeleted'",
    ]
    /// The activity codes `activity_code` filters on, sorted (the OpenAPI document lists them as its enum).
    public static var activityCodes: [String] { codeConditions.keys.sorted() }

    /// A policy's fields for `details`: name, description, enabled, and its rules as JSON text (one string per rule).
    static func policyFields(_ p: Policy) -> [String: MetaValue] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let rules = p.rules.map { rule in (try? encoder.encode(rule)).map { String(decoding: $0, as: UTF8.self) } ?? rule.id }
        return ["name": .string(p.name), "description": .string(p.description), "enabled": .bool(p.enabled), "rules": .strings(rules)]
    }

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
            "expires_at": k.expiresAt.map { .int($0) } ?? .null, "ephemeral": .bool(k.ephemeral),
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

/// One audit log entry, in NetBird's `api.Event` shape (`meta` a map of strings), plus Routeplane's `request_id` and
/// `details` (the structured record, `AuditDescription.details`): the HTTP API answers it as is.
public struct AuditEntry: Encodable, Sendable {
    /// The event's tenant sequence number; the further entries of an event that reads as several are `<seq>-1`, `<seq>-2`, ….
    public var id: String
    public var timestamp: String
    public var activity: String
    public var activity_code: String
    public var initiator_id: String
    public var initiator_name: String
    public var initiator_email: String
    public var target_id: String
    public var request_id: String?
    public var meta: [String: String]
    public var details: [String: MetaValue]
}

/// One page of the audit log: its entries, and the cursor of the next page when this one was full.
public struct AuditPage: Sendable {
    public var entries: [AuditEntry]
    /// The sequence number of the page's last event, when the page read `limit` events (more may follow).
    public var nextCursor: String?
}

/// What to read of a tenant's audit log: newest first (or ascending), keyset pages of `limit` (≤ 1000) events after
/// `cursor` (the last entry's id: the tenant sequence number, which only grows and never has a gap filled later, so
/// concurrent appends cannot shift or repeat entries), filtered by time, initiator, target, activity code and text.
/// An event that reads as several entries (membership changes) is never split across pages, so a page may hold more
/// entries than `limit`.
public struct AuditQuery: Sendable {
    public var limit = 100
    public var ascending = false
    var conditions: [String] = []
    var parameters: [String?] = []
    /// Entry-level filters: an event that reads as several entries keeps only the matching ones.
    var activityCode: String?
    var targetID: String?

    init() {}

    /// NetBird's `GET /api/events`: no parameters, the newest 10 000 entries (`management/server/event.go` GetEvents
    /// reads `eventStore.Get(ctx, accountID, 0, 10000, true)`: offset 0, limit 10000, newest first).
    public static var netBirdEvents: AuditQuery {
        var q = AuditQuery()
        q.limit = 10_000
        return q
    }

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
        if let cursor = parameter("cursor"), !cursor.isEmpty {
            // An entry id: the event's sequence number, `-<n>` for an event's further entries. Empty = the first page.
            let parts = cursor.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            let digits = { (part: Substring, most: Int) in !part.isEmpty && part.count <= most && part.allSatisfy { ("0"..."9").contains($0) } }
            guard digits(parts[0], 18), parts.count == 1 || digits(parts[1], 9), let c = Int64(parts[0]) else {
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
        if let target = parameter("target_id") {
            // A membership entry is about the peer (its event's target is the group).
            add({ """
                (metadata->>'target' = $\($0) OR (type = 'GroupMembersChanged' AND ((data::jsonb->'added_peers') ? $\($0) \
                OR (data::jsonb->'removed_peers') ? $\($0))) OR (type = 'GroupCreated' AND (data::jsonb->'group'->'peers') ? $\($0)))
                """ }, target)
            targetID = target
        }
        if let code = parameter("activity_code"), !code.isEmpty {
            guard let condition = AuditLog.codeConditions[code] else {
                throw .validation(field: "activity_code",
                                  message: "unknown activity_code \(code); known: \(AuditLog.codeConditions.keys.sorted().joined(separator: ", "))")
            }
            conditions.append("(\(condition))")
            activityCode = code
        }
        if let search = parameter("search"), !search.isEmpty {
            guard search.count <= 200 else { throw .validation(field: "search", message: "search must be at most 200 characters") }
            // Three characters make a trigram, the unit the search index is made of: a shorter text could only be
            // served by reading every event of the tenant.
            guard search.count >= Self.minimumSearchLength else {
                throw .validation(field: "search", message: "search must be at least \(Self.minimumSearchLength) characters")
            }
            let escaped = search.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            add({ "data::text ILIKE $\($0)" }, "%" + escaped + "%")
        }
    }

    public static let minimumSearchLength = 3
    /// Whether the query has a free-text `search` (the one costly filter; the API bounds it on its own).
    public var hasSearch: Bool { conditions.contains { $0.hasPrefix("data::text ILIKE") } }

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
    static func auditSQL(tenant: String, _ query: AuditQuery) -> (sql: String, parameters: [String?]) {
        let conditions = ["tenant_id = $1"] + query.conditions
        let parameters: [String?] = [tenant] + query.parameters + [String(query.limit)]
        let sql = """
            SELECT seq, type, data, metadata->>'actor' AS actor, metadata->>'actor_name' AS actor_name,
                   metadata->>'request_id' AS request_id, metadata->>'target' AS target,
                   to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at
            FROM events WHERE \(conditions.joined(separator: " AND "))
            ORDER BY seq \(query.ascending ? "ASC" : "DESC") LIMIT $\(parameters.count)
            """
        return (sql, parameters)
    }

    /// PostgreSQL's plan for an audit page (EXPLAIN, not run): how tests and `routeplane-bench audit-load` see that a
    /// search is served by the trigram index.
    public func explainAudit(tenant: String, _ query: AuditQuery) async throws -> String {
        let (sql, parameters) = Self.auditSQL(tenant: tenant, query)
        let rows = try await store.pool.withSession { s in try s.query("EXPLAIN " + sql, parameters) }
        return rows.compactMap { $0.string("QUERY PLAN") }.joined(separator: "\n")
    }

    /// One page of `tenant`'s audit log.
    public func audit(tenant: String, _ query: AuditQuery) async throws -> AuditPage {
        let (sql, parameters) = Self.auditSQL(tenant: tenant, query)
        let rows = try await store.pool.withSession { s in try s.query(sql, parameters) }
        // Names and addresses for NetBird's meta (group names, peer IPs) as the tenant has them now.
        let state = try? await cache.current(tenant).state
        var entries: [AuditEntry] = []
        entries.reserveCapacity(rows.count)
        var lastSeq: String?
        for row in rows {
            guard let seq = row.string("seq"), let type = row.string("type"), let data = row.string("data") else { continue }
            lastSeq = seq
            var descriptions: [AuditDescription]
            if let event = try? RouteEvent.decode(type: type, json: data) {
                descriptions = AuditLog.describe(event, in: state)
            } else {
                descriptions = [AuditDescription(code: "unknown", activity: type, details: [:])]
            }
            var numbered = descriptions.enumerated().map { (n, d) in (n == 0 ? seq : "\(seq)-\(n)", d) }
            if !query.ascending { numbered.reverse() }
            for (id, d) in numbered {
                let target = d.target ?? row.string("target") ?? ""
                if let code = query.activityCode, d.code != code { continue }
                if let wanted = query.targetID, target != wanted { continue }
                entries.append(AuditEntry(id: id, timestamp: row.string("recorded_at") ?? "", activity: d.activity, activity_code: d.code,
                                          initiator_id: row.string("actor") ?? "", initiator_name: row.string("actor_name") ?? "",
                                          initiator_email: "", target_id: target, request_id: row.string("request_id"),
                                          meta: d.meta, details: d.details))
            }
        }
        return AuditPage(entries: entries, nextCursor: rows.count == query.limit ? lastSeq : nil)
    }
}
