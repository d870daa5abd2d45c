import RouteModel
import RouteSelection
import Testing

/// The choice between HA sets of different network ids with the same destination (`ShadowRules`,
/// `DestinationArbiter`): pure, no clock, no I/O.
///
/// NetBird (`client/internal/routemanager/manager.go`, `ClassifyRoutes`) keys client routes by HA unique id
/// (network id + range), so two network ids with the same range are two watchers that both install the range: the
/// OS route and the WireGuard allowed IP are reference-counted by prefix (`refcounter/refcounter.go`), the first
/// watcher to add the allowed IP keeps it and the other only logs "HA routing disabled" (`static/route.go`
/// `AddAllowedIPs`). Exit nodes are the exception: one is selected (`pickPreferredExitNode`: the user's pick, else the
/// lexicographically first auto-applied network id). Routeplane decides for every destination, the same way.
@Suite("Destination arbiter: one HA set per destination")
struct ShadowingTests {
    typealias Entrant = DestinationEntrant

    func entrant(_ k: HAKey, _ c: RouteCandidate, _ health: PeerHealth = up(), draining: Bool = false) -> Entrant {
        Entrant(key: k, standing: .up(Contender(candidate: c, health: health, draining: draining)))
    }

    let lanA = key("lan-a", "10.20.0.0/24")
    let lanB = key("lan-b", "10.20.0.0/24")
    let other = key("dc", "10.30.0.0/16")

    @Test("same range under two network ids: the lower metric wins whatever the network ids")
    func lowerMetricWins() {
        var arbiter = DestinationArbiter()
        let changes = arbiter.evaluate([entrant(lanA, cand("r1", metric: 200)), entrant(lanB, cand("r2", metric: 100)),
                                        entrant(other, cand("r3"))])
        #expect(arbiter.winners[lanA.destination] == lanB)
        #expect(arbiter.shadowedBy == [lanA: lanB])
        #expect(changes == [.shadowed(lanA, by: lanB, reason: .lowerMetric(winner: 100, shadowed: 200))])
        #expect(arbiter.winners[other.destination] == other, "a destination with one HA set is its own winner")
    }

    @Test("two exit nodes (0.0.0.0/0 under two network ids): exactly one is installed; ::/0 is another destination")
    func twoExitNodes() {
        var arbiter = DestinationArbiter()
        let exitX = key("exit-x", "0.0.0.0/0"), exitY = key("exit-y", "0.0.0.0/0"), exit6 = key("exit-v6", "::/0")
        _ = arbiter.evaluate([entrant(exitY, cand("r1")), entrant(exitX, cand("r2")), entrant(exit6, cand("r3"))])
        // Equal metric and health: the lower network id, as NetBird's `pickPreferredExitNode` (`minNetID`) does.
        #expect(arbiter.shadowedBy == [exitY: exitX])
        #expect(arbiter.winners[exit6.destination] == exit6)
    }

