import ChaosKit
import Foundation
import RouteModel
import Testing

/// The fault-injection run's pure parts: the checks over collected records, the fault plan and the workload's
/// bookkeeping. No processes, sockets or database.
@Suite struct ChaosSettingsTests {
    @Test func loopbackOnly() {
        #expect(ChaosSettings.isLoopback("postgresql://postgres@127.0.0.1:55532/routeplane_chaos"))
        #expect(ChaosSettings.isLoopback("nats://localhost:54322"))
        #expect(!ChaosSettings.isLoopback("postgresql://db.example.com/routeplane"))
        #expect(!ChaosSettings.isLoopback("nats://10.0.0.5:4222"))
    }
}

@Suite struct ChaosChecksTests {
    func record(_ id: String, _ outcome: ChaosOutcome, kind: ChaosRequestKind = .updateRoute, tenant: String = "t1", burst: Int? = nil,
                killed: Bool = false) -> ChaosRequestRecord {
        ChaosRequestRecord(requestID: id, tenant: tenant, kind: kind, controller: 0, conditional: burst != nil, burst: burst, outcome: outcome,
                           controllerKilledDuring: killed, start: 0, end: 1)
    }
    func ok(_ seq: Int64?) -> ChaosOutcome { .answered(status: 200, sequence: seq, retryAfter: nil, message: nil) }
    func error(_ status: Int, retryAfter: String? = nil) -> ChaosOutcome { .answered(status: status, sequence: nil, retryAfter: retryAfter, message: "no") }
    func logged(_ lo: Int64, _ hi: Int64, transactions: Int = 1, tenants: Set<String> = ["t1"]) -> ChaosLoggedWrite {
        ChaosLoggedWrite(tenants: tenants, events: Int(hi - lo + 1), transactions: transactions, minSequence: lo, maxSequence: hi)
    }

    @Test func acknowledgedWritesMustBeLoggedOnce() {
        let records = [record("a", ok(5)), record("b", ok(8), kind: .createRoute), record("r", ok(9), kind: .read)]
        #expect(ChaosChecks.acknowledgedWrites(records, logged: ["a": logged(5, 5), "b": logged(7, 8)]).passed)
        // Lost, duplicated, wrong tenant, wrong answered sequence.
        #expect(!ChaosChecks.acknowledgedWrites(records, logged: ["a": logged(5, 5)]).passed)
        #expect(!ChaosChecks.acknowledgedWrites(records, logged: ["a": logged(5, 5), "b": logged(7, 8, transactions: 2)]).passed)
        #expect(!ChaosChecks.acknowledgedWrites(records, logged: ["a": logged(5, 5, tenants: ["t2"]), "b": logged(7, 8)]).passed)
        let check = ChaosChecks.acknowledgedWrites(records, logged: ["a": logged(4, 4), "b": logged(7, 8)])
        #expect(!check.passed)
        #expect(check.problems == ["a: answered sequence 5, logged up to 4"])
    }

    @Test func failedWritesLeaveNoTrace() {
        let records = [record("e", error(412)), record("n", .notSent, kind: .deleteRoute), record("u", .unknown(reason: "reset", timedOut: false))]
        #expect(ChaosChecks.failedWrites(records, logged: ["u": logged(3, 3)]).passed)
        #expect(!ChaosChecks.failedWrites(records, logged: ["e": logged(3, 3)]).passed)
        #expect(!ChaosChecks.failedWrites(records, logged: ["n": logged(3, 3)]).passed)
    }

    @Test func unknownOutcomesAreCounted() {
        let records = [record("u1", .unknown(reason: "reset", timedOut: false), killed: true),
                       record("u2", .unknown(reason: "deadline", timedOut: true), killed: true),
                       record("u3", .unknown(reason: "reset", timedOut: false), kind: .createGroup, killed: true)]
        let result = ChaosChecks.unknownOutcomes(records, logged: ["u1": logged(2, 2), "u3": logged(4, 6)])
        #expect(result.total == 3 && result.committed == 2 && result.timedOut == 1)
        #expect(result.check.passed)
        #expect(!ChaosChecks.unknownOutcomes(records, logged: ["u1": logged(2, 3, transactions: 2)]).check.passed)
    }

    @Test func atMostOneWinnerPerBurst() {
        let burst = [record("b1", ok(3), burst: 1), record("b2", error(412), burst: 1), record("b3", .unknown(reason: "reset", timedOut: false), burst: 1, killed: true)]
        #expect(ChaosChecks.conditionalBursts(burst, logged: ["b1": logged(3, 3)]).passed)
        // The broken one committed too: two winners of one If-Match.
        #expect(!ChaosChecks.conditionalBursts(burst, logged: ["b1": logged(3, 3), "b3": logged(4, 4)]).passed)
    }

