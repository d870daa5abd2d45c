import Foundation
import NATSClient
import ViewDistribution
import Testing

@Suite struct EnvelopeTests {
    let signer = testSigner
    let view = Array(#"{"peer":"p1","routes":[{"network":"10.0.0.0/16","metric":10,"description":"caf\u00e9 \"x\""}]}"#.utf8)

    @Test func sha256KnownVectors() {
        #expect(SHA256Digest.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Digest.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Digest.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256Digest.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Lengths around the padding boundary.
        #expect(SHA256Digest.hex([UInt8](repeating: 0, count: 55)) == "02779466cdec163811d078815c633f21901413081449002f24aa3e80f0b88ef7")
        #expect(SHA256Digest.hex([UInt8](repeating: 0, count: 64)) == "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b")
    }

    @Test func roundTripKeepsTheViewBytes() throws {
        let envelope = ViewEnvelope(tenant: "acme", peer: "p1", version: 42, removed: false, createdAtMillis: 1_732_590_000_123, view: view, signedBy: signer)
        #expect(envelope.digest == SHA256Digest.hex(view))
        #expect(envelope.signature.key == signer.publicKey && envelope.signature.endorsement == nil)
        let bytes = envelope.encoded()
        let decoded = try ViewEnvelope.decode(bytes, expectedTenant: "acme", expectedPeer: "p1")
        #expect(decoded == envelope)
        #expect(decoded.view == view)
        #expect(envelope.messageID(using: signer).hasPrefix("acme:p1:42:"))
        #expect(try envelope.subject == "routeplane.acme.peer.p1.routes")
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(#"{"envelope":2,"tenant":"acme","peer":"p1","version":42,"removed":false,"digest":""#))
        #expect(text.contains(#","created_at":1732590000123,"key":"\#(signer.publicKey)","signature":"\#(envelope.signature.signature)","view":"#))
        #expect(text.hasSuffix(#","view":"# + String(decoding: view, as: UTF8.self) + "}"))

        let tombstone = ViewEnvelope(tenant: "t-1", peer: "p_2", version: 7, removed: true, createdAtMillis: 0, view: Array(#"{"routes":[]}"#.utf8), signedBy: signer)
        #expect(try ViewEnvelope.decode(tombstone.encoded()) == tombstone)

        // With an endorsement (key rotation): it round-trips too, as a nested object before "view".
        let rotated = signer.rotated(to: try ViewSigner(seed: [UInt8](repeating: 8, count: 32)))
        let endorsed = ViewEnvelope(tenant: "acme", peer: "p1", version: 43, removed: false, createdAtMillis: 1, view: view, signedBy: rotated)
        let endorsedText = String(decoding: endorsed.encoded(), as: UTF8.self)
        #expect(endorsedText.contains(#","endorsement":{"key":"\#(rotated.publicKey)","signature":""#))
        #expect(try ViewEnvelope.decode(endorsed.encoded()) == endorsed)
    }

    @Test func fieldOrderAndWhitespaceDoNotMatter() throws {
        let digest = SHA256Digest.hex(view)
        let text = " {\n \"view\" : \(String(decoding: view, as: UTF8.self)),\"digest\":\"\(digest)\", \"created_at\":5,\"removed\":true,"
            + "\"signature\": \"c2ln\", \"endorsement\": { \"signature\":\"ZQ\", \"key\":\"aw\" }, \"key\":\"aw\","
            + "\"version\":3,\"peer\":\"p\\u0031\",\"tenant\":\"a\",\"envelope\":2 }\n"
        let decoded = try ViewEnvelope.decode(Array(text.utf8))
        #expect(decoded.peer == "p1" && decoded.tenant == "a" && decoded.version == 3 && decoded.removed && decoded.view == view)
        #expect(decoded.signature == ViewSignature(key: "aw", signature: "c2ln", endorsement: ViewKeyEndorsement(key: "aw", signature: "ZQ")))
    }

    @Test func tamperedViewIsRejected() throws {
        let envelope = ViewEnvelope(tenant: "acme", peer: "p1", version: 42, removed: false, createdAtMillis: 1, view: view, signedBy: signer)
        var bytes = envelope.encoded()
        // Change the metric 10 → 90 inside the view.
        let range = try #require(findSubsequence(bytes, Array(#""metric":10"#.utf8)))
        bytes[range.lowerBound + 9] = UInt8(ascii: "9")
        #expect(throws: ViewEnvelopeError.digestMismatch(expected: envelope.digest, actual: SHA256Digest.hex(Array(bytes[bytes.count - 1 - view.count ..< bytes.count - 1])))) {
            try ViewEnvelope.decode(bytes)
        }
        // A digest that claims other content.
        var other = envelope
        other.digest = String(repeating: "0", count: 64)
        #expect {
            try ViewEnvelope.decode(other.encoded())
        } throws: { error in
            if case .digestMismatch = error as? ViewEnvelopeError { return true }
            return false
        }
    }

    @Test func unparseableMessagesAreRejected() {
        let good = ViewEnvelope(tenant: "acme", peer: "p1", version: 1, removed: false, createdAtMillis: 1, view: view,
                                signedBy: signer.rotated(to: try! ViewSigner(seed: [UInt8](repeating: 8, count: 32))))
        let text = String(decoding: good.encoded(), as: UTF8.self)
        let key = good.signature.key
        let cases: [String] = [
            "",
            "not json",
            "[]",
            "{}",
            String(text.dropLast()),                                           // truncated
            text + "x",                                                        // trailing bytes
            text.replacingOccurrences(of: #""version":1"#, with: #""version":1.5"#),
            text.replacingOccurrences(of: #""version":1"#, with: #""version":"1""#),
            text.replacingOccurrences(of: #""version":1"#, with: #""version":0"#),
            text.replacingOccurrences(of: #""removed":false"#, with: #""removed":0"#),
            text.replacingOccurrences(of: #""tenant":"acme","#, with: ""),      // missing field
            text.replacingOccurrences(of: #""tenant":"acme","#, with: #""tenant":"acme","tenant":"acme","#), // duplicate
            text.replacingOccurrences(of: #""tenant":"acme","#, with: #""tenant":"acme","extra":true,"#),    // unknown field
            text.replacingOccurrences(of: #""view":{"#, with: #""view":["#),    // not an object (and broken)
            text.replacingOccurrences(of: #""digest":""#, with: #""digest":"X"#), // not hex
            "{\"envelope\":2,\"tenant\":\"a\u{01}\"}",                          // raw control character
            text.replacingOccurrences(of: #","key":"\#(key)""#, with: ""),    // no key
            text.replacingOccurrences(of: #","key":"\#(key)""#, with: #","key":"""#), // empty key
            text.replacingOccurrences(of: #","key":"\#(key)""#, with: #","key":7"#), // not a string
            text.replacingOccurrences(of: #""signature":""#, with: #""signature":1,"x":""#), // signature not a string (and unknown field)
            text.replacingOccurrences(of: #""endorsement":{"#, with: #""endorsement":{"extra":1,"#),  // unknown field inside
            text.replacingOccurrences(of: #""endorsement":{"key":"\#(key)","#, with: #""endorsement":{"#), // endorsement without key
            text.replacingOccurrences(of: #""endorsement":{"key":"\#(key)","#, with: #""endorsement":{"key":"\#(key)","key":"\#(key)","#), // twice
            text.replacingOccurrences(of: #""endorsement":{"#, with: #""endorsement":["#),  // not an object (and broken)
            text.replacingOccurrences(of: #""endorsement":{"key":"\#(key)","signature":"\#(good.signature.endorsement!.signature)"}"#,
                                      with: #""endorsement":null"#),                  // null is not an object
        ]
        for (i, bad) in cases.enumerated() {
            #expect(throws: ViewEnvelopeError.self, "case \(i)") { try ViewEnvelope.decode(Array(bad.utf8)) }
            do {
                _ = try ViewEnvelope.decode(Array(bad.utf8))
            } catch {
                if case .unparseable = error {} else { Issue.record("case \(i): \(error)") }
            }
        }
    }

    @Test func unknownEnvelopeVersionIsRejected() {
        let good = String(decoding: ViewEnvelope(tenant: "a", peer: "p", version: 1, removed: false, createdAtMillis: 1, view: view, signedBy: signer).encoded(), as: UTF8.self)
        let v3 = good.replacingOccurrences(of: #"{"envelope":2,"#, with: #"{"envelope":3,"compression":"none","#)
        #expect(throws: ViewEnvelopeError.unsupportedEnvelopeVersion(3)) { try ViewEnvelope.decode(Array(v3.utf8)) }
    }

    @Test func unsignedVersionOneEnvelopeIsRefused() {
        // Exactly what a relay of the previous release published.
        let digest = SHA256Digest.hex(view)
        let v1 = #"{"envelope":1,"tenant":"a","peer":"p","version":9223372036854775807,"removed":false,"digest":"\#(digest)","created_at":1,"view":"#
            + String(decoding: view, as: UTF8.self) + "}"
        #expect(throws: ViewEnvelopeError.unsigned) { try ViewEnvelope.decode(Array(v1.utf8), expectedTenant: "a", expectedPeer: "p") }
        #expect(ViewEnvelopeError.unsigned.reason == "unsigned")
    }

    @Test func messagesForSomeoneElseAreRejected() throws {
        let bytes = ViewEnvelope(tenant: "a", peer: "p", version: 1, removed: false, createdAtMillis: 1, view: view, signedBy: signer).encoded()
        #expect(throws: ViewEnvelopeError.wrongRecipient(tenant: "a", peer: "p")) { try ViewEnvelope.decode(bytes, expectedTenant: "a", expectedPeer: "q") }
        #expect(throws: ViewEnvelopeError.wrongRecipient(tenant: "a", peer: "p")) { try ViewEnvelope.decode(bytes, expectedTenant: "b") }
        _ = try ViewEnvelope.decode(bytes, expectedTenant: "a", expectedPeer: "p")
    }

    @Test func subjectsAcceptOnlySafeTokens() throws {
        #expect(try ViewSubjects.subject(tenant: "t_1-A", peer: "cfvjqb3m8s2o") == "routeplane.t_1-A.peer.cfvjqb3m8s2o.routes")
        for bad in ["", "a.b", "a*", ">", "a b", "a:b", "ü"] {
            #expect(throws: NATSError.self) { try ViewSubjects.subject(tenant: bad, peer: "p") }
            #expect(throws: NATSError.self) { try ViewSubjects.subject(tenant: "t", peer: bad) }
        }
        let id = ViewSubjects.messageID(tenant: "t", peer: "p", version: 9, digest: SHA256Digest.hex(view), signer: signer)
        #expect(id.hasPrefix("t:p:9:") && id.utf8.count == "t:p:9:".utf8.count + 16)
    }

    private func findSubsequence(_ haystack: [UInt8], _ needle: [UInt8]) -> Range<Int>? {
        guard needle.count <= haystack.count else { return nil }
        for i in 0...(haystack.count - needle.count) where Array(haystack[i..<(i + needle.count)]) == needle {
            return i..<(i + needle.count)
        }
        return nil
    }
}
