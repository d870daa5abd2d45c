import Crypto
import Foundation

/// Signed views (Ed25519): the controller signs every view it ships (NATS envelope and `GET /api/agent/view`);
/// an agent accepts a view only when it is signed by the key it pinned at enrollment, or by a new key that the
/// pinned key endorsed (key rotation; the agent then pins the new key). No I/O here.
///
/// What is signed — a fixed byte string, UTF-8, fields separated by `\n`, no trailing newline:
///
///     routeplane-view-signature-v1\n<tenant>\n<peer>\n<version>\n<true|false>\n<digest>
///
/// `<version>` is the view version in decimal (no sign, no leading zeros), `<true|false>` the removed flag and
/// `<digest>` the SHA-256 of the view's canonical JSON in 64 lowercase hex digits, so the signature covers the
/// view bytes through the digest (the envelope decoder checks digest against bytes). Tenant and peer ids are
/// subject tokens (`[A-Za-z0-9_-]`), so no field can contain the separator; the verifier refuses other ids.
/// `created_at` is not signed (it only feeds latency figures).
///
/// Key rotation — the old key signs the new one:
///
///     routeplane-view-key-endorsement-v1\n<new key>
///
/// Keys travel as base64url without padding of the 32 raw public-key bytes; that string is also the key id.
/// Signatures are base64url without padding of the 64 signature bytes.
public struct ViewSignature: Sendable, Equatable {
    /// The signer's public key (base64url, 32 bytes).
    public var key: String
    /// Ed25519 signature by `key` over `ViewSignature.signedBytes(…)` (base64url, 64 bytes).
    public var signature: String
    /// The previous key's endorsement of `key`, while a rotation is under way.
    public var endorsement: ViewKeyEndorsement?

    public init(key: String, signature: String, endorsement: ViewKeyEndorsement? = nil) {
        self.key = key
        self.signature = signature
        self.endorsement = endorsement
    }

    public static let viewDomain = "routeplane-view-signature-v1"
    public static let endorsementDomain = "routeplane-view-key-endorsement-v1"

    /// The bytes a view signature covers (see the type's documentation).
    public static func signedBytes(tenant: String, peer: String, version: Int64, removed: Bool, digest: String) -> [UInt8] {
        Array("\(viewDomain)\n\(tenant)\n\(peer)\n\(version)\n\(removed ? "true" : "false")\n\(digest)".utf8)
    }

    /// The bytes an endorsement of `newKey` covers.
    public static func endorsementBytes(newKey: String) -> [UInt8] {
        Array("\(endorsementDomain)\n\(newKey)".utf8)
    }
}

/// `{"key": <new public key>, "signature": <the old key's signature over "routeplane-view-key-endorsement-v1\n<new key>">}`.
public struct ViewKeyEndorsement: Sendable, Equatable {
    /// The endorsed (new) public key.
    public var key: String
    /// The endorsing (old) key's signature, base64url.
    public var signature: String

    public init(key: String, signature: String) {
        self.key = key
        self.signature = signature
    }
}

/// Why a view's signature was not accepted. `reason` is a short stable code for counters and logs.
public enum ViewSignatureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No signature at all (envelope version 1, an HTTP answer without `signature`).
    case unsigned
    /// The agent has no pinned key (enrolled before views were signed).
    case noPinnedKey
    /// Tenant or peer is not a subject token, or the key or signature is not base64url of the right length.
    case malformed(String)
    /// Signed by a key that is neither the pinned one nor endorsed by it.
    case unknownKey(String)
    /// An endorsement that does not name the signing key or is not signed by the pinned key.
    case badEndorsement(String)
    /// The signature does not verify under its key for these tenant, peer, version, removed flag and digest.
    case badSignature

    public var reason: String {
        switch self {
        case .unsigned: "unsigned"
        case .noPinnedKey: "no_pinned_key"
        case .malformed: "malformed_signature"
        case .unknownKey: "unknown_key"
        case .badEndorsement: "bad_endorsement"
        case .badSignature: "bad_signature"
        }
    }

    public var description: String {
        switch self {
        case .unsigned: "the view is not signed"
        case .noPinnedKey: "no view signing key is pinned (identity from before signed views): re-enroll the agent"
        case let .malformed(why): "malformed view signature: \(why)"
        case let .unknownKey(key): "the view is signed by key \(key), which is not the pinned key and carries no endorsement by it"
        case let .badEndorsement(why): "the view's key endorsement is not valid: \(why)"
        case .badSignature: "the view's signature does not verify (tenant, peer, version, removed flag or digest differ from what was signed)"
        }
    }
}

