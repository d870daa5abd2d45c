import ControlPlane
import EventStore
import RouteModel
import Testing
import TestSupport

/// Writes decided on the cached tenant snapshot without catching it up first (`CommandWriter.writeOnCachedSnapshot`),
/// and actors named from the cache (`ControlPlane.namedActor`): no catch-up query when this controller's cache is
/// current; when another controller wrote since, the write is decided again on the current state, exactly as before.
@Suite("Writes on the cached snapshot", .timeLimit(.minutes(5)))
struct CachedSnapshotWriteTests {
    let actor = Actor(id: "test")
    let group = GroupID("clients")

    func withStore(_ body: (EventStore) async throws -> Void) async throws {
        let db = try await TestDatabase.create()
        do { try await body(db.store) } catch {
            await db.drop()
            throw error
        }
        await db.drop()
    }

    func input(metric: Int) -> RouteInput {
        RouteInput(networkID: "n0", network: "10.0.0.0/24", peer: PeerID("p0"), metric: metric, groups: [group])
    }

    /// A tenant with a routing peer, a group and route r0 (metric 100), written through `cp`.
    func tenantWithRoute(_ cp: ControlPlane) async throws -> String {
        let tenant = try await cp.createTenant(name: "acme")
        _ = try await cp.writer.write(tenant: tenant, actor: actor, requestID: "r") { s in
            try decideOrThrow(.enrollPeer(id: PeerID("p0"), name: "peer0", os: "linux", meshIP: "100.64.0.1"), s.state)
        }
        _ = try await cp.writer.write(tenant: tenant, actor: actor, requestID: "r") { [group] s in
            try decideOrThrow(.createGroup(id: group, name: "clients", peers: [PeerID("p0")]), s.state)
        }
        let route = input(metric: 100)
        _ = try await cp.writer.write(tenant: tenant, actor: actor, requestID: "r") { s in
            try decideOrThrow(.createRoute(id: RouteID("r0"), route), s.state)
        }
        return tenant
    }

    func update(_ cp: ControlPlane, _ tenant: String, metric: Int, ifMatch: Int64? = nil) async throws -> WriteResult {
        let route = input(metric: metric)
        return try await cp.writer.write(tenant: tenant, actor: actor, requestID: "u\(metric)",
                                         ifMatch: ifMatch.map { (ObjectRef(.route, "r0"), $0) }) { s in
            try decideOrThrow(.updateRoute(id: RouteID("r0"), route), s.state)
        }
    }

    /// The stored RouteUpdated at `sequence`.
    func storedUpdate(_ store: EventStore, _ tenant: String, _ sequence: Int64) async throws -> RouteUpdated? {
        let recorded = try await store.read(tenant: tenant, fromSequence: sequence, limit: 1)
        guard let r = recorded.first, case .routeUpdated(let e) = try RouteEvent.decode(type: r.type, json: r.data) else { return nil }
        return e
    }

    @Test("writes through the controller whose cache is current make no catch-up query and append at the right versions")
    func noCatchUpOnACurrentCache() async throws {
        try await withStore { store in
            let cp = ControlPlane(store: store)
            let tenant = try await tenantWithRoute(cp)
            let before = cp.cache.catchUpCount
            var version = try await store.version(tenant: tenant)
            for metric in 1...5 {
                let result = try await update(cp, tenant, metric: metric, ifMatch: metric == 3 ? version : nil)
                version += 1
                #expect(result.sequences == version...version)
                #expect(result.snapshot.version == version)
                #expect(result.snapshot.state.route(RouteID("r0"))?.metric == metric)
                #expect(try await storedUpdate(store, tenant, version)?.old.metric == (metric == 1 ? 100 : metric - 1))
            }
            #expect(cp.cache.catchUpCount == before, "a write on a current cache caught the tenant up")
            #expect(try await store.version(tenant: tenant) == version)
        }
    }

