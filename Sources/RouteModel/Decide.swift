/// `decide(command, state)`: the events a command produces against the tenant's current state, or
/// the rule it breaks. Pure and deterministic: ids and addresses come in the command.
///
/// A command that changes nothing (an update to identical values) yields no events.
public func decide(_ command: Command, _ state: TenantState) -> Result<[RouteEvent], ValidationError> {
    do {
        return .success(try decideOrThrow(command, state))
    } catch {
        return .failure(error)
    }
}

/// Throwing form of `decide`.
public func decideOrThrow(_ command: Command, _ state: TenantState) throws(ValidationError) -> [RouteEvent] {
    switch command {
    case .createRoute(let id, let input):
        try checkID(id.rawValue, field: "id", what: "route")
        if state.route(id) != nil { throw .conflict("id", "route \(id) already exists") }
        let route = try RouteValidation.validate(input, id: id, in: state)
        return [.routeCreated(RouteCreated(route: route, skippedRoutingPeers: state.skippedRoutingPeers(of: route)))]

    case .updateRoute(let id, let input):
        guard let old = state.route(id) else { throw .notFound("route_id", "route \(id) not found") }
        let new = try RouteValidation.validate(input, id: id, in: state)
        if new == old { return [] }
        return [.routeUpdated(RouteUpdated(old: old, new: new, skippedRoutingPeers: state.skippedRoutingPeers(of: new)))]

    case .deleteRoute(let id):
        guard let old = state.route(id) else { throw .notFound("route_id", "route \(id) not found") }
        return [.routeDeleted(RouteDeleted(route: old))]

    case .createGroup(let id, let name, let peers):
        try checkID(id.rawValue, field: "id", what: "group")
        if state.group(id) != nil { throw .conflict("id", "group \(id) already exists") }
        try checkGroupName(name, for: id, in: state)
        let members = try checkPeersExist(peers, in: state)
        return [.groupCreated(GroupCreated(group: Group(id: id, name: name, peers: members)))]

    case .updateGroup(let id, let name, let peers):
        guard let old = state.group(id) else { throw .notFound("group_id", "group \(id) not found") }
        // NetBird's groups handler (`updateGroup`): the built-in group takes no update at all.
        if state.isAllGroup(id) { throw .invalid("group_id", "updating group ALL is not allowed") }
        try checkGroupName(name, for: id, in: state)
        let members = try checkPeersExist(peers, in: state)
        var events: [RouteEvent] = []
        if name != old.name {
            events.append(.groupUpdated(GroupUpdated(groupID: id, oldName: old.name, name: name)))
        }
        if let change = membershipChange(of: old, to: Set(members)) { events.append(change) }
        return events

    case .addGroupPeers(let id, let peers):
        guard let old = state.group(id) else { throw .notFound("group_id", "group \(id) not found") }
        let added = try checkPeersExist(peers, in: state)
        return membershipChange(of: old, to: Set(old.peers).union(added)).map { [$0] } ?? []

    case .removeGroupPeers(let id, let peers):
        guard let old = state.group(id) else { throw .notFound("group_id", "group \(id) not found") }
        if state.isAllGroup(id) { throw .invalid("group_id", "updating group ALL is not allowed") }
        return membershipChange(of: old, to: Set(old.peers).subtracting(peers)).map { [$0] } ?? []

    case .deleteGroup(let id):
        guard let old = state.group(id) else { throw .notFound("group_id", "group \(id) not found") }
        try GroupLinks.checkDeletable(old, in: state)
        return [.groupDeleted(GroupDeleted(group: old))]

    case .enrollPeer(let id, let name, let os, let meshIPText, let wireguard):
        try checkID(id.rawValue, field: "id", what: "peer")
        if state.peer(id) != nil { throw .conflict("id", "peer \(id) already exists") }
        try checkName(name, field: "name")
        let osName = os.lowercased()
        if osName.isEmpty { throw .invalid("os", "os must not be empty") }
        if osName.unicodeScalars.count > Limits.osMaxScalars {
            throw .invalid("os", "os must be at most \(Limits.osMaxScalars) characters, got \(osName.unicodeScalars.count)")
        }
        let meshIP: IPAddress
        do {
            meshIP = try IPAddress(parsing: meshIPText)
        } catch {
            throw .invalid("ip", "invalid mesh ip \(error)")
        }
        if let other = state.peer(meshIP: meshIP) {
            throw .conflict("ip", "mesh ip \(meshIP) is already used by peer \(other)")
        }
        if let wireguard {
            // Re-checked here so no path can store a malformed key; one key on two peers would make them one WireGuard peer.
            guard WireGuardIdentity.isValidPublicKey(wireguard.publicKey) else {
                throw .invalid("wireguard_public_key", "wireguard_public_key must be the base64 of a 32-byte WireGuard public key (44 characters)")
            }
            if let other = state.peer(wireGuardKey: wireguard.publicKey) {
                throw .conflict("wireguard_public_key", "wireguard_public_key is already used by peer \(other); generate a new key")
            }
        }
        var events: [RouteEvent] = [.peerEnrolled(PeerEnrolled(peer: Peer(id: id, name: name, os: osName, meshIP: meshIP, wireguard: wireguard)))]
        // NetBird `AddPeer` (`management/server/peer.go`): a new peer joins the "All" group in the same transaction.
        if let all = state.allGroupID {
            events.append(.groupMembersChanged(GroupMembersChanged(groupID: all, added: [id], removed: [])))
        }
        return events

    case .renamePeer(let id, let name):
        guard let old = state.peer(id) else { throw .notFound("peer_id", "peer \(id) not found") }
        try checkName(name, field: "name")
        if name == old.name { return [] }
        return [.peerRenamed(PeerRenamed(peerID: id, oldName: old.name, name: name))]

    case .setPeerDraining(let id, let draining):
        guard let old = state.peer(id) else { throw .notFound("peer_id", "peer \(id) not found") }
        if old.draining == draining { return [] }
        return [.peerDrainingChanged(PeerDrainingChanged(peerID: id, draining: draining))]

    case .removePeer(let id):
        guard let old = state.peer(id) else { throw .notFound("peer_id", "peer \(id) not found") }
        // NetBird `Account.DeletePeer` (`management/server/types/account.go`): a route whose single routing peer
        // this was is kept, disabled and without routing peer (`peer: ""`), in the same append as the removal.
        var events: [RouteEvent] = state.routes(routedBy: id).compactMap { routeID in
            guard let route = state.route(routeID) else { return nil }
            var orphan = route
            orphan.enabled = false
            orphan.routingPeers = .peerGroups([])
            return .routeUpdated(RouteUpdated(old: route, new: orphan))
        }
        events.append(.peerRemoved(PeerRemoved(peer: old, groups: state.groups(of: id).sorted())))
        return events
    }
}

