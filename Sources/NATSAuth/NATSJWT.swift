import Crypto
import Foundation

/// Publish/subscribe permissions of a user JWT (`nats.pub` / `nats.sub` allow and deny lists).
public struct NATSPermissions: Sendable, Equatable {
    public var publishAllow: [String]
    public var publishDeny: [String]
    public var subscribeAllow: [String]
    public var subscribeDeny: [String]
    /// true: the user may publish to the reply subject of any request it received (`"resp": {"max": 1, "ttl": 0}`).
    public var allowResponses: Bool

    public init(publishAllow: [String] = [], publishDeny: [String] = [], subscribeAllow: [String] = [], subscribeDeny: [String] = [],
                allowResponses: Bool = false) {
        self.publishAllow = publishAllow
        self.publishDeny = publishDeny
        self.subscribeAllow = subscribeAllow
        self.subscribeDeny = subscribeDeny
        self.allowResponses = allowResponses
    }
}

/// Why a JWT was refused by `NATSJWT.decode`.
public enum NATSJWTError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case unsupportedHeader(String)
    case invalidIssuer(String, NKeyError)
    case badSignature(issuer: String)

    public var description: String {
        switch self {
        case let .malformed(reason): "malformed NATS JWT: \(reason)"
        case let .unsupportedHeader(header): "unsupported NATS JWT header \(header) (expected typ JWT, alg ed25519-nkey)"
        case let .invalidIssuer(issuer, error): "NATS JWT issuer '\(issuer)' is not an nkey public key: \(error)"
        case let .badSignature(issuer): "NATS JWT signature does not verify against its issuer \(issuer): altered or signed by another key"
        }
    }
}

/// NATS JWTs (nats-io/jwt v2 claims) for operator mode: operator, account and user claims, signed with nkeys.
///
/// Claims are JSON with sorted keys. `jti` is base32 (no padding) of the SHA-256 of the claims encoded with an empty
/// `jti` (nats-io/jwt uses SHA-512/256, which swift-crypto lacks; servers treat `jti` as an opaque id).
public enum NATSJWT {
    static let header = #"{"typ":"JWT","alg":"ed25519-nkey"}"#

    /// The operator's self-signed JWT: its signing keys and the system account.
    public static func operatorJWT(name: String, operator: NKeyPair, signingKeys: [String], systemAccount: String, issuedAt: Int64) -> String {
        let nats = OperatorClaims(signing_keys: signingKeys.isEmpty ? nil : signingKeys, system_account: systemAccount)
        return sign(Claims(iat: issuedAt, iss: `operator`.publicKey, name: name, sub: `operator`.publicKey, nats: nats), with: `operator`)
    }

    /// An account JWT with unlimited limits (JetStream memory and disk unlimited when `jetStream`, disabled otherwise), its
    /// signing keys and revocations (user public key → unix seconds: users whose JWT `iat` is at or before it are revoked).
    /// `signer` is the operator or one of its signing keys.
    public static func accountJWT(name: String, account: String, signingKeys: [String], revocations: [String: Int64], jetStream: Bool,
                                  issuedAt: Int64, signer: NKeyPair) -> String {
        let nats = AccountClaims(
            limits: .unlimited(jetStream: jetStream),
            signing_keys: signingKeys.isEmpty ? nil : signingKeys,
            revocations: revocations.isEmpty ? nil : revocations)
        return sign(Claims(iat: issuedAt, iss: signer.publicKey, name: name, sub: account, nats: nats), with: signer)
    }

    /// A user JWT. `issuerAccount` is the account's public key when `signer` is one of its signing keys (nil when the
    /// account's own key signs). nil `permissions`: everything allowed.
    public static func userJWT(name: String, user: String, issuerAccount: String?, permissions: NATSPermissions?, issuedAt: Int64,
                               expires: Int64?, signer: NKeyPair) -> String {
        let nats = UserClaims(
            pub: PermissionList(permissions?.publishAllow, permissions?.publishDeny),
            sub: PermissionList(permissions?.subscribeAllow, permissions?.subscribeDeny),
            resp: permissions?.allowResponses == true ? ResponsePermission(max: 1, ttl: 0) : nil,
            issuer_account: issuerAccount)
        return sign(Claims(iat: issuedAt, iss: signer.publicKey, name: name, sub: user, exp: expires, nats: nats), with: signer)
    }

    /// A verified JWT's main claims.
    public struct Decoded: Sendable {
        public var issuer: String
        public var subject: String
        public var issuedAt: Int64
        public var expires: Int64?
        /// "operator", "account", "user", … (`nats.type`, or the top-level `type` of v1 JWTs).
        public var type: String
        /// The claims JSON.
        public var payload: [UInt8]
    }

    /// Decodes `jwt` and verifies its signature against its issuer (`iss`); throws `NATSJWTError` with the reason otherwise.
    /// Does not judge expiry or whether the issuer is trusted: that is the caller's (and the server's) business.
    public static func decode(_ jwt: String) throws -> Decoded {
        let parts = NKey.trimmed(jwt).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw NATSJWTError.malformed("expected 3 dot-separated parts, got \(parts.count)") }
        guard let headerBytes = base64URLDecode(parts[0]) else { throw NATSJWTError.malformed("header is not base64url") }
        guard let payload = base64URLDecode(parts[1]) else { throw NATSJWTError.malformed("claims are not base64url") }
        guard let signature = base64URLDecode(parts[2]) else { throw NATSJWTError.malformed("signature is not base64url") }

