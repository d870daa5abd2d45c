import ArgumentParser
import Foundation
import ViewDistribution
import NATSAuth
import NATSClient

/// `routeplane nats init|server-config`: the deployment's NATS keys (operator mode) and nats-server configuration.
struct NATS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nats",
        abstract: "NATS in operator (JWT) mode: create the deployment's keys once, write a nats-server configuration from them.",
        subcommands: [Init.self, ServerConfig.self, RotateViewKey.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the operator, system account, routeplane account and view-signing keys in DIR (idempotent: existing keys are kept).")
        @Option(help: "Key folder (created 0700; every file 0600). Every controller of the deployment reads the same folder (--nats-keys).")
        var dir: String

        func run() async throws {
            let (keys, created) = try NATSKeyDirectory.initialize(at: dir)
            print(created ? "created NATS keys in \(keys.path)" : "NATS keys in \(keys.path) already exist; kept them")
            print("operator \(keys.operatorPublicKey)")
            print("account  \(keys.accountPublicKey)")
        }
    }

    struct ServerConfig: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "server-config",
            abstract: "Print (or write) a nats-server configuration in operator mode with the full NATS resolver, from the keys in DIR.")
        @Option(help: "Key folder made by `routeplane nats init`.") var dir: String
        @Option(help: "Address to listen on.") var host = "127.0.0.1"
        @Option(help: "Client port.") var port = 4222
        @Option(help: "HTTP monitoring port (none when omitted).") var httpPort: Int?
        @Option(help: "JetStream store folder.") var storeDir: String
        @Option(help: "Resolver folder (account JWTs pushed at run time, e.g. revocations).") var resolverDir: String
        @Option(help: "Write the configuration to this file (mode 0600) instead of printing it.") var output: String?
        @OptionGroup var tls: NATSServerTLSOptions

        func run() async throws {
            let keys = try NATSKeyDirectory.load(at: dir)
            let text = keys.serverConfig(host: host, port: port, httpPort: httpPort, storeDirectory: storeDir, resolverDirectory: resolverDir,
                                         tls: try tls.settings())
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                    throw ValidationError("cannot write \(output)")
                }
            } else {
                print(text, terminator: "")
            }
        }
    }
}

/// Rotating the controller's view signing key: the current seed moves to `view-signing.previous.seed` and a new one
/// takes its place. Controllers restarted on the folder sign with the new key and attach the previous key's
/// endorsement of it to every view; an agent pinned to the previous key checks the endorsement, pins the new key and
/// persists it. Remove the previous file once every agent reported a view signed by the new key (and before the
/// next rotation).
enum ViewKeyRotation {
    static let currentFile = "view-signing.seed"
    static let previousFile = "view-signing.previous.seed"
}

extension NATS {
    struct RotateViewKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-view-key",
            abstract: "Start a view signing key rotation in DIR: the current key becomes the previous one (it endorses the new key); restart the controllers.")
        @Option(help: "Key folder made by `routeplane nats init`.") var dir: String

        func run() async throws {
            let keys = try NATSKeyDirectory.load(at: dir)
            let previous = dir + "/" + ViewKeyRotation.previousFile
            guard !FileManager.default.fileExists(atPath: previous) else {
                throw ValidationError("\(previous) exists: a rotation is in progress; remove it once every agent has the current key, then rotate again")
            }
            let old = try ViewSigner(seed: keys.viewSigningSeed)
            let new = ViewSigner.ephemeral()
            try Self.write(old.seedBase64URL, to: previous)
            try Self.write(new.seedBase64URL, to: dir + "/" + ViewKeyRotation.currentFile)
            _ = try NATSKeyDirectory.load(at: dir)
            print("view signing key rotated: \(old.publicKey) → \(new.publicKey) (endorsed); restart the controllers")
        }

        static func write(_ text: String, to path: String) throws {
            do { try SecretFile.write(Array((text + "\n").utf8), to: path) } catch { throw ValidationError("\(error)") }
        }
    }
}
