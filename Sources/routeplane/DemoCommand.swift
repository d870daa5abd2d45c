import CommandSupport
import ArgumentParser
import PostgresClient
import EventStore
import Foundation
import Projections
import RouteModel

/// `routeplane demo`: one tenant end to end as far as Routeplane goes today: commands are validated
/// (`decide`), appended as events with optimistic concurrency, projected into per-peer route views and
/// outbox rows; then one change shows that only the affected views are recomputed and published.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Walk one tenant through commands → events → per-peer route views → outbox.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tenant id (default: a new demo-<time> tenant).") var tenant: String?

    func run() async throws {
        let store = try database.makeStore(maxConnections: 3)
        let tenant = self.tenant ?? "demo-\(Int(Date().timeIntervalSince1970))"
        var session = DemoTenant(store: store, tenant: tenant)
        print("tenant \(tenant)")

        print("\n-- commands (each validated against the tenant's state, appended with the version it was decided on)")
        try await session.run(.enrollPeer(id: "gw-a", name: "gateway A", os: "linux", meshIP: "100.64.0.1"))
        try await session.run(.enrollPeer(id: "gw-b", name: "gateway B", os: "linux", meshIP: "100.64.0.2"))
        try await session.run(.enrollPeer(id: "laptop-1", name: "alice's laptop", os: "darwin", meshIP: "100.64.0.10"))
        try await session.run(.enrollPeer(id: "laptop-2", name: "bob's laptop", os: "windows", meshIP: "100.64.0.11"))
        try await session.run(.enrollPeer(id: "printer-host", name: "print server", os: "linux", meshIP: "100.64.0.20"))
        try await session.run(.createGroup(id: "routers", name: "Office routers", peers: ["gw-a", "gw-b"]))
        try await session.run(.createGroup(id: "laptops", name: "Laptops", peers: ["laptop-1", "laptop-2"]))
        try await session.run(.createRoute(id: "office", RouteInput(
            networkID: "office-lan", description: "printers and the NAS", network: "10.20.0.5/16",
            peerGroups: ["routers"], metric: 100, masquerade: true, groups: ["laptops"])))
        try await session.run(.createRoute(id: "lab", RouteInput(
            networkID: "lab", network: "fd00:10::/64", peer: "printer-host", metric: 50, masquerade: false, groups: ["laptops"])))

        print("\n-- bad input is refused with the field and the rule, and nothing is written")
        try await session.run(.createRoute(id: "bad", RouteInput(networkID: "office-lan", network: "10.20.0.0/33", peer: "gw-a", groups: ["laptops"])))
        try await session.run(.createRoute(id: "bad", RouteInput(networkID: "office-lan", network: "10.30.0.0/16", peer: "laptop-1", groups: ["laptops"])))
        try await session.run(.deleteGroup(id: "routers"))

        print("\n-- a writer holding a stale version gets a conflict")
        do {
            try await store.append(tenant: tenant, expected: .exactly(session.version - 1), events: [
                NewEvent(type: "PeerRenamed", data: #"{"event_version":1}"#, metadata: EventMetadata(actor: "stale-writer"))])
            print("unexpected: stale append succeeded")
        } catch let error as EventStoreError {
            print("   refused: \(error)")
        }

        let runner = ProjectionRunner(store: store)
        print("\n-- projection: per-peer route views")
        for batch in try await runner.catchUp(tenant: tenant) {
            print("   batch seq \(batch.firstSequence)...\(batch.lastSequence): \(batch.viewsChanged) view(s) changed")
        }
        try await printViews(store: store, tenant: tenant)

        print("\n-- change one route's metric: only the views of the peers it reaches are recomputed and published")
        try await session.run(.updateRoute(id: "office", RouteInput(
            networkID: "office-lan", description: "printers and the NAS", network: "10.20.0.0/16",
            peerGroups: ["routers"], metric: 20, masquerade: true, groups: ["laptops"])))
        for batch in try await runner.catchUp(tenant: tenant) {
            print("   batch seq \(batch.firstSequence)...\(batch.lastSequence): \(batch.affectedPeers) peer(s) affected, "
                  + "\(batch.viewsComputed) view(s) computed, \(batch.viewsChanged) changed")
        }
        let outbox = try await store.pool.withSession { session in
            try session.query("SELECT peer_id, version, left(digest, 12) AS digest FROM outbox WHERE tenant_id = $1 ORDER BY id", [tenant])
        }
        print("\n-- outbox (what the relay will publish to routeplane.\(tenant).peer.<peer>.routes)")
        for row in outbox { print("   \(row.string("peer_id") ?? "") v\(row.string("version") ?? "") digest \(row.string("digest") ?? "")…") }
        await store.shutdown()
    }

    func printViews(store: EventStore, tenant: String) async throws {
        let rows = try await store.pool.withSession { session in
            try session.query("SELECT peer_id, version, body FROM peer_views WHERE tenant_id = $1 ORDER BY peer_id", [tenant])
        }
        for row in rows {
            print("   \(row.string("peer_id") ?? "") (version \(row.string("version") ?? "")): \(row.string("body") ?? "")")
        }
    }
}

/// The demo's write path: fold the tenant's events, decide, append with the version decided on.
struct DemoTenant {
    let store: EventStore
    let tenant: String
    var state = TenantState()
    var version: Int64 = 0

    init(store: EventStore, tenant: String) {
        self.store = store
        self.tenant = tenant
    }

    mutating func run(_ command: Command) async throws {
        switch decide(command, state) {
        case let .failure(error):
            print("   refused (\(error.httpStatus)): \(error.field): \(error.message)")
        case let .success(events):
            guard !events.isEmpty else { print("   no change"); return }
            let newEvents = events.map { event -> NewEvent in
                let (type, json) = event.encode()
                return NewEvent(type: type, data: String(decoding: json, as: UTF8.self), metadata: EventMetadata(actor: "demo@routeplane"))
            }
            let seqs = try await store.append(tenant: tenant, expected: version == 0 ? .noEvents : .exactly(version), events: newEvents)
            for event in events { state = evolve(state, event) }
            version = seqs.upperBound
            print("   seq \(seqs.lowerBound): \(events.map(\.type).joined(separator: ", "))")
        }
    }
}
