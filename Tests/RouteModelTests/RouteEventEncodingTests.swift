@testable import RouteModel
import TestSupport
import Testing

/// The hand-written route event encoder (`FastEventEncoding`, on `JSONWriter`) against the reference
/// (`encodedJSONWithFoundation`, Foundation's `JSONEncoder` through Codable): the same bytes for every route event
/// shape (both destinations, both routing-peer forms, written domains or not, skipped routing peers or not, strings
/// with every character `JSONEncoder` escapes), and the bytes decode back to the same event with both decoders.
@Suite struct RouteEventEncodingTests {
    static func expectSameBytes(_ e: RouteEvent, sourceLocation: SourceLocation = #_sourceLocation) {
        let fast = e.encodedJSON(), reference = e.encodedJSONWithFoundation()
        #expect(fast == reference, "\n fast: \(String(decoding: fast, as: UTF8.self))\n  ref: \(String(decoding: reference, as: UTF8.self))",
                sourceLocation: sourceLocation)
        #expect((try? RouteEvent.decode(type: e.type, json: fast)) == e, sourceLocation: sourceLocation)
        #expect((try? RouteEvent.decodeWithFoundation(type: e.type, json: fast)) == e, sourceLocation: sourceLocation)
    }

    /// Characters that exercise every escape and the UTF-8 pass-through.
    static let alphabet: [String] = ["a", "Z", "0", "-", "_", ".", "/", " ", "\"", "\\", "\u{7f}", "é", "日", "\u{1F600}", "e\u{301}"]
        + (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }

    static func text(_ rng: inout SplitMix64, maxLength: Int = 12) -> String {
        let n = Int(rng.next() % UInt64(maxLength + 1))
        return (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
    }

    static func ids<ID: StringIdentifier>(_ rng: inout SplitMix64) -> [ID] {
        (0..<Int(rng.next() % 4)).map { _ in ID(rawValue: text(&rng, maxLength: 6)) }
    }

    static func route(_ rng: inout SplitMix64) -> Route {
        let destination: RouteDestination
        if rng.next() % 2 == 0 {
            let length = Int(rng.next() % 33)
            destination = .network(try! Prefix(parsing: "10.\(rng.next() % 256).0.0/\(max(length, 16))"))
        } else if rng.next() % 4 == 0 {
            destination = .network(try! Prefix(parsing: "fd00:\(String(rng.next() % 0xffff, radix: 16))::/64"))
        } else {
            destination = .domains((0..<Int(1 + rng.next() % 3)).map { "d\($0).example" })
        }
        let routingPeers: RoutingPeers = rng.next() % 2 == 0 ? .peer(PeerID(text(&rng, maxLength: 8))) : .peerGroups(ids(&rng))
        let written: [String]? = rng.next() % 3 == 0 ? (0..<Int(rng.next() % 3)).map { _ in text(&rng) } : nil
        return Route(id: RouteID(text(&rng, maxLength: 10)), networkID: text(&rng), description: text(&rng, maxLength: 30),
                     destination: destination, routingPeers: routingPeers, metric: Int(rng.next() % 10_000),
                     masquerade: rng.next() % 2 == 0, groups: ids(&rng), enabled: rng.next() % 2 == 0,
                     keepRoute: rng.next() % 2 == 0, accessControlGroups: ids(&rng), skipAutoApply: rng.next() % 2 == 0,
                     writtenDomains: written)
    }

    static func skipped(_ rng: inout SplitMix64) -> [SkippedRoutingPeer] {
        (0..<Int(rng.next() % 3)).map { _ in SkippedRoutingPeer(id: PeerID(text(&rng, maxLength: 5)), name: text(&rng), os: text(&rng, maxLength: 7)) }
    }

    @Test func everySampleEventEncodesAsTheReferenceDoes() {
        let all = FastDecodingTests.samples()
        #expect(Set(all.map(\.type)) == Set(RouteEvent.knownTypes))
        for e in all { Self.expectSameBytes(e) }
    }

    @Test(arguments: Array(UInt64(1)...8))
    func randomRouteEventsEncodeAsTheReferenceDoes(seed: UInt64) {
        var rng = SplitMix64(seed: seed &* 7_919)
        for _ in 0..<150 {
            let a = Self.route(&rng), b = Self.route(&rng)
            Self.expectSameBytes(.routeCreated(RouteCreated(route: a, skippedRoutingPeers: Self.skipped(&rng))))
            Self.expectSameBytes(.routeUpdated(RouteUpdated(old: a, new: b, skippedRoutingPeers: Self.skipped(&rng))))
            Self.expectSameBytes(.routeDeleted(RouteDeleted(route: b)))
        }
    }

    /// Route events as the decisions produce them, from the property-test generator.
    @Test(arguments: Array(UInt64(1)...6))
    func decidedEventsEncodeAsTheReferenceDoes(seed: UInt64) {
        var gen = CommandGenerator(seed: seed &* 15_485_863)
        var state = TenantState()
        var routeEvents = 0
        for _ in 0..<400 {
            guard case .success(let evs) = decide(gen.next(state), state) else { continue }
            for e in evs {
                state.apply(e)
                Self.expectSameBytes(e)
                if case .routeCreated = e { routeEvents += 1 }
                if case .routeUpdated = e { routeEvents += 1 }
            }
        }
        #expect(routeEvents > 20)
    }
}
