import RouteModel

/// One peer of the agent's WireGuard interface as `wg show IF dump` prints it.
public struct ObservedWireGuardPeer: Hashable, Sendable {
    public var publicKey: String
    /// `host:port`, nil for `(none)`.
    public var endpoint: String?
    public var allowedIPs: [Prefix]
    /// Unix seconds of the latest handshake; 0 = never.
    public var latestHandshake: Int64
    /// Seconds; 0 = off.
    public var persistentKeepalive: Int

    public init(publicKey: String, endpoint: String? = nil, allowedIPs: [Prefix] = [], latestHandshake: Int64 = 0,
                persistentKeepalive: Int = 0) {
        self.publicKey = publicKey
        self.endpoint = endpoint
        self.allowedIPs = allowedIPs
        self.latestHandshake = latestHandshake
        self.persistentKeepalive = persistentKeepalive
    }
}

/// The interface as `wg show IF dump` prints it.
public struct ObservedWireGuard: Hashable, Sendable {
    public var publicKey: String
    public var listenPort: Int
    /// nil for `off`.
    public var fwmark: UInt32?
    public var peers: [ObservedWireGuardPeer]

    public init(publicKey: String = "", listenPort: Int = 0, fwmark: UInt32? = nil, peers: [ObservedWireGuardPeer] = []) {
        self.publicKey = publicKey
        self.listenPort = listenPort
        self.fwmark = fwmark
        self.peers = peers
    }

    /// Parses `wg show IF dump`: a first line for the interface (private key, public key, listen port, fwmark), then one
    /// tab-separated line per peer (public key, preshared key, endpoint, allowed ips, latest handshake, rx, tx, keepalive).
    /// The private key is read past, never kept.
    public static func parse(dump text: String) throws(KernelStateParseError) -> ObservedWireGuard {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard !lines.isEmpty else { throw KernelStateParseError(reason: "wg show dump is empty") }
        let head = lines.removeFirst().split(separator: "\t", omittingEmptySubsequences: false)
        guard head.count == 4, let port = Int(head[2]) else {
            throw KernelStateParseError(reason: "wg show dump: the interface line has \(head.count) fields, expected 4")
        }
        var out = ObservedWireGuard(publicKey: String(head[1]), listenPort: port, fwmark: parseMark(head[3]))
        for (i, line) in lines.enumerated() {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 8 else {
                throw KernelStateParseError(reason: "wg show dump: peer line \(i + 1) has \(f.count) fields, expected 8")
            }
            var allowed: [Prefix] = []
            if f[3] != "(none)" {
                for a in f[3].split(separator: ",") {
                    guard let p = try? Prefix(parsing: String(a)) else {
                        throw KernelStateParseError(reason: "wg show dump: allowed ip \"\(a)\" is not a range")
                    }
                    allowed.append(p)
                }
            }
            out.peers.append(ObservedWireGuardPeer(publicKey: String(f[0]), endpoint: f[2] == "(none)" ? nil : String(f[2]),
                                                   allowedIPs: allowed, latestHandshake: Int64(f[4]) ?? 0,
                                                   persistentKeepalive: Int(f[7]) ?? 0))
        }
        return out
    }

    private static func parseMark(_ s: Substring) -> UInt32? {
        if s == "off" || s == "0" { return nil }
        if s.hasPrefix("0x") { return UInt32(s.dropFirst(2), radix: 16) }
        return UInt32(s)
    }
}

/// What the agent does to its WireGuard interface (`wg set`).
public enum WireGuardAction: Hashable, Sendable, CustomStringConvertible {
    /// `wg set IF peer KEY [endpoint E] persistent-keepalive N allowed-ips A,B`: the peer gets exactly these allowed
    /// IPs (WireGuard moves a range from the peer that held it). `endpoint` nil: left as it is (roaming is kept).
    case setPeer(publicKey: String, endpoint: String?, keepalive: Int, allowedIPs: [Prefix])
    /// `wg set IF peer KEY remove`.
    case removePeer(publicKey: String)

    public var description: String {
        switch self {
        case .setPeer(let key, let endpoint, let keepalive, let allowed):
            return "wg peer \(key.prefix(8))…" + (endpoint.map { " endpoint \($0)" } ?? "") + " keepalive \(keepalive) allowed-ips "
                + allowed.map(\.description).joined(separator: ",")
        case .removePeer(let key): return "wg peer \(key.prefix(8))… remove"
        }
    }
}

/// The agent's WireGuard peers: desired (from the view's `wireguard_peers` and the chosen routes) against the interface
/// (`wg show IF dump`) → `wg set` actions. Pure; no I/O.
public enum WireGuardPlanner {
    /// A peer as the agent wants it.
    public struct WantedPeer: Hashable, Sendable {
        public var publicKey: String
        public var endpoint: String?
        public var keepalive: Int
        /// Sorted: the peer's mesh address (/32 or /128) and every range whose chosen routing peer it is.
        public var allowedIPs: [Prefix]
    }

    /// Keepalive on peers the agent sends to (it knows their endpoint): keeps NAT state open and handshakes fresh, so the
    /// latest-handshake age is a health signal.
    public static let keepaliveSeconds = 25

