import CommandSupport
import ArgumentParser
import ControlPlane
import EventStore
import Foundation
import RouteModel

/// `routeplane peers drain|undrain`: operator drain mode of a routing peer, on the database directly
/// (like `tenants` and `tokens`). A draining routing peer is chosen by clients only when no other
/// candidate of the HA set is up, so it can be taken down without dropping traffic.
struct Peers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator actions on peers (works on the database directly).",
        subcommands: [Drain.self, Undrain.self])

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a routing peer into drain mode: clients move to another candidate that is up, and use it only when nothing else is.")
        @OptionGroup var options: PeerDrainOptions

        func run() async throws { try await options.set(draining: true) }
    }

    struct Undrain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a peer out of drain mode.")
        @OptionGroup var options: PeerDrainOptions

        func run() async throws { try await options.set(draining: false) }
    }
}

struct PeerDrainOptions: ParsableArguments {
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Tenant id (from `routeplane tenants create`).") var tenant: String
    @Argument(help: "The peer's id.") var peer: String

    func set(draining: Bool) async throws {
        let store = try database.makeStore(maxConnections: 2)
        let (tenant, peer) = (self.tenant, PeerID(self.peer))
        do {
            let result = try await ControlPlane(store: store).setPeerDraining(tenant: tenant, peer: peer, draining: draining)
            let mode = draining ? "draining" : "not draining"
            if let seq = result.sequences?.lowerBound {
                print("peer \(peer) is now \(mode) (tenant \(tenant), event \(seq))")
            } else {
                print("peer \(peer) was already \(mode)")
            }
        } catch {
            await store.shutdown()
            if let e = error as? ControlPlaneError { throw ArgumentParser.ValidationError(e.message) }
            if let e = error as? RouteModel.ValidationError { throw ArgumentParser.ValidationError(e.message) }
            throw error
        }
        await store.shutdown()
    }
}