private func membershipChange(of group: Group, to newMembers: Set<PeerID>) -> RouteEvent? {
    let old = Set(group.peers)
    let added = newMembers.subtracting(old).sorted()
    let removed = old.subtracting(newMembers).sorted()
    if added.isEmpty && removed.isEmpty { return nil }
    return .groupMembersChanged(GroupMembersChanged(groupID: group.id, added: added, removed: removed))
}

private func checkID(_ id: String, field: String, what: String) throws(ValidationError) {
    if id.isEmpty { throw .invalid(field, "\(what) id must not be empty") }
}

private func checkName(_ name: String, field: String) throws(ValidationError) {
    let n = name.unicodeScalars.count
    if n < 1 || n > Limits.nameMaxScalars {
        throw .invalid(field, "\(field) must be 1 to \(Limits.nameMaxScalars) characters, got \(n)")
    }
}

private func checkGroupName(_ name: String, for id: GroupID, in state: TenantState) throws(ValidationError) {
    try checkName(name, field: "name")
    if let other = state.group(named: name), other != id {
        throw .conflict("name", "group with name \(name) already exists")
    }
}

/// Checks every peer exists; returns them sorted without duplicates.
private func checkPeersExist(_ peers: [PeerID], in state: TenantState) throws(ValidationError) -> [PeerID] {
    let unique = Set(peers).sorted()
    for p in unique where state.peer(p) == nil {
        throw .invalid("peers", "peer with ID \(p) not found")
    }
    return unique
}

