import Foundation

/// Why a key directory could not be created or loaded.
public struct NATSKeyDirectoryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file (or folder) at fault.
    public var path: String
    public var reason: String
    /// The folder, for the `routeplane nats init --dir …` hint.
    public var directory: String

    public var description: String {
        "NATS keys: \(path): \(reason) (run `routeplane nats init --dir \(directory)` to create missing keys; it keeps existing files)"
    }
}

/// The keys of one Routeplane deployment, created once by `routeplane nats init --dir DIR` (idempotent: existing files are
/// kept and validated; folder 0700, every file 0600, written atomically).
///
/// Files: `operator.seed` (operator identity; needed only to re-issue operator.jwt), `operator-signing.seed` (signs account
/// JWTs: the controller needs it to push revocations), `system-account.seed`, `account.seed` (the "routeplane" account's
/// identity), `account-signing.seed` (signs user JWTs), `view-signing.seed` (32 random bytes, base64url without padding: the
/// controller's Ed25519 key for signing route views, not an nkey), `operator.jwt`, `system-account.jwt`, `account.jwt` (base
/// account JWT, no revocations).
///
/// `load` needs every file except the two identity seeds (`operator.seed`, `account.seed`), which may be kept offline;
/// when present they must match the JWTs.
public struct NATSKeyDirectory: Sendable {
    public static let accountName = "routeplane"
    public static let systemAccountName = "SYS"
    public static let operatorName = "routeplane"

    enum File {
        static let operatorSeed = "operator.seed"
        static let operatorSigningSeed = "operator-signing.seed"
        static let systemAccountSeed = "system-account.seed"
        static let accountSeed = "account.seed"
        static let accountSigningSeed = "account-signing.seed"
        static let viewSigningSeed = "view-signing.seed"
        static let operatorJWT = "operator.jwt"
        static let systemAccountJWT = "system-account.jwt"
        static let accountJWT = "account.jwt"
    }

    public let path: String
    public let operatorSigning: NKeyPair
    public let systemAccount: NKeyPair
    public let accountSigning: NKeyPair
    public let accountPublicKey: String
    public let operatorPublicKey: String
    /// The controller's Ed25519 seed for signing route views (32 bytes).
    public let viewSigningSeed: [UInt8]
    public let operatorJWT: String
    public let systemAccountJWT: String
    /// account.jwt: the routeplane account without revocations (preloaded into every server).
    public let baseAccountJWT: String

    // MARK: - Pure operations on the loaded keys

    /// The routeplane account's JWT with `revocations` (user public key → unix seconds; users whose JWT `iat` is at or
    /// before it are refused, and cut if connected), signed by the operator signing key. Same claims as account.jwt
    /// otherwise. Push it to `$SYS.REQ.CLAIMS.UPDATE` as a `systemUser`. nats-server 2.9.10 applies every pushed JWT at once,
    /// whatever its `issuedAt` (the last push wins), but at restart the preloaded account.jwt replaces a stored JWT with an
    /// older `issuedAt`, and servers of a cluster keep the newest `iat` when they merge their stores. So: push the complete
    /// list every time, one writer at a time, with `issuedAt` above account.jwt's and never decreasing.
    public func accountJWT(revocations: [String: Int64], issuedAt: Int64) -> String {
        NATSJWT.accountJWT(name: Self.accountName, account: accountPublicKey, signingKeys: [accountSigning.publicKey],
                           revocations: revocations, jetStream: true, issuedAt: issuedAt, signer: operatorSigning)
    }

    /// A user of the routeplane account, signed by the account signing key.
    public func userJWT(name: String, user: String, permissions: NATSPermissions?, issuedAt: Int64, expires: Int64?) -> String {
        NATSJWT.userJWT(name: name, user: user, issuerAccount: accountPublicKey, permissions: permissions, issuedAt: issuedAt,
                        expires: expires, signer: accountSigning)
    }

