import Foundation
import RouteModel

/// Where Routeplane's routes live on a WireGuard mesh and how traffic finds them, after NetBird's Linux client
/// (`client/internal/routemanager/systemops/systemops_linux.go`: table 7120, rules at 105 and 110), with numbers of its own
/// so both can run on one host.
///
/// Rules, per address family that has a route in the table (none at all otherwise):
/// - `to <addr> lookup main` at `exclusionPriority`, one per address that must never enter the tunnel: the controller,
///   NATS and every WireGuard endpoint the agent sends to;
/// - `lookup main suppress_prefixlength 0` at `suppressPriority`: the host's own routes win over ours, except its
///   default route (so a LAN route of the host stays local);
/// - `not fwmark <fwmark> lookup <table>` at `tablePriority`: everything else may use our table, except WireGuard's own
///   encrypted packets (the interface marks them), which would otherwise loop into the tunnel.
/// Every rule carries `protocol <protocolNumber>`: the kernel's own ownership marker, so `ip rule` lists exactly ours and
/// removal restores the host exactly.
public struct PolicyRouting: Hashable, Sendable {
    public var table: UInt32
    public var fwmark: UInt32
    public var exclusionPriority: UInt32
    public var suppressPriority: UInt32
    public var tablePriority: UInt32
    public var protocolNumber: UInt8

    public init(table: UInt32 = 7239, fwmark: UInt32 = 0x1C470, exclusionPriority: UInt32 = 5200, suppressPriority: UInt32 = 5210,
                tablePriority: UInt32 = 5220, protocolNumber: UInt8 = 239) {
        self.table = table
        self.fwmark = fwmark
        self.exclusionPriority = exclusionPriority
        self.suppressPriority = suppressPriority
        self.tablePriority = tablePriority
        self.protocolNumber = protocolNumber
    }

    public static let `default` = PolicyRouting()
}

/// One `ip rule` of the shapes Routeplane writes (or observes).
public struct PolicyRule: Hashable, Comparable, Sendable, CustomStringConvertible {
    public enum Selector: Hashable, Sendable {
        /// `to <prefix> lookup main`
        case toMain(Prefix)
        /// `lookup main suppress_prefixlength 0`
        case suppressMainDefault
        /// `not fwmark <mark> lookup <table>`
        case table(UInt32, notFwmark: UInt32)
        /// Anything else (only observed, never written).
        case other(String)
    }

    public var family: IPAddress.Family
    public var priority: UInt32
    public var selector: Selector
    /// nil when the rule carries none (not ours).
    public var protocolNumber: UInt8?

    public init(family: IPAddress.Family, priority: UInt32, selector: Selector, protocolNumber: UInt8?) {
        self.family = family
        self.priority = priority
        self.selector = selector
        self.protocolNumber = protocolNumber
    }

    public static func < (a: PolicyRule, b: PolicyRule) -> Bool {
        if a.family != b.family { return a.family < b.family }
        if a.priority != b.priority { return a.priority < b.priority }
        return a.description < b.description
    }

    /// The `ip rule add|del` arguments after the family flag.
    public var arguments: [String] {
        var out: [String]
        switch selector {
        case .toMain(let p): out = ["to", p.description, "lookup", "main"]
        case .suppressMainDefault: out = ["lookup", "main", "suppress_prefixlength", "0"]
        case .table(let t, let mark): out = ["not", "fwmark", "0x" + String(mark, radix: 16), "lookup", String(t)]
        case .other: out = []  // deleted by priority and protocol
        }
        out += ["priority", String(priority)]
        if let p = protocolNumber { out += ["protocol", String(p)] }
        return out
    }

    public var description: String { (family == .v4 ? "-4 " : "-6 ") + arguments.joined(separator: " ") }
}

/// The policy-routing decisions: wanted rules from the routes in our table and the addresses to keep out of the tunnel,
/// against `ip -j rule show` → rule additions and deletions. Pure; no I/O.
public enum PolicyRoutingPlanner {
    public enum Action: Hashable, Sendable, CustomStringConvertible {
        case add(PolicyRule)
        case delete(PolicyRule)
        public var description: String {
            switch self {
            case .add(let r): "ip rule add \(r)"
            case .delete(let r): "ip rule del \(r)"
            }
        }
    }

