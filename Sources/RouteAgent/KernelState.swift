import Foundation
import RouteModel

/// A route as the kernel holds it (one entry of `ip -j -N route show table T`).
public struct KernelRoute: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var destination: Prefix
    public var gateway: IPAddress?
    public var device: String?
    /// The kernel's metric (`priority`); IPv6 shows 1024 for a route added with metric 0.
    public var metric: UInt32
    /// Route protocol number (`proto`): Routeplane's marker, or someone else's (2 kernel, 4 static, …).
    public var protocolNumber: UInt8
    public var table: UInt32
    /// `unicast` unless the route is `blackhole`, `unreachable`, `local`, …
    public var type: String

    public init(destination: Prefix, gateway: IPAddress?, device: String? = nil, metric: UInt32, protocolNumber: UInt8,
                table: UInt32, type: String = "unicast") {
        self.destination = destination
        self.gateway = gateway
        self.device = device
        self.metric = metric
        self.protocolNumber = protocolNumber
        self.table = table
        self.type = type
    }

    public static func < (a: KernelRoute, b: KernelRoute) -> Bool {
        if a.destination != b.destination { return a.destination < b.destination }
        if a.metric != b.metric { return a.metric < b.metric }
        if a.protocolNumber != b.protocolNumber { return a.protocolNumber < b.protocolNumber }
        return (a.gateway?.description ?? "") < (b.gateway?.description ?? "")
    }

    public var description: String {
        var s = type == "unicast" ? "" : "\(type) "
        s += destination.description
        if let g = gateway { s += " via \(g)" }
        if let d = device { s += " dev \(d)" }
        s += " proto \(protocolNumber) metric \(metric) table \(table)"
        return s
    }
}

/// The NAT table of Routeplane's own as `nft -j list table inet NAME` shows it.
public struct ObservedNATTable: Hashable, Sendable {
    /// The masquerade rules recognised in the table's `postrouting` chain.
    public var rules: [MasqueradeRule]
    /// True when the table holds exactly the layout Routeplane writes: one nat `postrouting` chain at
    /// priority srcnat, policy accept, and only recognised rules. Anything else is replaced.
    public var wellFormed: Bool

    public init(rules: [MasqueradeRule], wellFormed: Bool) {
        self.rules = rules
        self.wellFormed = wellFormed
    }
}

/// What the kernel holds, as far as the applier looks.
public struct ObservedState: Hashable, Sendable {
    /// Every route of the applier's table, both families, whoever added it (needed to see conflicts).
    public var routes: [KernelRoute]
    /// `net.ipv4.ip_forward` / `net.ipv6.conf.all.forwarding`; absent when it could not be read.
    public var forwarding: [IPAddress.Family: Bool]
    /// `nil` when the table does not exist.
    public var natTable: ObservedNATTable?
    /// `nil` when the filter table does not exist.
    public var filterTable: ObservedFilterTable?

    public init(routes: [KernelRoute] = [], forwarding: [IPAddress.Family: Bool] = [:], natTable: ObservedNATTable? = nil,
                filterTable: ObservedFilterTable? = nil) {
        self.routes = routes
        self.forwarding = forwarding
        self.natTable = natTable
        self.filterTable = filterTable
    }
}

/// Kernel output could not be understood.
public struct KernelStateParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { "cannot parse kernel state: \(reason)" }
}

