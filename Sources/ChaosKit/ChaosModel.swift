import Foundation
import RouteModel

// The fault-injection run's records and the checks over them: plain values and pure functions, tested
// without I/O (Tests/ChaosTests). `ChaosRun` (the shell, in routeplane-chaos) collects the records and reads the database.

/// A run's fault plan and workload are reproducible from its seed.
public typealias ChaosRandom = SplitMix64

/// What a request was for.
public enum ChaosRequestKind: String, Sendable, CaseIterable {
    case read
    case createRoute = "route.create", updateRoute = "route.update", deleteRoute = "route.delete"
    case createGroup = "group.create", updateGroup = "group.update", deleteGroup = "group.delete"
    case updatePeer = "peer.update", setup = "setup"

    public var isWrite: Bool { self != .read }
}

/// How a request ended, as the client saw it.
public enum ChaosOutcome: Sendable, Equatable {
    /// An HTTP answer. `sequence` is X-Routeplane-Sequence; `retryAfter` the Retry-After header;
    /// `message` the error body's message (nil when the body is not NetBird's error shape).
    case answered(status: Int, sequence: Int64?, retryAfter: String?, message: String?)
    /// The connection was refused: the controller never saw the request.
    case notSent
    /// Sent, then the connection broke or the deadline passed: it may or may not have committed.
    case unknown(reason: String, timedOut: Bool)

    public var status: Int? {
        if case .answered(let s, _, _, _) = self { return s }
        return nil
    }
    public var isSuccess: Bool { status.map { (200..<300).contains($0) } ?? false }
}

public struct ChaosRequestRecord: Sendable, Equatable {
    public init(requestID: String, tenant: String, kind: ChaosRequestKind, controller: Int, conditional: Bool,
                burst: Int?, outcome: ChaosOutcome, controllerKilledDuring: Bool, start: Double, end: Double) {
        self.requestID = requestID
        self.tenant = tenant
        self.kind = kind
        self.controller = controller
        self.conditional = conditional
        self.burst = burst
        self.outcome = outcome
        self.controllerKilledDuring = controllerKilledDuring
        self.start = start
        self.end = end
    }

    public var requestID: String
    public var tenant: String
    public var kind: ChaosRequestKind
    public var controller: Int
    /// Sent with If-Match.
    public var conditional: Bool
    /// Concurrent conditional updates of one object with the same If-Match share a burst id.
    public var burst: Int?
    public var outcome: ChaosOutcome
    /// The controller was killed (or not running) at some point while the request was out.
    public var controllerKilledDuring: Bool
    public var start: Double
    public var end: Double
}

/// One request id's events in the log (from the events table's metadata).
public struct ChaosLoggedWrite: Sendable, Equatable {
    public init(tenants: Set<String>, events: Int, transactions: Int, minSequence: Int64, maxSequence: Int64) {
        self.tenants = tenants
        self.events = events
        self.transactions = transactions
        self.minSequence = minSequence
        self.maxSequence = maxSequence
    }

    public var tenants: Set<String>
    public var events: Int
    public var transactions: Int
    public var minSequence: Int64
    public var maxSequence: Int64
}

/// A view an agent applied (its observer hook), seconds since the run started.
public struct ChaosAppliedView: Sendable, Equatable {
    public init(version: Int64, digest: String, source: String, at: Double) {
        self.version = version
        self.digest = digest
        self.source = source
        self.at = at
    }

    public var version: Int64
    public var digest: String
    /// nats, http or persisted (re-applied from the state folder after an agent restart).
    public var source: String
    public var at: Double
}

public struct ChaosAgentHistory: Sendable, Equatable {
    public init(tenant: String, peer: String, applied: [ChaosAppliedView], finalVersion: Int64, finalDigest: String?) {
        self.tenant = tenant
        self.peer = peer
        self.applied = applied
        self.finalVersion = finalVersion
        self.finalDigest = finalDigest
    }

    public var tenant: String
    public var peer: String
    public var applied: [ChaosAppliedView]
    /// Version and digest the agent holds at the end.
    public var finalVersion: Int64
    public var finalDigest: String?
}

