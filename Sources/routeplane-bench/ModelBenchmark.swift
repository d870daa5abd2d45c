import RouteModel

/// Micro-benchmark of the pure route model: builds a tenant through `decide`/`evolve`,
/// then measures `view(for:)`, canonical encoding + digest, and single changes (decide, evolve,
/// `affectedPeers`, recomputing only the affected views) against recomputing every peer's view.
/// Returns the report lines. Deterministic for a seed. Release build: a few seconds at the default
/// sizes (10,000 peers, 500 groups, 2,000 routes); a debug build is roughly 10x slower.
func runModelBenchmark(peers: Int = 10_000, groups: Int = 500, routes: Int = 2_000, seed: UInt64 = 42) -> [String] {
    var bench = ModelBench(peerCount: max(peers, 20), groupCount: max(groups, 4), routeCount: max(routes, 2), seed: seed)
    return bench.run()
}

private struct ModelBench {
    let peerCount: Int
    let groupCount: Int
    let routeCount: Int
    var rng: BenchRNG
    var lines: [String] = []
    var state = TenantState()
    let clock = ContinuousClock()

    // Layout: routers first (Linux), then clients. Router groups first, then one group of exactly
    // ten clients ("bench-ten"), then client groups.
    let routerCount: Int
    let routerGroupCount: Int
    var peerIDs: [PeerID] = []
    var routerGroupIDs: [GroupID] = []
    var clientGroupIDs: [GroupID] = []
    let tenGroup: GroupID = "bench-ten"
    let tenRoute: RouteID = "route-ten"

    init(peerCount: Int, groupCount: Int, routeCount: Int, seed: UInt64) {
        self.peerCount = peerCount
        self.groupCount = groupCount
        self.routeCount = routeCount
        rng = BenchRNG(seed: seed)
        routerCount = max(4, peerCount / 50)
        routerGroupCount = max(2, groupCount / 10)
    }

    mutating func log(_ s: String) { lines.append(s) }

    static func ms(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15
    }

    static func us(_ d: Duration) -> Double { ms(d) * 1e3 }

