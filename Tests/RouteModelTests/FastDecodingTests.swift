@testable import RouteModel
import TestSupport
import Testing

/// The hand-written event decoder (`RouteEvent.decode`, on `JSONReader`) against the reference
/// (`RouteEvent.decodeWithFoundation`, Foundation's `JSONDecoder` through Codable): same values,
/// same error kinds, on the encoder's output and on the same JSON rewritten (keys reordered,
/// whitespace, escapes, unknown members, numbers spelled otherwise); errors, never a crash, on
/// malformed input.
@Suite struct FastDecodingTests {
    typealias Outcome = Result<RouteEvent, EventDecodingError>

    static func fast(_ type: String, _ json: [UInt8]) -> Outcome {
        do { return .success(try RouteEvent.decode(type: type, json: json)) } catch { return .failure(error) }
    }

    static func reference(_ type: String, _ json: [UInt8]) -> Outcome {
        do { return .success(try RouteEvent.decodeWithFoundation(type: type, json: json)) } catch { return .failure(error) }
    }

    /// Error kinds compare, not their texts (which name Foundation's or the reader's reasons).
    static func kind(_ o: Outcome) -> String {
        switch o {
        case .success(let e): return "ok \(e)"
        case .failure(.malformed(let t, _)): return "malformed \(t)"
        case .failure(let e): return "\(e)"
        }
    }

    static func expectSame(_ type: String, _ json: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let a = fast(type, json), b = reference(type, json)
        #expect(kind(a) == kind(b), "\(type) \(String(decoding: json, as: UTF8.self))", sourceLocation: sourceLocation)
    }

    /// Every event type, with non-ASCII, quotes, control characters and both destinations.
    static func samples() -> [RouteEvent] {
        var all = EventCodingTests.allKinds()
        let r = Route(id: "rt-ü", networkID: "日本 \u{1F600} \\ \"q\" \u{01}\t/", description: "line\nnext\u{7f}\u{0}",
                      destination: .network(try! Prefix(parsing: "10.1.0.0/16")), routingPeers: .peer("p/1"), metric: 9999,
                      masquerade: true, groups: [], enabled: false)
        all.append(.routeCreated(RouteCreated(route: r)))
        // Optional fields written only when set: domains as written, non-Linux members of peer groups.
        var written = r
        written.destination = .domains(["xn--bcher-kva.example", "a_b.example"])
        written.writtenDomains = ["Bücher.Example", "a_b.example"]
        written.routingPeers = .peerGroups(["g1"])
        let skipped = [SkippedRoutingPeer(id: "w1", name: "win ü", os: "windows")]
        all.append(.routeCreated(RouteCreated(route: written, skippedRoutingPeers: skipped)))
        all.append(.routeUpdated(RouteUpdated(old: r, new: written, skippedRoutingPeers: skipped)))
        all.append(.peerEnrolled(PeerEnrolled(peer: Peer(id: "p6", name: "é\u{301}", os: "windows", meshIP: try! IPAddress(parsing: "fd7a::1")))))
        all.append(.groupMembersChanged(GroupMembersChanged(groupID: "g", added: [], removed: [])))
        let drained = Peer(id: "d1", name: "drained", os: "linux", meshIP: IPAddress(v4: 0x6440_0009), draining: true)
        all.append(.peerEnrolled(PeerEnrolled(peer: drained)))
        all.append(.peerRemoved(PeerRemoved(peer: drained, groups: [])))
        all.append(.peerDrainingChanged(PeerDrainingChanged(peerID: "d1", draining: false)))
        all += accessEvents()
        return all
    }

    @Test func everyEventTypeDecodesAsTheReferenceDoes() throws {
        let all = Self.samples()
        #expect(Set(all.map(\.type)) == Set(RouteEvent.knownTypes))
        for e in all {
            let (type, json) = e.encode()
            #expect(Self.fast(type, json) == .success(e))
            #expect(Self.reference(type, json) == .success(e))
            var rewriter = JSONRewriter(rng: SplitMix64(seed: 7))
            for _ in 0..<50 {
                let text = rewriter.rewrite(json)
                #expect(Self.fast(type, text) == .success(e), "\(String(decoding: text, as: UTF8.self))")
                Self.expectSame(type, text)
            }
        }
    }

