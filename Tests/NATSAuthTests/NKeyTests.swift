import Foundation
@testable import NATSAuth
import Testing

/// nkeys against published vectors (NATS documentation, nats.c/nats.go/nats.dart tests) and our own round trips.
@Suite struct NKeyTests {
    // The NATS documentation's nkey user (nkey_auth.md), used by several client libraries' tests.
    static let docSeed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
    static let docPublicKey = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"

    @Test func publishedSeedGivesPublishedPublicKey() throws {
        let key = try NKeyPair(seed: Self.docSeed)
        #expect(key.type == .user)
        #expect(key.publicKey == Self.docPublicKey)
        #expect(key.seed == Self.docSeed)
        // Trailing newline, as in a seed file.
        #expect(try NKeyPair(seed: Self.docSeed + "\n").publicKey == Self.docPublicKey)
    }

    @Test func credsFileSeedOfTheDocumentationMatchesItsJWTSubject() throws {
        // The documentation's example .creds: the seed belongs to the JWT's subject.
        #expect(try NKeyPair(seed: "SUAOY5JZ2WJKVR4UO2KJ2P3SW6FZFNWEOIMAXF4WZEUNVQXXUOKGM55CYE").publicKey
            == "UDXB2VMLXPASAJ7ZDTKYNQ7QOCFWSGB4FOMYQQ25HQWSAF7ZQJEBSQSW")
    }

    @Test func publishedNonceSignatureVerifiesAndIsReproduced() throws {
        // nats.dart nkeys test: the signature of nonce "DhXdTMAeiHhLDig" by the documentation's seed (Ed25519 is deterministic).
        let signature = Array(Data(base64Encoded: "WosANJXgeyxerXFo0twRiMG+/ZjYp1K/46bFeFax705yFTCTjM18jWl01gGYk4KKbadiHd+hP3WgUQ2iLZUAAA==")!)
        let nonce = Array("DhXdTMAeiHhLDig".utf8)
        #expect(NKey.verify(signature: signature, of: nonce, publicKey: Self.docPublicKey))
        #expect(try NKeyPair(seed: Self.docSeed).sign(nonce) == signature)
        #expect(!NKey.verify(signature: signature, of: Array("DhXdTMAeiHhLDiG".utf8), publicKey: Self.docPublicKey))
    }

    @Test func decodesPublishedPublicKeys() throws {
        let user = try NKey.decodePublicKey(Self.docPublicKey)
        #expect(user.type == .user && user.raw.count == 32)
        #expect(try NKey.decodePublicKey("ABVSBM3U45DGYEUECKXQS7BENHWG7KFQUDRTEHAJASORPVWBZ4HOIKCH").type == .account)
        #expect(try NKeyPair(type: .user, rawSeed: Array(repeating: 7, count: 32)).publicKeyBytes.count == 32)
        #expect(user.raw == (try NKeyPair(seed: Self.docSeed)).publicKeyBytes)
    }

    @Test(arguments: [NKeyType.operator, .account, .user, .server, .cluster])
    func generatedKeysRoundTrip(type: NKeyType) throws {
        let key = NKeyPair.generate(type)
        #expect(key.publicKey.count == 56 && key.publicKey.first == type.letter)
        #expect(key.seed.count == 58 && key.seed.hasPrefix("S\(type.letter)"))
        let again = try NKeyPair(seed: key.seed)
        #expect(again.type == type && again.publicKey == key.publicKey)
        let decoded = try NKey.decodePublicKey(key.publicKey)
        #expect(decoded.type == type && decoded.raw == key.publicKeyBytes)
        let data = Array("hello".utf8)
        let signature = key.sign(data)
        #expect(signature.count == 64)
        #expect(NKey.verify(signature: signature, of: data, publicKey: key.publicKey))
        #expect(!NKey.verify(signature: signature, of: data, publicKey: NKeyPair.generate(type).publicKey))
    }

    @Test func rawSeedGivesTheSameKeyAsItsEncoding() throws {
        let raw = (0..<32).map { UInt8($0) }
        let key = try NKeyPair(type: .account, rawSeed: raw)
        #expect(try NKeyPair(seed: key.seed).publicKey == key.publicKey)
        #expect(throws: NKeyError.invalidRawSeedLength(31)) { try NKeyPair(type: .account, rawSeed: Array(raw.dropLast())) }
    }

    @Test func checksumFailuresAreRefused() {
        // The last two characters changed (nkeys' own TestBadDecode does the same).
        var bad = Array(Self.docPublicKey)
        bad[bad.count - 1] = "A"
        bad[bad.count - 2] = "A"
        #expect {
            try NKey.decodePublicKey(String(bad))
        } throws: { error in
            guard case NKeyError.checksumMismatch = error else { return false }
            return "\(error)".contains("checksum mismatch")
        }
        var badSeed = Array(Self.docSeed)
        badSeed[10] = badSeed[10] == "A" ? "B" : "A"
        #expect {
            try NKeyPair(seed: String(badSeed))
        } throws: { error in
            if case NKeyError.checksumMismatch = error { return true }
            return false
        }
        #expect(!NKey.verify(signature: Array(repeating: 0, count: 64), of: [], publicKey: String(bad)))
    }

    @Test func wrongPrefixesAndShapesAreRefusedClearly() throws {
        // A seed where a public key belongs, and the other way round.
        #expect(throws: NKeyError.self) { try NKey.decodePublicKey(Self.docSeed) }
        #expect(throws: NKeyError.notASeed) { try NKeyPair(seed: Self.docPublicKey) }
        #expect(throws: NKeyError.wrongType(expected: .account, actual: .user)) {
            try NKey.decodePublicKey(Self.docPublicKey, expecting: .account)
        }
        #expect(throws: NKeyError.invalidCharacter("1", position: 0)) { try NKey.decodePublicKey("1" + Self.docPublicKey.dropFirst()) }
        #expect(throws: NKeyError.empty) { try NKeyPair(seed: " \n") }
        #expect(throws: NKeyError.invalidLength(kind: "public key", expected: 35, actual: 3)) { try NKey.decodePublicKey("UDXU4") }
        #expect("\(NKeyError.wrongType(expected: .account, actual: .user))" == "expected an nkey of type account (A…), got user (U…)")
        // A valid encoding (right CRC) of a prefix byte that is no key type: the private-key prefix "P" (15 << 3).
        let seedBytes = Array(repeating: UInt8(1), count: 32)
        let privateKeyText = try #require(encodeForTest(prefix: 15 << 3, payload: seedBytes))
        #expect(throws: NKeyError.unknownPrefix(15 << 3)) { try NKey.decodePublicKey(privateKeyText) }
    }

    @Test func base32RoundTripAndPadding() throws {
        // RFC 4648 test vectors, without padding.
        let vectors = ["": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ", "fooba": "MZXW6YTB", "foobar": "MZXW6YTBOI"]
        for (plain, encoded) in vectors {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            #expect(try Base32.decode(encoded) == Array(plain.utf8))
        }
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            #expect(try Base32.decode(Base32.encode(bytes)) == bytes)
        }
    }

    @Test func crc16IsXmodem() {
        // CRC-16/XMODEM check value.
        #expect(CRC16.checksum(Array("123456789".utf8)) == 0x31C3)
    }

    private func encodeForTest(prefix: UInt8, payload: [UInt8]) -> String? {
        var raw = [prefix] + payload
        let crc = CRC16.checksum(raw)
        raw += [UInt8(crc & 0xFF), UInt8(crc >> 8)]
        return Base32.encode(raw)
    }
}
