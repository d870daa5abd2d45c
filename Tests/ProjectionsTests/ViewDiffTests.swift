import Foundation
import Projections
import RouteModel
import TestSupport
import Testing

/// The view diff (pure): hand-built cases for each kind of change, its JSON, and a property over random
/// command sequences (the diff turns the old view's routes into the new view's, and is empty exactly
/// when the views are equal).
@Suite struct ViewDiffTests {
    static func ip(_ s: String) -> IPAddress { try! IPAddress(parsing: s) }
    static func net(_ s: String) -> RouteDestination { .network(try! Prefix(parsing: s)) }

    static func candidate(_ peer: String, route: String, metric: Int = 100, masquerade: Bool = true,
                          ip: String = "100.64.0.1", draining: Bool = false) -> RouteCandidate {
        RouteCandidate(peerID: PeerID(peer), meshIP: Self.ip(ip), metric: metric, masquerade: masquerade,
                       keepRoute: false, skipAutoApply: false, routeID: RouteID(route), draining: draining)
    }

    static let lan = HAKey(networkID: "lan", destination: net("10.20.0.0/24"))

    @Test func equalViewsHaveAnEmptyDiff() {
        let v = PeerRouteView(peerID: "c1", haSets: [HASet(key: Self.lan, candidates: [Self.candidate("r1", route: "a")])],
                              forwards: [ForwardedRoute(routeID: "f", key: Self.lan, masquerade: true)])
        let d = ViewDiff(from: v, to: v)
        #expect(d.isEmpty)
        #expect(d.peerID == "c1")
        #expect(ViewDiff(from: .empty("c1"), to: .empty("c1")).isEmpty)
    }

    @Test func addedAndRemovedRoutesAndCandidates() {
        let before = PeerRouteView(peerID: "c1", haSets: [
            HASet(key: Self.lan, candidates: [Self.candidate("r1", route: "a"), Self.candidate("r2", route: "a", ip: "100.64.0.2")]),
        ])
        let dc = HAKey(networkID: "dc", destination: Self.net("10.30.0.0/16"))
        let after = PeerRouteView(peerID: "c1", haSets: [
            HASet(key: dc, candidates: [Self.candidate("r3", route: "b", ip: "100.64.0.3")]),
            HASet(key: Self.lan, candidates: [Self.candidate("r1", route: "a")]),
        ])
        let d = ViewDiff(from: before, to: after)
        #expect(d.added.map(\.routeID) == ["b"])
        #expect(d.added.first?.networkID == "dc")
        #expect(d.added.first?.via == "r3")
        #expect(d.added.first?.role == .client)
        // The peer-group route lost one candidate: that candidate's entry is removed, the route stays.
        #expect(d.removed.map { [$0.routeID.rawValue, $0.via?.rawValue ?? ""] } == [["a", "r2"]])
        #expect(d.changed.isEmpty)
        // And back: the mirror image.
        let back = ViewDiff(from: after, to: before)
        #expect(back.added == d.removed)
        #expect(back.removed == d.added)
    }

