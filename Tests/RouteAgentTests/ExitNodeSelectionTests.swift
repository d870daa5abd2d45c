import Foundation
import RouteAgent
import RouteModel
import RouteSelection
import Testing

/// Exit nodes and `skip_auto_apply` routes on the client: offered, installed only once the user selects them (NetBird's
/// `netbird routes select`), at most one exit node, deselect removes. Pure: views and choices in, desired state out.
@Suite("Exit nodes and route selection")
struct ExitNodeSelectionTests {
    let t0 = ContinuousClock.now
    func at(_ s: Int) -> ContinuousClock.Instant { t0 + .seconds(s) }

    static func key(_ networkID: String, _ prefix: String) -> HAKey {
        HAKey(networkID: networkID, destination: .network(try! Prefix(parsing: prefix)))
    }
    static func candidate(_ peer: String, _ ip: String, route: String, skipAutoApply: Bool = false) -> RouteCandidate {
        RouteCandidate(peerID: PeerID(peer), meshIP: try! IPAddress(parsing: ip), metric: 100, masquerade: true,
                       keepRoute: false, skipAutoApply: skipAutoApply, routeID: RouteID(route))
    }

    let exit1 = key("exit-1", "0.0.0.0/0")
    let exit2 = key("exit-2", "0.0.0.0/0")
    let lan = key("lan", "10.20.0.0/24")
    let lab = key("lab", "10.40.0.0/16")
    let r1 = candidate("r1", "100.64.0.1", route: "route-exit-1")
    let r2 = candidate("r2", "100.64.0.2", route: "route-exit-2")
    let r3 = candidate("r3", "100.64.0.3", route: "route-lan")
    let r4Offered = candidate("r4", "100.64.0.4", route: "route-lab", skipAutoApply: true)

    func machine(_ sets: [HASet]) -> AgentStateMachine {
        var m = AgentStateMachine(configuration: .init(assumeCandidatesUp: true))
        let view = PeerRouteView(peerID: "client", haSets: sets.sorted { $0.key < $1.key })
        _ = m.receive(.init(version: 1, digest: "d1", body: [], view: view, source: .nats), now: at(0))
        return m
    }

    var view: [HASet] {
        [HASet(key: exit1, candidates: [r1]), HASet(key: exit2, candidates: [r2]), HASet(key: lan, candidates: [r3]),
         HASet(key: lab, candidates: [r4Offered])]
    }

    func installed(_ m: AgentStateMachine) throws -> [String: String] {
        try m.desired.validate()
        return Dictionary(uniqueKeysWithValues: m.desired.routes.map { ($0.destination.description, $0.nextHop.description) })
    }

    var offered: [OfferedRoute] { RouteChoices.offered(in: view) }

    @Test("an exit node is never installed by default, even without skip_auto_apply; a skip_auto_apply range waits too")
    func exitNodeNeverAutoInstalled() throws {
        let m = machine(view)
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.3"])
        #expect(m.desired.unreachable.isEmpty)
        #expect(offered.map(\.networkID) == ["exit-1", "exit-2", "lab", "lan"])
        #expect(offered.filter(\.isExitNode).map(\.networkID) == ["exit-1", "exit-2"])
        let listing = m.routeListing()
        #expect(listing.routes.filter(\.selected).map(\.networkID) == ["lan"])
        #expect(listing.routes.first { $0.networkID == "exit-1" }?.destinations.first?.installed == false)
    }

    @Test("select an exit node: its default route is installed, with ::/0 unreachable beside it; deselect removes both")
    func selectAndDeselectExitNode() throws {
        var m = machine(view)
        let selected = try RouteChoices.defaults.selecting(["exit-1"], append: true, offered: offered)
        let actions = m.choicesChanged(selected, now: at(1))
        #expect(try installed(m) == ["0.0.0.0/0": "100.64.0.1", "10.20.0.0/24": "100.64.0.3"])
        #expect(m.desired.unreachable == [ExitNodes.v6Default])
        #expect(actions.contains(.apply(m.desired)))
        let deselected = try selected.deselecting(["exit-1"], offered: offered)
        _ = m.choicesChanged(deselected, now: at(2))
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.3"])
        #expect(m.desired.unreachable.isEmpty)
    }

    @Test("at most one exit node: selecting another replaces it; naming two at once is refused")
    func atMostOneExitNode() throws {
        var m = machine(view)
        let first = try RouteChoices.defaults.selecting(["exit-1"], append: true, offered: offered)
        let second = try first.selecting(["exit-2"], append: true, offered: offered)
        #expect(second.exitNode == "exit-2")
        _ = m.choicesChanged(second, now: at(1))
        #expect(try installed(m) == ["0.0.0.0/0": "100.64.0.2", "10.20.0.0/24": "100.64.0.3"])
        #expect(m.desired.routes.filter { $0.destination.length == 0 }.count == 1)
        #expect(throws: RouteChoiceError.self) { try first.selecting(["exit-1", "exit-2"], append: true, offered: offered) }
        // A hand-edited file cannot name two either: the exit node is one field.
        #expect(!second.applies(exit1, candidates: [r1]) && second.applies(exit2, candidates: [r2]))
    }

