import Foundation
@testable import NATSAuth
import Testing

/// JWT signing and decoding: a published JWT, our own round trips, tampering.
@Suite struct JWTTests {
    /// nats-server's own test configuration server/configs/js-op.conf (JWTs made by nsc, loaded and verified by the
    /// server in its tests): the operator and the account "one" (JetStream limits), both signed by the operator.
    static let serverTestOperatorJWT =
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiIyUkc0WjJKVzYzSUtBS1czSFg0SkpMQVhRN1ZSM0NKVlRQU1FHUVRCU0ZFQjVKTkNISUpRIiwiaWF0IjoxNjE2MTg2MjAxLCJpc3MiOiJPRDRNNklBQUtRU000RFFTTFdaSVZCQUNZVFlTMlM2WFFTN1U2N1hYWVhKNDRJTE5FMzVZUEdKSyIsIm5hbWUiOiJqcy10ZXN0Iiwic3ViIjoiT0Q0TTZJQUFLUVNNNERRU0xXWklWQkFDWVRZUzJTNlhRUzdVNjdYWFlYSjQ0SUxORTM1WVBHSksiLCJuYXRzIjp7InR5cGUiOiJvcGVyYXRvciIsInZlcnNpb24iOjJ9fQ.VkjSK2BlMmtYfVJSkC9aZEFvjg4BXzbd0oXkQa3Rlkhh8EuSRU7-Tp1zUm1SveBb6dZXsE51vhIQFQY66fO0Bw"
    static let serverTestAccountJWT =
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJRSVFDRFpRRkRIUU9WQlc3Q0tDNFQzVzJJV0dZV1ZISjZTVTRSTlYzUFo3NUhTUFVQS1ZBIiwiaWF0IjoxNjE2MTg3MjUwLCJpc3MiOiJPRDRNNklBQUtRU000RFFTTFdaSVZCQUNZVFlTMlM2WFFTN1U2N1hYWVhKNDRJTE5FMzVZUEdKSyIsIm5hbWUiOiJvbmUiLCJzdWIiOiJBQlZSWktKNlo3TklNUElZSlJDSEVZRlJVTzdFTk42TldPS1FERkxGREZWUFNNMzZVUFgyVUNQUCIsIm5hdHMiOnsibGltaXRzIjp7InN1YnMiOi0xLCJkYXRhIjotMSwicGF5bG9hZCI6LTEsImltcG9ydHMiOi0xLCJleHBvcnRzIjotMSwid2lsZGNhcmRzIjp0cnVlLCJjb25uIjotMSwibGVhZiI6LTEsIm1lbV9zdG9yYWdlIjoxMDczNzQxODI0LCJkaXNrX3N0b3JhZ2UiOjEwNzM3NDE4MjQwLCJzdHJlYW1zIjoxMDB9LCJkZWZhdWx0X3Blcm1pc3Npb25zIjp7InB1YiI6e30sInN1YiI6e319LCJ0eXBlIjoiYWNjb3VudCIsInZlcnNpb24iOjJ9fQ.yYdE3AjpWMBt_rZVLSNmuxR28FP5-6fO_x6FMQl7xe7hmeEc--bbCBcw4ujEjtVkE62I21asKtu06vmW1fEsAg"
    static let serverTestOperator = "OD4M6IAAKQSM4DQSLWZIVBACYTYS2S6XQS7U67XXYXJ44ILNE35YPGJK"

    /// The user JWT of the NATS documentation's example .creds file, "unused and only for example purposes".
    static let documentationJWT =
        "eyJ0eXAiOiJqd3QiLCJhbGciOiJlZDI1NTE5In0.eyJqdGkiOiJUVlNNTEtTWkJBN01VWDNYQUxNUVQzTjRISUw1UkZGQU9YNUtaUFhEU0oyWlAzNkVMNVJBIiwiaWF0IjoxNTU4MDQ1NTYyLCJpc3MiOiJBQlZTQk0zVTQ1REdZRVVFQ0tYUVM3QkVOSFdHN0tGUVVEUlRFSEFKQVNPUlBWV0JaNEhPSUtDSCIsIm5hbWUiOiJvbWVnYSIsInN1YiI6IlVEWEIyVk1MWFBBU0FKN1pEVEtZTlE3UU9DRldTR0I0Rk9NWVFRMjVIUVdTQUY3WlFKRUJTUVNXIiwidHlwZSI6InVzZXIiLCJuYXRzIjp7InB1YiI6e30sInN1YiI6e319fQ.6TQ2ilCDb6m2ZDiJuj_D_OePGXFyN3Ap2DEm3ipcU5AhrWrNvneJryWrpgi_yuVWKo1UoD5s8bxlmwypWVGFAA"

