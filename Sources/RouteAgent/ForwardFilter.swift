import Foundation
import RouteModel

/// What a routing peer lets through to one guarded range (a route with access-control groups): the view's forward
/// rules for it, and the mesh ranges whose other traffic to the range is dropped. Installed in Routeplane's own
/// nftables table (`RouteMarking.filterTableName`, chain `forward`); nothing else is ever touched.
public struct ForwardFilter: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var destination: Prefix
    /// Drop rules first (the view's canonical order), each with its sources.
    public var rules: [ForwardRule]
    /// Mesh ranges of the destination's family: traffic from them to `destination` that no rule accepts is dropped.
    public var meshSources: [Prefix]

    public init(destination: Prefix, rules: [ForwardRule], meshSources: [Prefix]) {
        self.destination = destination
        self.rules = rules
        self.meshSources = meshSources
    }

    public static func < (a: ForwardFilter, b: ForwardFilter) -> Bool { a.destination < b.destination }

    public var description: String {
        "filter \(destination): " + (rules.isEmpty ? "nothing allowed" : rules.map(ForwardFilter.describe).joined(separator: "; "))
    }

    static func describe(_ r: ForwardRule) -> String {
        var s = "\(r.action.rawValue) \(r.protocol.rawValue)"
        if !r.ports.isEmpty { s += " ports \(r.ports.map(String.init).joined(separator: ","))" }
        if !r.portRanges.isEmpty { s += " ports \(r.portRanges.map { "\($0.start)-\($0.end)" }.joined(separator: ","))" }
        return s + " from \(r.sources.map(\.description).joined(separator: ","))"
    }

    /// The guarded ranges of a routing peer's view: a range is guarded when every route of the view forwarding it
    /// has rules (one open route leaves it open, as NetBird's default permit does); rules of several routes to one
    /// range are merged. Domain routes are not filtered (their addresses are not known here).
    public static func filters(from forwards: [ForwardedRoute], meshRanges: [Prefix]) -> [ForwardFilter] {
        var rules: [Prefix: Set<ForwardRule>] = [:]
        var open = Set<Prefix>()
        for f in forwards {
            guard case .network(let prefix) = f.key.destination else { continue }
            if let r = f.rules { rules[prefix, default: []].formUnion(r) } else { open.insert(prefix) }
        }
        return rules.keys.filter { !open.contains($0) }.sorted().map { prefix in
            ForwardFilter(destination: prefix, rules: rules[prefix]!.sorted(), meshSources: meshRanges.filter { $0.family == prefix.family })
        }
    }
}

/// The filter table as `nft -j list table inet NAME` shows it: the fingerprint Routeplane wrote into it (nil when
/// absent or the table is not in the shape Routeplane writes), and the rules' counters.
public struct ObservedFilterTable: Hashable, Sendable {
    public var fingerprint: String?
    public var counters: [ForwardCounter]

    public init(fingerprint: String?, counters: [ForwardCounter] = []) {
        self.fingerprint = fingerprint
        self.counters = counters
    }
}

/// One filter rule's counter: what it matched since the table was last written.
public struct ForwardCounter: Hashable, Sendable {
    /// The rule's comment: `<destination> <action> <protocol> [ports]`, or `<destination> default drop`.
    public var rule: String
    public var packets: Int
    public var bytes: Int

    public init(rule: String, packets: Int, bytes: Int) {
        self.rule = rule
        self.packets = packets
        self.bytes = bytes
    }

    public var jsonObject: [String: Any] { ["rule": rule, "packets": packets, "bytes": bytes] }
}

extension LinuxCommandScripts {
    static let fingerprintPrefix = "routeplane-filter "