    /// The peers `desired` calls for: every mesh peer of the view, allowed its own mesh address plus each route whose
    /// next hop is that address (the routing peer the selection chose: failover is this list moving).
    /// Routes whose next hop is no mesh peer with a key are returned in `unreachable`.
    public static func wanted(_ desired: DesiredRouteState) -> (peers: [WantedPeer], unreachable: [ClientRoute]) {
        var byAddress: [IPAddress: Int] = [:]
        var peers: [WantedPeer] = []
        for p in desired.meshPeers.sorted() {
            guard byAddress[p.meshIP] == nil else { continue }
            byAddress[p.meshIP] = peers.count
            let endpoint = p.endpoints.first
            peers.append(WantedPeer(publicKey: p.publicKey, endpoint: endpoint, keepalive: endpoint == nil ? 0 : keepaliveSeconds,
                                    allowedIPs: [Prefix(host: p.meshIP)]))
        }
        var unreachable: [ClientRoute] = []
        for r in desired.routes.sorted() {
            guard let i = byAddress[r.nextHop] else { unreachable.append(r); continue }
            peers[i].allowedIPs.append(r.destination)
        }
        for i in peers.indices { peers[i].allowedIPs = Set(peers[i].allowedIPs).sorted() }
        return (peers, unreachable)
    }

    public struct Plan: Hashable, Sendable {
        public var actions: [WireGuardAction]
        /// Ranges a peer this agent did not add holds: not taken from it, so not routed through the wanted peer.
        public var conflicts: [Prefix]
        /// The keys this agent has added (to persist): exactly the wanted ones.
        public var owned: Set<String>
    }

    /// What to do so the interface holds `wanted`.
    ///
    /// - Peers the agent did not add (`owned` = the keys it added, persisted) are never changed or removed, and a range
    ///   one of them holds is not taken away (a conflict, reported).
    /// - A wanted peer is set when missing or when its allowed IPs or keepalive differ; its endpoint is set when the
    ///   peer is new or has none (an endpoint learnt from the peer's own packets, roaming, is kept).
    /// - Order: peers that gain a range first (WireGuard moves it from its old holder at once, so no packet finds no
    ///   peer), then the others, then removals of peers this agent added and no longer wants.
    public static func plan(wanted: [WantedPeer], observed: ObservedWireGuard, owned: Set<String>) -> Plan {
        let wantedKeys = Set(wanted.map(\.publicKey))
        var observedByKey: [String: ObservedWireGuardPeer] = [:]
        for p in observed.peers { observedByKey[p.publicKey] = p }
        var foreignHeld = Set<Prefix>()
        for p in observed.peers where !owned.contains(p.publicKey) && !wantedKeys.contains(p.publicKey) {
            foreignHeld.formUnion(p.allowedIPs)
        }
        var gaining: [WireGuardAction] = []
        var others: [WireGuardAction] = []
        var conflicts: [Prefix] = []
        for w in wanted.sorted(by: { $0.publicKey < $1.publicKey }) {
            let allowed = w.allowedIPs.filter { p in
                if foreignHeld.contains(p) { conflicts.append(p); return false }
                return true
            }
            let current = observedByKey[w.publicKey]
            let endpoint = current?.endpoint == nil ? w.endpoint : nil
            let same = current.map { Set($0.allowedIPs) == Set(allowed) && $0.persistentKeepalive == w.keepalive } ?? false
            if same && endpoint == nil { continue }
            let action = WireGuardAction.setPeer(publicKey: w.publicKey, endpoint: endpoint, keepalive: w.keepalive, allowedIPs: allowed)
            if !Set(allowed).subtracting(current?.allowedIPs ?? []).isEmpty { gaining.append(action) } else { others.append(action) }
        }
        var removals: [WireGuardAction] = []
        for p in observed.peers.sorted(by: { $0.publicKey < $1.publicKey })
        where owned.contains(p.publicKey) && !wantedKeys.contains(p.publicKey) {
            removals.append(.removePeer(publicKey: p.publicKey))
        }
        return Plan(actions: gaining + others + removals, conflicts: conflicts.sorted(), owned: wantedKeys)
    }

    /// Every peer this agent added goes (cleanup); the others stay.
    public static func planCleanup(observed: ObservedWireGuard, owned: Set<String>) -> [WireGuardAction] {
        observed.peers.map(\.publicKey).sorted().filter(owned.contains).map { .removePeer(publicKey: $0) }
    }

    /// The interface after `actions` as WireGuard applies them (a range set on one peer leaves any other). For the
    /// dry-run applier and the tests.
    public static func simulate(_ actions: [WireGuardAction], on state: ObservedWireGuard) -> ObservedWireGuard {
        var s = state
        for a in actions {
            switch a {
            case .setPeer(let key, let endpoint, let keepalive, let allowed):
                let moved = Set(allowed)
                for i in s.peers.indices where s.peers[i].publicKey != key {
                    s.peers[i].allowedIPs.removeAll { moved.contains($0) }
                }
                if let i = s.peers.firstIndex(where: { $0.publicKey == key }) {
                    s.peers[i].allowedIPs = allowed
                    s.peers[i].persistentKeepalive = keepalive
                    if let endpoint { s.peers[i].endpoint = endpoint }
                } else {
                    s.peers.append(ObservedWireGuardPeer(publicKey: key, endpoint: endpoint, allowedIPs: allowed,
                                                         persistentKeepalive: keepalive))
                }
            case .removePeer(let key):
                s.peers.removeAll { $0.publicKey == key }
            }
        }
        return s
    }
}

extension Prefix {
    /// The single-address range of `address` (/32 or /128).
    public init(host address: IPAddress) {
        self.init(address, length: address.family.bitWidth)
    }
}