    /// A fresh user of the system account (for pushing account updates to the resolver): key pair and JWT.
    public func systemUser(name: String, issuedAt: Int64, expires: Int64?) -> (jwt: String, key: NKeyPair) {
        let key = NKeyPair.generate(.user)
        let jwt = NATSJWT.userJWT(name: name, user: key.publicKey, issuerAccount: nil, permissions: nil, issuedAt: issuedAt,
                                  expires: expires, signer: systemAccount)
        return (jwt, key)
    }

    // MARK: - Files

    /// Creates the missing keys and JWTs in `path` (keeping and validating existing ones). `created`: something was written.
    public static func initialize(at path: String) throws -> (NATSKeyDirectory, created: Bool) {
        let store = KeyFiles(directory: path)
        try store.ensureDirectory()
        var written: [(name: String, text: String)] = []

        func seed(_ name: String, _ type: NKeyType) throws -> NKeyPair {
            if let existing = try store.readSeed(name, type) { return existing }
            let key = NKeyPair.generate(type)
            written.append((name, key.seed + "\n"))
            return key
        }
        let operatorKey = try seed(File.operatorSeed, .operator)
        let operatorSigning = try seed(File.operatorSigningSeed, .operator)
        let systemAccount = try seed(File.systemAccountSeed, .account)
        let account = try seed(File.accountSeed, .account)
        let accountSigning = try seed(File.accountSigningSeed, .account)
        let viewSigningSeed: [UInt8]
        if let existing = try store.readViewSeed() {
            viewSigningSeed = existing
        } else {
            viewSigningSeed = secureRandomBytes(32)
            written.append((File.viewSigningSeed, NATSJWT.base64URLEncode(viewSigningSeed) + "\n"))
        }

        let now = Int64(Date().timeIntervalSince1970)
        func jwt(_ name: String, _ make: () -> String) throws -> String {
            if let existing = try store.readText(name) { return existing }
            let text = make()
            written.append((name, text + "\n"))
            return text
        }
        let operatorJWT = try jwt(File.operatorJWT) {
            NATSJWT.operatorJWT(name: operatorName, operator: operatorKey, signingKeys: [operatorSigning.publicKey],
                                systemAccount: systemAccount.publicKey, issuedAt: now)
        }
        let systemAccountJWT = try jwt(File.systemAccountJWT) {
            NATSJWT.accountJWT(name: systemAccountName, account: systemAccount.publicKey, signingKeys: [], revocations: [:],
                               jetStream: false, issuedAt: now, signer: operatorSigning)
        }
        let accountJWT = try jwt(File.accountJWT) {
            NATSJWT.accountJWT(name: accountName, account: account.publicKey, signingKeys: [accountSigning.publicKey],
                               revocations: [:], jetStream: true, issuedAt: now, signer: operatorSigning)
        }

        // Everything is checked against everything before a single file is written.
        let directory = try validated(
            store: store, operatorKey: operatorKey, operatorSigning: operatorSigning, systemAccount: systemAccount, account: account,
            accountSigning: accountSigning, viewSigningSeed: viewSigningSeed, operatorJWT: operatorJWT,
            systemAccountJWT: systemAccountJWT, accountJWT: accountJWT)
        for file in written { try store.writeAtomically(file.name, file.text) }
        return (directory, !written.isEmpty)
    }

    /// Loads the keys of `path`; the error names the missing or bad file.
    public static func load(at path: String) throws -> NATSKeyDirectory {
        let store = KeyFiles(directory: path)
        func required<T>(_ name: String, _ value: T?) throws -> T {
            guard let value else { throw store.error(name, "missing") }
            return value
        }
        let operatorSigning = try required(File.operatorSigningSeed, store.readSeed(File.operatorSigningSeed, .operator))
        let systemAccount = try required(File.systemAccountSeed, store.readSeed(File.systemAccountSeed, .account))
        let accountSigning = try required(File.accountSigningSeed, store.readSeed(File.accountSigningSeed, .account))
        let viewSigningSeed = try required(File.viewSigningSeed, store.readViewSeed())
        let operatorJWT = try required(File.operatorJWT, store.readText(File.operatorJWT))
        let systemAccountJWT = try required(File.systemAccountJWT, store.readText(File.systemAccountJWT))
        let accountJWT = try required(File.accountJWT, store.readText(File.accountJWT))
        return try validated(
            store: store, operatorKey: store.readSeed(File.operatorSeed, .operator), operatorSigning: operatorSigning,
            systemAccount: systemAccount, account: store.readSeed(File.accountSeed, .account), accountSigning: accountSigning,
            viewSigningSeed: viewSigningSeed, operatorJWT: operatorJWT, systemAccountJWT: systemAccountJWT, accountJWT: accountJWT)
    }