/// The controller's view signing key: a 32-byte Ed25519 seed, and optionally the previous key's endorsement of it.
/// Also derives the key of the relay's message ids (HMAC), so ids cannot be predicted without the seed.
public struct ViewSigner: Sendable {
    /// The public key, base64url (the key id agents pin).
    public let publicKey: String
    /// The previous key's endorsement of `publicKey`, shipped with every view while agents may still pin the old key.
    public let endorsement: ViewKeyEndorsement?
    private let key: SigningKey
    /// HKDF-SHA256 of the seed (info `routeplane-view-message-id-v1`): the HMAC key of message ids.
    private let messageIDKey: [UInt8]

    /// Why `@unchecked Sendable` is safe: the wrapped key is immutable after `init` (a `let`); swift-crypto's
    /// `Curve25519.Signing.PrivateKey` is a value over a copy-on-write byte buffer that signing only reads
    /// (BoringSSL's `ED25519_sign` takes a const key), so concurrent signers never write shared memory.
    private struct SigningKey: @unchecked Sendable {
        let privateKey: Curve25519.Signing.PrivateKey
    }

    /// A signer from a raw 32-byte seed; an endorsement must name this signer's public key.
    public init(seed: [UInt8], endorsement: ViewKeyEndorsement? = nil) throws(ViewSignatureError) {
        guard seed.count == 32, let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw .malformed("a view signing seed is 32 bytes, got \(seed.count)")
        }
        let publicKey = Base64URL.encode(Array(privateKey.publicKey.rawRepresentation))
        if let endorsement, endorsement.key != publicKey {
            throw .badEndorsement("the endorsement names key \(endorsement.key), not this signer's \(publicKey)")
        }
        self.key = SigningKey(privateKey: privateKey)
        self.publicKey = publicKey
        self.endorsement = endorsement
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: seed), info: Array("routeplane-view-message-id-v1".utf8),
                                             outputByteCount: 32)
        self.messageIDKey = derived.withUnsafeBytes { Array($0) }
    }

    /// A signer from a base64url seed (e.g. a key file's content).
    public init(seedBase64URL: String, endorsement: ViewKeyEndorsement? = nil) throws(ViewSignatureError) {
        guard let seed = Base64URL.decode(seedBase64URL) else { throw .malformed("the view signing seed is not base64url") }
        try self.init(seed: seed, endorsement: endorsement)
    }

    /// A fresh random key (kept only in memory: agents enrolled with it must re-enroll after a restart).
    public static func ephemeral() -> ViewSigner {
        let seed = Array(Curve25519.Signing.PrivateKey().rawRepresentation)
        // A freshly generated seed has 32 bytes: this cannot throw.
        return try! ViewSigner(seed: seed)
    }

    /// The seed, base64url (for writing a key file).
    public var seedBase64URL: String { Base64URL.encode(Array(key.privateKey.rawRepresentation)) }

    /// Signs one view.
    public func sign(tenant: String, peer: String, version: Int64, removed: Bool, digest: String) -> ViewSignature {
        let bytes = ViewSignature.signedBytes(tenant: tenant, peer: peer, version: version, removed: removed, digest: digest)
        return ViewSignature(key: publicKey, signature: Base64URL.encode(rawSignature(bytes)), endorsement: endorsement)
    }

    /// This key's endorsement of `newKey` (the old signer endorses the new one).
    public func endorse(_ newKey: String) -> ViewKeyEndorsement {
        ViewKeyEndorsement(key: newKey, signature: Base64URL.encode(rawSignature(ViewSignature.endorsementBytes(newKey: newKey))))
    }

    /// `next`, carrying this key's endorsement: the signer to use after rotating from this key to `next`'s.
    public func rotated(to next: ViewSigner) -> ViewSigner {
        // The endorsement names next's own key: this cannot throw.
        try! ViewSigner(seed: Array(next.key.privateKey.rawRepresentation), endorsement: endorse(next.publicKey))
    }

    /// `Nats-Msg-Id` of one view: `<tenant>:<peer>:<version>:<16 hex>`, the hex being the first 8 bytes of
    /// HMAC-SHA256(message-id key, `tenant|peer|version|digest`). Same row, same seed → same id (JetStream's duplicate
    /// window still drops a republished row); without the seed nobody can predict the id of a coming version (and so
    /// cannot publish first under it to get the real message dropped as a duplicate).
    public func messageID(tenant: String, peer: String, version: Int64, digest: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(tenant)|\(peer)|\(version)|\(digest)".utf8), using: SymmetricKey(data: messageIDKey))
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for b in Array(mac).prefix(8) {
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0xf)])
        }
        return "\(tenant):\(peer):\(version):\(String(decoding: out, as: UTF8.self))"
    }

    private func rawSignature(_ bytes: [UInt8]) -> [UInt8] {
        // BoringSSL's ED25519_sign cannot fail for a well-formed key (swift-crypto only throws if it returned 0).
        Array(try! key.privateKey.signature(for: bytes))
    }
}

