import Crypto

/// What an nkey identifies; its first letter when encoded (`O`, `A`, `U`, `N`, `C`).
public enum NKeyType: Sendable, Equatable, CaseIterable {
    case `operator`, account, user, server, cluster

    /// The first byte of an encoded public key (its top 5 bits give the first base32 letter).
    var prefixByte: UInt8 {
        switch self {
        case .operator: 14 << 3  // "O"
        case .account: 0         // "A"
        case .user: 20 << 3      // "U"
        case .server: 13 << 3    // "N"
        case .cluster: 2 << 3    // "C"
        }
    }

    init?(prefixByte: UInt8) {
        guard let type = NKeyType.allCases.first(where: { $0.prefixByte == prefixByte }) else { return nil }
        self = type
    }

    /// The letter public keys of this type start with.
    public var letter: Character {
        switch self {
        case .operator: "O"
        case .account: "A"
        case .user: "U"
        case .server: "N"
        case .cluster: "C"
        }
    }
}

/// Why an nkey (public key or seed) was refused.
public enum NKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    /// A character outside base32's `A–Z2–7` (nkeys are upper case).
    case invalidCharacter(String, position: Int)
    /// Decoded to the wrong number of bytes (a public key is 35, a seed 36).
    case invalidLength(kind: String, expected: Int, actual: Int)
    /// The CRC16 at the end does not match: a typo or a truncated/altered key.
    case checksumMismatch(kind: String, stored: UInt16, computed: UInt16)
    /// A public key whose prefix byte is not operator, account, user, server or cluster (e.g. a seed given as a public key).
    case unknownPrefix(UInt8)
    /// A key of another type than the one expected (e.g. an account key where a user key belongs).
    case wrongType(expected: NKeyType, actual: NKeyType)
    /// Text given as a seed that does not start with the seed prefix "S".
    case notASeed
    /// A raw Ed25519 seed must be 32 bytes.
    case invalidRawSeedLength(Int)

    public var description: String {
        switch self {
        case .empty:
            "empty nkey"
        case let .invalidCharacter(character, position):
            "not an nkey: '\(character)' at position \(position) is not a base32 character (A-Z, 2-7)"
        case let .invalidLength(kind, expected, actual):
            "not a valid nkey \(kind): it decodes to \(actual) bytes, expected \(expected)"
        case let .checksumMismatch(kind, stored, computed):
            "nkey \(kind) checksum mismatch (stored CRC16 \(hex(stored)), computed \(hex(computed))): the key is mistyped or altered"
        case let .unknownPrefix(byte):
            "not an nkey public key: prefix byte \(byte) is not operator (O), account (A), user (U), server (N) or cluster (C)"
        case let .wrongType(expected, actual):
            "expected an nkey of type \(expected) (\(expected.letter)…), got \(actual) (\(actual.letter)…)"
        case .notASeed:
            "not an nkey seed: a seed starts with 'S' (e.g. SU…, SA…, SO…)"
        case let .invalidRawSeedLength(count):
            "an Ed25519 seed is 32 bytes, got \(count)"
        }
    }

    private func hex(_ value: UInt16) -> String { "0x" + String(value, radix: 16, uppercase: true) }
}

/// An nkey pair: an Ed25519 key (from its 32-byte seed) of one `NKeyType`.
///
/// Only the seed bytes are stored (the Crypto key types are not declared Sendable); the signing key is rebuilt per
/// signature, which costs one scalar multiplication.
public struct NKeyPair: Sendable {
    public let type: NKeyType
    private let rawSeed: [UInt8]
    private let rawPublicKey: [UInt8]

    static let seedPrefixByte: UInt8 = 18 << 3  // "S"

    /// A new key pair from the system's CSPRNG.
    public static func generate(_ type: NKeyType) -> NKeyPair {
        let key = Curve25519.Signing.PrivateKey()
        // A freshly generated key's raw representation is its 32-byte seed: this cannot fail.
        return try! NKeyPair(type: type, rawSeed: Array(key.rawRepresentation))
    }

