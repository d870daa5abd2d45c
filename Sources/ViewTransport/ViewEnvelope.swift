import JSONKit
import NATSClient

/// The message a relay publishes for one outbox row and an agent receives: a versioned JSON envelope
/// around the view's canonical JSON, which is carried byte for byte as the outbox row holds it, so the
/// agent can check the SHA-256 digest against exactly the bytes the controller hashed.
///
///     {"envelope":2,"tenant":"t1","peer":"p1","version":42,"removed":false,
///      "digest":"<64 hex>","created_at":1732590000123,"key":"<base64url>","signature":"<base64url>",
///      "endorsement":{"key":"<base64url>","signature":"<base64url>"},"view":{…canonical view JSON…}}
///
/// `created_at` is the outbox row's creation time in Unix milliseconds (for propagation latency).
/// `key` and `signature` are the controller's Ed25519 signature (see `ViewSignature`) over tenant, peer, version,
/// removed flag and digest; `endorsement` (optional) is the previous key's endorsement of `key` during a rotation.
/// Decoding is strict: one JSON object, every field exactly once, no unknown field, no trailing bytes,
/// `envelope` must be 2 (version 1, unsigned, is refused as `.unsigned`), and the digest must match the view
/// bytes. Decoding does not check the signature: `ViewVerifier.verify(_:)` does, with the agent's pinned key.
public struct ViewEnvelope: Sendable, Equatable {
    public static let currentVersion = 2

    public var tenant: String
    public var peer: String
    /// The view's version (tenant sequence of the event that last changed it); agents apply only newer ones.
    public var version: Int64
    /// SHA-256 (lowercase hex) of `view`.
    public var digest: String
    /// The peer was removed: `view` is its empty view; the agent clears every route it installed.
    public var removed: Bool
    /// When the outbox row was written, Unix milliseconds.
    public var createdAtMillis: Int64
    /// The view's canonical JSON, unchanged.
    public var view: [UInt8]
    /// Key, signature and endorsement (not checked by `decode`).
    public var signature: ViewSignature

    /// An envelope for a view whose digest and signature are already known.
    public init(tenant: String, peer: String, version: Int64, digest: String, removed: Bool, createdAtMillis: Int64, view: [UInt8],
                signature: ViewSignature) {
        self.tenant = tenant
        self.peer = peer
        self.version = version
        self.digest = digest
        self.removed = removed
        self.createdAtMillis = createdAtMillis
        self.view = view
        self.signature = signature
    }

    /// An envelope for a view whose digest is already known (the outbox row's), signed by `signer`.
    public init(tenant: String, peer: String, version: Int64, digest: String, removed: Bool, createdAtMillis: Int64, view: [UInt8],
                signedBy signer: ViewSigner) {
        self.init(tenant: tenant, peer: peer, version: version, digest: digest, removed: removed, createdAtMillis: createdAtMillis, view: view,
                  signature: signer.sign(tenant: tenant, peer: peer, version: version, removed: removed, digest: digest))
    }

    /// An envelope whose digest is computed from `view`, signed by `signer`.
    public init(tenant: String, peer: String, version: Int64, removed: Bool, createdAtMillis: Int64, view: [UInt8], signedBy signer: ViewSigner) {
        self.init(tenant: tenant, peer: peer, version: version, digest: SHA256Digest.hex(view), removed: removed,
                  createdAtMillis: createdAtMillis, view: view, signedBy: signer)
    }

    public var subject: String { get throws(NATSError) { try ViewSubjects.subject(tenant: tenant, peer: peer) } }
    /// `Nats-Msg-Id` of this view as `signer`'s relay publishes it.
    public func messageID(using signer: ViewSigner) -> String {
        ViewSubjects.messageID(tenant: tenant, peer: peer, version: version, digest: digest, signer: signer)
    }

