import Foundation
import RouteModel

/// The routing peer's side on a host whose forward hook drops by default (Docker sets `policy drop`).
///
/// In nftables an `accept` ends only the base chain it is in: every other base chain on the forward hook still sees the
/// packet, and a drop in any of them is final (checked on this machine: an accept in a table of our own at a lower
/// priority does not get a packet past another table's `policy drop`). So masquerade and access control stay in
/// Routeplane's own tables, but the traffic it routes must also be let through each foreign forward chain whose policy
/// is drop: the agent inserts, at the top of each such chain, its own rules (each commented `routeplane <fingerprint>`)
///   `iifname "<wg>" ip daddr { <routed ranges> } accept`, `oifname "<wg>" ip saddr { <routed ranges> } accept` (and
///   `ip6` for IPv6 ranges), and `oifname "<wg>" ct state established,related accept` (the replies);
/// and removes exactly the rules carrying its comment when it stops routing or the ranges change. Nothing else in
/// those chains is touched. Pure; no I/O.
public enum ForwardPinholePlanner {
    /// A base chain on the forward hook that Routeplane does not own.
    public struct Chain: Hashable, Sendable {
        /// `inet`, `ip` or `ip6`.
        public var family: String
        public var table: String
        public var name: String
        public var dropPolicy: Bool
        /// Rules already in it with a comment starting with `routeplane`: handle → comment.
        public var ourRules: [Int: String]

        public init(family: String, table: String, name: String, dropPolicy: Bool, ourRules: [Int: String] = [:]) {
            self.family = family
            self.table = table
            self.name = name
            self.dropPolicy = dropPolicy
            self.ourRules = ourRules
        }
    }

    public enum Action: Hashable, Sendable, CustomStringConvertible {
        /// `nft insert rule <family> <table> <chain> <expression> comment "<comment>"`
        case insert(family: String, table: String, chain: String, expression: String, comment: String)
        /// `nft delete rule <family> <table> <chain> handle <handle>`
        case delete(family: String, table: String, chain: String, handle: Int)

        public var description: String {
            switch self {
            case .insert(let f, let t, let c, let e, let comment): "nft insert rule \(f) \(t) \(c) \(e) comment \"\(comment)\""
            case .delete(let f, let t, let c, let h): "nft delete rule \(f) \(t) \(c) handle \(h)"
            }
        }
    }

    public static let commentPrefix = "routeplane"

    /// The rule expressions for `chain` (by its family) letting `ranges` in from `interface` and the replies out.
    public static func expressions(interface: String, ranges: [Prefix], family: String) -> [String] {
        let v4 = Set(ranges.filter(\.isV4)).sorted().map(\.description)
        let v6 = Set(ranges.filter(\.isV6)).sorted().map(\.description)
        var out: [String] = []
        if family != "ip6", !v4.isEmpty {
            out.append("iifname \"\(interface)\" ip daddr { \(v4.joined(separator: ", ")) } accept")
            // Without masquerade the range answers the mesh addresses themselves (and a flow NATed before masquerade was
            // turned off keeps a conntrack entry its un-NATed replies do not match): let the range's traffic in.
            out.append("oifname \"\(interface)\" ip saddr { \(v4.joined(separator: ", ")) } accept")
        }
        if family != "ip", !v6.isEmpty {
            out.append("iifname \"\(interface)\" ip6 daddr { \(v6.joined(separator: ", ")) } accept")
            out.append("oifname \"\(interface)\" ip6 saddr { \(v6.joined(separator: ", ")) } accept")
        }
        if !out.isEmpty { out.append("oifname \"\(interface)\" ct state established,related accept") }
        return out
    }

    /// A short fingerprint of the rules, in their comment: unchanged rules are left alone.
    static func comment(_ expressions: [String]) -> String {
        commentPrefix + " " + String(SHA256Hex.of(Array(expressions.joined(separator: "\n").utf8)).prefix(12))
    }

    /// What to do so every foreign drop-policy forward chain lets `ranges` through from `interface` (nil or no ranges:
    /// this peer routes nothing, so every rule of ours goes).
    public static func plan(interface: String?, ranges: [Prefix], chains: [Chain]) -> [Action] {
        var actions: [Action] = []
        for c in chains.sorted(by: { ($0.family, $0.table, $0.name) < ($1.family, $1.table, $1.name) }) {
            let wanted = (c.dropPolicy ? interface : nil).map { expressions(interface: $0, ranges: ranges, family: c.family) } ?? []
            let tag = comment(wanted)
            let current = Set(c.ourRules.values)
            if !wanted.isEmpty, current == [tag], c.ourRules.count == wanted.count { continue }
            if wanted.isEmpty && c.ourRules.isEmpty { continue }
            for handle in c.ourRules.keys.sorted() {
                actions.append(.delete(family: c.family, table: c.table, chain: c.name, handle: handle))
            }
            // Inserted at the top in reverse, so they end up in the order written.
            for e in wanted.reversed() {
                actions.append(.insert(family: c.family, table: c.table, chain: c.name, expression: e, comment: tag))
            }
        }
        return actions
    }

    /// The forward base chains of `nft -j list ruleset`, except those of `ownTables` (Routeplane's own), with the rules
    /// of ours they hold.
    public static func parse(rulesetJSON text: String, ownTables: Set<String>) throws(KernelStateParseError) -> [Chain] {
        guard let data = text.data(using: .utf8), let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let items = root["nftables"] as? [Any] else {
            throw KernelStateParseError(reason: "nft -j list ruleset output is not an nftables JSON object")
        }
        var chains: [String: Chain] = [:]
        var rules: [(key: String, handle: Int, comment: String)] = []
        for case let item as [String: Any] in items {
            if let c = item["chain"] as? [String: Any], (c["hook"] as? String) == "forward",
               let family = c["family"] as? String, let table = c["table"] as? String, let name = c["name"] as? String,
               !ownTables.contains(table) {
                chains["\(family)\t\(table)\t\(name)"] = Chain(family: family, table: table, name: name,
                                                                dropPolicy: (c["policy"] as? String) == "drop")
            } else if let r = item["rule"] as? [String: Any], let comment = r["comment"] as? String, comment.hasPrefix(commentPrefix),
                      let family = r["family"] as? String, let table = r["table"] as? String, let chain = r["chain"] as? String,
                      let handle = (r["handle"] as? NSNumber)?.intValue {
                rules.append(("\(family)\t\(table)\t\(chain)", handle, comment))
            }
        }
        for r in rules { chains[r.key]?.ourRules[r.handle] = r.comment }
        return chains.values.sorted { ($0.family, $0.table, $0.name) < ($1.family, $1.table, $1.name) }
    }
}
