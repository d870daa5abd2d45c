import Foundation
@testable import NATSAuth
import Testing

/// `routeplane nats init`'s folder: creation, idempotence, permissions, clear errors.
@Suite struct KeyDirectoryTests {
    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-keys-\(UUID().uuidString.prefix(8))/nats").path
    }

    func mode(_ path: String) -> Int {
        var status = stat()
        stat(path, &status)
        return Int(status.st_mode & 0o777)
    }

    @Test func initializeCreatesEveryFileOwnerOnlyAndIsIdempotent() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let (keys, created) = try NATSKeyDirectory.initialize(at: path)
        #expect(created)
        #expect(mode(path) == 0o700)
        let files = ["operator.seed", "operator-signing.seed", "system-account.seed", "account.seed", "account-signing.seed",
                     "view-signing.seed", "operator.jwt", "system-account.jwt", "account.jwt"]
        for file in files { #expect(mode(path + "/" + file) == 0o600, "\(file)") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: path).sorted() == files.sorted())
        #expect(keys.viewSigningSeed.count == 32)
        #expect(keys.operatorSigning.type == .operator && keys.systemAccount.type == .account && keys.accountSigning.type == .account)

        let (again, createdAgain) = try NATSKeyDirectory.initialize(at: path)
        #expect(!createdAgain)
        #expect(again.accountPublicKey == keys.accountPublicKey && again.operatorJWT == keys.operatorJWT)
        #expect(again.viewSigningSeed == keys.viewSigningSeed)

        let loaded = try NATSKeyDirectory.load(at: path)
        #expect(loaded.accountSigning.publicKey == keys.accountSigning.publicKey && loaded.baseAccountJWT == keys.baseAccountJWT)
        #expect(loaded.operatorPublicKey == keys.operatorPublicKey)

        // The identity seeds may be kept offline.
        try FileManager.default.removeItem(atPath: path + "/operator.seed")
        try FileManager.default.removeItem(atPath: path + "/account.seed")
        #expect(try NATSKeyDirectory.load(at: path).accountPublicKey == keys.accountPublicKey)
    }

    @Test func missingOrBadFilesAreNamed() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        #expect {
            try NATSKeyDirectory.load(at: path)
        } throws: { error in
            "\(error)".contains("operator-signing.seed: missing") && "\(error)".contains("routeplane nats init --dir \(path)")
        }
        _ = try NATSKeyDirectory.initialize(at: path)
        try "SUBAD\n".write(toFile: path + "/account-signing.seed", atomically: true, encoding: .utf8)
        #expect {
            try NATSKeyDirectory.load(at: path)
        } throws: { error in
            "\(error)".contains("account-signing.seed: not a valid nkey seed")
        }
        // A seed of another deployment: the JWTs do not name it.
        try NKeyPair.generate(.account).seed.write(toFile: path + "/account-signing.seed", atomically: true, encoding: .utf8)
        #expect {
            try NATSKeyDirectory.initialize(at: path)
        } throws: { error in
            "\(error)".contains("account.jwt: does not list account-signing.seed's key")
        }
        // A user seed where an account seed belongs.
        try NKeyPair.generate(.user).seed.write(toFile: path + "/account-signing.seed", atomically: true, encoding: .utf8)
        #expect {
            try NATSKeyDirectory.load(at: path)
        } throws: { error in
            "\(error)".contains("holds a user seed, expected account")
        }
    }

    @Test func derivedJWTsAreSignedByTheRightKeys() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let keys = try NATSKeyDirectory.initialize(at: path).0
        let user = NKeyPair.generate(.user)
        let account = try NATSJWT.decode(keys.accountJWT(revocations: [user.publicKey: 100], issuedAt: 200))
        #expect(account.issuer == keys.operatorSigning.publicKey && account.subject == keys.accountPublicKey && account.issuedAt == 200)
        let userJWT = try NATSJWT.decode(keys.userJWT(name: "agent", user: user.publicKey, permissions: nil, issuedAt: 1, expires: 2))
        #expect(userJWT.issuer == keys.accountSigning.publicKey && userJWT.subject == user.publicKey && userJWT.expires == 2)
        let (systemJWT, systemKey) = keys.systemUser(name: "updater", issuedAt: 1, expires: nil)
        let system = try NATSJWT.decode(systemJWT)
        #expect(system.issuer == keys.systemAccount.publicKey && system.subject == systemKey.publicKey)

        let config = keys.serverConfig(host: "127.0.0.1", port: 54321, httpPort: 54322, storeDirectory: "/tmp/js", resolverDirectory: "/tmp/jwt")
        #expect(config.contains(#"listen: "127.0.0.1:54321""#))
        #expect(config.contains(#"http: "127.0.0.1:54322""#))
        #expect(config.contains("operator: \"\(keys.operatorJWT)\""))
        #expect(config.contains("system_account: \"\(keys.systemAccount.publicKey)\""))
        #expect(config.contains("type: full") && config.contains("allow_delete: false") && config.contains(#"interval: "2m""#))
        #expect(config.contains("  \(keys.accountPublicKey): \"\(keys.baseAccountJWT)\""))
        #expect(config.contains("  \(keys.systemAccount.publicKey): \"\(keys.systemAccountJWT)\""))
        #expect(!keys.serverConfig(host: "127.0.0.1", port: 1, httpPort: nil, storeDirectory: "a", resolverDirectory: "b").contains("http:"))
    }
}

extension KeyDirectoryTests {
    @Test func initializeNarrowsAWiderFolderAndFiles() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let accountSigning = NKeyPair.generate(.account)
        _ = FileManager.default.createFile(atPath: path + "/account-signing.seed", contents: Data((accountSigning.seed + "\n").utf8),
                                       attributes: [.posixPermissions: 0o644])
        let (keys, created) = try NATSKeyDirectory.initialize(at: path)
        #expect(created)
        // The existing seed is kept, the rest is created around it.
        #expect(keys.accountSigning.publicKey == accountSigning.publicKey)
        #expect(mode(path) == 0o700)
        #expect(mode(path + "/account-signing.seed") == 0o600)
        #expect(try NATSKeyDirectory.load(at: path).accountSigning.publicKey == accountSigning.publicKey)
    }
}