    /// The rules for `routes` (what goes into our table) with `exclusions` kept on the host's own routing.
    /// No route of a family: no rule of that family (the host is as if Routeplane were not there).
    public static func wanted(routes: [Prefix], exclusions: [IPAddress], config: PolicyRouting) -> Set<PolicyRule> {
        var out = Set<PolicyRule>()
        for family in [IPAddress.Family.v4, .v6] where routes.contains(where: { $0.family == family }) {
            for a in Set(exclusions) where a.family == family {
                out.insert(PolicyRule(family: family, priority: config.exclusionPriority, selector: .toMain(Prefix(host: a)),
                                      protocolNumber: config.protocolNumber))
            }
            out.insert(PolicyRule(family: family, priority: config.suppressPriority, selector: .suppressMainDefault,
                                  protocolNumber: config.protocolNumber))
            out.insert(PolicyRule(family: family, priority: config.tablePriority, selector: .table(config.table, notFwmark: config.fwmark),
                                  protocolNumber: config.protocolNumber))
        }
        return out
    }

    /// Actions so the host holds exactly `wanted` among the rules carrying our protocol number; rules without it are
    /// never touched. Additions first, exclusions before the table rule (so the controller's traffic never meets the
    /// table), then deletions, the table rule first (so an exclusion never goes while the table still catches).
    public static func plan(wanted: Set<PolicyRule>, observed: [PolicyRule], config: PolicyRouting) -> [Action] {
        let ours = Set(observed.filter { $0.protocolNumber == config.protocolNumber })
        let adds = wanted.subtracting(ours).sorted { order($0, config) < order($1, config) }
        let deletes = ours.subtracting(wanted).sorted { order($0, config) > order($1, config) }
        return adds.map(Action.add) + deletes.map(Action.delete)
    }

    /// Every rule of ours goes.
    public static func planCleanup(observed: [PolicyRule], config: PolicyRouting) -> [Action] {
        plan(wanted: [], observed: observed, config: config)
    }

    private static func order(_ r: PolicyRule, _ config: PolicyRouting) -> (UInt32, String) {
        (r.priority, r.description)
    }

    /// The rules after `actions`.
    public static func simulate(_ actions: [Action], on rules: [PolicyRule]) -> [PolicyRule] {
        var s = rules
        for a in actions {
            switch a {
            case .add(let r): s.append(r)
            case .delete(let r): if let i = s.firstIndex(of: r) { s.remove(at: i) }
            }
        }
        return s
    }

    /// Parses `ip -j rule show` (one family). Rules of other shapes are kept as `.other` (so they are seen, never
    /// matched as ours unless they carry our protocol number, in which case they are deleted as not wanted).
    public static func parse(ipJSON text: String, family: IPAddress.Family) throws(KernelStateParseError) -> [PolicyRule] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        guard let data = trimmed.data(using: .utf8), let array = (try? JSONSerialization.jsonObject(with: data)) as? [Any] else {
            throw KernelStateParseError(reason: "ip -j rule output is not a JSON array: \(trimmed.prefix(200))")
        }
        var out: [PolicyRule] = []
        for case let e as [String: Any] in array {
            guard let priority = (e["priority"] as? NSNumber)?.uint32Value else { continue }
            let proto: UInt8? = (e["protocol"] as? String).flatMap { UInt8($0) } ?? (e["protocol"] as? NSNumber)?.uint8Value
            let table = (e["table"] as? String) ?? ""
            let inverted = e.keys.contains("not")
            let selector: PolicyRule.Selector
            if let dst = e["dst"] as? String, dst != "all", table == "main", !inverted, e["fwmark"] == nil,
               let address = try? IPAddress(parsing: dst) {
                let length = (e["dstlen"] as? NSNumber)?.intValue ?? address.family.bitWidth
                selector = .toMain(Prefix(address, length: length))
            } else if table == "main", (e["suppress_prefixlen"] as? NSNumber)?.intValue == 0, e["dst"] == nil || (e["dst"] as? String) == "all",
                      e["fwmark"] == nil, !inverted {
                selector = .suppressMainDefault
            } else if inverted, let markText = e["fwmark"] as? String, let t = UInt32(table), e["dst"] == nil || (e["dst"] as? String) == "all",
                      let mark = markText.hasPrefix("0x") ? UInt32(markText.dropFirst(2), radix: 16) : UInt32(markText) {
                selector = .table(t, notFwmark: mark)
            } else {
                let keys = e.keys.sorted().map { k in "\(k)=\(e[k].map { v in "\(v)" } ?? "")" }.joined(separator: ",")
                selector = .other(keys)
            }
            out.append(PolicyRule(family: family, priority: priority, selector: selector, protocolNumber: proto))
        }
        return out
    }
}
