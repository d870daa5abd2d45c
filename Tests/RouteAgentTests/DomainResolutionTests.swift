import RouteAgent
import RouteModel
import RouteSelection
import Testing

/// Domain routes on the client: names resolved by the agent, re-resolved at the record's TTL within bounds, failures
/// keeping the last good addresses with a bounded backoff, keep_route keeping old addresses, one host route per address
/// through the chosen routing peer. Pure: no resolver, no clock.
@Suite("Domain routes: resolution state machine")
struct DomainResolutionTests {
    let t0 = ContinuousClock.now
    func at(_ s: Int) -> ContinuousClock.Instant { t0 + .seconds(s) }
    func ip(_ s: String) -> IPAddress { try! IPAddress(parsing: s) }
    let configuration = DomainResolutionStateMachine.Configuration(minimumTTL: .seconds(30), maximumTTL: .seconds(600),
                                                                   firstRetry: .seconds(2), maximumRetry: .seconds(60))

    @Test("a new name is resolved at once and again when its TTL ends; the TTL is clamped to [minimum, maximum]")
    func ttlClamped() {
        var d = DomainResolutionStateMachine(configuration: configuration)
        #expect(d.namesChanged(["a.example": false], now: at(0)) == [.resolve("a.example")])
        let changed21 = d.resolved("a.example", .answered([ip("10.0.0.1")], ttl: .seconds(5)), now: at(0))
        #expect(changed21)
        #expect(d.tick(now: at(29)).isEmpty, "TTL 5 s counts as the 30 s minimum")
        #expect(d.tick(now: at(30)) == [.resolve("a.example")])
        _ = d.resolved("a.example", .answered([ip("10.0.0.1")], ttl: .seconds(86_400)), now: at(30))
        #expect(d.tick(now: at(629)).isEmpty)
        #expect(d.tick(now: at(630)) == [.resolve("a.example")], "TTL one day counts as the 600 s maximum")
        _ = d.resolved("a.example", .answered([ip("10.0.0.1")], ttl: .seconds(100)), now: at(630))
        #expect(d.tick(now: at(729)).isEmpty)
        #expect(d.tick(now: at(730)) == [.resolve("a.example")], "a TTL within the bounds is kept")
        #expect(configuration.clamp(nil) == .seconds(30))
    }

    @Test("a failure keeps the last good addresses and retries with a doubling, bounded backoff")
    func failureKeepsLastGood() {
        var d = DomainResolutionStateMachine(configuration: configuration)
        _ = d.namesChanged(["a.example": false], now: at(0))
        _ = d.resolved("a.example", .answered([ip("10.0.0.1"), ip("10.0.0.2")], ttl: .seconds(30)), now: at(0))
        #expect(d.tick(now: at(30)) == [.resolve("a.example")])
        let changed39 = d.resolved("a.example", .failed("timeout"), now: at(30))
        #expect(!changed39, "addresses unchanged")
        #expect(d.addresses(of: "a.example") == [ip("10.0.0.1"), ip("10.0.0.2")])
        var now = 30
        var waits: [Int] = []
        for _ in 0..<7 {
            var s = now + 1
            while d.tick(now: at(s)).isEmpty { s += 1 }
            waits.append(s - now)
            now = s
            _ = d.resolved("a.example", .failed("timeout"), now: at(now))
        }
        #expect(waits == [2, 4, 8, 16, 32, 60, 60])
        #expect(d.addresses(of: "a.example") == [ip("10.0.0.1"), ip("10.0.0.2")])
        #expect(d.resolved("a.example", .failed("x"), now: at(now)) == false, "no resolution in flight: ignored")
        _ = d.tick(now: at(now + 60))
        let changed54 = d.resolved("a.example", .answered([ip("10.0.0.3")], ttl: .seconds(30)), now: at(now + 60))
        #expect(changed54)
        #expect(d.addresses(of: "a.example") == [ip("10.0.0.3")], "without keep_route the new answer replaces the old")
    }

