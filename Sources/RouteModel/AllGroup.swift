/// NetBird's built-in "All" group (`management/server/types/account.go`, `GroupAllName`): every tenant has one
/// group named "All" holding every peer. Like NetBird (`GetGroupAll`, `IsGroupAll`), it is the group with that
/// name: it cannot be deleted or updated, no other group can take the name (names are unique), enrollment adds
/// the new peer to it in the same append and a removed peer leaves it with its other groups.
///
/// Tenants created before the group existed get it on their next write (`allGroupRepair`, added by the
/// command writer), so every tenant reaches the same state by ordinary events and projections stay rebuildable.
public enum AllGroup {
    /// The built-in group's name (NetBird `types.GroupAllName`).
    public static let name = "All"
}

extension TenantState {
    /// The built-in "All" group's id, when the tenant has it.
    public var allGroupID: GroupID? { group(named: AllGroup.name) }

    /// True when `id` is the built-in "All" group.
    public func isAllGroup(_ id: GroupID) -> Bool { allGroupID == id }

    /// The events that give an existing tenant its "All" group with every peer (none when it has it, or when
    /// the tenant does not exist yet). `newID` names the group when it must be created (evaluated only then).
    public func allGroupRepair(newID: @autoclosure () -> GroupID) -> [RouteEvent] {
        guard tenantName != nil || !peers.isEmpty || !groups.isEmpty || !routes.isEmpty else { return [] }
        guard let id = allGroupID, let all = group(id) else {
            return [.groupCreated(GroupCreated(group: Group(id: newID(), name: AllGroup.name, peers: peers.keys.sorted())))]
        }
        // Members are always peers of the tenant, so equal counts mean every peer is in.
        if all.peers.count == peers.count { return [] }
        let missing = Set(peers.keys).subtracting(all.peers).sorted()
        return [.groupMembersChanged(GroupMembersChanged(groupID: id, added: missing, removed: []))]
    }

    /// Members of the route's peer groups that cannot be routing peers (not Linux), by id: the API reports them
    /// instead of dropping them silently. Empty for a route with a single routing peer (that one must be Linux).
    public func skippedRoutingPeers(of route: Route) -> [SkippedRoutingPeer] {
        guard case .peerGroups = route.routingPeers else { return [] }
        return routingPeerIDs(of: route).sorted().compactMap { id in
            guard let p = peer(id), !p.canRoute else { return nil }
            return SkippedRoutingPeer(p)
        }
    }
}
