import Foundation

extension NATSKeyDirectory {
    /// A nats-server.conf (2.9) for one server of this deployment: listen address, optional HTTP monitor, JetStream store,
    /// the operator JWT inline, the system account, the full NATS resolver (account updates and revocations at run time
    /// through `$SYS.REQ.CLAIMS.UPDATE`) and the system and base account JWTs preloaded.
    public func serverConfig(host: String, port: Int, httpPort: Int?, storeDirectory: String, resolverDirectory: String) -> String {
        NATSServerConfig(
            host: host, port: port, httpPort: httpPort, storeDirectory: storeDirectory, resolverDirectory: resolverDirectory,
            operatorJWT: operatorJWT, systemAccount: systemAccount.publicKey,
            preload: [(systemAccount.publicKey, systemAccountJWT), (accountPublicKey, baseAccountJWT)]
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

    var text: String {
        var lines = [
            "# Written by Routeplane (NATSKeyDirectory.serverConfig): operator mode, full resolver.",
            "listen: \(quoted("\(host):\(port)"))",
        ]
        if let httpPort { lines.append("http: \(quoted("\(host):\(httpPort)"))") }
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
    private func quoted(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
