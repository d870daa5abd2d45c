import RouteModel

/// The text the Linux applier feeds to `ip -batch -` and `nft -f -`. Pure.
public enum LinuxCommandScripts {
    /// One `ip -batch` line per route action; nil for actions that are not routes.
    /// The family follows from the addresses, so IPv4 and IPv6 share one batch.
    public static func ipBatchLine(_ action: ApplierAction) -> String? {
        switch action {
        case .addRoute(let r): return "route add " + routeSpec(r)
        case .replaceRoute(_, let new): return "route replace " + routeSpec(new)
        case .removeRoute(let r): return "route del " + routeSpec(r)
        default: return nil
        }
    }

    public static func ipBatch(_ actions: [ApplierAction]) -> String {
        actions.compactMap(ipBatchLine).map { $0 + "\n" }.joined()
    }

    /// `DST [via GW] [dev DEV] proto P metric M table T` (the protocol makes a `del` match ours only).
    static func routeSpec(_ r: KernelRoute) -> String {
        var s = r.type == "unicast" ? "" : "\(r.type) "
        s += r.destination.description
        if let g = r.gateway { s += " via \(g)" }
        if let d = r.device { s += " dev \(d)" }
        s += " proto \(r.protocolNumber) metric \(r.metric) table \(r.table)"
        return s
    }

    /// Replaces `table inet NAME` as a whole, atomically (one nft transaction): creating the table
    /// first makes the `delete` valid when it did not exist, so the script is idempotent.
    /// Only this table is named: no other table or chain is ever touched.
    public static func nftReplaceTable(_ name: String, rules: [MasqueradeRule]) -> String {
        var s = "table inet \(name)\ndelete table inet \(name)\ntable inet \(name) {\n"
        s += "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        for r in Set(rules).sorted() {
            let p = r.family == .v4 ? "ip" : "ip6"
            s += "\t\t\(p) saddr \(r.source) \(p) daddr \(r.destination) masquerade\n"
        }
        s += "\t}\n}\n"
        return s
    }

    /// Deletes `table inet NAME` if it exists (no error when it does not).
    public static func nftDeleteTable(_ name: String) -> String {
        "table inet \(name)\ndelete table inet \(name)\n"
    }

    public static func sysctlKey(_ family: IPAddress.Family) -> String {
        family == .v4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding"
    }
}
