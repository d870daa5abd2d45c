/// Everything one tenant has: routes, groups, peers, plus indexes so that validation, views and
/// impact analysis cost what a change touches, not what the tenant holds.
///
/// Built only by `evolve`/`apply` from events. Equality compares the entities; the indexes are
/// derived from them (`indexesAreConsistent` checks that in tests).
public struct TenantState: Sendable, Equatable {
    public private(set) var routes: [RouteID: Route] = [:]
    public private(set) var groups: [GroupID: Group] = [:]
    public private(set) var peers: [PeerID: Peer] = [:]
    /// Set by `TenantCreated` (nil for streams written before tenants had one).
    public private(set) var tenantName: String?
    public private(set) var tokens: [TokenID: TokenInfo] = [:]
    public private(set) var setupKeys: [SetupKeyID: SetupKey] = [:]
    public private(set) var setupKeyUsage: [SetupKeyID: SetupKeyUsage] = [:]
    public private(set) var policies: [PolicyID: Policy] = [:]

    // Indexes. Empty sets are removed, so rebuilt and incrementally kept indexes compare equal.
    /// peer -> groups it is a member of.
    private(set) var groupsOfPeer: [PeerID: Set<GroupID>] = [:]
    /// group -> routes that distribute to it (`groups`).
    private(set) var routesByDistributionGroup: [GroupID: Set<RouteID>] = [:]
    /// group -> routes whose routing peers are its members (`peer_groups`).
    private(set) var routesByPeerGroup: [GroupID: Set<RouteID>] = [:]
    /// group -> routes that use it in `access_control_groups`.
    private(set) var routesByAccessControlGroup: [GroupID: Set<RouteID>] = [:]
    /// peer -> routes naming it as their single routing peer (`peer`).
    private(set) var routesByDirectPeer: [PeerID: Set<RouteID>] = [:]
    /// destination (range or domain list) -> routes, for the "serves it twice" rule.
    private(set) var routesByDestination: [RouteDestination: Set<RouteID>] = [:]
    private(set) var peerByMeshIP: [IPAddress: PeerID] = [:]
    private(set) var groupByName: [String: GroupID] = [:]
    /// group -> policies naming it in any rule, as a source or a destination.
    private(set) var policiesByGroup: [GroupID: Set<PolicyID>] = [:]
    /// group -> policies with a rule whose destinations contain it.
    private(set) var policiesByDestinationGroup: [GroupID: Set<PolicyID>] = [:]

    public init() {}

    /// Folds events into a fresh state.
    public init<S: Sequence>(events: S) where S.Element == RouteEvent {
        self.init()
        for e in events { apply(e) }
    }

    /// A state from its entities (a stored history snapshot, `StoredTenantState`), indexes rebuilt as `apply` keeps them.
    init(routes: [Route], groups: [Group], peers: [Peer], tenantName: String?, tokens: [TokenID: TokenInfo],
         setupKeys: [SetupKeyID: SetupKey], setupKeyUsage: [SetupKeyID: SetupKeyUsage]) {
        self.init()
        for p in peers {
            self.peers[p.id] = p
            peerByMeshIP[p.meshIP] = p.id
        }
        for g in groups {
            self.groups[g.id] = Group(id: g.id, name: g.name, peers: [])
            groupByName[g.name] = g.id
            addMembers(g.peers, to: g.id)
        }
        for r in routes { insertRoute(r) }
        self.tenantName = tenantName
        self.tokens = tokens
        self.setupKeys = setupKeys
        self.setupKeyUsage = setupKeyUsage
    }

    public static func == (a: TenantState, b: TenantState) -> Bool {
        a.routes == b.routes && a.groups == b.groups && a.peers == b.peers && a.tenantName == b.tenantName
            && a.tokens == b.tokens && a.setupKeys == b.setupKeys && a.setupKeyUsage == b.setupKeyUsage
            && a.policies == b.policies
    }

    // MARK: - queries

    public func route(_ id: RouteID) -> Route? { routes[id] }
    public func group(_ id: GroupID) -> Group? { groups[id] }
    public func peer(_ id: PeerID) -> Peer? { peers[id] }
    public func peer(meshIP: IPAddress) -> PeerID? { peerByMeshIP[meshIP] }
    public func group(named name: String) -> GroupID? { groupByName[name] }