    @Test func changedFieldsOldToNew() {
        let before = PeerRouteView(peerID: "c1", haSets: [HASet(key: Self.lan, candidates: [Self.candidate("r1", route: "a", metric: 100)])])
        let moved = HAKey(networkID: "lan2", destination: .domains(["a.example.com"]))
        let after = PeerRouteView(peerID: "c1", haSets: [
            HASet(key: moved, candidates: [Self.candidate("r1", route: "a", metric: 50, ip: "100.64.0.9", draining: true)]),
        ])
        let d = ViewDiff(from: before, to: after)
        #expect(d.added.isEmpty)
        #expect(d.removed.isEmpty)
        #expect(d.changed.count == 1)
        let c = d.changed[0]
        #expect(c.routeID == "a")
        #expect(c.via == "r1")
        #expect(c.networkID == "lan2")
        #expect(c.fields == [
            FieldChange(field: "network_id", old: .string("lan"), new: .string("lan2")),
            FieldChange(field: "network_type", old: .string("IPv4"), new: .string("Domain")),
            FieldChange(field: "network", old: .string("10.20.0.0/24"), new: nil),
            FieldChange(field: "domains", old: nil, new: .strings(["a.example.com"])),
            FieldChange(field: "mesh_ip", old: .string("100.64.0.1"), new: .string("100.64.0.9")),
            FieldChange(field: "metric", old: .int(100), new: .int(50)),
            FieldChange(field: "draining", old: .bool(false), new: .bool(true)),
        ])
    }

    @Test func forwardAndClientOfOneRouteAreSeparateEntries() {
        let before = PeerRouteView(peerID: "r1", forwards: [ForwardedRoute(routeID: "a", key: Self.lan, masquerade: true)])
        let after = PeerRouteView(peerID: "r1", haSets: [HASet(key: Self.lan, candidates: [Self.candidate("r2", route: "a")])],
                                  forwards: [ForwardedRoute(routeID: "a", key: Self.lan, masquerade: false)])
        let d = ViewDiff(from: before, to: after)
        #expect(d.added.map(\.role) == [.client])
        #expect(d.changed.map(\.role) == [.forward])
        #expect(d.changed.first?.fields == [FieldChange(field: "masquerade", old: .bool(true), new: .bool(false))])
        #expect(d.removed.isEmpty)
    }

    @Test func jsonShapeAndRoundTrip() throws {
        let before = PeerRouteView(peerID: "c1", haSets: [HASet(key: Self.lan, candidates: [Self.candidate("r1", route: "a")])])
        let after = PeerRouteView(peerID: "c1", haSets: [
            HASet(key: HAKey(networkID: "lan", destination: .domains(["a.example.com"])), candidates: [Self.candidate("r1", route: "a")]),
        ], forwards: [ForwardedRoute(routeID: "f", key: Self.lan, masquerade: true)])
        let d = ViewDiff(from: before, to: after)
        let data = try JSONEncoder().encode(d)
        #expect(try JSONDecoder().decode(ViewDiff.self, from: data) == d)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["peer_id"] as? String == "c1")
        let added = try #require(object["added"] as? [[String: Any]])
        #expect(added.first?["role"] as? String == "forward")
        #expect(added.first?["route_id"] as? String == "f")
        #expect(added.first?["network"] as? String == "10.20.0.0/24")
        #expect(added.first?["via"] == nil)
        let change = try #require((object["changed"] as? [[String: Any]])?.first)
        let fields = try #require(change["fields"] as? [[String: Any]])
        // An absent side is an explicit null.
        let network = try #require(fields.first { $0["field"] as? String == "network" })
        #expect(network["new"] is NSNull)
        #expect(network["old"] as? String == "10.20.0.0/24")
    }

    /// Random command sequences: each accepted command's before and after views of every peer. Applying the
    /// diff's removals, additions and field changes to the old view's routes gives the new view's routes.
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func diffTurnsTheOldViewIntoTheNewOne(seed: UInt64) {
        var generator = CommandGenerator(seed: seed, peers: 10)
        var state = TenantState()
        var nonEmpty = 0
        for _ in 0..<300 {
            let command = generator.next(state)
            guard case .success(let events) = decide(command, state), !events.isEmpty else { continue }
            var next = state
            for e in events { next.apply(e) }
            for p in Set(state.peers.keys).union(next.peers.keys) {
                let before = view(for: p, in: state)
                let after = view(for: p, in: next)
                let d = ViewDiff(from: before, to: after)
                #expect(d.isEmpty == (ViewRoute.routes(of: before).sorted() == ViewRoute.routes(of: after).sorted()))
                if !d.isEmpty { nonEmpty += 1 }
                #expect(Self.apply(d, to: ViewRoute.routes(of: before)) == Self.keyed(ViewRoute.routes(of: after)))
            }
            state = next
        }
        #expect(nonEmpty > 20)
    }

    static func keyed(_ routes: [ViewRoute]) -> [ViewRoute.Key: [String: ViewDiffValue]] {
        var out: [ViewRoute.Key: [String: ViewDiffValue]] = [:]
        for r in routes {
            #expect(out[r.key] == nil, "two entries with key \(r.key)")
            out[r.key] = fieldMap(r)
        }
        return out
    }

    /// A route's fields by JSON name, read from its encoding (absent fields are left out).
    static func fieldMap(_ r: ViewRoute) -> [String: ViewDiffValue] {
        let data = try! JSONEncoder().encode(r)
        var m = try! JSONDecoder().decode([String: ViewDiffValue].self, from: data)
        for k in ["role", "route_id", "via"] { m[k] = nil }
        return m
    }

    static func apply(_ d: ViewDiff, to routes: [ViewRoute]) -> [ViewRoute.Key: [String: ViewDiffValue]] {
        var m = keyed(routes)
        for r in d.removed {
            #expect(m[r.key] == fieldMap(r), "removed \(r.key) is not the old entry")
            m[r.key] = nil
        }
        for r in d.added {
            #expect(m[r.key] == nil, "added \(r.key) was there")
            m[r.key] = fieldMap(r)
        }
        for c in d.changed {
            #expect(!c.fields.isEmpty)
            guard var fields = m[c.key] else {
                Issue.record("changed \(c.key) was not there")
                continue
            }
            for f in c.fields {
                #expect(fields[f.field] == f.old, "old value of \(f.field)")
                fields[f.field] = f.new
            }
            m[c.key] = fields
        }
        return m
    }
}