    @Test("ties on metric are broken by connection quality (draining, direct, latency), then by network id")
    func tieBreaks() {
        func winner(_ a: Entrant, _ b: Entrant) -> HAKey? {
            var arbiter = DestinationArbiter()
            _ = arbiter.evaluate([a, b])
            return arbiter.winners[lanA.destination]
        }
        // Rules as within an HA set (`SelectionRules`, after NetBird's `client/internal/routemanager/client/client.go`
        // score: connected, then metric, then direct over relayed, then latency).
        #expect(winner(entrant(lanA, cand("r1"), up(10, relayed: true)), entrant(lanB, cand("r2"), up(80))) == lanB, "direct beats relayed")
        #expect(winner(entrant(lanA, cand("r1"), up(80)), entrant(lanB, cand("r2"), up(10))) == lanB, "lower latency")
        #expect(winner(entrant(lanA, cand("r1"), up(5), draining: true), entrant(lanB, cand("r2", metric: 900), up(90))) == lanB,
                "a draining routing peer loses even at a lower metric")
        #expect(winner(entrant(lanB, cand("r2"), up(10)), entrant(lanA, cand("r1"), up(10))) == lanA, "all equal: lower network id")
        #expect(winner(entrant(lanA, cand("r1", metric: 300), up(1)), entrant(lanB, cand("r2", metric: 100), up(900, relayed: true))) == lanB,
                "metric before quality")
        let down = Entrant(key: lanA, standing: .down(cand("r1", metric: 1)))
        #expect(winner(down, entrant(lanB, cand("r2", metric: 500))) == lanB, "a set that is up beats one that is down")
    }

    @Test("the winner stays while the other is faster only within the latency hysteresis; beyond it, the other wins")
    func latencyHysteresis() {
        var arbiter = DestinationArbiter()
        _ = arbiter.evaluate([entrant(lanA, cand("r1"), up(30)), Entrant(key: lanB, standing: .pending)])
        #expect(arbiter.winners[lanA.destination] == lanA)
        #expect(arbiter.evaluate([entrant(lanA, cand("r1"), up(30)), entrant(lanB, cand("r2"), up(25))]) == [],
                "5 ms faster: within the 10 ms hysteresis")
        #expect(arbiter.evaluate([entrant(lanA, cand("r1"), up(30)), entrant(lanB, cand("r2"), up(26))]) == [],
                "a latency-only change of the shadowed set logs nothing")
        let changes = arbiter.evaluate([entrant(lanA, cand("r1"), up(30)), entrant(lanB, cand("r2"), up(12))])
        #expect(changes == [.shadowed(lanA, by: lanB, reason: .lowerLatency(winner: .milliseconds(12), shadowed: .milliseconds(30))),
                            .unshadowed(lanB)])
    }

    @Test("failover: the winner's routing peers all down moves the destination to the other set; back up, it returns")
    func failover() {
        var arbiter = DestinationArbiter()
        _ = arbiter.evaluate([entrant(lanA, cand("r1", metric: 100)), entrant(lanB, cand("r2", metric: 200))])
        #expect(arbiter.shadowedBy == [lanB: lanA])
        let down = Entrant(key: lanA, standing: .down(cand("r1", metric: 100)))
        #expect(arbiter.evaluate([down, entrant(lanB, cand("r2", metric: 200))])
                == [.shadowed(lanA, by: lanB, reason: .notUp), .unshadowed(lanB)])
        // Both down: the installed one stays (traffic dropped, not leaked), nothing changes.
        #expect(arbiter.evaluate([down, Entrant(key: lanB, standing: .down(cand("r2", metric: 200)))]) == [])
        #expect(arbiter.winners[lanA.destination] == lanB)
        #expect(arbiter.evaluate([entrant(lanA, cand("r1", metric: 100)), entrant(lanB, cand("r2", metric: 200))])
                == [.unshadowed(lanA), .shadowed(lanB, by: lanA, reason: .lowerMetric(winner: 100, shadowed: 200))])
    }

    @Test("a shadowed set is installed once the winner leaves the view; a set alone is never shadowed")
    func winnerRemoved() {
        var arbiter = DestinationArbiter()
        _ = arbiter.evaluate([entrant(lanA, cand("r1")), entrant(lanB, cand("r2"))])
        #expect(arbiter.shadowedBy == [lanB: lanA])
        #expect(arbiter.evaluate([entrant(lanB, cand("r2"))]) == [.unshadowed(lanB)])
        #expect(arbiter.shadowedBy.isEmpty)
        #expect(arbiter.winners[lanB.destination] == lanB)
        // lan-a back at equal metric and health: the installed lan-b stays (no move for nothing).
        #expect(arbiter.evaluate([entrant(lanA, cand("r1")), entrant(lanB, cand("r2"))])
                == [.shadowed(lanA, by: lanB, reason: .incumbent)])
        // Leaving the view while shadowed: no line for it (the view change says it).
        #expect(arbiter.evaluate([entrant(lanB, cand("r2"))]) == [])
        #expect(arbiter.shadowedBy.isEmpty)
    }

    @Test("the same routing peer under two network ids: same health, so the metric, then the network id decides")
    func samePeerTwoNetworkIDs() {
        var arbiter = DestinationArbiter()
        let shared = up(20)
        _ = arbiter.evaluate([entrant(lanB, cand("r1", route: "rb"), shared), entrant(lanA, cand("r1", route: "ra"), shared)])
        #expect(arbiter.shadowedBy == [lanB: lanA])
        // The peer goes down: both sets are down together; the installed one stays.
        let changes = arbiter.evaluate([Entrant(key: lanB, standing: .down(cand("r1", route: "rb"))),
                                        Entrant(key: lanA, standing: .down(cand("r1", route: "ra")))])
        #expect(changes == [])
        _ = arbiter.evaluate([entrant(lanB, cand("r1", metric: 50, route: "rb"), shared), entrant(lanA, cand("r1", route: "ra"), shared)])
        #expect(arbiter.shadowedBy == [lanA: lanB], "a lower metric on the other network id wins even with the same peer")
    }

    @Test("sets with nothing chosen yet: no winner, nothing installed; the first one up wins")
    func pending() {
        var arbiter = DestinationArbiter()
        let a = Entrant(key: lanA, standing: .pending), b = Entrant(key: lanB, standing: .pending)
        #expect(arbiter.evaluate([a, b]) == [])
        #expect(arbiter.winners.isEmpty)
        #expect(arbiter.evaluate([a, entrant(lanB, cand("r2", metric: 500))]) == [.shadowed(lanA, by: lanB, reason: .notUp)])
    }

    @Test("the outcome does not depend on the order of the entrants")
    func orderIndependent() {
        let entrants = [entrant(lanA, cand("r1"), up(10)), entrant(lanB, cand("r2"), up(10)), entrant(key("lan-c", "10.20.0.0/24"), cand("r3"), up(10)),
                        entrant(key("exit-1", "0.0.0.0/0"), cand("r4")), entrant(key("exit-0", "0.0.0.0/0"), cand("r5"))]
        var first = DestinationArbiter()
        let expected = first.evaluate(entrants)
        for _ in 0..<20 {
            var arbiter = DestinationArbiter()
            #expect(arbiter.evaluate(entrants.shuffled()) == expected)
            #expect(arbiter.shadowedBy == first.shadowedBy)
        }
        #expect(first.shadowedBy == [lanB: lanA, key("lan-c", "10.20.0.0/24"): lanA, key("exit-1", "0.0.0.0/0"): key("exit-0", "0.0.0.0/0")])
    }
}
