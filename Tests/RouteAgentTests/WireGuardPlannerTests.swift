import Foundation
import RouteAgent
import RouteModel
import Testing

private func key(_ n: UInt8) -> String { Data([n] + [UInt8](repeating: 9, count: 31)).base64EncodedString() }

private let r1 = WireGuardPeer(peerID: "r1", meshIP: addr("100.64.0.1"), publicKey: key(1), endpoints: ["10.99.1.1:51820"])
private let r2 = WireGuardPeer(peerID: "r2", meshIP: addr("100.64.0.2"), publicKey: key(2), endpoints: ["10.99.2.1:51820"])
private let lan = pfx("10.20.0.0/24")

private func desired(via hop: String?, peers: [WireGuardPeer] = [r1, r2]) -> DesiredRouteState {
    DesiredRouteState(routes: hop.map { [ClientRoute(destination: lan, nextHop: addr($0))] } ?? [], meshPeers: peers)
}

private func plan(_ d: DesiredRouteState, _ observed: ObservedWireGuard, owned: Set<String>) -> WireGuardPlanner.Plan {
    WireGuardPlanner.plan(wanted: WireGuardPlanner.wanted(d).peers, observed: observed, owned: owned)
}

private func allowed(_ s: ObservedWireGuard, _ k: String) -> Set<Prefix> {
    Set(s.peers.first { $0.publicKey == k }?.allowedIPs ?? [])
}

@Suite(.timeLimit(.minutes(1))) struct WireGuardPlannerTests {
    @Test func theChosenRoutingPeerHoldsTheRangeAndFailoverMovesIt() {
        var kernel = ObservedWireGuard(publicKey: key(100), listenPort: 51820)
        let first = plan(desired(via: "100.64.0.1"), kernel, owned: [])
        kernel = WireGuardPlanner.simulate(first.actions, on: kernel)
        #expect(allowed(kernel, key(1)) == [pfx("100.64.0.1/32"), lan])
        #expect(allowed(kernel, key(2)) == [pfx("100.64.0.2/32")])
        // New peers get their endpoint and a keepalive.
        #expect(kernel.peers.allSatisfy { $0.endpoint != nil && $0.persistentKeepalive == WireGuardPlanner.keepaliveSeconds })
        #expect(first.owned == [key(1), key(2)])

        // The selection moves to r2: r2 gains the range first, then r1 is narrowed.
        let failover = plan(desired(via: "100.64.0.2"), kernel, owned: first.owned)
        #expect(failover.actions == [
            .setPeer(publicKey: key(2), endpoint: nil, keepalive: 25, allowedIPs: [lan, pfx("100.64.0.2/32")].sorted()),
            .setPeer(publicKey: key(1), endpoint: nil, keepalive: 25, allowedIPs: [pfx("100.64.0.1/32")]),
        ])
        kernel = WireGuardPlanner.simulate(failover.actions, on: kernel)
        #expect(allowed(kernel, key(2)).contains(lan) && !allowed(kernel, key(1)).contains(lan))
        // Converged: nothing more to do.
        #expect(plan(desired(via: "100.64.0.2"), kernel, owned: failover.owned).actions.isEmpty)
    }

    @Test func peersItDidNotAddAreNeverTouchedNorRobbed() {
        let foreign = ObservedWireGuardPeer(publicKey: key(50), endpoint: "192.0.2.50:51820", allowedIPs: [lan, pfx("10.0.50.0/24")])
        let kernel = ObservedWireGuard(publicKey: key(100), listenPort: 51820, peers: [foreign])
        let p = plan(desired(via: "100.64.0.1"), kernel, owned: [])
        #expect(!p.actions.contains { if case .removePeer(let k) = $0 { return k == key(50) } else { return false } })
        #expect(p.conflicts == [lan])
        let after = WireGuardPlanner.simulate(p.actions, on: kernel)
        #expect(allowed(after, key(50)) == [lan, pfx("10.0.50.0/24")])
        #expect(!allowed(after, key(1)).contains(lan))
        // Cleanup removes only what it added.
        #expect(WireGuardPlanner.planCleanup(observed: after, owned: p.owned) == [.removePeer(publicKey: key(1)), .removePeer(publicKey: key(2))])
    }

    @Test func peersItAddedAndNoLongerWantsGo() {
        var kernel = WireGuardPlanner.simulate(plan(desired(via: "100.64.0.1"), ObservedWireGuard(), owned: []).actions, on: ObservedWireGuard())
        let p = plan(desired(via: nil, peers: [r2]), kernel, owned: [key(1), key(2)])
        #expect(p.actions.contains(.removePeer(publicKey: key(1))))
        kernel = WireGuardPlanner.simulate(p.actions, on: kernel)
        #expect(kernel.peers.map(\.publicKey) == [key(2)])
    }

    @Test func aRoamedEndpointIsKept() {
        let roamed = ObservedWireGuardPeer(publicKey: key(1), endpoint: "198.51.100.7:40000", allowedIPs: [pfx("100.64.0.1/32")],
                                           persistentKeepalive: 25)
        let p = plan(desired(via: nil, peers: [r1]), ObservedWireGuard(peers: [roamed]), owned: [key(1)])
        #expect(p.actions.isEmpty)
        // Without any endpoint, the reported one is set.
        var none = roamed
        none.endpoint = nil
        #expect(plan(desired(via: nil, peers: [r1]), ObservedWireGuard(peers: [none]), owned: [key(1)]).actions
            == [.setPeer(publicKey: key(1), endpoint: "10.99.1.1:51820", keepalive: 25, allowedIPs: [pfx("100.64.0.1/32")])])
    }

    @Test func aRouteWhoseNextHopHasNoKeyIsUnreachable() {
        let w = WireGuardPlanner.wanted(desired(via: "100.64.0.9"))
        #expect(w.unreachable.map(\.destination) == [lan])
        #expect(w.peers.allSatisfy { !$0.allowedIPs.contains(lan) })
    }

    @Test func parsesWgShowDump() throws {
        let dump = "cHJpdmF0ZQ==\t\(key(100))\t51820\toff\n"
            + "\(key(1))\t(none)\t10.99.1.1:51820\t100.64.0.1/32,10.20.0.0/24\t1733390000\t100\t200\t25\n"
            + "\(key(2))\t(none)\t(none)\t(none)\t0\t0\t0\toff\n"
        let s = try ObservedWireGuard.parse(dump: dump)
        #expect(s.publicKey == key(100) && s.listenPort == 51820 && s.fwmark == nil)
        #expect(s.peers == [
            ObservedWireGuardPeer(publicKey: key(1), endpoint: "10.99.1.1:51820", allowedIPs: [pfx("100.64.0.1/32"), lan],
                                  latestHandshake: 1_733_390_000, persistentKeepalive: 25),
            ObservedWireGuardPeer(publicKey: key(2)),
        ])
        #expect(try ObservedWireGuard.parse(dump: "k\tp\t1\t0x1c470\n").fwmark == 0x1C470)
        #expect(throws: KernelStateParseError.self) { try ObservedWireGuard.parse(dump: "a\tb\n") }
    }
}