    @Test("skip_auto_apply: offered, installed once selected, removed on deselect; select without --append replaces the selection")
    func skipAutoApply() throws {
        var m = machine(view)
        let withLab = try RouteChoices.defaults.selecting(["lab"], append: true, offered: offered)
        _ = m.choicesChanged(withLab, now: at(1))
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.3", "10.40.0.0/16": "100.64.0.4"])
        let only = try withLab.selecting(["lab"], append: false, offered: offered)
        _ = m.choicesChanged(only, now: at(2))
        #expect(try installed(m) == ["10.40.0.0/16": "100.64.0.4"], "NetBird: the listed ids become the whole selection")
        let none = try only.deselecting(["all"], offered: offered)
        _ = m.choicesChanged(none, now: at(3))
        #expect(try installed(m).isEmpty)
        let reset = try none.selecting(["all"], append: false, offered: offered)
        _ = m.choicesChanged(reset, now: at(4))
        #expect(try installed(m) == ["10.20.0.0/24": "100.64.0.3"], "select all: back to the defaults (exit nodes and lab wait again)")
    }

    @Test("unknown network ids are refused, as NetBird does")
    func unknownIDs() throws {
        #expect(throws: RouteChoiceError("route 'nope' is not available")) {
            try RouteChoices.defaults.selecting(["nope"], append: true, offered: offered)
        }
        #expect(throws: RouteChoiceError.self) { try RouteChoices.defaults.deselecting(["lan", "nope"], offered: offered) }
    }

    @Test("the -v6 pair and ::/0 under the same network id follow the selected exit node: no blackhole then")
    func v6Pair() throws {
        let pair6 = Self.key("exit-1-v6", "::/0")
        let r1v6 = RouteCandidate(peerID: "r1", meshIP: try IPAddress(parsing: "fd00::1"), metric: 100, masquerade: true,
                                  keepRoute: false, skipAutoApply: false, routeID: "route-exit-1-v6")
        var sets = view
        sets.append(HASet(key: pair6, candidates: [r1v6]))
        var m = machine(sets)
        _ = m.choicesChanged(RouteChoices(exitNode: "exit-1", generation: 1), now: at(1))
        #expect(try installed(m)["::/0"] == "fd00::1")
        #expect(m.desired.unreachable.isEmpty)
        _ = m.choicesChanged(RouteChoices(exitNode: "exit-2", generation: 2), now: at(2))
        #expect(try installed(m)["::/0"] == nil)
        #expect(m.desired.unreachable == [ExitNodes.v6Default])
    }

    @Test("the choices survive a restart: a new machine given the saved choices installs the same routes")
    func choicesPersisted() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rp-choices-\(UInt64.random(in: 1...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files = RouteChoiceFiles(folder: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        #expect(try files.loadChoices() == nil)
        let chosen = try RouteChoices.defaults.selecting(["exit-2", "lab"], append: true, offered: offered)
        try files.saveChoices(chosen)
        let stamp = files.choicesStamp()
        #expect(stamp != nil)
        let loaded = try #require(try files.loadChoices())
        #expect(loaded == chosen)
        var m = machine(view)
        _ = m.choicesChanged(loaded, now: at(1))
        #expect(try installed(m) == ["0.0.0.0/0": "100.64.0.2", "10.20.0.0/24": "100.64.0.3", "10.40.0.0/16": "100.64.0.4"])
        let attributes = try FileManager.default.attributesOfItem(atPath: files.choicesPath)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        try files.saveListing(m.routeListing())
        #expect(try files.loadListing()?.choicesGeneration == chosen.generation)
        #expect(try files.loadListing()?.exitNode == "exit-2")
    }

    @Test("property: whatever the choices and health, at most one default route, and only the chosen exit node's", arguments: [1, 2, 3, 4] as [UInt64])
    func atMostOneDefaultRouteProperty(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var m = AgentStateMachine()
        _ = m.receive(.init(version: 1, digest: "d1", body: [], view: PeerRouteView(peerID: "client", haSets: view.sorted { $0.key < $1.key }),
                            source: .nats), now: at(0))
        var choices = RouteChoices.defaults
        let ids = ["exit-1", "exit-2", "lab", "lan", "all"]
        for step in 1...300 {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                let id = ids.randomElement(using: &rng)!
                if Bool.random(using: &rng) {
                    choices = try choices.selecting([id], append: Bool.random(using: &rng), offered: offered)
                } else {
                    choices = try choices.deselecting([id], offered: offered)
                }
                _ = m.choicesChanged(choices, now: at(step))
            case 1:
                let peer = ["r1", "r2", "r3", "r4"].randomElement(using: &rng)!
                _ = m.healthObserved([PeerID(peer): Bool.random(using: &rng) ? .connected() : .unreachable], now: at(step))
            default:
                _ = m.tick(now: at(step))
            }
            try m.desired.validate()
            let defaults = m.desired.routes.filter { $0.destination.length == 0 }
            #expect(defaults.count <= 1)
            if let d = defaults.first {
                let expected = choices.exitNode == "exit-1" ? "100.64.0.1" : "100.64.0.2"
                #expect(choices.exitNode != nil && d.nextHop.description == expected, "seed \(seed) step \(step)")
                #expect(m.desired.unreachable == [ExitNodes.v6Default])
            } else {
                #expect(m.desired.unreachable.isEmpty)
            }
            if m.desired.routes.contains(where: { $0.destination.description == "10.40.0.0/16" }) {
                #expect(choices.selected.contains("lab") && !choices.deselectAll, "seed \(seed) step \(step): lab installed without a select")
            }
        }
    }
}