public struct ChaosViewKey: Hashable, Sendable, Comparable {
    public init(tenant: String, peer: String) {
        self.tenant = tenant
        self.peer = peer
    }

    public var tenant: String
    public var peer: String
    public static func < (a: Self, b: Self) -> Bool { (a.tenant, a.peer) < (b.tenant, b.peer) }
}

public struct ChaosProjectedView: Sendable, Equatable {
    public init(version: Int64, digest: String) {
        self.version = version
        self.digest = digest
    }

    public var version: Int64
    public var digest: String
}

public struct ChaosCheck: Sendable, Equatable {
    public init(name: String, passed: Bool, detail: String, problems: [String] = []) {
        self.name = name
        self.passed = passed
        self.detail = detail
        self.problems = problems
    }

    public var name: String
    public var passed: Bool
    public var detail: String
    /// The first few offending items.
    public var problems: [String] = []
}

public enum ChaosChecks {
    public static let maxProblems = 10

    /// Every write answered 2xx is in the log exactly once: its request id's events belong to one tenant and one
    /// transaction, with consecutive sequence numbers, the last one being the X-Routeplane-Sequence it answered.
    /// (Every write of the workload changes something — names and descriptions carry the request id — so a 2xx
    /// with no event is a lost write.)
    public static func acknowledgedWrites(_ records: [ChaosRequestRecord], logged: [String: ChaosLoggedWrite], minimum: Int = 1) -> ChaosCheck {
        var problems: [String] = []
        var count = 0
        for r in records where r.kind.isWrite && r.outcome.isSuccess {
            count += 1
            guard let l = logged[r.requestID] else {
                problems.append("\(r.requestID) (\(r.kind.rawValue), \(r.outcome.status ?? 0)) is not in the event log")
                continue
            }
            if l.tenants != [r.tenant] { problems.append("\(r.requestID): events in tenants \(l.tenants.sorted())") }
            if l.transactions != 1 { problems.append("\(r.requestID): events from \(l.transactions) transactions (duplicated)") }
            if l.maxSequence - l.minSequence + 1 != Int64(l.events) {
                problems.append("\(r.requestID): \(l.events) events over sequences \(l.minSequence)...\(l.maxSequence)")
            }
            if case .answered(_, let sequence?, _, _) = r.outcome, sequence != l.maxSequence {
                problems.append("\(r.requestID): answered sequence \(sequence), logged up to \(l.maxSequence)")
            }
        }
        return covered(ChaosCheck(name: "every 2xx write is in the event log exactly once", passed: problems.isEmpty,
                                  detail: "\(count) acknowledged writes checked by request id", problems: Array(problems.prefix(maxProblems))),
                       work: count, minimum: minimum, of: "acknowledged writes")
    }

    /// A write answered with an error, or never sent (connection refused), left no event.
    public static func failedWrites(_ records: [ChaosRequestRecord], logged: [String: ChaosLoggedWrite], minimum: Int = 1) -> ChaosCheck {
        var problems: [String] = []
        var count = 0
        for r in records where r.kind.isWrite {
            let failed: Bool
            switch r.outcome {
            case .answered(let status, _, _, _): failed = !(200..<300).contains(status)
            case .notSent: failed = true
            case .unknown: failed = false
            }
            guard failed else { continue }
            count += 1
            if let l = logged[r.requestID] {
                problems.append("\(r.requestID) (\(r.kind.rawValue), \(r.outcome.status.map(String.init) ?? "not sent")) left \(l.events) event(s)")
            }
        }
        return covered(ChaosCheck(name: "no write that got an error (or was refused) left a trace", passed: problems.isEmpty,
                                  detail: "\(count) failed writes checked", problems: Array(problems.prefix(maxProblems))),
                       work: count, minimum: minimum, of: "failed writes")
    }

    public struct UnknownOutcomes: Sendable, Equatable {
        public var total = 0
        public var committed = 0
        public var timedOut = 0
        public var check: ChaosCheck
    }

