@testable import RouteModel
import TestSupport
import Testing

@Suite struct PrefixTests {
    @Test(arguments: [
        ("10.0.0.5/24", "10.0.0.0/24"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("192.168.1.1/32", "192.168.1.1/32"),
        ("FD00:0:0:0::1/64", "fd00::/64"),
        ("2001:db8:0:0:1:0:0:1/128", "2001:db8::1:0:0:1/128"),
        ("2001:0db8:0000:0000:0000:0000:0002:0001/128", "2001:db8::2:1/128"),
        ("2001:db8:0:1:1:1:1:1/128", "2001:db8:0:1:1:1:1:1/128"),
        ("::/0", "::/0"),
        ("::1/128", "::1/128"),
        ("::ffff:10.1.2.3/128", "::ffff:10.1.2.3/128"),
        ("64:ff9b::10.0.0.1/128", "64:ff9b::a00:1/128"),
        ("fe80:1:2:3:4:5:6:7/3", "e000::/3"),
    ])
    func canonicalForm(input: String, expected: String) throws {
        #expect(try Prefix(parsing: input).description == expected)
    }

    @Test(arguments: [
        ("10.0.0.0/33", "10.0.0.0/33: prefix length 33 is over 32"),
        ("fd00::/129", "fd00::/129: prefix length 129 is over 128"),
        ("10.0.0.0", "10.0.0.0: missing prefix length (expected address/length)"),
        ("10.0.0.256/24", "10.0.0.256/24: IPv4 octet over 255"),
        ("10.0.0/24", "10.0.0/24: IPv4 address must have 4 octets"),
        ("10.0.0.01/24", "10.0.0.01/24: IPv4 octet has a leading zero"),
        ("10.0.0.0/x", "10.0.0.0/x: prefix length \"x\" is not a decimal number"),
        ("10.0.0.0/", "10.0.0.0/: prefix length \"\" is not a decimal number"),
        ("1::2::3/64", "1::2::3/64: IPv6 address has more than one '::'"),
        ("fe80::1%eth0/64", "fe80::1%eth0/64: IPv6 zones are not allowed"),
        ("12345::/16", "12345::/16: IPv6 group has more than 4 hex digits"),
        ("1:2:3:4:5:6:7:8:9/64", "1:2:3:4:5:6:7:8:9/64: IPv6 address has more than 8 groups"),
        ("1:2:3/64", "1:2:3/64: IPv6 address must have 8 groups"),
        ("/24", "/24: empty address"),
    ])
    func parseErrors(input: String, message: String) {
        #expect(throws: PrefixParseError.self) { try Prefix(parsing: input) }
        do {
            _ = try Prefix(parsing: input)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func containsAndOverlaps() throws {
        let a = try Prefix(parsing: "10.0.0.0/8")
        let b = try Prefix(parsing: "10.1.0.0/16")
        let c = try Prefix(parsing: "11.0.0.0/8")
        let v6 = try Prefix(parsing: "fd00::/8")
        #expect(a.contains(b) && !b.contains(a))
        #expect(a.overlaps(b) && b.overlaps(a))
        #expect(!a.overlaps(c))
        #expect(!a.overlaps(v6))
        #expect(a.contains(try IPAddress(parsing: "10.255.0.1")))
        #expect(!a.contains(try IPAddress(parsing: "11.0.0.1")))
        #expect(v6.contains(try IPAddress(parsing: "fdff::1")))
        #expect(try Prefix(parsing: "0.0.0.0/0").contains(c))
    }

    @Test func ordering() throws {
        let texts = ["fd00::/8", "10.0.0.0/16", "10.0.0.0/8", "9.0.0.0/8", "::/0"]
        let sorted = try texts.map { try Prefix(parsing: $0) }.sorted().map(\.description)
        #expect(sorted == ["9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/16", "::/0", "fd00::/8"])
    }

    @Test func randomRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let v6 = Bool.random(using: &rng)
            let a: IPAddress
            if v6 {
                // Sprinkle zero groups so compression is exercised.
                var h = rng.next(), l = rng.next()
                if Bool.random(using: &rng) { h &= 0xffff_0000_0000_ffff }
                if Bool.random(using: &rng) { l &= 0x0000_ffff_0000_0000 }
                a = IPAddress(v6High: h, low: l)
            } else {
                a = IPAddress(v4: UInt32(truncatingIfNeeded: rng.next()))
            }
            let len = Int.random(in: 0...a.family.bitWidth, using: &rng)
            let p = Prefix(a, length: len)
            let again = try Prefix(parsing: p.description)
            #expect(again == p)
            #expect(again.description == p.description)
            #expect(p.contains(a))
            #expect(try IPAddress(parsing: a.description) == a)
        }
    }
}

@Suite struct DomainNameTests {
    @Test(arguments: [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("*.example.com", "*.example.com"),
        ("münchen.de", "xn--mnchen-3ya.de"),
        ("bücher.example", "xn--bcher-kva.example"),
    ])
    func canonical(input: String, expected: String) throws {
        #expect(try DomainName.canonical(input).get() == expected)
    }

    @Test(arguments: [
        ("a..b", "a..b: empty label"),
        ("", ": empty domain"),
        ("foo.*.com", "foo.*.com: wildcard is only allowed as a leading \"*.\""),
        ("-a.com", "-a.com: label \"-a\" starts or ends with a hyphen"),
        // NetBird's domainRegex allows "_" inside labels (NetBirdCompatRulesTests), not at a label's end.
        ("a_.com", "a_.com: label \"a_\" has \"_\" where only a letter or digit may be"),
        ("a.b!c", "a.b!c: label \"b!c\" has character \"!\" (letters, digits, hyphens and underscores only)"),
        (String(repeating: "a", count: 64) + ".com",
         String(repeating: "a", count: 64) + ".com: label \"" + String(repeating: "a", count: 64) + "\" is over 63 characters"),
    ])
    func invalid(input: String, message: String) {
        switch DomainName.canonical(input) {
        case .success(let s): Issue.record("accepted \(s)")
        case .failure(let e): #expect(e.description == message)
        }
    }

    @Test func tooLong() {
        let label = String(repeating: "a", count: 63)
        let name = [label, label, label, label].joined(separator: ".")
        guard case .failure(let e) = DomainName.canonical(name) else {
            Issue.record("accepted")
            return
        }
        #expect(e.reason == "name is over 253 characters")
    }
}