/// Why a group cannot be deleted, in NetBird's order and words (`management/server/group.go`,
/// `validateDeleteGroup`, `GroupLinkError`): the built-in group, then a linked route (by its network id), then a
/// policy (by its name), then a setup key's auto groups (by its name). NetBird's groups handler answers these with a plain 400.
enum GroupLinks {
    static func checkDeletable(_ group: Group, in state: TenantState) throws(ValidationError) {
        if state.isAllGroup(group.id) { throw .badRequest("group_id", "deleting group ALL is not allowed") }
        if let routeID = state.routes(using: group.id).first, let route = state.route(routeID) {
            throw .badRequest("group_id", "group has been linked to route: \(route.networkID)")
        }
        // NetBird checks policies after routes (and name server groups, which Routeplane has not) and before setup keys.
        if let policy = state.policies(using: group.id).compactMap({ state.policies[$0] }).min(by: { $0.id < $1.id }) {
            throw .badRequest("group_id", "group has been linked to policy: \(policy.name)")
        }
        if let key = state.setupKeys.values.filter({ $0.autoGroups.contains(group.id) }).min(by: { $0.id < $1.id }) {
            throw .badRequest("group_id", "group has been linked to setup key: \(key.name)")
        }
    }
}

/// NetBird's route rules (routes HTTP handler, `route/route.go`, `management/server/route.go`).
enum RouteValidation {
    static func validate(_ input: RouteInput, id: RouteID, in state: TenantState) throws(ValidationError) -> Route {
        // Shape first, as NetBird's handler does.
        if input.network != nil && input.domains != nil {
            throw .invalid("network", "only one of 'network' or 'domains' should be provided")
        }
        if input.network == nil && input.domains == nil {
            throw .invalid("network", "either 'network' or 'domains' should be provided")
        }
        if input.peer != nil && input.peerGroups != nil {
            throw .invalid("peer", "only one of 'peer' or 'peer_groups' should be provided")
        }
        if input.peer == nil && input.peerGroups == nil {
            throw .invalid("peer", "either 'peer' or 'peer_groups' should be provided")
        }
        let idLength = input.networkID.unicodeScalars.count
        if idLength < 1 || idLength > Limits.networkIDMaxScalars {
            // NetBird's words (routes_handler.go `validateRouteCommon`), with the count.
            throw .invalid("network_id", "identifier should be between 1 and \(Limits.networkIDMaxScalars) characters (network_id), got \(idLength)")
        }
        if !Limits.metricRange.contains(input.metric) {
            throw .invalid("metric", "metric should be between \(Limits.metricRange.lowerBound) and \(Limits.metricRange.upperBound), got \(input.metric)")
        }
        let descLength = input.description.unicodeScalars.count
        if descLength > Limits.descriptionMaxScalars {
            throw .invalid("description", "description must be at most \(Limits.descriptionMaxScalars) characters, got \(descLength)")
        }

        let destination: RouteDestination
        var writtenDomains: [String]?
        if let network = input.network {
            do {
                destination = .network(try Prefix(parsing: network))
            } catch {
                throw .invalid("network", "invalid network \(error)")
            }
        } else {
            let canonical = try validateDomains(input.domains ?? [])
            destination = .domains(canonical)
            // NetBird answers domains in Unicode (`domain.List.ToStringList`); Routeplane keeps the user's spelling.
            if let written = input.domains, written != canonical { writtenDomains = written }
        }

        // Distribution groups.
        if input.groups.isEmpty { throw .invalid("groups", "groups must not be empty") }
        let groups = try existingGroups(input.groups, field: "groups", in: state)
        let acl = try existingGroups(input.accessControlGroups ?? [], field: "access_control_groups", in: state)

        // Routing peers.
        let routingPeers: RoutingPeers
        if let peer = input.peer {
            guard let p = state.peer(peer) else { throw .invalid("peer", "peer with ID \(peer) not found") }
            if !p.canRoute {
                // NetBird's words (route.go, before `validateRoute`): "non-linux peers are not supported as network routes".
                throw .precondition("peer", "non-linux peers are not supported as network routes: peer \(peer) runs \(p.os)")
            }
            routingPeers = .peer(peer)
        } else {
            // NetBird accepts `peer_groups: []` (the handler checks only that the key is there; `validateRoute` never
            // asks for a member): the route then has no routing peer, like one whose routing peer was deleted.
            routingPeers = .peerGroups(try existingGroups(input.peerGroups ?? [], field: "peer_groups", in: state))
        }

        let route = Route(
            id: id, networkID: input.networkID, description: input.description, destination: destination,
            routingPeers: routingPeers, metric: input.metric, masquerade: input.masquerade, groups: groups,
            enabled: input.enabled, keepRoute: input.keepRoute, accessControlGroups: acl,
            skipAutoApply: input.skipAutoApply ?? false, writtenDomains: writtenDomains)
        try checkNotServedTwice(route, in: state)
        return route
    }