    /// Groups `peer` is a member of.
    public func groups(of peer: PeerID) -> Set<GroupID> { groupsOfPeer[peer] ?? [] }

    /// Ids of routes referencing `group` in any role (distribution, peer group, access control), sorted.
    public func routes(using group: GroupID) -> [RouteID] {
        var s = routesByDistributionGroup[group] ?? []
        s.formUnion(routesByPeerGroup[group] ?? [])
        s.formUnion(routesByAccessControlGroup[group] ?? [])
        return s.sorted()
    }

    /// Ids of policies naming `group` in any rule (source or destination), sorted.
    public func policies(using group: GroupID) -> [PolicyID] { (policiesByGroup[group] ?? []).sorted() }

    /// Ids of policies with a rule whose destinations contain `group`.
    public func policyIDs(withDestination group: GroupID) -> Set<PolicyID> { policiesByDestinationGroup[group] ?? [] }

    /// True when some policy names `group` in any rule.
    func isUsedByPolicies(_ group: GroupID) -> Bool { policiesByGroup[group] != nil }

    /// Ids of routes naming `peer` as their single routing peer, sorted.
    public func routes(routedBy peer: PeerID) -> [RouteID] { (routesByDirectPeer[peer] ?? []).sorted() }

    func routeIDs(distributedTo group: GroupID) -> Set<RouteID> { routesByDistributionGroup[group] ?? [] }
    func routeIDs(withPeerGroup group: GroupID) -> Set<RouteID> { routesByPeerGroup[group] ?? [] }
    func routeIDs(withAccessControlGroup group: GroupID) -> Set<RouteID> { routesByAccessControlGroup[group] ?? [] }
    func routeIDs(directPeer peer: PeerID) -> Set<RouteID> { routesByDirectPeer[peer] ?? [] }
    func routeIDs(destination: RouteDestination) -> Set<RouteID> { routesByDestination[destination] ?? [] }

    /// True when some route uses `group` in any role.
    func isUsedByRoutes(_ group: GroupID) -> Bool {
        routesByDistributionGroup[group] != nil || routesByPeerGroup[group] != nil
            || routesByAccessControlGroup[group] != nil
    }

    /// Every peer that may forward `route` (direct peer, or members of its peer groups), whether or
    /// not it can route. Unknown ids are skipped.
    public func routingPeerIDs(of route: Route) -> Set<PeerID> {
        switch route.routingPeers {
        case .peer(let p): return [p]
        case .peerGroups(let gs):
            var s = Set<PeerID>()
            for g in gs { if let grp = groups[g] { s.formUnion(grp.peers) } }
            return s
        }
    }

    /// Members of any of `groupIDs`.
    public func members(of groupIDs: [GroupID]) -> Set<PeerID> {
        var s = Set<PeerID>()
        for g in groupIDs { if let grp = groups[g] { s.formUnion(grp.peers) } }
        return s
    }

    // MARK: - evolve