    /// Writes whose connection broke (controller killed) have an unknown outcome: count how many committed;
    /// none may have committed twice.
    public static func unknownOutcomes(_ records: [ChaosRequestRecord], logged: [String: ChaosLoggedWrite]) -> UnknownOutcomes {
        var out = UnknownOutcomes(check: ChaosCheck(name: "", passed: true, detail: ""))
        var problems: [String] = []
        for r in records where r.kind.isWrite {
            guard case .unknown(_, let timedOut) = r.outcome else { continue }
            out.total += 1
            if timedOut { out.timedOut += 1 }
            guard let l = logged[r.requestID] else { continue }
            out.committed += 1
            if l.transactions != 1 || l.tenants != [r.tenant] {
                problems.append("\(r.requestID): \(l.transactions) transactions in tenants \(l.tenants.sorted())")
            }
        }
        out.check = ChaosCheck(name: "writes with an unknown outcome committed at most once", passed: problems.isEmpty,
                               detail: "\(out.total) unknown (connection broke), \(out.committed) of them committed",
                               problems: Array(problems.prefix(maxProblems)))
        return out
    }

    /// Of concurrent conditional updates with the same If-Match, at most one won (2xx, or an unknown outcome that committed).
    public static func conditionalBursts(_ records: [ChaosRequestRecord], logged: [String: ChaosLoggedWrite], minimum: Int = 1) -> ChaosCheck {
        var winners: [Int: [String]] = [:]
        var bursts = Set<Int>()
        for r in records {
            guard let b = r.burst else { continue }
            bursts.insert(b)
            let won: Bool
            switch r.outcome {
            case .answered(let status, _, _, _): won = (200..<300).contains(status)
            case .unknown: won = logged[r.requestID] != nil
            case .notSent: won = false
            }
            if won { winners[b, default: []].append(r.requestID) }
        }
        let problems = winners.filter { $0.value.count > 1 }.sorted { $0.key < $1.key }
            .map { "burst \($0.key): \($0.value.count) winners \($0.value.sorted())" }
        let won = winners.values.filter { $0.count == 1 }.count
        return covered(ChaosCheck(name: "concurrent If-Match updates: at most one winner each", passed: problems.isEmpty,
                                  detail: "\(bursts.count) bursts, \(won) with a winner", problems: Array(problems.prefix(maxProblems))),
                       work: bursts.count, minimum: minimum, of: "If-Match bursts")
    }

    /// Answers under faults are the documented ones: no 500 (or other 5xx than 503), every 503 says Retry-After,
    /// every error has NetBird's `{"message", "code"}` body, and no request hung on a controller that stayed up.
    public static func answers(_ records: [ChaosRequestRecord], minimum: Int = 1) -> ChaosCheck {
        var problems: [String] = []
        for r in records {
            switch r.outcome {
            case .answered(let status, _, let retryAfter, let message):
                if status >= 500 && status != 503 { problems.append("\(r.requestID) (\(r.kind.rawValue)): \(status) \(message ?? "")") }
                if status == 503 && retryAfter == nil { problems.append("\(r.requestID): 503 without Retry-After") }
                if status >= 400 && message == nil { problems.append("\(r.requestID): \(status) without an error body") }
            case .unknown(let reason, let timedOut):
                if timedOut && !r.controllerKilledDuring {
                    problems.append("\(r.requestID) (\(r.kind.rawValue)): no answer from controller \(r.controller) (up all along) within the deadline")
                } else if !r.controllerKilledDuring {
                    problems.append("\(r.requestID) (\(r.kind.rawValue)): connection broke while controller \(r.controller) was up: \(reason)")
                }
            case .notSent:
                break
            }
        }
        return covered(ChaosCheck(name: "answers under faults: no 5xx but 503 with Retry-After, no hang", passed: problems.isEmpty,
                                  detail: "\(records.count) requests", problems: Array(problems.prefix(maxProblems))),
                       work: records.count, minimum: minimum, of: "requests")
    }