    /// Checks that the JWTs verify and name these keys (identity seeds optional), and builds the directory.
    private static func validated(
        store: KeyFiles, operatorKey: NKeyPair?, operatorSigning: NKeyPair, systemAccount: NKeyPair, account: NKeyPair?,
        accountSigning: NKeyPair, viewSigningSeed: [UInt8], operatorJWT: String, systemAccountJWT: String, accountJWT: String
    ) throws -> NATSKeyDirectory {
        func decode(_ name: String, _ jwt: String, type: String) throws -> (NATSJWT.Decoded, [String: Any]) {
            let decoded: NATSJWT.Decoded
            do { decoded = try NATSJWT.decode(jwt) } catch { throw store.error(name, "\(error)") }
            guard decoded.type == type else { throw store.error(name, "a \(decoded.type) JWT, expected \(type)") }
            let nats = (try? JSONSerialization.jsonObject(with: Data(decoded.payload)) as? [String: Any])?["nats"] as? [String: Any]
            return (decoded, nats ?? [:])
        }
        func signingKeys(_ nats: [String: Any]) -> [String] {
            (nats["signing_keys"] as? [Any] ?? []).compactMap { ($0 as? String) ?? (($0 as? [String: Any])?["key"] as? String) }
        }

        let (op, opNats) = try decode(File.operatorJWT, operatorJWT, type: "operator")
        guard op.issuer == op.subject else { throw store.error(File.operatorJWT, "not self-signed (iss \(op.issuer), sub \(op.subject))") }
        if let operatorKey, operatorKey.publicKey != op.subject {
            throw store.error(File.operatorSeed, "its key \(operatorKey.publicKey) is not the operator of operator.jwt (\(op.subject))")
        }
        guard signingKeys(opNats).contains(operatorSigning.publicKey) else {
            throw store.error(File.operatorJWT, "does not list operator-signing.seed's key \(operatorSigning.publicKey) as a signing key")
        }
        guard opNats["system_account"] as? String == systemAccount.publicKey else {
            throw store.error(File.operatorJWT, "its system_account is not system-account.seed's key \(systemAccount.publicKey)")
        }
        let operatorIssuers = [op.subject, operatorSigning.publicKey]

        let (sys, _) = try decode(File.systemAccountJWT, systemAccountJWT, type: "account")
        guard sys.subject == systemAccount.publicKey else {
            throw store.error(File.systemAccountJWT, "is for \(sys.subject), not system-account.seed's key \(systemAccount.publicKey)")
        }
        guard operatorIssuers.contains(sys.issuer) else { throw store.error(File.systemAccountJWT, "not signed by this operator") }

        let (acc, accNats) = try decode(File.accountJWT, accountJWT, type: "account")
        if let account, account.publicKey != acc.subject {
            throw store.error(File.accountSeed, "its key \(account.publicKey) is not the account of account.jwt (\(acc.subject))")
        }
        guard operatorIssuers.contains(acc.issuer) else { throw store.error(File.accountJWT, "not signed by this operator") }
        guard signingKeys(accNats).contains(accountSigning.publicKey) else {
            throw store.error(File.accountJWT, "does not list account-signing.seed's key \(accountSigning.publicKey) as a signing key")
        }

        return NATSKeyDirectory(
            path: store.directory, operatorSigning: operatorSigning, systemAccount: systemAccount, accountSigning: accountSigning,
            accountPublicKey: acc.subject, operatorPublicKey: op.subject, viewSigningSeed: viewSigningSeed, operatorJWT: operatorJWT,
            systemAccountJWT: systemAccountJWT, baseAccountJWT: accountJWT)
    }

    static func secureRandomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}