    @Test("keep_route keeps the addresses of earlier answers (newest first, bounded)")
    func keepRouteKeepsOld() {
        var small = configuration
        small.maximumAddresses = 3
        var d = DomainResolutionStateMachine(configuration: small)
        _ = d.namesChanged(["k.example": true], now: at(0))
        _ = d.resolved("k.example", .answered([ip("10.0.0.1")], ttl: .seconds(30)), now: at(0))
        _ = d.tick(now: at(30))
        let changed66 = d.resolved("k.example", .answered([ip("10.0.0.2")], ttl: .seconds(30)), now: at(30))
        #expect(changed66)
        #expect(d.addresses(of: "k.example") == [ip("10.0.0.2"), ip("10.0.0.1")])
        _ = d.tick(now: at(60))
        _ = d.resolved("k.example", .answered([ip("10.0.0.3"), ip("10.0.0.4")], ttl: .seconds(30)), now: at(60))
        #expect(d.addresses(of: "k.example") == [ip("10.0.0.3"), ip("10.0.0.4"), ip("10.0.0.2")])
    }

    @Test("an empty answer (NXDOMAIN) is an answer; wildcards are never resolved; a lost resolution times out as a failure")
    func emptyWildcardTimeout() {
        var d = DomainResolutionStateMachine(configuration: configuration)
        #expect(d.namesChanged(["*.corp.example": false, "gone.example": false], now: at(0)) == [.resolve("gone.example")])
        #expect(d.names["*.corp.example"] == .unsupported)
        _ = d.resolved("gone.example", .answered([], ttl: nil), now: at(0))
        #expect(d.addresses(of: "gone.example").isEmpty)
        _ = d.tick(now: at(30))
        #expect(d.tick(now: at(89)).isEmpty)
        _ = d.tick(now: at(90))
        if case .failed(_, let failures, _, _)? = d.names["gone.example"] { #expect(failures == 1) } else { Issue.record("not failed: \(String(describing: d.names["gone.example"]))") }
        #expect(d.namesChanged([:], now: at(91)).isEmpty)
        #expect(d.names.isEmpty, "names gone from the view are forgotten")
    }

    @Test("DNS answers: A and AAAA records and the smallest TTL (CNAME included); A+AAAA combined")
    func dnsParsing() throws {
        // Header: id 1, flags, 1 question, 3 answers. Question a.example IN A. Answers: CNAME (TTL 50) → A 10.20.0.100 (TTL 300),
        // AAAA fd00::5 (TTL 120), names compressed to the question.
        var m: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0]
        m += [1, 97, 7] + Array("example".utf8) + [0, 0, 1, 0, 1]
        m += [0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 50, 0, 2, 0xC0, 12]
        m += [0xC0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 10, 20, 0, 100]
        m += [0xC0, 12, 0, 28, 0, 1, 0, 0, 0, 120, 0, 16, 0xfd, 0] + [UInt8](repeating: 0, count: 13) + [5]
        let parsed = try #require(DNSAnswer.parse(m))
        #expect(parsed.records.map(\.address) == [ip("10.20.0.100"), ip("fd00::5")])
        #expect(parsed.minimumTTL == 50)
        #expect(DNSAnswer.parse(Array(m.prefix(40))) == nil, "a truncated message is not read")
        #expect(DNSAnswer.combine([.message(m), .failed("timeout")]) == .answered([ip("10.20.0.100"), ip("fd00::5")], ttl: .seconds(50)))
        #expect(DNSAnswer.combine([.noData, .failed("timeout")]) == .failed("timeout"))
        #expect(DNSAnswer.combine([.noData, .noData]) == .answered([], ttl: nil))
    }

    // MARK: in the agent state machine

    static let r1 = RouteCandidate(peerID: "r1", meshIP: try! IPAddress(parsing: "100.64.0.1"), metric: 100, masquerade: true,
                                   keepRoute: false, skipAutoApply: false, routeID: "route-web")
    let web = HAKey(networkID: "web", destination: .domains(["api.example", "www.example"]))
    let lan = HAKey(networkID: "lan", destination: .network(try! Prefix(parsing: "10.20.0.0/24")))

    func machine(_ sets: [HASet], version: Int64 = 1, into m: inout AgentStateMachine) -> [AgentStateMachine.Action] {
        m.receive(.init(version: version, digest: "d\(version)", body: [], view: PeerRouteView(peerID: "client", haSets: sets), source: .nats),
                  now: at(0))
    }

