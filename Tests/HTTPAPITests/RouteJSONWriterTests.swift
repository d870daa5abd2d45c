import Foundation
@testable import HTTPAPI
import RouteModel
import Testing

/// A route's API body written by hand (`RouteJSON.write`, on `JSONWriter`) against the encoder every other body goes
/// through (`jsonEncoder`): the same bytes for every shape (network or domain route, peer or peer groups, optional
/// members present or not, strings with every character `JSONEncoder` escapes), for one route and for lists.
@Suite struct RouteJSONWriterTests {
    static let alphabet: [String] = ["a", "Z", "0", "-", "_", ".", "/", " ", "\"", "\\", "\u{7f}", "é", "日", "\u{1F600}", "e\u{301}"]
        + (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }

    static func text(_ rng: inout SplitMix64, maxLength: Int = 10) -> String {
        (0..<Int(rng.next() % UInt64(maxLength + 1))).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
    }

    static func texts(_ rng: inout SplitMix64) -> [String] { (0..<Int(rng.next() % 4)).map { _ in text(&rng) } }

    static func maybe<T>(_ rng: inout SplitMix64, _ make: (inout SplitMix64) -> T) -> T? { rng.next() % 2 == 0 ? make(&rng) : nil }

    static func route(_ rng: inout SplitMix64) -> RouteJSON {
        let base = Route(id: "r", networkID: "n", destination: .network(try! Prefix(parsing: "10.0.0.0/24")), routingPeers: .peer("p"), groups: [])
        var r = RouteJSON(base, in: TenantState())
        r.id = text(&rng); r.network_id = text(&rng); r.description = text(&rng, maxLength: 30)
        r.network_type = rng.next() % 2 == 0 ? "IPv4" : "Domain"; r.network = text(&rng)
        r.domains = maybe(&rng, texts); r.peer = text(&rng); r.peer_groups = maybe(&rng, texts)
        r.metric = Int(rng.next() % 10_000); r.masquerade = rng.next() % 2 == 0; r.groups = texts(&rng)
        r.enabled = rng.next() % 2 == 0; r.keep_route = rng.next() % 2 == 0; r.access_control_groups = maybe(&rng, texts)
        r.skip_auto_apply = rng.next() % 2 == 0
        r.skipped_routing_peers = maybe(&rng) { rng in
            (0..<Int(rng.next() % 3)).map { _ in SkippedRoutingPeerJSON(id: text(&rng), name: text(&rng), os: text(&rng)) }
        }
        return r
    }

    static func expectSame(_ fast: [UInt8], _ reference: Data, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(fast == Array(reference), "\n fast: \(String(decoding: fast, as: UTF8.self))\n  ref: \(String(decoding: reference, as: UTF8.self))",
                sourceLocation: sourceLocation)
    }

    @Test(arguments: Array(UInt64(1)...6))
    func randomRoutesAsTheEncoderWritesThem(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &* 104_723)
        var list: [RouteJSON] = []
        for _ in 0..<200 {
            let r = Self.route(&rng)
            Self.expectSame(r.jsonBytes, try jsonEncoder.encode(r))
            list.append(r)
        }
        Self.expectSame(RouteJSON.jsonBytes(list), try jsonEncoder.encode(list))
        Self.expectSame(RouteJSON.jsonBytes([]), try jsonEncoder.encode([RouteJSON]()))
    }

    /// Routes as the API builds them from the model: a domain route with domains as written, peer groups with a
    /// member that cannot route (skipped), access-control groups.
    @Test func modelRoutesAsTheEncoderWritesThem() throws {
        var state = TenantState()
        state.apply(.peerEnrolled(PeerEnrolled(peer: Peer(id: "w1", name: "win", os: "windows", meshIP: IPAddress(v4: 0x6440_0002)))))
        state.apply(.groupCreated(GroupCreated(group: Group(id: "g1", name: "g", peers: ["w1"]))))
        let routes = [
            Route(id: "r1", networkID: "net/1", description: "a \"b\"", destination: .domains(["xn--bcher-kva.example"]),
                  routingPeers: .peerGroups(["g1"]), metric: 10, groups: ["g1"], accessControlGroups: ["g1"], writtenDomains: ["Bücher.example"]),
            Route(id: "r2", networkID: "n2", destination: .network(try Prefix(parsing: "fd00::/64")), routingPeers: .peer("w1"), groups: []),
            Route(id: "r3", networkID: "n3", destination: .network(try Prefix(parsing: "10.1.0.0/16")), routingPeers: .peerGroups([]), groups: ["g1"]),
        ]
        for route in routes {
            let r = RouteJSON(route, in: state)
            Self.expectSame(r.jsonBytes, try jsonEncoder.encode(r))
        }
        let all = routes.map { RouteJSON($0, in: state) }
        Self.expectSame(RouteJSON.jsonBytes(all), try jsonEncoder.encode(all))
    }
}
