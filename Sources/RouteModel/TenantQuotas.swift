/// How many objects of each kind one tenant may hold. Checked by the write path on the state a write lands on (the
/// state after its events, decided against the tenant's latest version or under its append lock), so two controllers
/// writing at once can never both take the last place.
///
/// A write is refused only when it grows a kind beyond its quota: a tenant already above a lowered quota can still
/// rename, update and delete, and every removal is accepted.
public struct TenantQuotas: Hashable, Sendable {
    public var peers: Int
    public var routes: Int
    public var groups: Int
    public var setupKeys: Int
    /// API tokens not revoked.
    public var tokens: Int
    /// Access-control policies.
    public var policies: Int

    /// Routeplane's defaults: a large site's worth of peers, not unlimited. NetBird has no per-account quotas in its
    /// open-source management server; these bound what one tenant (or one leaked token) can make a controller hold.
    public static let defaults = TenantQuotas(peers: 5_000, routes: 2_000, groups: 2_000, setupKeys: 500, tokens: 100)

    public init(peers: Int, routes: Int, groups: Int, setupKeys: Int, tokens: Int, policies: Int = 500) {
        self.policies = policies
        self.peers = peers
        self.routes = routes
        self.groups = groups
        self.setupKeys = setupKeys
        self.tokens = tokens
    }

    /// One kind's count in a state, with its quota and the words used in errors.
    struct Kind {
        var field: String
        var noun: String
        var quota: Int
        var count: (TenantState) -> Int
    }

    var kinds: [Kind] {
        [Kind(field: "peers", noun: "peers", quota: peers, count: { $0.peers.count }),
         Kind(field: "routes", noun: "routes", quota: routes, count: { $0.routes.count }),
         Kind(field: "groups", noun: "groups", quota: groups, count: { $0.groups.count }),
         Kind(field: "setup_keys", noun: "setup keys", quota: setupKeys, count: { $0.setupKeys.count }),
         Kind(field: "tokens", noun: "tokens", quota: tokens, count: { s in s.tokens.values.count { !$0.revoked } }),
         Kind(field: "policies", noun: "policies", quota: policies, count: { $0.policies.count })]
    }

    /// Refuses (403, `field` naming the kind) a change from `before` to `after` that grows a kind past its quota.
    public func check(before: TenantState, after: TenantState) throws(ValidationError) {
        for kind in kinds {
            let new = kind.count(after)
            if new > kind.quota && new > kind.count(before) {
                throw ValidationError(.permissionDenied, field: kind.field,
                                      "tenant quota of \(kind.quota) \(kind.noun) reached; delete some or ask the operator to raise it")
            }
        }
    }

    /// `check` for `events` decided against `state`.
    public func check(_ events: [RouteEvent], on state: TenantState) throws(ValidationError) {
        if events.isEmpty { return }
        try check(before: state, after: evolve(state, events))
    }
}
