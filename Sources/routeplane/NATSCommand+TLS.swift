import ArgumentParser
import Foundation
import NATSAuth

/// `routeplane nats server-config`'s TLS options: a `tls {}` block with the server's certificate and key, and
/// optionally a CA for client certificates.
struct NATSServerTLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain of the server: clients must then connect with TLS (tls:// URLs or a CA file).")
    var certificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.")
    var key: String?

    @Option(name: .customLong("tls-client-ca"), help: "PEM CA that clients' certificates must chain to (mutual TLS; Routeplane's own clients authenticate with JWTs and do not present certificates).")
    var clientCA: String?

    /// The paths are written as given, made absolute (nats-server resolves relative ones from its working folder);
    /// missing files are refused now rather than by nats-server at start.
    func settings() throws -> NATSServerTLS? {
        switch (certificate, key) {
        case (nil, nil):
            if clientCA != nil { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
            return nil
        case (.some, nil): throw ValidationError("--tls-cert needs --tls-key")
        case (nil, .some): throw ValidationError("--tls-key needs --tls-cert")
        case (.some(let certificate), .some(let key)):
            return NATSServerTLS(certFile: try Self.absolute(certificate, option: "--tls-cert"), keyFile: try Self.absolute(key, option: "--tls-key"),
                                 clientCAFile: try clientCA.map { try Self.absolute($0, option: "--tls-client-ca") })
        }
    }

    static func absolute(_ path: String, option: String) throws -> String {
        guard FileManager.default.isReadableFile(atPath: path) else { throw ValidationError("\(option) \(path): no such readable file") }
        return path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
