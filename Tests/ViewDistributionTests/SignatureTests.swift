import Foundation
import ViewDistribution
import Testing

/// Signed views: `ViewSigner` / `ViewVerifier`, key rotation by endorsement, message ids. Pure, no I/O.
@Suite struct SignatureTests {
    let old = try! ViewSigner(seed: [UInt8](repeating: 1, count: 32))
    let new = try! ViewSigner(seed: [UInt8](repeating: 2, count: 32))
    let attacker = try! ViewSigner(seed: [UInt8](repeating: 3, count: 32))
    let digest = String(repeating: "ab", count: 32)

    func verify(_ verifier: ViewVerifier, _ signature: ViewSignature?, tenant: String = "t1", peer: String = "p1", version: Int64 = 42,
                removed: Bool = false, digest: String? = nil) throws(ViewSignatureError) -> ViewVerifier {
        try verifier.verify(tenant: tenant, peer: peer, version: version, removed: removed, digest: digest ?? self.digest, signature: signature)
    }

    @Test func signedBytesAreTheDocumentedText() {
        let text = String(decoding: ViewSignature.signedBytes(tenant: "t1", peer: "p1", version: 42, removed: true, digest: digest), as: UTF8.self)
        #expect(text == "routeplane-view-signature-v1\nt1\np1\n42\ntrue\n\(digest)")
        #expect(String(decoding: ViewSignature.endorsementBytes(newKey: "K"), as: UTF8.self) == "routeplane-view-key-endorsement-v1\nK")
    }

    @Test func keysAreBase64URLOfTheRawPublicKey() throws {
        // RFC 8032 test 1: secret key 9d61b1…7f60 has public key d75a98…511a.
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
        let signer = try ViewSigner(seed: seed)
        #expect(Base64URL.decode(signer.publicKey) == hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
        #expect(signer.publicKey == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        #expect(!signer.publicKey.contains("=") && signer.publicKey.utf8.count == 43)
        #expect(try ViewSigner(seedBase64URL: signer.seedBase64URL).publicKey == signer.publicKey)
        #expect(throws: ViewSignatureError.self) { try ViewSigner(seed: [UInt8](repeating: 0, count: 31)) }
    }