    @Test("a domain route: its names are resolved, one host route per address through the chosen routing peer")
    func hostRoutes() throws {
        var m = AgentStateMachine(configuration: .init(assumeCandidatesUp: true, domains: configuration))
        let actions = machine([HASet(key: web, candidates: [Self.r1])], into: &m)
        #expect(actions.contains(.resolve(["api.example", "www.example"])))
        #expect(m.desired.routes.isEmpty, "nothing before the first answer")
        let changed = m.domainResolved("api.example", .answered([ip("203.0.113.7"), ip("203.0.113.8"), ip("2001:db8::7")], ttl: .seconds(60)), now: at(1))
        #expect(changed.contains(.apply(m.desired)))
        try m.desired.validate()
        #expect(m.desired.routes.map(\.description) == ["203.0.113.7/32 via 100.64.0.1", "203.0.113.8/32 via 100.64.0.1"],
                "the IPv6 address has no next hop of its family")
        _ = m.domainResolved("www.example", .answered([ip("203.0.113.8")], ttl: .seconds(60)), now: at(1))
        #expect(m.desired.routes.count == 2, "one route per address, whichever name resolved to it")
        let listing = m.routeListing()
        #expect(listing.routes.first?.destinations.first?.domains?.map(\.addresses) == [["203.0.113.7", "203.0.113.8", "2001:db8::7"], ["203.0.113.8"]])
        _ = m.domainResolved("api.example", .failed("timeout"), now: at(2))
        #expect(m.desired.routes.count == 2, "a failure changes nothing (no resolution was in flight either)")
        _ = m.tick(now: at(61))
        _ = m.domainResolved("api.example", .failed("timeout"), now: at(61))
        #expect(m.desired.routes.count == 2, "a failed refresh keeps the routes")
    }

    @Test("a domain route marked skip_auto_apply waits for a select; removed from the view, its routes go")
    func domainSelectionAndRemoval() throws {
        var offeredCandidate = Self.r1
        offeredCandidate.skipAutoApply = true
        var m = AgentStateMachine(configuration: .init(assumeCandidatesUp: true, domains: configuration))
        _ = machine([HASet(key: web, candidates: [offeredCandidate])], into: &m)
        _ = m.domainResolved("api.example", .answered([ip("203.0.113.7")], ttl: nil), now: at(1))
        #expect(m.desired.routes.isEmpty)
        _ = m.choicesChanged(RouteChoices(selected: ["web"], generation: 1), now: at(2))
        #expect(m.desired.routes.map(\.description) == ["203.0.113.7/32 via 100.64.0.1"])
        _ = m.receive(.init(version: 2, digest: "d2", body: [], view: PeerRouteView(peerID: "client", haSets: []), source: .nats), now: at(3))
        #expect(m.desired.routes.isEmpty)
        #expect(m.domains.names.isEmpty)
    }

    @Test("the routing peer of a domain route forwards and masquerades the mesh's traffic to any IPv4 address (mesh family only)")
    func routingPeerSide() throws {
        var m = AgentStateMachine(configuration: .init(assumeCandidatesUp: true, domains: configuration))
        let forward = ForwardedRoute(routeID: "route-web", key: web, masquerade: true)
        _ = m.receive(.init(version: 1, digest: "d1", body: [], view: PeerRouteView(peerID: "r1", forwards: [forward]), source: .nats), now: at(0))
        #expect(m.desired.routingPeer.forwardIPv4 && !m.desired.routingPeer.forwardIPv6)
        #expect(m.desired.routingPeer.masquerade.map(\.description) == ["masquerade 100.64.0.0/10 → 0.0.0.0/0"])
        var plain = forward
        plain.masquerade = false
        _ = m.receive(.init(version: 2, digest: "d2", body: [], view: PeerRouteView(peerID: "r1", forwards: [plain]), source: .nats), now: at(1))
        #expect(m.desired.routingPeer.forwardIPv4 && m.desired.routingPeer.masquerade.isEmpty)
    }
}