    /// Thousands of events from the property-test generator, as stored and rewritten.
    @Test(arguments: Array(UInt64(1)...12))
    func randomEventsDecodeAsTheReferenceDoes(seed: UInt64) {
        var gen = CommandGenerator(seed: seed &* 104_729)
        var state = TenantState()
        var rewriter = JSONRewriter(rng: SplitMix64(seed: seed))
        var count = 0
        for _ in 0..<400 {
            guard case .success(let evs) = decide(gen.next(state), state) else { continue }
            for e in evs {
                state.apply(e)
                let (type, json) = e.encode()
                #expect(Self.fast(type, json) == .success(e))
                #expect(Self.reference(type, json) == .success(e))
                let text = rewriter.rewrite(json)
                #expect(Self.fast(type, text) == .success(e), "\(String(decoding: text, as: UTF8.self))")
                #expect(Self.reference(type, text) == .success(e), "\(String(decoding: text, as: UTF8.self))")
                if let string = String(validating: text, as: UTF8.self) {  // the database hands bodies over as String
                    #expect((try? RouteEvent.decode(type: type, json: string)) == e)
                }
                count += 1
            }
        }
        #expect(count > 150)
    }

    @Test func versions() {
        let body = #""peer_id":"p","old_name":"a","name":"b""#
        let ok = RouteEvent.peerRenamed(PeerRenamed(peerID: "p", oldName: "a", name: "b"))
        for (version, expected) in [("1", Outcome.success(ok)), ("null", .success(ok)), ("1.0", .success(ok)), ("1e0", .success(ok)),
                                    ("2", .failure(.unsupportedVersion(type: "PeerRenamed", version: 2))),
                                    ("0", .failure(.unsupportedVersion(type: "PeerRenamed", version: 0))),
                                    ("-3", .failure(.unsupportedVersion(type: "PeerRenamed", version: -3)))] {
            for json in ["{\"event_version\":\(version),\(body)}", "{\(body),\"event_version\":\(version)}"] {
                #expect(Self.fast("PeerRenamed", Array(json.utf8)) == expected, "\(json)")
                Self.expectSame("PeerRenamed", Array(json.utf8))
            }
        }
        // A newer version wins over a body that would not decode, wherever the key is.
        for (json, version) in [(#"{"event_version":2,"peer_id":5}"#, 2), (#"{"peer_id":5,"name":[],"event_version":2}"#, 2), (#"{"event_version":7}"#, 7),
                                (#"{"event_version":3,"event_version":1}"#, 3)] {
            #expect(Self.fast("PeerRenamed", Array(json.utf8)) == .failure(.unsupportedVersion(type: "PeerRenamed", version: version)), "\(json)")
            Self.expectSame("PeerRenamed", Array(json.utf8))
        }
        // …but not over a version that is not an integer…
        for json in [#"{"event_version":"2"}"#, #"{"event_version":1.5}"#, #"{"event_version":true}"#] {
            #expect(Self.kind(Self.fast("PeerRenamed", Array(json.utf8))) == "malformed PeerRenamed", "\(json)")
            Self.expectSame("PeerRenamed", Array(json.utf8))
        }
        // …nor over text that is not JSON. (Foundation's decoder says unsupportedVersion here: it
        // never looks inside a string nobody decodes; the strict reader refuses invalid JSON.)
        #expect(Self.kind(Self.fast("PeerRenamed", Array(#"{"event_version":2,"peer_id":"\x"}"#.utf8))) == "malformed PeerRenamed")
        #expect(Self.fast("NoSuchEvent", Array("{}".utf8)) == .failure(.unknownType("NoSuchEvent")))
        #expect(Self.fast("NoSuchEvent", Array("not json".utf8)) == .failure(.unknownType("NoSuchEvent")))
    }

    /// Field rules of the Codable implementations: optional keys, null, alternatives, numbers,
    /// duplicates, escaped keys, unknown members.
    @Test func fieldRulesMatchCodable() {
        let route = #""id":"r","network_id":"n","metric":5,"masquerade":true,"groups":["g"],"enabled":true"#
        let cases: [String] = [
            "{\"route\":{\(route),\"network\":\"10.0.0.9/24\",\"peer\":\"p\"}}",
            "{\"route\":{\(route),\"network\":null,\"domains\":[\"a.b\"],\"peer\":null,\"peer_groups\":[\"x\"]}}",
            "{\"route\":{\(route),\"network\":\"10.0.0.0/8\",\"domains\":5,\"peer\":\"p\",\"peer_groups\":{}}}",
            "{\"route\":{\(route),\"domains\":[\"a.b\"],\"peer_groups\":[],\"description\":null,\"keep_route\":null,\"access_control_groups\":null,\"skip_auto_apply\":null}}",
            "{\"route\":{\(route),\"domains\":[\"a.b\"],\"peer\":\"p\",\"keep_route\":true,\"access_control_groups\":[\"z\",\"a\"],\"skip_auto_apply\":true,\"network_type\":{\"any\":[1]}}}",
            "{\"route\":{\(route),\"peer\":\"p\"}}",
            "{\"route\":{\(route),\"network\":\"10.0.0.0/33\",\"peer\":\"p\"}}",
            "{\"route\":{\(route),\"network\":\"10.0.0.0\",\"peer\":\"p\"}}",
            "{\"route\":{\(route),\"network\":7,\"peer\":\"p\"}}",
            "{\"route\":{\(route),\"network\":\"::/0\",\"peer\":7}}",
            "{\"route\":{\(route),\"network\":\"::/0\"}}",
            "{\"route\":{\"id\":\"r\",\"network_id\":\"n\",\"metric\":5,\"masquerade\":true,\"groups\":[\"g\"],\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"id\":\"r\",\"network_id\":\"n\",\"metric\":5,\"masquerade\":true,\"groups\":[\"g\"],\"enabled\":null,\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\(route),\"metric\":\"5\",\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"metric\":1.0,\(route),\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"metric\":100e-2,\(route),\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"metric\":1.5,\(route),\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"metric\":-9223372036854775808,\(route),\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"metric\":9223372036854775808,\(route),\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"metric\":1e400,\(route),\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"masquerade\":1,\(route),\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"groups\":null,\(route),\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"groups\":[null],\"id\":\"r\",\"network_id\":\"n\",\"metric\":5,\"masquerade\":true,\"enabled\":true,\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\"id\":\"first\",\(route),\"network\":\"::/0\",\"peer\":\"p\",\"peer\":\"second\"}}",
            "{\"route\":{\"\\u0069d\":\"escaped-key\",\"n\\u0065twork_id\":\"n\",\"metric\":5,\"masquerade\":true,\"groups\":[\"g\"],\"enabled\":true,\"\\u006eetwork\":\"::/0\",\"p\\u0065er\":\"p\"}}",
            "{\"route\":null}", "{\"route\":[]}", "{}", "{\"route\":{}}", "[]", "\"x\"", "", " ", "null",
            "\u{FEFF}{\"route\":{\(route),\"network\":\"::/0\",\"peer\":\"p\"}}",
            "{\"route\":{\(route),\"network\":\"::/0\",\"peer\":\"p\"},\"extra\":[1,{\"a\":[true,false,null,-0.5e+3,\"\\ud83d\\ude00\"]}]}",
        ]
        for text in cases {
            Self.expectSame("RouteCreated", Array(text.utf8))
        }
        let peer = [#"{"peer":{"id":"p","name":"n","os":"linux","ip":"100.64.0.1"}}"#, #"{"peer":{"id":"p","name":"n","os":"linux","ip":"100.64.0.01"}}"#,
                    #"{"peer":{"id":"p","name":"n","os":"linux","ip":"fd7a::1/64"}}"#, #"{"peer":{"id":"p","name":"n","os":"linux"}}"#,
                    #"{"peer":{"id":"p","name":"n","os":"linux","ip":null}}"#, #"{"peer":{"id":"p","name":null,"os":"linux","ip":"::1"}}"#]
        for text in peer { Self.expectSame("PeerEnrolled", Array(text.utf8)) }
        // `draining` is optional (events written before drain mode lack it); a wrong type is an error.
        let peerFields = #""id":"p","name":"n","os":"linux","ip":"100.64.0.1""#
        for draining in ["true", "false", "null", "1", "\"true\"", "[]"] {
            Self.expectSame("PeerEnrolled", Array("{\"peer\":{\(peerFields),\"draining\":\(draining)}}".utf8))
            Self.expectSame("PeerRemoved", Array("{\"peer\":{\"draining\":\(draining),\(peerFields)},\"removed_from_groups\":[]}".utf8))
        }
        for text in [#"{"peer_id":"p","draining":true}"#, #"{"peer_id":"p","draining":false,"event_version":1}"#, #"{"peer_id":"p"}"#,
                     #"{"draining":true}"#, #"{"peer_id":"p","draining":null}"#, #"{"peer_id":"p","draining":0}"#, #"{"peer_id":7,"draining":true}"#,
                     #"{"peer_id":"p","draining":true,"draining":false}"#, #"{"peer_id":"p","dr\u0061ining":true}"#] {
            Self.expectSame("PeerDrainingChanged", Array(text.utf8))
        }
        let group = [#"{"group":{"id":"g","name":"n","peers":[]}}"#, #"{"group":{"id":"g","name":"n"}}"#, #"{"group":{"id":"g","name":"n","peers":["a",1]}}"#,
                     #"{"group":{"peers":["b","a"],"name":"\u00e9","id":"g"}}"#]
        for text in group {
            Self.expectSame("GroupCreated", Array(text.utf8))
            Self.expectSame("GroupDeleted", Array(text.utf8))
        }
        for text in [#"{"group_id":"g","added_peers":["a"],"removed_peers":[]}"#, #"{"group_id":"g","added_peers":["a"]}"#] {
            Self.expectSame("GroupMembersChanged", Array(text.utf8))
        }
        for text in [#"{"peer":{"id":"p","name":"n","os":"linux","ip":"::1"},"removed_from_groups":["g"]}"#, #"{"peer":{"id":"p","name":"n","os":"linux","ip":"::1"},"groups":["g"]}"#] {
            Self.expectSame("PeerRemoved", Array(text.utf8))
        }
    }

    /// Strings: escapes, surrogate pairs, UTF-8 checks (each compared with the reference).
    @Test func strings() {
        func body(_ s: [UInt8]) -> [UInt8] { Array(#"{"group_id":"g","old_name":""#.utf8) + s + Array(#"","name":"n"}"#.utf8) }
        let valid: [String] = [#"\u00e9"#, #"\u00E9"#, #"\ud83d\ude00"#, #"\uD83D\uDE00"#, #"\/\"\\\b\f\n\r\t"#, #"\u0000"#, "é😀\u{7f}", "",
                               #"\u0041\u0042"#, "日本語"]
        let invalid: [String] = [#"\ud800"#, #"\udc00"#, #"\ud83d\u0041"#, #"\ud83dx"#, #"\x"#, #"\u12"#, #"\u12g4"#, "\t", "\n", "\u{1}", #"\"#, #"\'"#]
        for s in valid {
            #expect(Self.kind(Self.fast("GroupUpdated", body(Array(s.utf8)))).hasPrefix("ok"), "\(s)")
            Self.expectSame("GroupUpdated", body(Array(s.utf8)))
        }
        for s in invalid {
            #expect(Self.kind(Self.fast("GroupUpdated", body(Array(s.utf8)))) == "malformed GroupUpdated", "\(s)")
            Self.expectSame("GroupUpdated", body(Array(s.utf8)))
        }
        let badUTF8: [[UInt8]] = [[0xff], [0xc0, 0x80], [0xc3], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]]
        for b in badUTF8 {
            #expect(Self.kind(Self.fast("GroupUpdated", body(b))) == "malformed GroupUpdated", "\(b)")
            Self.expectSame("GroupUpdated", body(b))
        }
        for b: [UInt8] in [[0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0xef, 0xbf, 0xbf], [0xf4, 0x8f, 0xbf, 0xbf]] {
            Self.expectSame("GroupUpdated", body(b))
        }
    }

    /// Every truncation of every sample, random byte changes, deep nesting, garbage: errors
    /// (or, where the change kept valid JSON, the reference's answer), never a crash.
    @Test func malformedInputsGiveErrors() {
        for e in Self.samples() {
            let (type, json) = e.encode()
            for n in 0..<json.count {
                #expect(Self.kind(Self.fast(type, Array(json[..<n]))) == "malformed \(type)")
            }
            var rng = SplitMix64(seed: UInt64(json.count))
            let alphabet = Array(#"{}[],:"\ 0123456789-+.eEtrufalsn/u"#.utf8) + [0x00, 0x01, 0x80, 0xc3, 0xff]
            for _ in 0..<300 {
                var m = json
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let i = Int.random(in: 0..<m.count, using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: m[i] = alphabet.randomElement(using: &rng)!
                    case 1: m.remove(at: i)
                    default: m.insert(alphabet.randomElement(using: &rng)!, at: i)
                    }
                    if m.isEmpty { break }
                }
                let a = Self.fast(type, m)
                let b = Self.reference(type, m)
                // Never more lenient than the reference; where the text is valid JSON, identical.
                if case .success = a { #expect(Self.kind(a) == Self.kind(b), "\(String(decoding: m, as: UTF8.self))") }
                if StrictJSON.isValid(m) { #expect(Self.kind(a) == Self.kind(b), "\(String(decoding: m, as: UTF8.self))") }
            }
        }
        let deep = "{\"peer_id\":\"p\",\"x\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(Self.kind(Self.fast("PeerRenamed", Array(deep.utf8))) == "malformed PeerRenamed")
        let deepObjects = String(repeating: "{\"a\":", count: 100_000)
        #expect(Self.kind(Self.fast("PeerRenamed", Array(deepObjects.utf8))) == "malformed PeerRenamed")
        let fine = "{\"peer_id\":\"p\",\"old_name\":\"a\",\"name\":\"b\",\"x\":" + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}"
        Self.expectSame("PeerRenamed", Array(fine.utf8))
        for text in ["{", "{\"", "{\"peer_id\"", "{\"peer_id\":", "{\"peer_id\":\"p\"", "{\"peer_id\":\"p\",", "{\"peer_id\" \"p\"}", "{peer_id:\"p\"}",
                     "{\"peer_id\":'p'}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":-}",
                     "{\"a\":1e}", "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":1} x", "{\"a\":1}{}", "{\"a\":1,}"] {
            #expect(Self.kind(Self.fast("PeerRenamed", Array(text.utf8))) == "malformed PeerRenamed", "\(text)")
        }
    }
}

/// Rewrites a JSON text into an equivalent one: members shuffled, whitespace everywhere,
/// characters escaped (`\uXXXX`, surrogate pairs, `\/`), unknown members of any kind added,
/// integers spelled `5.0`, `5e0`, `500e-2`.
struct JSONRewriter {
    var rng: SplitMix64

    mutating func rewrite(_ json: [UInt8]) -> [UInt8] {
        guard let value = StrictJSON.parse(json) else { preconditionFailure("not JSON: \(String(decoding: json, as: UTF8.self))") }
        var out: [UInt8] = []
        if chance(0.05) { out += [0xef, 0xbb, 0xbf] }
        ws(&out)
        write(value, &out)
        ws(&out)
        return out
    }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    mutating func ws(_ out: inout [UInt8]) {
        guard chance(0.4) else { return }
        for _ in 0..<Int.random(in: 1...3, using: &rng) { out.append([0x20, 0x0a, 0x09, 0x0d].randomElement(using: &rng)!) }
    }

    mutating func write(_ v: StrictJSON.Value, _ out: inout [UInt8]) {
        switch v {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let text):
            out += Array(text.utf8)
            if Int(text) != nil {
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: out += Array(".0".utf8)
                case 1: out += Array("e0".utf8)
                case 2 where !text.hasPrefix("0") && !text.hasPrefix("-0"): out += Array("00e-2".utf8)
                case 3: out += Array(".000E+0".utf8)
                default: break
                }
            }
        case .string(let s): string(s, &out)
        case .array(let xs):
            out.append(UInt8(ascii: "["))
            for (i, x) in xs.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                ws(&out); write(x, &out); ws(&out)
            }
            if xs.isEmpty { ws(&out) }
            out.append(UInt8(ascii: "]"))
        case .object(var members):
            members.shuffle(using: &rng)
            if chance(0.3) { members.insert(("x_unknown\(Int.random(in: 0..<5, using: &rng))", randomValue(depth: 0)), at: Int.random(in: 0...members.count, using: &rng)) }
            out.append(UInt8(ascii: "{"))
            for (i, (k, x)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                ws(&out); string(k, &out); ws(&out); out.append(UInt8(ascii: ":")); ws(&out); write(x, &out); ws(&out)
            }
            if members.isEmpty { ws(&out) }
            out.append(UInt8(ascii: "}"))
        }
    }

    mutating func randomValue(depth: Int) -> StrictJSON.Value {
        switch Int.random(in: 0..<(depth > 2 ? 5 : 7), using: &rng) {
        case 0: return .null
        case 1: return .bool(chance(0.5))
        case 2: return .number(["0", "-1", "3.25", "1e300", "-0.0E-7", "123456789012345678901234567890"].randomElement(using: &rng)!)
        case 3: return .string(["", "x", "é\"\\\n", "\u{1F600}", "\u{0}"].randomElement(using: &rng)!)
        case 4: return .string("route")
        case 5: return .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in randomValue(depth: depth + 1) })
        default: return .object((0..<Int.random(in: 0...3, using: &rng)).map { i in ("k\(i)", randomValue(depth: depth + 1)) })
        }
    }

    mutating func string(_ s: String, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        let hex = Array("0123456789abcdefABCDEF".utf8)
        func u(_ unit: UInt32, _ out: inout [UInt8], upper: Bool) {
            out += Array("\\u".utf8)
            for shift in [12, 8, 4, 0] {
                let d = Int((unit >> UInt32(shift)) & 0xf)
                out.append(upper && d >= 10 ? hex[d + 6] : hex[d])
            }
        }
        for scalar in s.unicodeScalars {
            let v = scalar.value
            if chance(0.1) {
                let upper = chance(0.5)
                if v >= 0x10000 {
                    let x = v - 0x10000
                    u(0xd800 + (x >> 10), &out, upper: upper)
                    u(0xdc00 + (x & 0x3ff), &out, upper: upper)
                } else {
                    u(v, &out, upper: upper)
                }
                continue
            }
            switch v {
            case 0x22: out += Array("\\\"".utf8)
            case 0x5c: out += Array("\\\\".utf8)
            case 0x2f where chance(0.5): out += Array("\\/".utf8)
            case 0x0a: out += Array("\\n".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0x0d: out += Array("\\r".utf8)
            case 0x08: out += Array("\\b".utf8)
            case 0x0c: out += Array("\\f".utf8)
            case 0..<0x20: u(v, &out, upper: false)
            default: out += Array(String(scalar).utf8)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// An independent, deliberately simple strict RFC 8259 parser for the tests (a tree of values).
enum StrictJSON {
    indirect enum Value {
        case null, bool(Bool), number(String), string(String), array([Value]), object([(String, Value)])
    }

    static func isValid(_ bytes: [UInt8]) -> Bool { parse(bytes) != nil }

    static func parse(_ bytes: [UInt8]) -> Value? {
        var i = 0
        if bytes.starts(with: [0xef, 0xbb, 0xbf]) { i = 3 }
        guard let v = value(bytes, &i, 0) else { return nil }
        skip(bytes, &i)
        return i == bytes.count ? v : nil
    }

    static func skip(_ b: [UInt8], _ i: inout Int) {
        while i < b.count, [0x20, 0x0a, 0x0d, 0x09].contains(b[i]) { i += 1 }
    }

    static func value(_ b: [UInt8], _ i: inout Int, _ depth: Int) -> Value? {
        skip(b, &i)
        guard i < b.count, depth < 500 else { return nil }
        func lit(_ w: String) -> Bool {
            let a = Array(w.utf8)
            guard b.count - i >= a.count, Array(b[i..<i + a.count]) == a else { return false }
            i += a.count
            return true
        }
        switch b[i] {
        case UInt8(ascii: "n"): return lit("null") ? .null : nil
        case UInt8(ascii: "t"): return lit("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return lit("false") ? .bool(false) : nil
        case UInt8(ascii: "\""): return string(b, &i).map { .string($0) }
        case UInt8(ascii: "["):
            i += 1
            var xs: [Value] = []
            skip(b, &i)
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(xs) }
            while true {
                guard let x = value(b, &i, depth + 1) else { return nil }
                xs.append(x)
                skip(b, &i)
                guard i < b.count else { return nil }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(xs) }
                guard b[i] == UInt8(ascii: ",") else { return nil }
                i += 1
            }
        case UInt8(ascii: "{"):
            i += 1
            var ms: [(String, Value)] = []
            skip(b, &i)
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(ms) }
            while true {
                skip(b, &i)
                guard i < b.count, b[i] == UInt8(ascii: "\""), let k = string(b, &i) else { return nil }
                skip(b, &i)
                guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
                i += 1
                guard let x = value(b, &i, depth + 1) else { return nil }
                ms.append((k, x))
                skip(b, &i)
                guard i < b.count else { return nil }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(ms) }
                guard b[i] == UInt8(ascii: ",") else { return nil }
                i += 1
            }
        default:
            let start = i
            let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count, digits.contains(b[i]) else { return nil }
            if b[i] == UInt8(ascii: "0") { i += 1 } else { while i < b.count, digits.contains(b[i]) { i += 1 } }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                guard i < b.count, digits.contains(b[i]) else { return nil }
                while i < b.count, digits.contains(b[i]) { i += 1 }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                guard i < b.count, digits.contains(b[i]) else { return nil }
                while i < b.count, digits.contains(b[i]) { i += 1 }
            }
            return .number(String(decoding: b[start..<i], as: UTF8.self))
        }
    }

    static func string(_ b: [UInt8], _ i: inout Int) -> String? {
        i += 1
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        func flush() -> Bool {
            guard !raw.isEmpty else { return true }
            guard let s = String(validating: raw, as: UTF8.self) else { return false }
            scalars.append(contentsOf: s.unicodeScalars)
            raw = []
            return true
        }
        func hex4() -> UInt32? {
            guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<i + 4], as: UTF8.self), radix: 16),
                  b[i..<i + 4].allSatisfy({ JSONRewriterHex.contains($0) }) else { return nil }
            i += 4
            return v
        }
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; return flush() ? String(scalars) : nil }
            if c < 0x20 { return nil }
            if c != UInt8(ascii: "\\") { raw.append(c); i += 1; continue }
            guard flush(), i + 1 < b.count else { return nil }
            let e = b[i + 1]
            i += 2
            let simple: [UInt8: UInt32] = [0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9]
            if let v = simple[e] { scalars.append(Unicode.Scalar(v)!); continue }
            guard e == UInt8(ascii: "u"), let unit = hex4() else { return nil }
            if (0xd800...0xdbff).contains(unit) {
                guard i + 2 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else { return nil }
                i += 2
                guard let low = hex4(), (0xdc00...0xdfff).contains(low) else { return nil }
                scalars.append(Unicode.Scalar(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))!)
            } else {
                guard let s = Unicode.Scalar(unit) else { return nil }
                scalars.append(s)
            }
        }
        return nil
    }
}

private let JSONRewriterHex = Set(Array("0123456789abcdefABCDEF".utf8))