/// Parsers for `ip -j -N route show` and `nft -j list table` output (pure: text in, values out).
public enum KernelStateParser {
    /// Parses `ip -j -N route show table T` output. Routes whose destination is not an address
    /// range (multicast tables, `nexthop` objects, …) are skipped; `default` is `0.0.0.0/0` / `::/0`.
    public static func routes(fromIPJSON text: String, family: IPAddress.Family, table: UInt32) throws(KernelStateParseError) -> [KernelRoute] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        guard let data = trimmed.data(using: .utf8),
              let array = (try? JSONSerialization.jsonObject(with: data)) as? [Any] else {
            throw KernelStateParseError(reason: "ip -j route output is not a JSON array: \(trimmed.prefix(200))")
        }
        var out: [KernelRoute] = []
        for case let entry as [String: Any] in array {
            guard let dstText = entry["dst"] as? String, let dst = parsePrefix(dstText, family: family) else { continue }
            let gateway = (entry["gateway"] as? String).flatMap { try? IPAddress(parsing: $0) }
            let metric = (entry["metric"] as? NSNumber)?.uint32Value ?? 0
            let proto: UInt8
            if let p = entry["protocol"] as? String {
                proto = UInt8(p) ?? protocolNumber(named: p)
            } else if let p = entry["protocol"] as? NSNumber {
                proto = p.uint8Value
            } else {
                proto = 3 // iproute2 leaves out `proto boot` (RTPROT_BOOT), the default of `ip route add`
            }
            out.append(KernelRoute(destination: dst, gateway: gateway, device: entry["dev"] as? String, metric: metric,
                                   protocolNumber: proto, table: table, type: routeType(entry["type"])))
        }
        return out
    }

    /// Parses `nft -j list table inet NAME`. Returns the recognised masquerade rules and whether
    /// the table has exactly the shape Routeplane writes.
    public static func natTable(fromNftJSON text: String, tableName: String) throws(KernelStateParseError) -> ObservedNATTable {
        guard let data = text.data(using: .utf8),
              let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let items = root["nftables"] as? [Any] else {
            throw KernelStateParseError(reason: "nft -j output is not an {\"nftables\": [...]} document")
        }
        var wellFormed = true
        var chainSeen = false
        var rules: [MasqueradeRule] = []
        for case let item as [String: Any] in items {
            if let chain = item["chain"] as? [String: Any] {
                guard chain["table"] as? String == tableName else { continue }
                if chainSeen || chain["name"] as? String != "postrouting" || chain["type"] as? String != "nat"
                    || chain["hook"] as? String != "postrouting" || (chain["prio"] as? NSNumber)?.intValue != 100
                    || chain["policy"] as? String != "accept" {
                    wellFormed = false
                }
                chainSeen = true
            } else if let rule = item["rule"] as? [String: Any] {
                guard rule["table"] as? String == tableName else { continue }
                if rule["chain"] as? String == "postrouting", let r = masqueradeRule(rule["expr"]) {
                    rules.append(r)
                } else {
                    wellFormed = false
                }
            } else if item["table"] != nil || item["metainfo"] != nil {
                continue
            } else {
                // sets, maps, counters, flowtables: not something Routeplane writes.
                wellFormed = false
            }
        }
        if !chainSeen { wellFormed = false }
        if Set(rules).count != rules.count { wellFormed = false }
        return ObservedNATTable(rules: rules, wellFormed: wellFormed)
    }

    /// `[match saddr, match daddr, masquerade]` with one family, or nil.
    static func masqueradeRule(_ expr: Any?) -> MasqueradeRule? {
        guard let list = expr as? [Any], list.count == 3,
              let m0 = (list[0] as? [String: Any])?["match"] as? [String: Any],
              let m1 = (list[1] as? [String: Any])?["match"] as? [String: Any],
              let last = list[2] as? [String: Any], last.count == 1, last.keys.first == "masquerade" else { return nil }
        guard let (p0, f0, s) = payloadMatch(m0), let (p1, f1, d) = payloadMatch(m1),
              p0 == p1, f0 == "saddr", f1 == "daddr" else { return nil }
        let family: IPAddress.Family = p0 == "ip" ? .v4 : .v6
        guard s.family == family, d.family == family else { return nil }
        return MasqueradeRule(source: s, destination: d)
    }

    static func payloadMatch(_ m: [String: Any]) -> (String, String, Prefix)? {
        guard m["op"] as? String == "==",
              let payload = (m["left"] as? [String: Any])?["payload"] as? [String: Any],
              let proto = payload["protocol"] as? String, proto == "ip" || proto == "ip6",
              let field = payload["field"] as? String else { return nil }
        let family: IPAddress.Family = proto == "ip" ? .v4 : .v6
        let prefix: Prefix?
        if let s = m["right"] as? String {
            prefix = parsePrefix(s, family: family)
        } else if let p = (m["right"] as? [String: Any])?["prefix"] as? [String: Any],
                  let addr = p["addr"] as? String, let len = (p["len"] as? NSNumber)?.intValue,
                  let a = try? IPAddress(parsing: addr), a.family == family, len >= 0, len <= family.bitWidth {
            prefix = Prefix(a, length: len)
        } else {
            prefix = nil
        }
        guard let prefix else { return nil }
        return (proto, field, prefix)
    }

    /// `10.0.0.0/24`, a bare host address (`10.0.0.5` → /32), or `default`.
    static func parsePrefix(_ text: String, family: IPAddress.Family) -> Prefix? {
        if text == "default" {
            return family == .v4 ? Prefix(IPAddress(v4: 0), length: 0) : Prefix(IPAddress(v6High: 0, low: 0), length: 0)
        }
        if text.contains("/") {
            guard let p = try? Prefix(parsing: text), p.family == family else { return nil }
            return p
        }
        guard let a = try? IPAddress(parsing: text), a.family == family else { return nil }
        return Prefix(a, length: family.bitWidth)
    }

    /// The route type by name: `ip -N` prints it as a number (`"type":"7"` for unreachable), which `ip route` cannot read back.
    static func routeType(_ value: Any?) -> String {
        let text = (value as? String) ?? (value as? NSNumber)?.stringValue ?? "unicast"
        switch text {
        case "1": return "unicast"
        case "2": return "local"
        case "3": return "broadcast"
        case "4": return "anycast"
        case "5": return "multicast"
        case "6": return "blackhole"
        case "7": return "unreachable"
        case "8": return "prohibit"
        case "9": return "throw"
        case "10": return "nat"
        default: return text
        }
    }

    /// iproute2's names, for output that was not numeric.
    static func protocolNumber(named name: String) -> UInt8 {
        switch name {
        case "redirect": return 1
        case "kernel": return 2
        case "boot": return 3
        case "static": return 4
        case "ra": return 9
        case "dhcp": return 16
        case "babel": return 42
        case "bgp": return 186
        case "isis": return 187
        case "ospf": return 188
        case "rip": return 189
        default: return 0
        }
    }
}
