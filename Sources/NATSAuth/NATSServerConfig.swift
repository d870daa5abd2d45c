import Foundation

extension NATSKeyDirectory {
    /// A nats-server.conf (2.9) for one server of this deployment: listen address, optional HTTP monitor, JetStream store,
    /// the operator JWT inline, the system account, the full NATS resolver (account updates and revocations at run time
    /// through `$SYS.REQ.CLAIMS.UPDATE`) and the system and base account JWTs preloaded.
    /// `tls`: a `tls {}` block, so clients must connect with TLS (see `NATSServerTLS`).
    public func serverConfig(host: String, port: Int, httpPort: Int?, storeDirectory: String, resolverDirectory: String,
                             tls: NATSServerTLS? = nil) -> String {
        NATSServerConfig(
            host: host, port: port, httpPort: httpPort, storeDirectory: storeDirectory, resolverDirectory: resolverDirectory,
            operatorJWT: operatorJWT, systemAccount: systemAccount.publicKey,
            preload: [(systemAccount.publicKey, systemAccountJWT), (accountPublicKey, baseAccountJWT)], tls: tls
        ).text
    }
}

/// The text of a nats-server configuration in operator mode with the full resolver (pure).
struct NATSServerConfig {
    var host: String
    var port: Int
    var httpPort: Int?
    var storeDirectory: String
    var resolverDirectory: String
    var operatorJWT: String
    var systemAccount: String
    var preload: [(account: String, jwt: String)]
    var tls: NATSServerTLS? = nil

    var text: String {
        var lines = [
            "# Written by Routeplane (NATSKeyDirectory.serverConfig): operator mode, full resolver.",
            "listen: \(quoted("\(host):\(port)"))",
        ]
        if let httpPort { lines.append("http: \(quoted("\(host):\(httpPort)"))") }
        if let tls { lines += [""] + tls.lines(quoted: quoted) }
        lines += [
            "",
            "jetstream {",
            "  store_dir: \(quoted(storeDirectory))",
            "}",
            "",
            "operator: \(quoted(operatorJWT))",
            "system_account: \(quoted(systemAccount))",
            "",
            "resolver {",
            "  type: full",
            "  dir: \(quoted(resolverDirectory))",
            "  allow_delete: false",
            "  interval: \"2m\"",
            "}",
            "",
            "resolver_preload {",
        ]
        for (account, jwt) in preload {
            lines.append("  \(account): \(quoted(jwt))")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A double-quoted config string (backslashes and quotes escaped).
    func quoted(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

/// The server's TLS: its certificate chain and key (PEM files), and optionally a CA whose client certificates it
/// requires (mutual TLS). nats-server 2.9 then refuses clients that do not start TLS, and accepts TLS 1.2 and later
/// only (its own minimum). The files are read by nats-server, so they must be readable by its user.
public struct NATSServerTLS: Sendable, Equatable {
    public var certFile: String
    public var keyFile: String
    /// With it, clients must present a certificate signed by this CA (`verify: true`).
    public var clientCAFile: String?
    /// Seconds allowed for the TLS handshake.
    public var handshakeTimeout: Double

    public init(certFile: String, keyFile: String, clientCAFile: String? = nil, handshakeTimeout: Double = 2) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
        self.handshakeTimeout = handshakeTimeout
    }

    func lines(quoted: (String) -> String) -> [String] {
        var lines = ["tls {", "  cert_file: \(quoted(certFile))", "  key_file: \(quoted(keyFile))"]
        if let clientCAFile { lines += ["  ca_file: \(quoted(clientCAFile))", "  verify: true"] }
        lines += ["  timeout: \(handshakeTimeout)", "}"]
        return lines
    }
}