    @Test func answersUnderFaults() {
        #expect(ChaosChecks.answers([record("a", ok(1)), record("b", error(503, retryAfter: "2")), record("c", error(409)),
                                     record("d", .unknown(reason: "deadline", timedOut: true), killed: true)]).passed)
        #expect(!ChaosChecks.answers([record("a", error(500))]).passed)
        #expect(!ChaosChecks.answers([record("a", error(503))]).passed)
        #expect(!ChaosChecks.answers([record("a", .answered(status: 404, sequence: nil, retryAfter: nil, message: nil))]).passed)
        // A hang on a controller that was never killed.
        #expect(!ChaosChecks.answers([record("a", .unknown(reason: "deadline", timedOut: true))]).passed)
    }

    func agent(_ peer: String, _ applied: [(Int64, String, String, Double)]) -> ChaosAgentHistory {
        let views = applied.map { ChaosAppliedView(version: $0.0, digest: $0.1, source: $0.2, at: $0.3) }
        return ChaosAgentHistory(tenant: "t1", peer: peer, applied: views, finalVersion: views.last?.version ?? 0, finalDigest: views.last?.digest)
    }

    @Test func agentsMatchTheirProjectedViews() {
        let agents = [agent("p1", [(3, "d3", "nats", 1), (7, "d7", "nats", 2)]), agent("p2", [])]
        let key = ChaosViewKey(tenant: "t1", peer: "p1")
        #expect(ChaosChecks.agentsMatchProjection(agents, projected: [key: .init(version: 7, digest: "d7")]).passed)
        #expect(!ChaosChecks.agentsMatchProjection(agents, projected: [key: .init(version: 8, digest: "d8")]).passed)
        #expect(!ChaosChecks.agentsMatchProjection(agents, projected: [key: .init(version: 7, digest: "d7"),
                                                                        ChaosViewKey(tenant: "t1", peer: "p2"): .init(version: 2, digest: "x")]).passed)
    }

    @Test func agentsNeverGoBack() {
        let restart = agent("p1", [(3, "d3", "nats", 1), (7, "d7", "http", 2), (7, "d7", "persisted", 3), (9, "d9", "nats", 4)])
        #expect(ChaosChecks.agentsNeverWentBack([restart]).passed)
        #expect(!ChaosChecks.agentsNeverWentBack([agent("p1", [(7, "d7", "nats", 1), (5, "d5", "http", 2)])]).passed)
        #expect(!ChaosChecks.agentsNeverWentBack([agent("p1", [(7, "d7", "nats", 1), (7, "x", "nats", 2)])]).passed)
    }

    @Test func convergenceIsTheLastAgentsFirstApplicationOfItsFinalView() {
        let a = agent("p1", [(3, "d3", "nats", 10), (7, "d7", "nats", 12.5), (7, "d7", "persisted", 14)])
        let b = agent("p2", [(4, "d4", "nats", 5)])
        #expect(ChaosChecks.convergenceTime([a, b], reference: 11) == 1.5)
        #expect(ChaosChecks.convergenceTime([b], reference: 11) == 0)
    }

    @Test func counts() {
        let c = ChaosCounts.from([record("a", ok(1)), record("b", error(409)), record("c", error(412)), record("d", error(503, retryAfter: "2")),
                                  record("e", .notSent), record("f", .unknown(reason: "x", timedOut: false)), record("g", error(503, retryAfter: "1"), kind: .read)])
        #expect(c == ChaosCounts(writes: 6, acknowledged: 1, conflicts409: 1, preconditionFailed412: 1, unavailable503: 1, otherClientErrors: 0,
                                 notSent: 1, unknown: 1, reads: 1, reads503: 1))
    }
}

@Suite struct ChaosPlanTests {
    @Test func planIsReproducibleAndBounded() {
        let make = { (seed: UInt64) in
            ChaosPlan.make(duration: 60, controllers: 3, agents: 100, killEvery: 2.1...4.9, downFor: 0.5...2.5, outageHold: 3,
                           agentRestartEvery: 5, seed: seed)
        }
        #expect(make(42) == make(42))
        #expect(make(42) != make(43))
        for seed in UInt64(1)...50 {
            let plan = make(seed)
            #expect(plan.steps.count(where: { $0.fault == .postgresOutage(hold: 3) }) == 1)
            #expect(plan.steps.count(where: { $0.fault == .natsOutage(hold: 3) }) == 1)
            #expect(plan.kills >= 8)
            #expect(plan.steps.allSatisfy { $0.at >= 0 && $0.at < 60 })
            #expect(zip(plan.steps, plan.steps.dropFirst()).allSatisfy { $0.at <= $1.at })
            // Never more than 2 of 3 planned down at once (a restart assumed to take 3 s).
            var down: [(until: Double, index: Int)] = []
            for step in plan.steps {
                guard case .killController(let index, let downFor) = step.fault else { continue }
                down.removeAll { $0.until <= step.at }
                #expect(!down.contains { $0.index == index })
                down.append((step.at + downFor + 3, index))
                #expect(down.count <= 2)
            }
        }
    }
}