    @Test func nscJWTsFromNatsServerTestDataDecodeAndVerify() throws {
        let op = try NATSJWT.decode(Self.serverTestOperatorJWT)
        #expect(op.issuer == Self.serverTestOperator && op.subject == Self.serverTestOperator)
        #expect(op.type == "operator" && op.issuedAt == 1_616_186_201 && op.expires == nil)
        let account = try NATSJWT.decode(Self.serverTestAccountJWT)
        #expect(account.issuer == Self.serverTestOperator)
        #expect(account.subject == "ABVRZKJ6Z7NIMPIYJRCHEYFRUO7ENN6NWOKQDFLFDFVPSM36UPX2UCPP")
        #expect(account.type == "account" && account.issuedAt == 1_616_187_250)
        let claims = try json(account.payload)
        #expect(((claims["nats"] as? [String: Any])?["limits"] as? [String: Any])?["mem_storage"] as? Int == 1_073_741_824)
        #expect(claims["name"] as? String == "one")
    }

    @Test func documentationExampleJWTIsNotValidlySigned() throws {
        // Its claims parse (v1: header alg "ed25519", top-level "type"), but its signature does not verify against its
        // issuer: the documentation's example token is not a real one. decode refuses it, naming the issuer.
        #expect(throws: NATSJWTError.badSignature(issuer: "ABVSBM3U45DGYEUECKXQS7BENHWG7KFQUDRTEHAJASORPVWBZ4HOIKCH")) {
            try NATSJWT.decode(Self.documentationJWT)
        }
    }

    @Test func tamperedJWTsAreRefused() throws {
        let parts = Self.serverTestAccountJWT.split(separator: ".").map(String.init)
        // Claims changed (account name "one" → "onf"), signature kept.
        var claims = NATSJWT.base64URLDecode(parts[1])!
        let name = Array(#""name":"one""#.utf8)
        let index = try #require(claims.indices.first { i in i + name.count <= claims.count && Array(claims[i..<i + name.count]) == name })
        claims[index + name.count - 2] = UInt8(ascii: "f")
        let tampered = [parts[0], NATSJWT.base64URLEncode(claims), parts[2]].joined(separator: ".")
        #expect(throws: NATSJWTError.badSignature(issuer: Self.serverTestOperator)) { try NATSJWT.decode(tampered) }
        // A signature by another key over the same claims.
        let forger = NKeyPair.generate(.operator)
        let forged = parts[0] + "." + parts[1] + "." + NATSJWT.base64URLEncode(forger.sign(Array((parts[0] + "." + parts[1]).utf8)))
        #expect(throws: NATSJWTError.badSignature(issuer: Self.serverTestOperator)) { try NATSJWT.decode(forged) }
        // One signature bit flipped.
        var signature = NATSJWT.base64URLDecode(parts[2])!
        signature[10] ^= 1
        #expect(throws: NATSJWTError.self) { try NATSJWT.decode(parts[0] + "." + parts[1] + "." + NATSJWT.base64URLEncode(signature)) }
        #expect(throws: NATSJWTError.malformed("expected 3 dot-separated parts, got 2")) { try NATSJWT.decode(parts[0] + "." + parts[1]) }
        #expect(throws: NATSJWTError.self) { try NATSJWT.decode("e30.e30.AAAA") }
        // Our own JWT, claims altered.
        let key = NKeyPair.generate(.account)
        let ours = NATSJWT.userJWT(name: "a", user: NKeyPair.generate(.user).publicKey, issuerAccount: nil, permissions: nil, issuedAt: 1,
                                   expires: nil, signer: key)
        let ourParts = ours.split(separator: ".").map(String.init)
        var ourClaims = NATSJWT.base64URLDecode(ourParts[1])!
        ourClaims = Array(String(decoding: ourClaims, as: UTF8.self).replacingOccurrences(of: #""iat":1"#, with: #""iat":2"#).utf8)
        #expect(throws: NATSJWTError.badSignature(issuer: key.publicKey)) {
            try NATSJWT.decode(ourParts[0] + "." + NATSJWT.base64URLEncode(ourClaims) + "." + ourParts[2])
        }
    }

    @Test func operatorAccountAndUserJWTsRoundTrip() throws {
        let op = NKeyPair.generate(.operator)
        let opSigning = NKeyPair.generate(.operator)
        let sys = NKeyPair.generate(.account)
        let account = NKeyPair.generate(.account)
        let accountSigning = NKeyPair.generate(.account)
        let user = NKeyPair.generate(.user)

        let operatorJWT = NATSJWT.operatorJWT(name: "op", operator: op, signingKeys: [opSigning.publicKey], systemAccount: sys.publicKey, issuedAt: 1_700_000_000)
        let decodedOperator = try NATSJWT.decode(operatorJWT)
        #expect(decodedOperator.issuer == op.publicKey && decodedOperator.subject == op.publicKey && decodedOperator.type == "operator")
        let operatorClaims = try json(decodedOperator.payload)
        let operatorNats = try #require(operatorClaims["nats"] as? [String: Any])
        #expect(operatorNats["signing_keys"] as? [String] == [opSigning.publicKey])
        #expect(operatorNats["system_account"] as? String == sys.publicKey)
        #expect(operatorNats["version"] as? Int == 2)
        #expect(operatorClaims["name"] as? String == "op")
        #expect((operatorClaims["jti"] as? String)?.count == 52)

        let header = try json(NATSJWT.base64URLDecode(operatorJWT.split(separator: ".")[0])!)
        #expect(header["typ"] as? String == "JWT" && header["alg"] as? String == "ed25519-nkey")

        let accountJWT = NATSJWT.accountJWT(name: "routeplane", account: account.publicKey, signingKeys: [accountSigning.publicKey],
                                            revocations: [user.publicKey: 1_700_000_100], jetStream: true, issuedAt: 1_700_000_050, signer: opSigning)
        let decodedAccount = try NATSJWT.decode(accountJWT)
        #expect(decodedAccount.issuer == opSigning.publicKey && decodedAccount.subject == account.publicKey && decodedAccount.type == "account")
        #expect(decodedAccount.issuedAt == 1_700_000_050)
        let accountNats = try #require(try json(decodedAccount.payload)["nats"] as? [String: Any])
        let limits = try #require(accountNats["limits"] as? [String: Any])
        #expect(limits["mem_storage"] as? Int == -1 && limits["disk_storage"] as? Int == -1 && limits["conn"] as? Int == -1)
        #expect((accountNats["revocations"] as? [String: Any])?[user.publicKey] as? Int == 1_700_000_100)
        #expect(accountNats["signing_keys"] as? [String] == [accountSigning.publicKey])

        let noJetStream = try NATSJWT.decode(NATSJWT.accountJWT(name: "SYS", account: sys.publicKey, signingKeys: [], revocations: [:],
                                                                jetStream: false, issuedAt: 1, signer: op))
        let sysNats = try #require(try json(noJetStream.payload)["nats"] as? [String: Any])
        #expect((sysNats["limits"] as? [String: Any])?["mem_storage"] as? Int == 0)
        #expect(sysNats["revocations"] == nil && sysNats["signing_keys"] == nil)

        let permissions = NATSPermissions(publishAllow: ["a.>"], publishDeny: ["a.b"], subscribeAllow: ["_INBOX.>"], allowResponses: true)
        let userJWT = NATSJWT.userJWT(name: "agent", user: user.publicKey, issuerAccount: account.publicKey, permissions: permissions,
                                      issuedAt: 1_700_000_000, expires: 1_700_003_600, signer: accountSigning)
        let decodedUser = try NATSJWT.decode(userJWT)
        #expect(decodedUser.issuer == accountSigning.publicKey && decodedUser.subject == user.publicKey && decodedUser.type == "user")
        #expect(decodedUser.expires == 1_700_003_600)
        let userNats = try #require(try json(decodedUser.payload)["nats"] as? [String: Any])
        #expect(userNats["issuer_account"] as? String == account.publicKey)
        #expect((userNats["pub"] as? [String: Any])?["allow"] as? [String] == ["a.>"])
        #expect((userNats["pub"] as? [String: Any])?["deny"] as? [String] == ["a.b"])
        #expect((userNats["sub"] as? [String: Any])?["allow"] as? [String] == ["_INBOX.>"])
        #expect((userNats["sub"] as? [String: Any])?["deny"] == nil)
        #expect((userNats["resp"] as? [String: Any])?["max"] as? Int == 1)

        let full = try NATSJWT.decode(NATSJWT.userJWT(name: "u", user: user.publicKey, issuerAccount: nil, permissions: nil, issuedAt: 5,
                                                      expires: nil, signer: account))
        let fullNats = try #require(try json(full.payload)["nats"] as? [String: Any])
        #expect(full.expires == nil && fullNats["issuer_account"] == nil && fullNats["resp"] == nil)
        #expect((fullNats["pub"] as? [String: Any])?.isEmpty == true)
    }

    @Test func credentialsFileHasNscBlocks() throws {
        let text = NATSJWT.credentialsFile(jwt: Self.documentationJWT + "\n", seed: "SUAOY5JZ2WJKVR4UO2KJ2P3SW6FZFNWEOIMAXF4WZEUNVQXXUOKGM55CYE")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "-----BEGIN NATS USER JWT-----")
        #expect(lines[1] == Self.documentationJWT)
        #expect(lines[2] == "------END NATS USER JWT------")
        let seedLine = try #require(lines.firstIndex(of: "-----BEGIN USER NKEY SEED-----") as Int?)
        #expect(lines[seedLine + 1] == "SUAOY5JZ2WJKVR4UO2KJ2P3SW6FZFNWEOIMAXF4WZEUNVQXXUOKGM55CYE")
        #expect(lines[seedLine + 2] == "------END USER NKEY SEED------")
    }

    private func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }
}
