/// The peers whose view may change because of `event` (`before` is the state the event was
/// decided against, `after` = `evolve(before, event)`). Never misses a peer (tested against a
/// brute-force recompute of every view); may include a few whose view turns out unchanged
/// (the projection's digest comparison drops those).
///
/// Cost is proportional to the peers the change touches: the members of the distribution groups
/// of the routes involved, their routing peers, and the changed members themselves.
///
/// Keeping a `before` copy around makes the next mutation copy the state's storage (copy on
/// write, proportional to tenant size); projections should prefer `TenantState.apply(_:affected:)`,
/// which computes the same set in place.
public func affectedPeers(_ event: RouteEvent, before: TenantState, after: TenantState) -> Set<PeerID> {
    var out = Set<PeerID>()
    Impact.collect(event, in: before, phase: .before, into: &out)
    Impact.collect(event, in: after, phase: .after, into: &out)
    return out
}

extension TenantState {
    /// Applies `event` in place and adds to `affected` the peers whose view may change
    /// (the same set as `affectedPeers(event, before:, after:)`, without copying the state).
    public mutating func apply(_ event: RouteEvent, affected: inout Set<PeerID>) {
        Impact.collect(event, in: self, phase: .before, into: &affected)
        apply(event)
        Impact.collect(event, in: self, phase: .after, into: &affected)
    }
}

enum Impact {
    enum Phase { case before, after }

    /// The part of the impact that can be read from the state on one side of the event.
    static func collect(_ event: RouteEvent, in state: TenantState, phase: Phase, into out: inout Set<PeerID>) {
        switch event {
        case .routeCreated(let e):
            if phase == .after { addPeers(of: e.route, in: state, to: &out) }
        case .routeDeleted(let e):
            if phase == .before { addPeers(of: e.route, in: state, to: &out) }
        case .routeUpdated(let e):
            var a = e.old
            a.description = e.new.description
            if a == e.new { return } // only the description changed: it is in no view
            addPeers(of: phase == .before ? e.old : e.new, in: state, to: &out)
        case .groupCreated, .groupUpdated, .groupDeleted:
            // A new group is used by no route yet; a name is in no view; a group still used by a
            // route cannot be deleted. No view depends on them.
            return
        case .groupMembersChanged(let e):
            addMembershipImpact(group: e.groupID, changed: e.added + e.removed, in: state, to: &out)
        case .peerEnrolled(let e):
            // A new peer is in no group: its view is empty, but it now exists (projections create it).
            if phase == .after { out.insert(e.peer.id) }
        case .peerRenamed:
            return
        case .peerDrainingChanged(let e):
            // The flag is on the peer's candidate entries: the clients of every enabled route it may
            // forward (directly or as a member of a peer group) see it. Same on both sides.
            guard phase == .after, state.peer(e.peerID)?.canRoute == true else { return }
            addClients(ofRoutesServedBy: e.peerID, in: state, to: &out)
        case .tenantCreated, .tokenCreated, .tokenRevoked, .setupKeyCreated, .setupKeyUpdated, .setupKeyDeleted:
            // Access changes are in no view.
            return
        case .policyCreated(let e):
            if phase == .after { addRoutingPeers(ofRoutesGuardedBy: e.policy, in: state, to: &out) }
        case .policyUpdated(let e):
            addRoutingPeers(ofRoutesGuardedBy: phase == .before ? e.old : e.new, in: state, to: &out)
        case .policyDeleted(let e):
            if phase == .before { addRoutingPeers(ofRoutesGuardedBy: e.policy, in: state, to: &out) }
        case .peerRemoved(let e):
            guard phase == .before else { return }
            out.insert(e.peer.id)
            for g in Set(e.groups).union(state.groups(of: e.peer.id)) {
                addMembershipImpact(group: g, changed: [e.peer.id], in: state, to: &out)
            }
        }
    }

    /// A route reaches the members of its distribution groups (clients) and its routing peers
    /// (who forward it and stop being its clients). Nothing when it is disabled.
    static func addPeers(of route: Route, in state: TenantState, to out: inout Set<PeerID>) {
        guard route.enabled else { return }
        out.formUnion(state.members(of: route.groups))
        out.formUnion(state.routingPeerIDs(of: route))
    }

    /// The clients (distribution-group members) of every enabled route `peer` may forward.
    static func addClients(ofRoutesServedBy peer: PeerID, in state: TenantState, to out: inout Set<PeerID>) {
        var ids = state.routeIDs(directPeer: peer)
        for g in state.groups(of: peer) { ids.formUnion(state.routeIDs(withPeerGroup: g)) }
        for id in ids {
            if let r = state.route(id), r.enabled { out.formUnion(state.members(of: r.groups)) }
        }
    }

    /// The routing peers of every enabled route whose access-control groups are a destination of `policy`: their
    /// forward rules come from it (in NetBird's reading, the whole policy applies to such a route).
    static func addRoutingPeers(ofRoutesGuardedBy policy: Policy, in state: TenantState, to out: inout Set<PeerID>) {
        var ids = Set<RouteID>()
        for g in policy.destinationGroups { ids.formUnion(state.routeIDs(withAccessControlGroup: g)) }
        for id in ids {
            if let r = state.route(id), r.enabled { out.formUnion(state.routingPeerIDs(of: r)) }
        }
    }

    /// Forward rules list the source peers that are in a route's distribution groups: a membership change of a
    /// policy's source group, or of a distribution group of a route with access-control groups, changes the rules of
    /// those routes' routing peers.
    static func addForwardRuleImpact(group: GroupID, in state: TenantState, to out: inout Set<PeerID>) {
        for id in state.routeIDs(distributedTo: group) {
            if let r = state.route(id), r.enabled, !r.accessControlGroups.isEmpty { out.formUnion(state.routingPeerIDs(of: r)) }
        }
        for policyID in state.policies(using: group) {
            if let p = state.policies[policyID], p.enabled { addRoutingPeers(ofRoutesGuardedBy: p, in: state, to: &out) }
        }
    }

    /// `changed` peers joined or left `group` (read on one side of the change).
    static func addMembershipImpact(group: GroupID, changed: [PeerID], in state: TenantState, to out: inout Set<PeerID>) {
        addForwardRuleImpact(group: group, in: state, to: &out)
        // A routing peer's view lists the WireGuard keys of the clients it serves (the members of its routes'
        // distribution groups): a member with a key joining or leaving changes it.
        if changed.contains(where: { state.peer($0)?.wireguard != nil }) {
            for id in state.routeIDs(distributedTo: group) {
                if let r = state.route(id), r.enabled { out.formUnion(state.routingPeerIDs(of: r)) }
            }
        }
        // The changed peers' own views depend on the group if any route uses it in any role
        // (distribution, access control, or peer group: they start or stop serving).
        guard state.isUsedByRoutes(group) else { return }
        out.formUnion(changed)
        // If the group supplies routing peers, the clients of those routes gain or lose a
        // candidate, but only when a changed peer can route (others are never candidates).
        let peerGroupRoutes = state.routeIDs(withPeerGroup: group)
        guard !peerGroupRoutes.isEmpty, changed.contains(where: { state.peer($0)?.canRoute == true }) else { return }
        for id in peerGroupRoutes {
            if let r = state.route(id), r.enabled { out.formUnion(state.members(of: r.groups)) }
        }
    }
}