    /// The body of the table for `filters` (without the fingerprint rule): a filter `forward` chain, policy accept
    /// (traffic to other destinations is not Routeplane's business), replies of accepted flows accepted first, then per
    /// guarded range its rules in order (drops first) and a final drop for the rest of the mesh's traffic to it.
    static func nftFilterRules(_ filters: [ForwardFilter]) -> [String] {
        var lines: [String] = []
        for f in filters.sorted() {
            let p = f.destination.family == .v4 ? "ip" : "ip6"
            for rule in f.rules {
                let sources = rule.sources.filter { $0.family == f.destination.family }
                if sources.isEmpty { continue }
                var line = "\(p) saddr { \(sources.map(\.description).joined(separator: ", ")) } \(p) daddr \(f.destination)"
                switch rule.protocol {
                case .all: break
                case .icmp: line += f.destination.family == .v4 ? " meta l4proto icmp" : " meta l4proto ipv6-icmp"
                case .tcp, .udp:
                    let ports = rule.ports.map(String.init) + rule.portRanges.map { $0.start == $0.end ? "\($0.start)" : "\($0.start)-\($0.end)" }
                    line += ports.isEmpty ? " meta l4proto \(rule.protocol.rawValue)" : " \(rule.protocol.rawValue) dport { \(ports.joined(separator: ", ")) }"
                }
                let what = [rule.protocol.rawValue] + (rule.ports.map(String.init) + rule.portRanges.map { "\($0.start)-\($0.end)" })
                line += " counter \(rule.action.rawValue) comment \"\(f.destination) \(rule.action.rawValue) \(what.joined(separator: " "))\""
                lines.append(line)
            }
            for mesh in f.meshSources {
                lines.append("\(p) saddr \(mesh) \(p) daddr \(f.destination) counter drop comment \"\(f.destination) default drop\"")
            }
        }
        return lines
    }

    /// A short digest of what the table holds: written into it, compared on the next apply (so an unchanged table is
    /// left alone and its counters keep counting).
    public static func nftFilterFingerprint(_ filters: [ForwardFilter]) -> String {
        String(SHA256Hex.of(Array(nftFilterRules(filters).joined(separator: "\n").utf8)).prefix(16))
    }

    /// Replaces `table inet NAME` as a whole, in one nft transaction (see `nftReplaceTable`).
    public static func nftReplaceFilterTable(_ name: String, filters: [ForwardFilter]) -> String {
        var s = "table inet \(name)\ndelete table inet \(name)\ntable inet \(name) {\n"
        s += "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
        s += "\t\tct state established,related accept comment \"\(fingerprintPrefix)\(nftFilterFingerprint(filters))\"\n"
        for line in nftFilterRules(filters) { s += "\t\t\(line)\n" }
        s += "\t}\n}\n"
        return s
    }
}

extension KernelStateParser {
    /// Parses `nft -j list table inet NAME` for the filter table: the fingerprint (only when the table has the one
    /// `forward` chain Routeplane writes and the fingerprint rule comes first) and the counters of commented rules.
    public static func filterTable(fromNftJSON text: String, tableName: String) throws(KernelStateParseError) -> ObservedFilterTable {
        guard let data = text.data(using: .utf8),
              let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let items = root["nftables"] as? [Any] else {
            throw KernelStateParseError(reason: "nft -j output is not an {\"nftables\": [...]} document")
        }
        var chains = 0
        var wellFormed = true
        var fingerprint: String?
        var firstRule = true
        var counters: [ForwardCounter] = []
        for case let item as [String: Any] in items {
            if let chain = item["chain"] as? [String: Any] {
                guard chain["table"] as? String == tableName else { continue }
                chains += 1
                if chain["name"] as? String != "forward" || chain["type"] as? String != "filter" || chain["hook"] as? String != "forward"
                    || chain["policy"] as? String != "accept" {
                    wellFormed = false
                }
            } else if let rule = item["rule"] as? [String: Any] {
                guard rule["table"] as? String == tableName else { continue }
                let comment = rule["comment"] as? String ?? ""
                if firstRule, comment.hasPrefix(LinuxCommandScripts.fingerprintPrefix) {
                    fingerprint = String(comment.dropFirst(LinuxCommandScripts.fingerprintPrefix.count))
                }
                firstRule = false
                for case let e as [String: Any] in rule["expr"] as? [Any] ?? [] {
                    if let c = e["counter"] as? [String: Any] {
                        counters.append(ForwardCounter(rule: comment, packets: (c["packets"] as? NSNumber)?.intValue ?? 0,
                                                       bytes: (c["bytes"] as? NSNumber)?.intValue ?? 0))
                    }
                }
            }
        }
        return ObservedFilterTable(fingerprint: wellFormed && chains == 1 ? fingerprint : nil, counters: counters)
    }
}