    /// The envelope's bytes. `view` is spliced in unchanged (it must be one JSON value, as the outbox holds).
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(view.count + tenant.utf8.count + peer.utf8.count + 480)
        out += Array(#"{"envelope":"#.utf8) + Array(String(Self.currentVersion).utf8)
        out += Array(#","tenant":"#.utf8); JSONString.append(tenant, to: &out)
        out += Array(#","peer":"#.utf8); JSONString.append(peer, to: &out)
        out += Array(#","version":"#.utf8) + Array(String(version).utf8)
        out += Array(#","removed":"#.utf8) + Array((removed ? "true" : "false").utf8)
        out += Array(#","digest":"#.utf8); JSONString.append(digest, to: &out)
        out += Array(#","created_at":"#.utf8) + Array(String(createdAtMillis).utf8)
        out += Array(#","key":"#.utf8); JSONString.append(signature.key, to: &out)
        out += Array(#","signature":"#.utf8); JSONString.append(signature.signature, to: &out)
        if let endorsement = signature.endorsement {
            out += Array(#","endorsement":{"key":"#.utf8); JSONString.append(endorsement.key, to: &out)
            out += Array(#","signature":"#.utf8); JSONString.append(endorsement.signature, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out += Array(#","view":"#.utf8) + view
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Decodes and checks an envelope. With `tenant`/`peer` given, a message for anyone else is rejected too
    /// (an agent passes its own identity).
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, expectedTenant: String? = nil, expectedPeer: String? = nil) throws(ViewEnvelopeError) -> ViewEnvelope {
        let data = Array(bytes)
        let fields: [(key: String, value: Range<Int>)]
        do {
            fields = try JSONReader.members(of: data, maxDepth: maxDepth)
        } catch {
            throw .unparseable(error.description)
        }
        var byKey: [String: Range<Int>] = [:]
        for field in fields {
            guard byKey.updateValue(field.value, forKey: field.key) == nil else { throw .unparseable("field \"\(field.key)\" appears twice") }
        }
        // The envelope version first: a newer envelope may legitimately have other fields.
        guard let versionRange = byKey["envelope"] else { throw .unparseable("no \"envelope\" field") }
        guard let envelopeVersion = Self.integer(data[versionRange]) else { throw .unparseable("\"envelope\" is not an integer") }
        guard envelopeVersion != 1 else { throw .unsigned }
        guard envelopeVersion == Int64(currentVersion) else { throw .unsupportedEnvelopeVersion(Int(clamping: envelopeVersion)) }
        let known: Set<String> = ["envelope", "tenant", "peer", "version", "removed", "digest", "created_at", "key", "signature", "endorsement", "view"]
        if let unknown = byKey.keys.filter({ !known.contains($0) }).sorted().first { throw .unparseable("unknown field \"\(unknown)\"") }
        func required(_ key: String) throws(ViewEnvelopeError) -> ArraySlice<UInt8> {
            guard let range = byKey[key] else { throw .unparseable("no \"\(key)\" field") }
            return data[range]
        }
        func string(_ key: String) throws(ViewEnvelopeError) -> String {
            guard let s = Self.string(try required(key)) else { throw .unparseable("\"\(key)\" is not a string") }
            return s
        }
        func integer(_ key: String) throws(ViewEnvelopeError) -> Int64 {
            guard let i = Self.integer(try required(key)) else { throw .unparseable("\"\(key)\" is not an integer") }
            return i
        }
        let tenant = try string("tenant"), peer = try string("peer"), digest = try string("digest")
        let version = try integer("version"), createdAt = try integer("created_at")
        let removedText = try required("removed")
        guard removedText.elementsEqual("true".utf8) || removedText.elementsEqual("false".utf8) else { throw .unparseable("\"removed\" is not a boolean") }
        let view = Array(try required("view"))
        guard view.first == UInt8(ascii: "{") else { throw .unparseable("\"view\" is not an object") }
        guard !tenant.isEmpty, !peer.isEmpty else { throw .unparseable("empty tenant or peer") }
        guard version >= 1 else { throw .unparseable("version \(version) is not positive") }
        guard digest.utf8.count == 64, digest.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw .unparseable("\"digest\" is not 64 lowercase hex digits")
        }
        let key = try string("key"), signatureText = try string("signature")
        guard !key.isEmpty, !signatureText.isEmpty else { throw .unparseable("empty key or signature") }
        var endorsement: ViewKeyEndorsement?
        if let range = byKey["endorsement"] {
            endorsement = try decodeEndorsement(data[range])
        }
        let actual = SHA256Digest.hex(view)
        guard actual == digest else { throw .digestMismatch(expected: digest, actual: actual) }
        if let expectedTenant, expectedTenant != tenant { throw .wrongRecipient(tenant: tenant, peer: peer) }
        if let expectedPeer, expectedPeer != peer { throw .wrongRecipient(tenant: tenant, peer: peer) }
        return ViewEnvelope(tenant: tenant, peer: peer, version: version, digest: digest, removed: removedText.first == UInt8(ascii: "t"),
                            createdAtMillis: createdAt, view: view,
                            signature: ViewSignature(key: key, signature: signatureText, endorsement: endorsement))
    }

    /// `{"key": "…", "signature": "…"}`, both fields exactly once, nothing else.
    static func decodeEndorsement(_ bytes: ArraySlice<UInt8>) throws(ViewEnvelopeError) -> ViewKeyEndorsement {
        let data = Array(bytes)
        let fields: [(key: String, value: Range<Int>)]
        do {
            fields = try JSONReader.members(of: data, maxDepth: maxDepth)
        } catch {
            throw .unparseable("\"endorsement\" is not an object: \(error.description)")
        }
        var values: [String: String] = [:]
        for field in fields {
            guard field.key == "key" || field.key == "signature" else { throw .unparseable("unknown field \"endorsement.\(field.key)\"") }
            guard let value = string(data[field.value]), !value.isEmpty else {
                throw .unparseable("\"endorsement.\(field.key)\" is not a non-empty string")
            }
            guard values.updateValue(value, forKey: field.key) == nil else { throw .unparseable("field \"endorsement.\(field.key)\" appears twice") }
        }
        guard let key = values["key"], let signature = values["signature"] else { throw .unparseable("\"endorsement\" needs \"key\" and \"signature\"") }
        return ViewKeyEndorsement(key: key, signature: signature)
    }
}

/// Why a received message was not accepted as a view. The agent logs it and keeps its current routes.
public enum ViewEnvelopeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a well-formed envelope (not JSON, missing / duplicate / unknown / mistyped field).
    case unparseable(String)
    /// An envelope version this code does not understand (a newer controller).
    case unsupportedEnvelopeVersion(Int)
    /// Envelope version 1: no signature. Agents refuse it.
    case unsigned
    /// The view bytes do not hash to the digest the envelope claims: tampered or corrupted.
    case digestMismatch(expected: String, actual: String)
    /// A well-formed view for another tenant or peer.
    case wrongRecipient(tenant: String, peer: String)

    public var description: String {
        switch self {
        case let .unparseable(why): "unparseable view message: \(why)"
        case let .unsupportedEnvelopeVersion(v): "view message has envelope version \(v); this build understands \(ViewEnvelope.currentVersion)"
        case let .digestMismatch(expected, actual): "view message digest mismatch: envelope says \(expected), view hashes to \(actual)"
        case let .wrongRecipient(tenant, peer): "view message is for tenant \(tenant) peer \(peer), not for this agent"
        case .unsigned: "view message is unsigned (envelope version 1)"
        }
    }

    /// A short stable code (the agent counts rejections by it).
    public var reason: String {
        switch self {
        case .unparseable: "unparseable"
        case .unsupportedEnvelopeVersion: "unsupported_envelope"
        case .digestMismatch: "digest_mismatch"
        case .wrongRecipient: "wrong_recipient"
        case .unsigned: "unsigned"
        }
    }
}

/// The envelope's JSON values, read with JSONKit's reader.
extension ViewEnvelope {
    /// The envelope's nesting limit: 256 levels below the envelope object (as it always was).
    static let maxDepth = 257

    /// The value of a string token (escapes resolved, UTF-8 validated); nil if it is not one.
    static func string(_ token: ArraySlice<UInt8>) -> String? {
        try? JSONReader.read(token) { (r: inout JSONReader) throws(JSONReadError) in try r.readString() }
    }

    /// The value of an integer token (no fraction, no exponent); nil otherwise.
    static func integer(_ token: ArraySlice<UInt8>) -> Int64? {
        try? JSONReader.read(token) { (r: inout JSONReader) throws(JSONReadError) in Int64(try r.readIntegerLiteral()) }
    }
}