@Suite struct ChaosWorkloadTests {
    func tenant() -> ChaosTenant {
        var t = ChaosTenant(id: "t1", token: "tok", index: 2)
        t.peers = (0..<10).map { "p\($0)" }
        t.allGroup = "all"
        t.groups = ["g0", "g1"]
        t.routes = ["r1", "r2", "r3", "r4"]
        return t
    }

    @Test func learnsFromAnswers() {
        var t = tenant()
        ChaosWorkload.learn(&t, operation: .createRoute, status: 200, createdID: "r5")
        ChaosWorkload.learn(&t, operation: .createRoute, status: 503, createdID: nil)
        #expect(t.routes == ["r1", "r2", "r3", "r4", "r5"])
        ChaosWorkload.learn(&t, operation: .deleteRoute(id: "r1", conditional: false), status: 200, createdID: nil)
        ChaosWorkload.learn(&t, operation: .updateRoute(id: "r2", conditional: true), status: 404, createdID: nil)
        ChaosWorkload.learn(&t, operation: .updateRoute(id: "r3", conditional: true), status: 200, createdID: nil)
        #expect(t.routes == ["r3", "r4", "r5"])
        ChaosWorkload.learn(&t, operation: .createGroup, status: 200, createdID: "x1")
        ChaosWorkload.learn(&t, operation: .deleteGroup(id: "x1"), status: 409, createdID: nil)
        #expect(t.extraGroups == ["x1"])
        ChaosWorkload.learn(&t, operation: .deleteGroup(id: "x1"), status: 200, createdID: nil)
        #expect(t.extraGroups.isEmpty)
    }

    @Test func bodiesAlwaysChangeSomething() {
        var rng = ChaosRandom(seed: 7)
        let t = tenant()
        for i in 0..<50 {
            let route = ChaosWorkload.routeBody(t, requestID: "ch-\(i)", using: &rng)
            #expect(route["description"] as? String == "chaos ch-\(i)")
            #expect(t.routers.contains(route["peer"] as? String ?? ""))
            #expect((route["groups"] as? [String])?.isEmpty == false)
            #expect((route["network"] as? String)?.hasPrefix("10.2.") == true)
            let group = ChaosWorkload.groupBody(t, prefix: "g", requestID: "ch-\(i)", using: &rng)
            #expect(group["name"] as? String == "g-ch-\(i)")
        }
        #expect(ChaosWorkload.peerBody(t, peer: "p1", draining: true, requestID: "ch-123456789")["name"] as? String == "peer-23456789")
    }

    @Test func operationsStayWithinBounds() {
        var rng = ChaosRandom(seed: 3)
        var t = tenant()
        t.routes = (0..<ChaosWorkload.maxRoutes).map { "r\($0)" }
        for _ in 0..<500 {
            let op = ChaosWorkload.next(t, using: &rng)
            #expect(op != .createRoute)
            if case .drainPeer(let id, _) = op { #expect(t.routers.contains(id)) }
            if case .deleteGroup(let id) = op { #expect(t.extraGroups.contains(id)) }
        }
        t.routes = []
        #expect(ChaosWorkload.next(t, using: &rng) == .createRoute)
    }
}

@Suite struct ChaosRecoveryTests {
    @Test func catchUpAfterNATS() {
        let a = ChaosAgentHistory(tenant: "t", peer: "a", applied: [.init(version: 3, digest: "x", source: "nats", at: 1),
                                                                     .init(version: 9, digest: "y", source: "nats", at: 12.5)],
                                  finalVersion: 9, finalDigest: "y")
        let b = ChaosAgentHistory(tenant: "t", peer: "b", applied: [.init(version: 4, digest: "z", source: "nats", at: 2)], finalVersion: 4, finalDigest: "z")
        #expect(ChaosChecks.catchUp([a, b], targets: [.init(tenant: "t", peer: "a"): 7, .init(tenant: "t", peer: "b"): 4], since: 10) == 2.5)
        #expect(ChaosChecks.catchUp([a, b], targets: [.init(tenant: "t", peer: "b"): 5], since: 10) == nil)
    }

    @Test func recoveryAfterPostgres() {
        func r(_ start: Double, _ status: Int, _ kind: ChaosRequestKind = .createRoute) -> ChaosRequestRecord {
            ChaosRequestRecord(requestID: "r", tenant: "t", kind: kind, controller: 0, conditional: false, burst: nil,
                               outcome: .answered(status: status, sequence: nil, retryAfter: "2", message: "m"), controllerKilledDuring: false,
                               start: start, end: start + 0.1)
        }
        let result = ChaosChecks.recovery([r(9, 200), r(10, 503), r(11.2, 503), r(11.5, 200, .read), r(12, 200)], since: 11)
        #expect(abs((result.firstSuccess ?? 0) - 1.1) < 1e-9)
        #expect(abs((result.last503 ?? 0) - 0.3) < 1e-9)
    }
}
