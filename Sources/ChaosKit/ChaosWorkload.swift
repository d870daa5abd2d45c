import Foundation

/// What the workload knows about one tenant (ids it created or was told), and the random operations it draws.
/// Pure: the shell (`ChaosRun`) sends the requests and feeds the answers back through `learn`.
public struct ChaosTenant: Sendable, Equatable {
    public init(id: String, token: String, index: Int, peers: [String] = [], peerNames: [String: String] = [:],
                routerCount: Int = 4, allGroup: String = "", groups: [String] = [], extraGroups: [String] = [],
                routes: [String] = []) {
        self.id = id
        self.token = token
        self.index = index
        self.peers = peers
        self.peerNames = peerNames
        self.routerCount = routerCount
        self.allGroup = allGroup
        self.groups = groups
        self.extraGroups = extraGroups
        self.routes = routes
    }

    public var id: String
    public var token: String
    public var index: Int
    /// Enrolled peers (the agents), in enrollment order; the first `routers` of them are routing peers.
    public var peers: [String] = []
    public var peerNames: [String: String] = [:]
    public var routerCount = 4
    /// The setup key's auto group (every peer): never changed, so every agent always has a view.
    public var allGroup = ""
    /// Distribution groups whose members the workload changes.
    public var groups: [String] = []
    /// Groups the workload created (and may delete).
    public var extraGroups: [String] = []
    public var routes: [String] = []

    public var routers: [String] { Array(peers.prefix(routerCount)) }
    public var distributionGroups: [String] { [allGroup] + groups + extraGroups }
}

public enum ChaosOperation: Sendable, Equatable {
    case createRoute
    /// PUT with a fresh random body; with `conditional` the ETag of a GET just before goes in If-Match.
    case updateRoute(id: String, conditional: Bool)
    /// GET once, then `count` concurrent PUTs with that ETag through different controllers.
    case conflictBurst(id: String, count: Int)
    case deleteRoute(id: String, conditional: Bool)
    case createGroup
    case updateGroup(id: String, conditional: Bool)
    /// Concurrent unconditional member changes of one group (all applied in turn).
    case groupBurst(id: String, count: Int)
    case deleteGroup(id: String)
    case drainPeer(id: String, draining: Bool)
}

public enum ChaosWorkload {
    public static let maxRoutes = 30
    public static let maxExtraGroups = 4
    public static let networkIDs = 6

    /// The next operation on `tenant`.
    public static func next(_ tenant: ChaosTenant, using rng: inout ChaosRandom) -> ChaosOperation {
        let roll = Int.random(in: 0..<100, using: &rng)
        let route = tenant.routes.randomElement(using: &rng)
        let group = tenant.groups.randomElement(using: &rng)
        if tenant.routes.count < 3 || (roll < 14 && tenant.routes.count < maxRoutes) { return .createRoute }
        switch roll {
        case 0..<14: return .deleteRoute(id: route!, conditional: Bool.random(using: &rng))
        case 14..<34: return .updateRoute(id: route!, conditional: true)
        case 34..<42: return .updateRoute(id: route!, conditional: false)
        case 42..<52: return .conflictBurst(id: route!, count: Int.random(in: 3...5, using: &rng))
        case 52..<60: return .deleteRoute(id: route!, conditional: Bool.random(using: &rng))
        case 60..<76: return group.map { .updateGroup(id: $0, conditional: Bool.random(using: &rng)) } ?? .createGroup
        case 76..<82: return group.map { .groupBurst(id: $0, count: Int.random(in: 2...4, using: &rng)) } ?? .createGroup
        case 82..<88:
            if tenant.extraGroups.count < maxExtraGroups { return .createGroup }
            return .deleteGroup(id: tenant.extraGroups.randomElement(using: &rng)!)
        case 88..<92:
            if let g = tenant.extraGroups.randomElement(using: &rng) { return .deleteGroup(id: g) }
            return .createGroup
        default:
            guard let router = tenant.routers.randomElement(using: &rng) else { return .createRoute }
            return .drainPeer(id: router, draining: Int.random(in: 0..<3, using: &rng) == 0)
        }
    }

    /// A route body (POST or PUT): HA sets form because network ids and ranges come from small pools.
    /// The description carries the request id, so every write changes the route (and leaves events).
    public static func routeBody(_ tenant: ChaosTenant, requestID: String, using rng: inout ChaosRandom) -> [String: any Sendable] {
        let n = Int.random(in: 0..<networkIDs, using: &rng)
        let third = Int.random(in: 0..<8, using: &rng) == 0 ? Int.random(in: 1...3, using: &rng) : 0
        var groups = Set<String>()
        let pool = tenant.distributionGroups.filter { !$0.isEmpty }
        for _ in 0..<Int.random(in: 1...2, using: &rng) { if let g = pool.randomElement(using: &rng) { groups.insert(g) } }
        return [
            "network_id": "net-\(n)",
            "network": "10.\(tenant.index).\(n * 4 + third).0/24",
            "peer": tenant.routers.randomElement(using: &rng) ?? "",
            "metric": Int.random(in: 1...9999, using: &rng),
            "masquerade": Bool.random(using: &rng),
            "keep_route": Int.random(in: 0..<4, using: &rng) == 0,
            "groups": groups.sorted(),
            "enabled": Int.random(in: 0..<10, using: &rng) != 0,
            "description": "chaos \(requestID)",
        ]
    }

    /// A group body: a random subset of the tenant's peers; the name carries the request id (unique, and a change).
    public static func groupBody(_ tenant: ChaosTenant, prefix: String, requestID: String, using rng: inout ChaosRandom) -> [String: any Sendable] {
        let share = Double.random(in: 0.2...0.7, using: &rng)
        let members = tenant.peers.filter { _ in Double.random(in: 0..<1, using: &rng) < share }
        return ["name": "\(prefix)-\(requestID)", "peers": members]
    }

    public static func peerBody(_ tenant: ChaosTenant, peer: String, draining: Bool, requestID: String) -> [String: any Sendable] {
        ["name": "\(tenant.peerNames[peer] ?? "peer")-\(requestID.suffix(8))", "draining": draining]
    }

    /// What an answer teaches the workload about the tenant's objects.
    public static func learn(_ tenant: inout ChaosTenant, operation: ChaosOperation, status: Int?, createdID: String?) {
        switch operation {
        case .createRoute:
            if let createdID, status.map({ (200..<300).contains($0) }) == true { tenant.routes.append(createdID) }
        case .createGroup:
            if let createdID, status.map({ (200..<300).contains($0) }) == true { tenant.extraGroups.append(createdID) }
        case .deleteRoute(let id, _), .updateRoute(let id, _), .conflictBurst(let id, _):
            if status == 404 || (status.map { (200..<300).contains($0) } == true && isDelete(operation)) { tenant.routes.removeAll { $0 == id } }
        case .deleteGroup(let id):
            if status == 404 || status.map({ (200..<300).contains($0) }) == true { tenant.extraGroups.removeAll { $0 == id } }
        case .updateGroup, .groupBurst, .drainPeer:
            break
        }
    }

    public static func isDelete(_ operation: ChaosOperation) -> Bool {
        if case .deleteRoute = operation { return true }
        return false
    }

    public static func json(_ object: [String: any Sendable]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object as [String: Any], options: [.sortedKeys])) ?? Data("{}".utf8))
    }
}