    static func fmt(_ x: Double, _ digits: Int = 2) -> String {
        var p = 1.0
        for _ in 0..<digits { p *= 10 }
        let r = (x * p).rounded() / p
        var s = "\(r)"
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
        }
        return s
    }

    @discardableResult
    mutating func apply(_ c: Command) -> Bool {
        switch decide(c, state) {
        case .success(let events):
            for e in events { state.apply(e) }
            return true
        case .failure:
            return false
        }
    }

    static func meshIP(_ i: Int) -> String {
        let v = UInt32(0x6440_0000) + UInt32(i + 1) // 100.64.0.0/10
        return "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
    }

    mutating func buildTenant() {
        var commands = 0
        let start = clock.now
        let oses = ["linux", "windows", "darwin", "linux", "ios", "android"]
        for i in 0..<peerCount {
            let id = PeerID("peer-\(i)")
            peerIDs.append(id)
            let os = i < routerCount ? "linux" : oses[Int.random(in: 0..<oses.count, using: &rng)]
            apply(.enrollPeer(id: id, name: "host-\(i)", os: os, meshIP: Self.meshIP(i)))
            commands += 1
        }
        for g in 0..<routerGroupCount {
            let id = GroupID("routers-\(g)")
            routerGroupIDs.append(id)
            let members = stride(from: g, to: routerCount, by: routerGroupCount).map { peerIDs[$0] }
            apply(.createGroup(id: id, name: "routers \(g)", peers: members))
            commands += 1
        }
        let clients = Array(peerIDs[routerCount...])
        apply(.createGroup(id: tenGroup, name: "ten clients", peers: Array(clients.prefix(10))))
        commands += 1
        let clientGroups = groupCount - routerGroupCount - 1
        var members = [[PeerID]](repeating: [], count: max(clientGroups, 1))
        for p in clients {
            // Every client is in two client groups.
            for _ in 0..<2 { members[Int.random(in: 0..<members.count, using: &rng)].append(p) }
        }
        for g in 0..<max(clientGroups, 1) {
            let id = GroupID("clients-\(g)")
            clientGroupIDs.append(id)
            apply(.createGroup(id: id, name: "clients \(g)", peers: members[g]))
            commands += 1
        }
        // Routes come in HA pairs (same network id and range): one with a single routing peer,
        // one with a group of routing peers. Every 20th pair is a domain route.
        var refused = 0
        for i in 0..<routeCount {
            let k = i / 2
            let id: RouteID = i == 0 ? tenRoute : RouteID("route-\(i)")
            let isDomain = k % 20 == 19
            let network = isDomain ? nil : "10.\((k >> 8) & 0xff).\(k & 0xff).0/24"
            let domains = isDomain ? ["svc\(k).example.com", "*.svc\(k).example.net"] : nil
            let distribution: [GroupID] = i == 0
                ? [tenGroup]
                : (0..<Int.random(in: 1...2, using: &rng)).map { _ in clientGroupIDs[Int.random(in: 0..<clientGroupIDs.count, using: &rng)] }
            var ok = false
            for attempt in 0..<4 where !ok {
                let direct = i % 2 == 0
                let input = RouteInput(
                    networkID: "net-\(k)", description: "bench route \(i)", network: network, domains: domains,
                    peer: direct ? peerIDs[(k + attempt * 7) % routerCount] : nil,
                    peerGroups: direct ? nil : [routerGroupIDs[(k + 1 + attempt) % routerGroupCount]],
                    metric: 100 + Int.random(in: 0..<400, using: &rng), masquerade: Int.random(in: 0..<4, using: &rng) != 0,
                    groups: distribution, enabled: i == 0 || Int.random(in: 0..<20, using: &rng) != 0,
                    keepRoute: false)
                ok = apply(.createRoute(id: id, input))
                commands += 1
            }
            if !ok { refused += 1 }
        }
        let elapsed = clock.now - start
        log("tenant: \(state.peers.count) peers (\(routerCount) linux routing peers), \(state.groups.count) groups, \(state.routes.count) routes (\(refused) refused)")
        log("build through decide+evolve: \(commands) commands in \(Self.fmt(Self.ms(elapsed))) ms (\(Self.fmt(Self.us(elapsed) / Double(commands))) us/command)")
    }

    /// Views of every peer, computed from scratch (the full-recompute baseline), with encoding and digest.
    func fullRecompute() -> [PeerID: String] {
        var out: [PeerID: String] = [:]
        out.reserveCapacity(peerIDs.count)
        for p in peerIDs { out[p] = view(for: p, in: state).encoded().digest }
        return out
    }

    mutating func measureViews() -> Double {
        // view(for:) alone over every peer.
        var sets = 0
        var t0 = clock.now
        for p in peerIDs { sets &+= view(for: p, in: state).haSets.count }
        let viewAll = clock.now - t0
        // view + canonical JSON + SHA-256.
        var bytes = 0
        t0 = clock.now
        for p in peerIDs { bytes &+= view(for: p, in: state).encoded().json.count }
        let fullAll = clock.now - t0
        let n = Double(peerIDs.count)
        log("view(for:): \(Self.fmt(Self.us(viewAll) / n)) us/call (avg \(Self.fmt(Double(sets) / n, 1)) HA sets per peer)")
        log("view(for:) + canonical JSON + SHA-256: \(Self.fmt(Self.us(fullAll) / n)) us/call (avg \(bytes / peerIDs.count) bytes)")
        log("full recompute of all \(peerIDs.count) views (+encode+digest): \(Self.fmt(Self.ms(fullAll))) ms")
        return Self.ms(fullAll)
    }

    /// One change: decide, then for each event evolve in place collecting the affected peers
    /// (`TenantState.apply(_:affected:)`, what a projection does), then recompute, encode and
    /// digest only the affected views. Averaged over `repeats` runs of `commands` (which leave the
    /// state as they found it). With `verify`, the first run also recomputes every view after
    /// each event and checks that every view that changed was in the affected set.
    mutating func measureChange(_ name: String, _ commands: [Command], repeats: Int, fullMs: Double, verify: Bool) {
        var decideT = Duration.zero, applyT = Duration.zero, viewsT = Duration.zero
        var affectedTotal = 0, changes = 0, changedViews = 0, missed = 0
        var digests = verify ? fullRecompute() : [:]
        for r in 0..<repeats {
            for c in commands {
                var t = clock.now
                guard case .success(let events) = decide(c, state) else {
                    log("\(name): command refused")
                    return
                }
                decideT += clock.now - t
                for e in events {
                    var affected = Set<PeerID>()
                    t = clock.now
                    state.apply(e, affected: &affected)
                    applyT += clock.now - t
                    t = clock.now
                    for p in affected { _ = view(for: p, in: state).encoded() }
                    viewsT += clock.now - t
                    affectedTotal += affected.count
                    if verify && r == 0 {
                        let after = fullRecompute()
                        for p in peerIDs where digests[p] != after[p] {
                            changedViews += 1
                            if !affected.contains(p) { missed += 1 }
                        }
                        digests = after
                    }
                }
                changes += 1
            }
        }
        let n = Double(changes)
        let perChange = Self.ms(decideT + applyT + viewsT) / n
        let affectedPerChange = Double(affectedTotal) / n
        var line = "\(name): \(Self.fmt(affectedPerChange, 1)) affected peers/change"
        if verify {
            line += " (\(Self.fmt(Double(changedViews) / Double(commands.count), 1)) views really changed; "
                + (missed == 0 ? "none missed, checked against full recompute)" : "\(missed) MISSED: bug)")
        }
        log(line)
        log("    per change: decide \(Self.fmt(Self.us(decideT) / n)) us, evolve+affectedPeers \(Self.fmt(Self.us(applyT) / n)) us, "
            + "affected views+encode+digest \(Self.fmt(Self.us(viewsT) / n)) us = \(Self.fmt(perChange, 3)) ms")
        log("    vs full recompute \(Self.fmt(fullMs)) ms: \(Self.fmt(fullMs / max(perChange, 1e-6), 0))x faster, "
            + "\(Self.fmt(Double(peerIDs.count) / max(affectedPerChange, 1), 0))x fewer views")
    }

    /// `affectedPeers(event, before:, after:)` on its own, for one event (state copies excluded).
    mutating func measureAffectedPeers(_ name: String, _ command: Command, repeats: Int) {
        guard case .success(let events) = decide(command, state), let e = events.first else { return }
        let before = state
        let after = evolve(state, e)
        var count = 0
        let t = clock.now
        for _ in 0..<repeats { count &+= affectedPeers(e, before: before, after: after).count }
        let d = clock.now - t
        log("affectedPeers(\(name)): \(Self.fmt(Self.us(d) / Double(repeats))) us/call, \(count / repeats) peers")
    }

    /// Decoding stored events (what a projection rebuild does per event): the hand-written
    /// `RouteEvent.decode` against the Foundation `JSONDecoder` path it replaced, same events, same run.
    mutating func measureDecoding() {
        var stored: [(type: String, json: [UInt8])] = []
        var routeUpdates: [(type: String, json: [UInt8])] = []
        for p in peerIDs.prefix(1_000) { if let peer = state.peer(p) { stored.append(RouteEvent.peerEnrolled(PeerEnrolled(peer: peer)).encode()) } }
        for g in state.groups.values.sorted(by: { $0.id < $1.id }) { stored.append(RouteEvent.groupCreated(GroupCreated(group: g)).encode()) }
        for r in state.routes.values.sorted(by: { $0.id < $1.id }).prefix(1_000) {
            var new = r
            new.metric = r.metric == 9999 ? 1 : r.metric + 1
            stored.append(RouteEvent.routeCreated(RouteCreated(route: r)).encode())
            let update = RouteEvent.routeUpdated(RouteUpdated(old: r, new: new)).encode()
            stored.append(update)
            routeUpdates.append(update)
        }
        func time(_ events: [(type: String, json: [UInt8])], rounds: Int, _ decode: (String, [UInt8]) throws(EventDecodingError) -> RouteEvent) -> (us: Double, ok: Int) {
            var ok = 0
            let t = clock.now
            for _ in 0..<rounds {
                for e in events { if (try? decode(e.type, e.json)) != nil { ok += 1 } }
            }
            return (Self.us(clock.now - t) / Double(rounds * events.count), ok)
        }
        var same = 0
        for e in stored where (try? RouteEvent.decode(type: e.type, json: e.json)) == (try? RouteEvent.decodeWithFoundation(type: e.type, json: e.json)) { same += 1 }
        let bytes = stored.reduce(0) { $0 + $1.json.count }
        let oldAll = time(stored, rounds: 1, RouteEvent.decodeWithFoundation)
        let newAll = time(stored, rounds: 10, RouteEvent.decode)
        let oldUpd = time(routeUpdates, rounds: 1, RouteEvent.decodeWithFoundation)
        let newUpd = time(routeUpdates, rounds: 10, RouteEvent.decode)
        log("decode stored events (\(stored.count) mixed, avg \(bytes / max(stored.count, 1)) bytes; \(same) of them decode identically both ways):")
        log("    Foundation JSONDecoder \(Self.fmt(oldAll.us)) us/event, JSONReader \(Self.fmt(newAll.us)) us/event: \(Self.fmt(oldAll.us / max(newAll.us, 1e-9), 1))x faster")
        log("    RouteUpdated only (\(routeUpdates.count)): Foundation \(Self.fmt(oldUpd.us)) us/event, JSONReader \(Self.fmt(newUpd.us)) us/event: "
            + "\(Self.fmt(oldUpd.us / max(newUpd.us, 1e-9), 1))x faster")
    }

    mutating func run() -> [String] {
        buildTenant()
        measureDecoding()
        let fullMs = measureViews()
        guard let ten = state.route(tenRoute) else {
            log("route-ten missing: benchmark tenant did not build")
            return lines
        }
        func input(_ r: Route, metric: Int) -> RouteInput {
            RouteInput(networkID: r.networkID, description: r.description, network: r.destination.network?.description,
                       domains: r.destination.domains, peer: r.routingPeers.peer, peerGroups: r.routingPeers.peerGroups,
                       metric: metric, masquerade: r.masquerade, groups: r.groups, enabled: r.enabled,
                       keepRoute: r.keepRoute, accessControlGroups: r.accessControlGroups, skipAutoApply: r.skipAutoApply)
        }
        let repeats = 200
        measureAffectedPeers("metric change, route to 10 peers", .updateRoute(id: tenRoute, input(ten, metric: ten.metric + 1)), repeats: 1000)
        measureChange("change metric of a route distributed to 10 peers",
                      [.updateRoute(id: tenRoute, input(ten, metric: ten.metric + 1)), .updateRoute(id: tenRoute, input(ten, metric: ten.metric))],
                      repeats: repeats, fullMs: fullMs, verify: true)

        // A client joins a client group (and leaves again).
        let g = clientGroupIDs[0]
        let outsider = peerIDs[routerCount...].first { !state.groups(of: $0).contains(g) } ?? peerIDs[routerCount]
        measureChange("add a peer to a group (\(state.group(g)?.peers.count ?? 0) members, used by \(state.routes(using: g).count) routes)",
                      [.addGroupPeers(id: g, peers: [outsider]), .removeGroupPeers(id: g, peers: [outsider])],
                      repeats: repeats, fullMs: fullMs, verify: true)

        // Disable and re-enable a route with a peer group distributed to two client groups.
        if let pgRoute = state.routes.values.filter({ $0.routingPeers.peerGroups != nil && $0.enabled && $0.groups.count == 2 }).min(by: { $0.id < $1.id }) {
            var off = input(pgRoute, metric: pgRoute.metric)
            off.enabled = false
            measureChange("disable/enable an HA route (peer group, \(state.members(of: pgRoute.groups).count) clients)",
                          [.updateRoute(id: pgRoute.id, off), .updateRoute(id: pgRoute.id, input(pgRoute, metric: pgRoute.metric))],
                          repeats: 50, fullMs: fullMs, verify: true)
        }

        // A new routing peer joins a routing peer group: every client of the routes it serves
        // gains a candidate (the widest single change in this tenant).
        let rg = routerGroupIDs[0]
        let newRouter = peerIDs[0..<routerCount].first { !state.groups(of: $0).contains(rg) } ?? peerIDs[1]
        let served = state.routes(using: rg).count
        measureChange("add a routing peer to a peer group (serving \(served) routes)",
                      [.addGroupPeers(id: rg, peers: [newRouter]), .removeGroupPeers(id: rg, peers: [newRouter])],
                      repeats: 20, fullMs: fullMs, verify: true)

        // Rename: no view changes at all.
        measureChange("rename a peer", [.renamePeer(id: peerIDs[5], name: "renamed"), .renamePeer(id: peerIDs[5], name: "host-5")],
                      repeats: repeats, fullMs: fullMs, verify: false)
        return lines
    }
}