/// The agent's side: the pinned public key, and the pure check of a view's signature.
public struct ViewVerifier: Sendable, Equatable {
    /// The pinned public key (base64url).
    public let pinnedKey: String

    public init(pinnedKey: String) throws(ViewSignatureError) {
        guard Self.publicKey(pinnedKey) != nil else { throw .malformed("pinned key \(pinnedKey.debugDescription) is not a base64url Ed25519 public key") }
        self.pinnedKey = pinnedKey
    }

    /// Checks a view's signature. Accepted: signed by the pinned key; or by a new key whose endorsement is signed by
    /// the pinned key. Returns the verifier for the next views: `self`, or one pinning the new key after a rotation.
    public func verify(tenant: String, peer: String, version: Int64, removed: Bool, digest: String,
                       signature: ViewSignature?) throws(ViewSignatureError) -> ViewVerifier {
        guard let signature else { throw .unsigned }
        guard ViewSubjects.isValidToken(tenant), ViewSubjects.isValidToken(peer) else { throw .malformed("tenant or peer id is not a subject token") }
        guard let signer = Self.publicKey(signature.key) else { throw .malformed("key \(signature.key.debugDescription) is not a base64url Ed25519 public key") }
        guard let raw = Base64URL.decode(signature.signature), raw.count == 64 else { throw .malformed("signature is not base64url of 64 bytes") }
        let bytes = ViewSignature.signedBytes(tenant: tenant, peer: peer, version: version, removed: removed, digest: digest)
        if signature.key == pinnedKey {
            guard signer.isValidSignature(raw, for: bytes) else { throw .badSignature }
            return self
        }
        guard let endorsement = signature.endorsement else { throw .unknownKey(signature.key) }
        guard endorsement.key == signature.key else { throw .badEndorsement("it endorses \(endorsement.key), the view is signed by \(signature.key)") }
        guard let endorsementRaw = Base64URL.decode(endorsement.signature), endorsementRaw.count == 64,
              let pinned = Self.publicKey(pinnedKey),
              pinned.isValidSignature(endorsementRaw, for: ViewSignature.endorsementBytes(newKey: endorsement.key)) else {
            throw .badEndorsement("it is not signed by the pinned key \(pinnedKey)")
        }
        guard signer.isValidSignature(raw, for: bytes) else { throw .badSignature }
        return ViewVerifier(checkedKey: signature.key)
    }

    /// Checks an envelope (its digest was checked against its bytes by the decoder).
    public func verify(_ envelope: ViewEnvelope) throws(ViewSignatureError) -> ViewVerifier {
        try verify(tenant: envelope.tenant, peer: envelope.peer, version: envelope.version, removed: envelope.removed,
                   digest: envelope.digest, signature: envelope.signature)
    }

    private init(checkedKey: String) { pinnedKey = checkedKey }

    static func publicKey(_ text: String) -> Curve25519.Signing.PublicKey? {
        guard let raw = Base64URL.decode(text), raw.count == 32 else { return nil }
        return try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
    }
}

/// Base64url without padding (RFC 4648 §5), strict: only the URL-safe alphabet, no padding, no whitespace, and
/// the canonical form only (unused low bits zero), so one byte string has exactly one text (key ids compare as text).
public enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    /// Byte → 6-bit value, 0xff for bytes outside the alphabet.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        switch bytes.count - i {
        case 1:
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        case 2:
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        default:
            break
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in utf8 {
            let v = values[Int(c)]
            guard v != 0xff else { return nil }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Canonical: the bits left over (2 or 4) must be zero.
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