        let headerText = String(decoding: headerBytes, as: UTF8.self)
        guard let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
              (header["typ"] as? String)?.uppercased() == "JWT",
              let alg = (header["alg"] as? String)?.lowercased(), alg == "ed25519-nkey" || alg == "ed25519"
        else { throw NATSJWTError.unsupportedHeader(headerText) }

        guard let claims = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else {
            throw NATSJWTError.malformed("claims are not a JSON object")
        }
        guard let issuer = claims["iss"] as? String else { throw NATSJWTError.malformed("no iss claim") }
        guard let subject = claims["sub"] as? String else { throw NATSJWTError.malformed("no sub claim") }
        do {
            _ = try NKey.decodePublicKey(issuer)
        } catch {
            throw NATSJWTError.invalidIssuer(issuer, error)
        }
        let signed = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)
        guard NKey.verify(signature: signature, of: signed, publicKey: issuer) else { throw NATSJWTError.badSignature(issuer: issuer) }

        let nats = claims["nats"] as? [String: Any]
        let type = (nats?["type"] as? String) ?? (claims["type"] as? String) ?? ""
        return Decoded(issuer: issuer, subject: subject, issuedAt: int64(claims["iat"]) ?? 0, expires: int64(claims["exp"]),
                       type: type, payload: payload)
    }

    /// A `.creds` file as nsc writes it: the user JWT and its nkey seed in BEGIN/END blocks (for libnats's
    /// `natsOptions_SetUserCredentialsFromFiles` and the nats CLI).
    public static func credentialsFile(jwt: String, seed: String) -> String {
        """
        -----BEGIN NATS USER JWT-----
        \(NKey.trimmed(jwt))
        ------END NATS USER JWT------

        ************************* IMPORTANT *************************
        NKEY Seed printed below can be used to sign and prove identity.
        NKEYs are sensitive and should be treated as secrets.

        -----BEGIN USER NKEY SEED-----
        \(NKey.trimmed(seed))
        ------END USER NKEY SEED------

        *************************************************************

        """
    }

    // MARK: - Encoding

    static func sign(_ claims: Claims<some Encodable>, with signer: NKeyPair) -> String {
        var claims = claims
        claims.jti = ""
        claims.jti = Base32.encode(SHA256.hash(data: encodeJSON(claims)))
        let signingInput = base64URLEncode(Array(header.utf8)) + "." + base64URLEncode(encodeJSON(claims))
        return signingInput + "." + base64URLEncode(signer.sign(Array(signingInput.utf8)))
    }

    static func encodeJSON(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain structs of strings and integers cannot fail.
        return Array(try! encoder.encode(value))
    }

    static func base64URLEncode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    static func base64URLDecode(_ text: some StringProtocol) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map(Array.init)
    }

    private static func int64(_ value: Any?) -> Int64? {
        switch value {
        case let number as NSNumber: number.int64Value
        default: nil
        }
    }
}

// MARK: - Claims (nats-io/jwt v2 field names)

struct Claims<Nats: Encodable>: Encodable {
    var jti = ""
    var iat: Int64
    var iss: String
    var name: String
    var sub: String
    var exp: Int64? = nil
    var nats: Nats
}

struct OperatorClaims: Encodable {
    var signing_keys: [String]?
    var system_account: String
    var type = "operator"
    var version = 2
}

struct AccountClaims: Encodable {
    var limits: AccountLimits
    var signing_keys: [String]?
    var revocations: [String: Int64]?
    var default_permissions = DefaultPermissions()
    var type = "account"
    var version = 2
}

struct DefaultPermissions: Encodable {
    var pub = PermissionList(nil, nil)
    var sub = PermissionList(nil, nil)
}

/// Account limits; -1 is unlimited. JetStream is enabled for the account when mem_storage or disk_storage is not 0.
struct AccountLimits: Encodable {
    var subs: Int64 = -1
    var data: Int64 = -1
    var payload: Int64 = -1
    var imports: Int64 = -1
    var exports: Int64 = -1
    var wildcards = true
    var conn: Int64 = -1
    var leaf: Int64 = -1
    var mem_storage: Int64
    var disk_storage: Int64
    var streams: Int64
    var consumer: Int64

    static func unlimited(jetStream: Bool) -> AccountLimits {
        jetStream
            ? AccountLimits(mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1)
            : AccountLimits(mem_storage: 0, disk_storage: 0, streams: 0, consumer: 0)
    }
}

struct PermissionList: Encodable {
    var allow: [String]?
    var deny: [String]?

    init(_ allow: [String]?, _ deny: [String]?) {
        self.allow = allow?.isEmpty == false ? allow : nil
        self.deny = deny?.isEmpty == false ? deny : nil
    }
}

struct ResponsePermission: Encodable {
    var max: Int
    /// Nanoseconds (Go's time.Duration); 0: no time limit.
    var ttl: Int64
}

struct UserClaims: Encodable {
    var pub: PermissionList
    var sub: PermissionList
    var resp: ResponsePermission?
    var subs: Int64 = -1
    var data: Int64 = -1
    var payload: Int64 = -1
    var issuer_account: String?
    var type = "user"
    var version = 2
}
