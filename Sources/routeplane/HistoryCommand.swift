import ArgumentParser
import CommandSupport
import ControlPlane
import EventStore
import Foundation
import RouteModel

/// Operators' history questions, straight from the database (no API token): a tenant's state as of a past point, and
/// what changed between two points. Answers are JSON on stdout, the same shapes as the API's.
struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "A tenant's state as of a past point, diffs between two points, and the audit log exported.",
        subcommands: [AsOf.self, Diff.self, HistoryExport.self]
    )

    struct HistoryOptions: ParsableArguments {
        @Option(help: "Tenant id (from `routeplane tenants create`).") var tenant: String
        @Option(help: "A snapshot every this many events (as `serve --history-snapshot-interval`).")
        var snapshotInterval: Int64 = HistorySettings().snapshotInterval
    }

    static func point(_ text: String, option: String) throws -> HistoryPoint {
        guard let p = HistoryPoint.parse(text) else {
            throw ValidationError("--\(option): a tenant sequence number (1, 2, …) or an RFC 3339 time like 2026-12-05T14:02:00Z")
        }
        return p
    }

    static func printJSON<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        print(String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self))
    }

    /// A refusal worded as the API words it (the option and the rule), printed without the usage text.
    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    static func refusal(_ error: any Error) -> any Error {
        if let e = error as? ControlPlaneError { return Refusal(description: e.message) }
        if let e = error as? ArgumentParser.ValidationError { return Refusal(description: e.message) }
        return error
    }

    struct AsOf: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "as-of",
            abstract: "Print a tenant's routes, groups and peers (or one peer's route view) as of a sequence number or time.")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var options: HistoryOptions
        @Option(name: .customLong("as-of"), help: "A tenant sequence number, or an RFC 3339 time.") var asOf: String
        @Option(help: "Print this peer's route view instead of the objects.") var peer: String?

        struct StateJSON: Encodable {
            var tenant: String
            var sequence: Int64
            var routes: [Route]
            var groups: [Group]
            var peers: [Peer]
        }
        struct ViewJSON: Encodable {
            var tenant: String
            var sequence: Int64
            var peer_id: String
            var digest: String
            var view: PeerRouteView
        }

        func run() async throws {
            let point = try History.point(asOf, option: "as-of")
            let store = try database.makeStore(maxConnections: 2)
            let history = TenantHistory(store: store, settings: HistorySettings(snapshotInterval: options.snapshotInterval))
            let tenant = options.tenant
            do {
                let k = try await history.resolve(point, tenant: tenant, field: "--as-of")
                let s = try await history.snapshot(tenant: tenant, at: k)
                if let peer {
                    guard s.state.peer(PeerID(peer)) != nil else { throw ValidationError("--peer: peer \(peer) did not exist at sequence \(k)") }
                    let v = view(for: PeerID(peer), in: s.state)
                    History.printJSON(ViewJSON(tenant: tenant, sequence: k, peer_id: peer, digest: v.encoded().digest, view: v))
                } else {
                    History.printJSON(StateJSON(
                        tenant: tenant, sequence: k,
                        routes: s.inCreationOrder(Array(s.state.routes.values)) { ObjectRef(.route, $0.id.rawValue) },
                        groups: s.inCreationOrder(Array(s.state.groups.values)) { ObjectRef(.group, $0.id.rawValue) },
                        peers: s.inCreationOrder(Array(s.state.peers.values)) { ObjectRef(.peer, $0.id.rawValue) }))
                }
            } catch {
                await store.shutdown()
                throw History.refusal(error)
            }
            await store.shutdown()
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print what changed between two points: objects added, removed, changed (field by field), and view diffs.")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var options: HistoryOptions
        @Option(help: "A tenant sequence number, or an RFC 3339 time.") var from: String
        @Option(help: "A tenant sequence number, or an RFC 3339 time (default: the last event).") var to: String?

        func run() async throws {
            let fromPoint = try History.point(from, option: "from")
            let toPoint = try to.map { try History.point($0, option: "to") }
            let store = try database.makeStore(maxConnections: 2)
            let history = TenantHistory(store: store, settings: HistorySettings(snapshotInterval: options.snapshotInterval))
            let tenant = options.tenant
            do {
                let a = try await history.resolve(fromPoint, tenant: tenant, field: "--from")
                var b = try await store.version(tenant: tenant)
                if let toPoint { b = try await history.resolve(toPoint, tenant: tenant, field: "--to") }
                guard a <= b else { throw ValidationError("--from (sequence \(a)) must not be after --to (sequence \(b))") }
                History.printJSON(try await history.diff(tenant: tenant, from: a, to: b))
            } catch {
                await store.shutdown()
                throw History.refusal(error)
            }
            await store.shutdown()
        }
    }
}