    @Test("a controller whose cache is behind decides again on the current state: the stored event's old route is the current one")
    func staleCacheIsDecidedAgain() async throws {
        try await withStore { store in
            let a = ControlPlane(store: store), b = ControlPlane(store: store)
            let tenant = try await tenantWithRoute(a)
            _ = try await b.cache.current(tenant)              // b caches the tenant with r0 at metric 100
            let moved = try await update(a, tenant, metric: 5)  // a moves r0 on; b does not know
            // b decides on its cache (old metric 100), the append conflicts, b catches up and decides again.
            let result = try await update(b, tenant, metric: 7)
            let head = try await store.version(tenant: tenant)
            #expect(result.sequences == head...head)
            #expect(head == moved.snapshot.version + 1)
            #expect(result.snapshot.state.route(RouteID("r0"))?.metric == 7)
            let stored = try await storedUpdate(store, tenant, head)
            #expect(stored?.old.metric == 5)
            #expect(stored?.new.metric == 7)
            // If-Match with the version a answered: b's cache is behind again (a wrote), the precondition holds on the current state.
            let third = try await update(a, tenant, metric: 8)
            let matched = try await update(b, tenant, metric: 9, ifMatch: third.snapshot.version)
            #expect(matched.snapshot.state.route(RouteID("r0"))?.metric == 9)
            #expect(try await storedUpdate(store, tenant, matched.snapshot.version)?.old.metric == 8)
            // A stale If-Match is still refused, naming the current version.
            await #expect(throws: ControlPlaneError.versionMismatch(object: ObjectRef(.route, "r0"), current: matched.snapshot.version,
                                                                   expected: third.snapshot.version)) {
                _ = try await update(a, tenant, metric: 10, ifMatch: third.snapshot.version)
            }
        }
    }

    @Test("an object another controller created is found: the refusal on a cache that is behind is not trusted")
    func refusalOnAStaleCacheIsNotTrusted() async throws {
        try await withStore { store in
            let a = ControlPlane(store: store), b = ControlPlane(store: store)
            let tenant = try await tenantWithRoute(a)
            _ = try await b.cache.current(tenant)
            let route = RouteInput(networkID: "n1", network: "10.1.0.0/24", peer: PeerID("p0"), metric: 50, groups: [group])
            _ = try await a.writer.write(tenant: tenant, actor: actor, requestID: "c") { s in
                try decideOrThrow(.createRoute(id: RouteID("r1"), route), s.state)
            }
            var changed = route
            changed.metric = 51
            let result = try await b.writer.write(tenant: tenant, actor: actor, requestID: "u") { [changed] s in
                try decideOrThrow(.updateRoute(id: RouteID("r1"), changed), s.state)
            }
            #expect(result.snapshot.state.route(RouteID("r1"))?.metric == 51)
            // A write that changes nothing on the stale cache is not taken as "nothing to do" either.
            _ = try await update(a, tenant, metric: 3)
            let back = try await update(b, tenant, metric: 100)
            #expect(back.sequences != nil, "metric 3 -> 100 is a change on the current state")
        }
    }

    @Test("the actor's token name comes from the cache when it has the token, else from the caught-up tenant")
    func namedActor() async throws {
        try await withStore { store in
            let a = ControlPlane(store: store), b = ControlPlane(store: store)
            let tenant = try await a.createTenant(name: "acme")
            let ops = try await a.createToken(tenant: tenant, name: "ops")
            _ = try await a.cache.current(tenant)
            let count = a.cache.catchUpCount
            #expect(try await a.namedActor(.token(tenant: tenant, tokenID: ops.id, scope: .admin)) == Actor(id: "token:\(ops.id)", name: "ops"))
            #expect(a.cache.catchUpCount == count, "a cached token's name needs no catch-up")
            _ = try await b.cache.current(tenant)
            let ci = try await a.createToken(tenant: tenant, name: "ci")   // b's cache does not have it
            let bCount = b.cache.catchUpCount
            #expect(try await b.namedActor(.token(tenant: tenant, tokenID: ci.id, scope: .admin)) == Actor(id: "token:\(ci.id)", name: "ci"))
            #expect(b.cache.catchUpCount == bCount + 1)
        }
    }
}