    @Test func roundTrip() throws {
        let verifier = try ViewVerifier(pinnedKey: old.publicKey)
        let signature = old.sign(tenant: "t1", peer: "p1", version: 42, removed: false, digest: digest)
        #expect(signature.key == old.publicKey)
        #expect(Base64URL.decode(signature.signature)?.count == 64)
        #expect(try verify(verifier, signature) == verifier, "no rotation: the same key stays pinned")
        let tombstone = old.sign(tenant: "t1", peer: "p1", version: 43, removed: true, digest: digest)
        #expect(try verify(verifier, tombstone, version: 43, removed: true) == verifier)
        // A whole envelope.
        let envelope = ViewEnvelope(tenant: "t1", peer: "p1", version: 5, removed: false, createdAtMillis: 1, view: Array(#"{"a":1}"#.utf8), signedBy: old)
        #expect(try verifier.verify(try ViewEnvelope.decode(envelope.encoded())) == verifier)
    }

    @Test func aSignatureCoversTenantPeerVersionRemovedAndDigest() throws {
        let verifier = try ViewVerifier(pinnedKey: old.publicKey)
        let signature = old.sign(tenant: "t1", peer: "p1", version: 42, removed: false, digest: digest)
        #expect(throws: ViewSignatureError.badSignature) { try verify(verifier, signature, version: 43) }
        #expect(throws: ViewSignatureError.badSignature) { try verify(verifier, signature, version: Int64.max) }
        #expect(throws: ViewSignatureError.badSignature) { try verify(verifier, signature, peer: "p2") }
        #expect(throws: ViewSignatureError.badSignature) { try verify(verifier, signature, tenant: "t2") }
        #expect(throws: ViewSignatureError.badSignature) { try verify(verifier, signature, removed: true) }
        #expect(throws: ViewSignatureError.badSignature) { try verify(verifier, signature, digest: String(repeating: "cd", count: 32)) }
        // A flipped bit of the signature itself.
        var raw = Base64URL.decode(signature.signature)!
        raw[10] ^= 0x01
        let flipped = ViewSignature(key: signature.key, signature: Base64URL.encode(raw))
        #expect(throws: ViewSignatureError.badSignature) { try verify(verifier, flipped) }
        #expect(ViewSignatureError.badSignature.reason == "bad_signature")
    }

    @Test func anotherKeyIsRefused() throws {
        let verifier = try ViewVerifier(pinnedKey: old.publicKey)
        // Well-formed and valid under its own key, but that key is not pinned.
        let forged = attacker.sign(tenant: "t1", peer: "p1", version: Int64.max, removed: false, digest: digest)
        #expect(throws: ViewSignatureError.unknownKey(attacker.publicKey)) { try verify(verifier, forged, version: Int64.max) }
        // The attacker's signature presented under the pinned key's name.
        let relabelled = ViewSignature(key: old.publicKey, signature: forged.signature)
        #expect(throws: ViewSignatureError.badSignature) { try verify(verifier, relabelled, version: Int64.max) }
        // Unsigned.
        #expect(throws: ViewSignatureError.unsigned) { try verify(verifier, nil) }
        // Not even a key / signature.
        #expect(throws: ViewSignatureError.self) { try verify(verifier, ViewSignature(key: "not a key", signature: forged.signature)) }
        #expect(throws: ViewSignatureError.self) { try verify(verifier, ViewSignature(key: old.publicKey, signature: "AAAA")) }
        #expect(throws: ViewSignatureError.self) { try ViewVerifier(pinnedKey: "") }
        // Ids that are not subject tokens (could make the signed text ambiguous).
        let odd = old.sign(tenant: "t\n1", peer: "p1", version: 42, removed: false, digest: digest)
        #expect(throws: ViewSignatureError.self) { try verify(verifier, odd, tenant: "t\n1") }
    }

    @Test func anEndorsedNewKeyIsAcceptedAndPinned() throws {
        let verifier = try ViewVerifier(pinnedKey: old.publicKey)
        let rotated = old.rotated(to: new)
        #expect(rotated.publicKey == new.publicKey)
        #expect(rotated.endorsement?.key == new.publicKey)
        let signature = rotated.sign(tenant: "t1", peer: "p1", version: 50, removed: false, digest: digest)
        #expect(signature.endorsement == rotated.endorsement)
        let next = try verify(verifier, signature, version: 50)
        #expect(next.pinnedKey == new.publicKey, "the agent pins the new key")
        // From then on the new key alone is enough, and the old key is no longer accepted.
        let plain = new.sign(tenant: "t1", peer: "p1", version: 51, removed: false, digest: digest)
        #expect(try verify(next, plain, version: 51) == next)
        let byOld = old.sign(tenant: "t1", peer: "p1", version: 52, removed: false, digest: digest)
        #expect(throws: ViewSignatureError.unknownKey(old.publicKey)) { try verify(next, byOld, version: 52) }
        // An agent that already pinned the new key ignores the endorsement the controller still ships.
        #expect(try verify(next, signature, version: 50) == next)
        // The new key without endorsement is unknown to an agent that pins the old key.
        #expect(throws: ViewSignatureError.unknownKey(new.publicKey)) { try verify(verifier, plain, version: 51) }
        // A valid endorsement does not excuse a bad view signature.
        #expect(throws: ViewSignatureError.badSignature) { try verify(verifier, signature, version: 49) }
    }

    @Test func anEndorsementNotSignedByThePinnedKeyIsRefused() throws {
        let verifier = try ViewVerifier(pinnedKey: old.publicKey)
        // The attacker endorses its own key.
        let selfEndorsed = attacker.rotated(to: attacker)
        let forged = selfEndorsed.sign(tenant: "t1", peer: "p1", version: Int64.max, removed: false, digest: digest)
        #expect { try verify(verifier, forged, version: Int64.max) } throws: { ($0 as? ViewSignatureError)?.reason == "bad_endorsement" }
        // A genuine endorsement (old → new) reused for the attacker's key.
        let stolen = ViewSignature(key: attacker.publicKey, signature: forged.signature, endorsement: old.endorse(new.publicKey))
        #expect { try verify(verifier, stolen, version: Int64.max) } throws: { ($0 as? ViewSignatureError)?.reason == "bad_endorsement" }
        // …or relabelled as endorsing the attacker's key.
        let relabelled = ViewSignature(key: attacker.publicKey, signature: forged.signature,
                                       endorsement: ViewKeyEndorsement(key: attacker.publicKey, signature: old.endorse(new.publicKey).signature))
        #expect { try verify(verifier, relabelled, version: Int64.max) } throws: { ($0 as? ViewSignatureError)?.reason == "bad_endorsement" }
        // A chain the agent did not follow (old → new → attacker's third key): refused, the agent must re-enroll.
        let third = new.rotated(to: attacker).sign(tenant: "t1", peer: "p1", version: 60, removed: false, digest: digest)
        #expect { try verify(verifier, third, version: 60) } throws: { ($0 as? ViewSignatureError)?.reason == "bad_endorsement" }
        // A signer refuses an endorsement of another key.
        #expect(throws: ViewSignatureError.self) { try ViewSigner(seed: [UInt8](repeating: 2, count: 32), endorsement: old.endorse(attacker.publicKey)) }
    }

    @Test func messageIDsAreStablePerRowAndKeyedBySeed() throws {
        let a = old.messageID(tenant: "t1", peer: "p1", version: 42, digest: digest)
        #expect(a == (try ViewSigner(seed: [UInt8](repeating: 1, count: 32))).messageID(tenant: "t1", peer: "p1", version: 42, digest: digest),
                "the same row gets the same id from every relay with the same key (JetStream deduplicates a republish)")
        #expect(a.hasPrefix("t1:p1:42:"))
        let suffix = a.dropFirst("t1:p1:42:".count)
        #expect(suffix.count == 16 && suffix.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(a != new.messageID(tenant: "t1", peer: "p1", version: 42, digest: digest), "another seed, another id")
        #expect(a != old.messageID(tenant: "t1", peer: "p1", version: 43, digest: digest))
        #expect(a != old.messageID(tenant: "t1", peer: "p1", version: 42, digest: String(repeating: "cd", count: 32)))
        #expect(a != old.messageID(tenant: "t1", peer: "p2", version: 42, digest: digest))
        // The id does not depend on the endorsement (a rotation keeps deduplication per seed).
        #expect(old.rotated(to: old).messageID(tenant: "t1", peer: "p1", version: 42, digest: digest) == a)
    }

    @Test func base64URLIsStrict() {
        #expect(Base64URL.encode([0xfb, 0xff]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xfb, 0xff])
        #expect(Base64URL.decode("") == [])
        for bad in ["-_8=", "+/8", "-_8 ", "a", "-_9", "ab=c", "é"] { #expect(Base64URL.decode(bad) == nil, "\(bad)") }
        // Every length 0…99 against Foundation's base64 (alphabet swapped, padding dropped).
        var rng = SystemRandomNumberGenerator()
        for length in 0..<100 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let foundation = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(bytes) == foundation)
            #expect(Base64URL.decode(foundation) == bytes)
        }
    }

    private func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }
}