    /// Each agent holds exactly its projected view (version and digest; no row and nothing applied also agree).
    public static func agentsMatchProjection(_ agents: [ChaosAgentHistory], projected: [ChaosViewKey: ChaosProjectedView],
                                             minimum: Int = 1) -> ChaosCheck {
        var problems: [String] = []
        for a in agents {
            let want = projected[ChaosViewKey(tenant: a.tenant, peer: a.peer)]
            let have = a.finalDigest.map { ChaosProjectedView(version: a.finalVersion, digest: $0) }
            if want != have {
                problems.append("\(a.tenant)/\(a.peer): applied \(have.map { "v\($0.version) \($0.digest.prefix(12))" } ?? "nothing"), "
                                + "projected \(want.map { "v\($0.version) \($0.digest.prefix(12))" } ?? "nothing")")
            }
        }
        return covered(ChaosCheck(name: "every agent's applied view equals its projected view", passed: problems.isEmpty,
                                  detail: "\(agents.count) agents", problems: Array(problems.prefix(maxProblems))),
                       work: agents.count, minimum: minimum, of: "agents")
    }

    /// No agent ever applied a lower version than one it had: each applied version is higher than the one before,
    /// except the re-application of the same view from its state folder after a restart.
    public static func agentsNeverWentBack(_ agents: [ChaosAgentHistory], minimum: Int = 1) -> ChaosCheck {
        var problems: [String] = []
        var total = 0
        for a in agents {
            total += a.applied.count
            for (prev, next) in zip(a.applied, a.applied.dropFirst()) {
                let restart = next.source == "persisted" && next.version == prev.version && next.digest == prev.digest
                if next.version <= prev.version && !restart {
                    problems.append("\(a.tenant)/\(a.peer): applied v\(next.version) (\(next.source)) after v\(prev.version) (\(prev.source))")
                }
            }
        }
        return covered(ChaosCheck(name: "no agent ever applied a lower version than one it had", passed: problems.isEmpty,
                                  detail: "\(total) applied views recorded", problems: Array(problems.prefix(maxProblems))),
                       work: total, minimum: minimum, of: "applied views")
    }

    /// Seconds from `reference` (the last fault healed, writes stopped) until the last agent applied its final view
    /// (0 when every agent already had it).
    public static func convergenceTime(_ agents: [ChaosAgentHistory], reference: Double) -> Double {
        var worst = 0.0
        for a in agents {
            guard let i = a.applied.lastIndex(where: { $0.version == a.finalVersion && $0.digest == a.finalDigest }) else { continue }
            // The first application of the final view (a restart re-applies it later from the state folder).
            var first = i
            while first > 0, a.applied[first - 1].version == a.finalVersion { first -= 1 }
            worst = max(worst, a.applied[first].at - reference)
        }
        return worst
    }
}

extension ChaosChecks {
    /// After a NATS restart: seconds from `since` until every agent applied at least the version its view had at that
    /// moment (`targets`); nil when some agent never did (the convergence check then fails too).
    public static func catchUp(_ agents: [ChaosAgentHistory], targets: [ChaosViewKey: Int64], since: Double) -> Double? {
        var worst = 0.0
        for a in agents {
            guard let target = targets[ChaosViewKey(tenant: a.tenant, peer: a.peer)] else { continue }
            guard let reached = a.applied.first(where: { $0.version >= target }) else { return nil }
            worst = max(worst, reached.at - since)
        }
        return worst
    }

    /// After the database came back at `since`: seconds until the first write was acknowledged, and until the last 503 answer.
    public static func recovery(_ records: [ChaosRequestRecord], since: Double) -> (firstSuccess: Double?, last503: Double?) {
        let first = records.filter { $0.kind.isWrite && $0.outcome.isSuccess && $0.start >= since }.map(\.end).min()
        let last503 = records.filter { $0.outcome.status == 503 }.map(\.end).max()
        return (first.map { $0 - since }, last503.map { $0 - since })
    }
}

/// The faults of a run, planned up front from the seed (times in seconds from the start of the chaos phase).
public struct ChaosPlan: Sendable, Equatable {
    public enum Fault: Sendable, Equatable {
        /// kill -9 controller `index`, restart it after `downFor` seconds.
        case killController(index: Int, downFor: Double)
        /// Stop PostgreSQL, start it again after `hold` seconds.
        case postgresOutage(hold: Double)
        case natsOutage(hold: Double)
        /// Cancel one simulated agent and start it again from its state folder.
        case restartAgent(index: Int)
    }