    /// Applies one event. Events come from `decide`, so they are valid for this state; an event
    /// that does not fit (e.g. deleting a missing route) is applied as far as it makes sense.
    public mutating func apply(_ event: RouteEvent) {
        switch event {
        case .routeCreated(let e):
            insertRoute(e.route)
        case .routeUpdated(let e):
            if e.old.id == e.new.id, let current = routes.index(forKey: e.new.id),
               Self.sameIndexKeys(routes.values[current], e.new) {
                // Metric, description, masquerade, enabled…: no index changes (the common update).
                routes.values[current] = e.new
            } else {
                removeRoute(e.old.id)
                insertRoute(e.new)
            }
        case .routeDeleted(let e):
            removeRoute(e.route.id)
        case .groupCreated(let e):
            if let old = groups[e.group.id] { removeGroup(old.id) }
            groups[e.group.id] = Group(id: e.group.id, name: e.group.name, peers: [])
            groupByName[e.group.name] = e.group.id
            addMembers(e.group.peers, to: e.group.id)
        case .groupUpdated(let e):
            guard var g = groups[e.groupID] else { return }
            if groupByName[g.name] == g.id { groupByName[g.name] = nil }
            g.name = e.name
            groups[e.groupID] = g
            groupByName[e.name] = e.groupID
        case .groupMembersChanged(let e):
            removeMembers(e.removed, from: e.groupID)
            addMembers(e.added, to: e.groupID)
        case .groupDeleted(let e):
            removeGroup(e.group.id)
        case .peerEnrolled(let e):
            peers[e.peer.id] = e.peer
            peerByMeshIP[e.peer.meshIP] = e.peer.id
            if let k = e.setupKeyID {
                setupKeyUsage[k, default: SetupKeyUsage()].usedTimes += 1
                if let t = e.enrolledAt { setupKeyUsage[k]?.lastUsed = t }
            }
        case .peerRenamed(let e):
            peers[e.peerID]?.name = e.name
        case .peerDrainingChanged(let e):
            peers[e.peerID]?.draining = e.draining
        case .peerRemoved(let e):
            let member = groupsOfPeer[e.peer.id] ?? []
            for g in member.union(e.groups) { removeMembers([e.peer.id], from: g) }
            if let p = peers.removeValue(forKey: e.peer.id), peerByMeshIP[p.meshIP] == p.id {
                peerByMeshIP[p.meshIP] = nil
            }
        case .tenantCreated(let e):
            tenantName = e.name
        case .tokenCreated(let e):
            tokens[e.tokenID] = TokenInfo(name: e.name, revoked: false, scope: e.scope ?? .admin, expiresAt: e.expiresAt,
                                          createdAt: e.createdAt, createdBy: e.createdBy)
        case .tokenRevoked(let e):
            tokens[e.tokenID]?.revoked = true
        case .setupKeyCreated(let e):
            setupKeys[e.setupKey.id] = e.setupKey
        case .setupKeyUpdated(let e):
            setupKeys[e.new.id] = e.new
        case .setupKeyDeleted(let e):
            setupKeys[e.setupKey.id] = nil
            setupKeyUsage[e.setupKey.id] = nil
        case .policyCreated(let e):
            removePolicy(e.policy.id)
            insertPolicy(e.policy)
        case .policyUpdated(let e):
            removePolicy(e.old.id)
            insertPolicy(e.new)
        case .policyDeleted(let e):
            removePolicy(e.policy.id)
        }
    }

    private mutating func insertRoute(_ r: Route) {
        routes[r.id] = r
        for g in r.groups { routesByDistributionGroup[g, default: []].insert(r.id) }
        for g in r.accessControlGroups { routesByAccessControlGroup[g, default: []].insert(r.id) }
        switch r.routingPeers {
        case .peer(let p): routesByDirectPeer[p, default: []].insert(r.id)
        case .peerGroups(let gs): for g in gs { routesByPeerGroup[g, default: []].insert(r.id) }
        }
        routesByDestination[r.destination, default: []].insert(r.id)
    }

    /// True when `a` and `b` sit under the same keys of every route index (so replacing one by the
    /// other leaves the indexes as a remove and insert would).
    private static func sameIndexKeys(_ a: Route, _ b: Route) -> Bool {
        a.groups == b.groups && a.accessControlGroups == b.accessControlGroups && a.routingPeers == b.routingPeers
            && a.destination == b.destination
    }

    private mutating func removeRoute(_ id: RouteID) {
        guard let r = routes.removeValue(forKey: id) else { return }
        for g in r.groups { Self.remove(id, at: g, in: &routesByDistributionGroup) }
        for g in r.accessControlGroups { Self.remove(id, at: g, in: &routesByAccessControlGroup) }
        switch r.routingPeers {
        case .peer(let p): Self.remove(id, at: p, in: &routesByDirectPeer)
        case .peerGroups(let gs): for g in gs { Self.remove(id, at: g, in: &routesByPeerGroup) }
        }
        Self.remove(id, at: r.destination, in: &routesByDestination)
    }

    private mutating func insertPolicy(_ p: Policy) {
        policies[p.id] = p
        for g in p.referencedGroups { policiesByGroup[g, default: []].insert(p.id) }
        for g in p.destinationGroups { policiesByDestinationGroup[g, default: []].insert(p.id) }
    }

    private mutating func removePolicy(_ id: PolicyID) {
        guard let p = policies.removeValue(forKey: id) else { return }
        for g in p.referencedGroups { Self.remove(id, at: g, in: &policiesByGroup) }
        for g in p.destinationGroups { Self.remove(id, at: g, in: &policiesByDestinationGroup) }
    }