    static func validateDomains(_ domains: [String]) throws(ValidationError) -> [String] {
        if domains.isEmpty || domains.count > Limits.maxDomains {
            throw .invalid("domains", "domains must hold 1 to \(Limits.maxDomains) entries, got \(domains.count)")
        }
        var seen = Set<String>()
        for d in domains {
            switch DomainName.canonical(d) {
            case .failure(let e):
                throw .invalid("domains", "invalid domains: \(e)")
            case .success(let c):
                if !seen.insert(c).inserted { throw .invalid("domains", "invalid domains: duplicate domain \(c)") }
            }
        }
        return seen.sorted()
    }

    static func existingGroups(_ ids: [GroupID], field: String, in state: TenantState) throws(ValidationError) -> [GroupID] {
        let unique = Set(ids).sorted()
        for g in unique where state.group(g) == nil {
            throw .invalid(field, "group id \(g) not found")
        }
        return unique
    }

    /// Which routes may share a destination (range or domain list) and routing peers, after NetBird's
    /// `checkRoutePrefixOrDomainsExistForPeers` (`management/server/route.go`), checked against every other route
    /// with that destination, enabled or not; peer groups are expanded to their members:
    /// - two routes naming the same peer group conflict;
    /// - a routing peer shared where at least one of the two routes names it through a peer group conflicts;
    /// - the same single routing peer (`peer`) in both is accepted under another network id, as NetBird accepts it
    ///   (its check records the other route's id where it meant its peer, so it never sees this case); under the
    ///   same network id it is one HA set listing the peer twice, which Routeplane refuses.
    /// NetBird misses a new peer group containing another route's single routing peer (the same slip), but refuses
    /// the same pair created the other way round; Routeplane refuses both, so the outcome does not depend on order.
    static func checkNotServedTwice(_ route: Route, in state: TenantState) throws(ValidationError) {
        let others = state.routeIDs(destination: route.destination).subtracting([route.id]).sorted()
        if others.isEmpty { return }
        let mine = state.routingPeerIDs(of: route)
        let field = route.routingPeers.peer != nil ? "peer" : "peer_groups"
        let what = Self.descriptor(route.destination)
        for otherID in others {
            guard let other = state.route(otherID) else { continue }
            if let pg = route.routingPeers.peerGroups, let opg = other.routingPeers.peerGroups,
               let shared = Set(pg).intersection(opg).min() {
                let name = state.group(shared)?.name ?? shared.rawValue
                throw .conflict(field, "failed to add route with \(what) - peer group \(name) already has this route (route \(otherID))")
            }
            guard let shared = mine.intersection(state.routingPeerIDs(of: other)).min() else { continue }
            if let p = route.routingPeers.peer, other.routingPeers.peer == p {
                if other.networkID != route.networkID { continue }
                throw .conflict(field, "failed to add route with \(what) - peer \(p) already has this route (route \(otherID), same network_id)")
            }
            if let pg = route.routingPeers.peerGroups ?? other.routingPeers.peerGroups,
               let group = pg.first(where: { state.group($0)?.peers.contains(shared) == true }) {
                let peerName = state.peer(shared)?.name ?? shared.rawValue
                let groupName = state.group(group)?.name ?? group.rawValue
                throw .conflict(field, "failed to add route with \(what) - peer \(peerName) from the group \(groupName) already has this route (route \(otherID))")
            }
            throw .conflict(field, "failed to add route with \(what) - peer \(shared) already has this route (route \(otherID))")
        }
    }

    /// NetBird's `getRouteDescriptor`: "prefix 10.0.0.0/24" or "domains [a.example, b.example]".
    static func descriptor(_ destination: RouteDestination) -> String {
        switch destination {
        case .network(let p): return "prefix \(p)"
        case .domains(let d): return "domains [\(d.joined(separator: ", "))]"
        }
    }
}