    /// From a 32-byte Ed25519 seed.
    public init(type: NKeyType, rawSeed: [UInt8]) throws(NKeyError) {
        guard rawSeed.count == 32 else { throw .invalidRawSeedLength(rawSeed.count) }
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: rawSeed) else {
            throw .invalidRawSeedLength(rawSeed.count)
        }
        self.type = type
        self.rawSeed = rawSeed
        self.rawPublicKey = Array(key.publicKey.rawRepresentation)
    }

    /// From an encoded seed ("SU…", "SA…", "SO…", "SN…", "SC…"); surrounding whitespace and newlines are ignored.
    public init(seed: String) throws(NKeyError) {
        let text = NKey.trimmed(seed)
        guard !text.isEmpty else { throw .empty }
        guard text.first == "S" else { throw .notASeed }
        let raw = try Base32.decode(text)
        guard raw.count == 36 else { throw .invalidLength(kind: "seed", expected: 36, actual: raw.count) }
        try NKey.checkCRC(raw, kind: "seed")
        // The seed prefix and the key type's prefix byte share the first two bytes (5 + 5 bits, then 6 zero bits).
        guard raw[0] & 0xF8 == Self.seedPrefixByte else { throw .notASeed }
        let typeByte = (raw[0] & 0x07) << 5 | (raw[1] & 0xF8) >> 3
        guard let type = NKeyType(prefixByte: typeByte) else { throw .unknownPrefix(typeByte) }
        try self.init(type: type, rawSeed: Array(raw[2..<34]))
    }

    /// The encoded public key: base32 of prefix byte + 32-byte Ed25519 public key + CRC16 (little-endian), no padding.
    public var publicKey: String { NKey.encode(prefix: [type.prefixByte], payload: rawPublicKey) }

    /// The raw 32-byte Ed25519 public key.
    public var publicKeyBytes: [UInt8] { rawPublicKey }

    /// The encoded seed ("S" + type letter + …): the secret to store.
    public var seed: String {
        let prefix = type.prefixByte
        return NKey.encode(prefix: [Self.seedPrefixByte | prefix >> 5, (prefix & 31) << 3], payload: rawSeed)
    }

    /// An Ed25519 signature (64 bytes) of `data`.
    public func sign(_ data: [UInt8]) -> [UInt8] {
        // The seed was validated in init.
        let key = try! Curve25519.Signing.PrivateKey(rawRepresentation: rawSeed)
        return Array(try! key.signature(for: data))
    }
}

/// Public-key operations on encoded nkeys.
public enum NKey {
    /// The type and raw 32-byte Ed25519 key of an encoded public key ("O…", "A…", "U…", "N…", "C…").
    public static func decodePublicKey(_ key: String) throws(NKeyError) -> (type: NKeyType, raw: [UInt8]) {
        let text = trimmed(key)
        guard !text.isEmpty else { throw .empty }
        let raw = try Base32.decode(text)
        guard raw.count == 35 else { throw .invalidLength(kind: "public key", expected: 35, actual: raw.count) }
        try checkCRC(raw, kind: "public key")
        guard let type = NKeyType(prefixByte: raw[0]) else { throw .unknownPrefix(raw[0]) }
        return (type, Array(raw[1..<33]))
    }

    /// The raw key of an encoded public key that must be of `type`.
    public static func decodePublicKey(_ key: String, expecting type: NKeyType) throws(NKeyError) -> [UInt8] {
        let decoded = try decodePublicKey(key)
        guard decoded.type == type else { throw .wrongType(expected: type, actual: decoded.type) }
        return decoded.raw
    }

    /// Whether `key` is a valid encoded public key (of `type`, when given).
    public static func isValidPublicKey(_ key: String, type: NKeyType? = nil) -> Bool {
        guard let decoded = try? decodePublicKey(key) else { return false }
        return type == nil || decoded.type == type
    }

    /// Whether `signature` is an Ed25519 signature of `data` by the key `publicKey` (false for a malformed key).
    public static func verify(signature: [UInt8], of data: [UInt8], publicKey: String) -> Bool {
        guard signature.count == 64,
              let raw = try? decodePublicKey(publicKey).raw,
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else { return false }
        return key.isValidSignature(signature, for: data)
    }

    static func encode(prefix: [UInt8], payload: [UInt8]) -> String {
        var raw = prefix + payload
        let crc = CRC16.checksum(raw)
        raw.append(UInt8(crc & 0xFF))
        raw.append(UInt8(crc >> 8))
        return Base32.encode(raw)
    }

    static func checkCRC(_ raw: [UInt8], kind: String) throws(NKeyError) {
        let body = raw.dropLast(2)
        let stored = UInt16(raw[raw.count - 2]) | UInt16(raw[raw.count - 1]) << 8
        let computed = CRC16.checksum(body)
        guard stored == computed else { throw .checksumMismatch(kind: kind, stored: stored, computed: computed) }
    }

    static func trimmed(_ text: String) -> Substring {
        let isSpace: (Character) -> Bool = { $0.isWhitespace || $0.isNewline }
        guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return text[first...last]
    }
}