    private mutating func removeGroup(_ id: GroupID) {
        guard let g = groups[id] else { return }
        removeMembers(g.peers, from: id)
        groups[id] = nil
        if groupByName[g.name] == id { groupByName[g.name] = nil }
    }

    // Membership changes edit the group's sorted member list and the index sets in place (binary search;
    // no copy of a set or array still referenced from the dictionary, no re-sort).
    private mutating func addMembers(_ ps: [PeerID], to id: GroupID) {
        guard !ps.isEmpty, let g = groups.index(forKey: id) else { return }
        for p in ps where Self.insertSorted(p, into: &groups.values[g].peers) {
            groupsOfPeer[p, default: []].insert(id)
        }
    }

    private mutating func removeMembers(_ ps: [PeerID], from id: GroupID) {
        guard !ps.isEmpty, let g = groups.index(forKey: id) else { return }
        for p in ps where Self.removeSorted(p, from: &groups.values[g].peers) {
            Self.remove(id, at: p, in: &groupsOfPeer)
        }
    }

    /// Inserts `p` into the sorted, duplicate-free `peers`; false when it is already there.
    private static func insertSorted(_ p: PeerID, into peers: inout [PeerID]) -> Bool {
        let i = lowerBound(p, in: peers)
        if i < peers.count && peers[i] == p { return false }
        peers.insert(p, at: i)
        return true
    }

    /// Removes `p` from the sorted, duplicate-free `peers`; false when it was not there.
    private static func removeSorted(_ p: PeerID, from peers: inout [PeerID]) -> Bool {
        let i = lowerBound(p, in: peers)
        guard i < peers.count && peers[i] == p else { return false }
        peers.remove(at: i)
        return true
    }

    /// The first index of `peers` (sorted) whose element is not less than `p`.
    private static func lowerBound(_ p: PeerID, in peers: [PeerID]) -> Int {
        var low = 0
        var high = peers.count
        while low < high {
            let mid = (low + high) / 2
            if peers[mid] < p { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private static func remove<K: Hashable, V: Hashable>(_ v: V, at k: K, in index: inout [K: Set<V>]) {
        guard let i = index.index(forKey: k) else { return }
        index.values[i].remove(v)
        if index.values[i].isEmpty { index.remove(at: i) }
    }

    // MARK: - checks

    /// True when every index equals the one rebuilt from the entities (for tests).
    public var indexesAreConsistent: Bool {
        var fresh = TenantState()
        for p in peers.values { fresh.apply(.peerEnrolled(PeerEnrolled(peer: p))) }
        for g in groups.values { fresh.apply(.groupCreated(GroupCreated(group: g))) }
        for r in routes.values { fresh.apply(.routeCreated(RouteCreated(route: r))) }
        for p in policies.values { fresh.apply(.policyCreated(PolicyCreated(policy: p))) }
        // Access state is not rebuilt here: compare what was.
        fresh.tenantName = tenantName
        fresh.tokens = tokens
        fresh.setupKeys = setupKeys
        fresh.setupKeyUsage = setupKeyUsage
        return fresh == self
            && fresh.groupsOfPeer == groupsOfPeer
            && fresh.routesByDistributionGroup == routesByDistributionGroup
            && fresh.routesByPeerGroup == routesByPeerGroup
            && fresh.routesByAccessControlGroup == routesByAccessControlGroup
            && fresh.routesByDirectPeer == routesByDirectPeer
            && fresh.routesByDestination == routesByDestination
            && fresh.peerByMeshIP == peerByMeshIP
            && fresh.groupByName == groupByName
            && fresh.policiesByGroup == policiesByGroup
            && fresh.policiesByDestinationGroup == policiesByDestinationGroup
    }
}

/// `evolve(state, event)`: the state after `event`.
public func evolve(_ state: TenantState, _ event: RouteEvent) -> TenantState {
    var s = state
    s.apply(event)
    return s
}

/// Folds several events in order.
public func evolve<S: Sequence>(_ state: TenantState, _ events: S) -> TenantState where S.Element == RouteEvent {
    var s = state
    for e in events { s.apply(e) }
    return s
}