    public struct Step: Sendable, Equatable {
        public var at: Double
        public var fault: Fault
    }

    public var steps: [Step]

    /// Kills every `killEvery` seconds (uniform) from 2 s until 4 s before the end, at most `controllers - 1` down at
    /// once (assuming a restart takes `restartTime`); PostgreSQL at 35 % and NATS at 60 % of the duration; an agent
    /// restart every `agentRestartEvery` seconds.
    public static func make(duration: Double, controllers: Int, agents: Int, killEvery: ClosedRange<Double>, downFor: ClosedRange<Double>,
                     outageHold: Double, agentRestartEvery: Double?, restartTime: Double = 3, seed: UInt64) -> ChaosPlan {
        var rng = ChaosRandom(seed: seed)
        var steps: [Step] = []
        var downUntil = [Double](repeating: -1, count: controllers)
        var t = 2.0 + Double.random(in: killEvery, using: &rng) / 2
        while t < duration - 4, controllers > 1 {
            let up = (0..<controllers).filter { downUntil[$0] <= t }
            if up.count >= 2 {
                let index = up.randomElement(using: &rng)!
                let down = Double.random(in: downFor, using: &rng)
                steps.append(Step(at: t, fault: .killController(index: index, downFor: down)))
                downUntil[index] = t + down + restartTime
            }
            t += Double.random(in: killEvery, using: &rng)
        }
        steps.append(Step(at: duration * 0.35, fault: .postgresOutage(hold: outageHold)))
        steps.append(Step(at: duration * 0.6, fault: .natsOutage(hold: outageHold)))
        if let every = agentRestartEvery, agents > 0 {
            var a = every
            while a < duration - 4 {
                steps.append(Step(at: a, fault: .restartAgent(index: Int.random(in: 0..<agents, using: &rng))))
                a += every
            }
        }
        return ChaosPlan(steps: steps.sorted { $0.at < $1.at })
    }

    public var kills: Int { steps.filter { if case .killController = $0.fault { return true }; return false }.count }
}

/// The counts printed at the end.
public struct ChaosCounts: Sendable, Equatable {
    public init(writes: Int = 0, acknowledged: Int = 0, conflicts409: Int = 0, preconditionFailed412: Int = 0,
                unavailable503: Int = 0, otherClientErrors: Int = 0, notSent: Int = 0, unknown: Int = 0, reads: Int = 0,
                reads503: Int = 0) {
        self.writes = writes
        self.acknowledged = acknowledged
        self.conflicts409 = conflicts409
        self.preconditionFailed412 = preconditionFailed412
        self.unavailable503 = unavailable503
        self.otherClientErrors = otherClientErrors
        self.notSent = notSent
        self.unknown = unknown
        self.reads = reads
        self.reads503 = reads503
    }

    public var writes = 0
    public var acknowledged = 0
    public var conflicts409 = 0
    public var preconditionFailed412 = 0
    public var unavailable503 = 0
    public var otherClientErrors = 0
    public var notSent = 0
    public var unknown = 0
    public var reads = 0
    public var reads503 = 0

    public static func from(_ records: [ChaosRequestRecord]) -> ChaosCounts {
        var c = ChaosCounts()
        for r in records {
            guard r.kind.isWrite else {
                c.reads += 1
                if r.outcome.status == 503 { c.reads503 += 1 }
                continue
            }
            c.writes += 1
            switch r.outcome {
            case .answered(let status, _, _, _):
                switch status {
                case 200..<300: c.acknowledged += 1
                case 409: c.conflicts409 += 1
                case 412: c.preconditionFailed412 += 1
                case 503: c.unavailable503 += 1
                default: c.otherClientErrors += 1
                }
            case .notSent: c.notSent += 1
            case .unknown: c.unknown += 1
            }
        }
        return c
    }
}
