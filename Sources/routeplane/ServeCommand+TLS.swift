import ArgumentParser
import Foundation
import HTTPAPI
import Logging
import NATSClient
import RouteAgent

/// `routeplane serve`'s TLS options: HTTPS for the API (`--tls-cert`/`--tls-key`) and the CA that NATS's certificate
/// must chain to (`--nats-ca`, which also makes the controller's NATS connections use TLS).
struct ServeTLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain to serve the API over HTTPS (default: $ROUTEPLANE_TLS_CERT); needs --tls-key.")
    var certificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert (default: $ROUTEPLANE_TLS_KEY).")
    var key: String?

    @Option(name: .customLong("nats-ca"), help: "PEM CA file NATS's certificate must chain to; with it the controller speaks TLS to NATS even on a nats:// URL (default: $ROUTEPLANE_NATS_CA). A tls:// URL without it trusts the system's CAs.")
    var natsCA: String?

    private static func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The API's TLS, loaded and checked now (nil: plain HTTP). Both files or neither.
    func apiTLS() throws -> APIServerTLS? {
        let certificate = self.certificate ?? Self.environment("ROUTEPLANE_TLS_CERT")
        let key = self.key ?? Self.environment("ROUTEPLANE_TLS_KEY")
        switch (certificate, key) {
        case (nil, nil): return nil
        case (.some, nil): throw ValidationError("--tls-cert needs --tls-key (or ROUTEPLANE_TLS_KEY)")
        case (nil, .some): throw ValidationError("--tls-key needs --tls-cert (or ROUTEPLANE_TLS_CERT)")
        case (.some(let certificate), .some(let key)): return try APIServerTLS.load(certificatePath: certificate, keyPath: key)
        }
    }

    /// libnats's TLS settings for the controller's connections to `url`.
    func natsTLS(url: String) -> NATSTLSSettings? {
        AgentTransport(natsCA: natsCA ?? Self.environment("ROUTEPLANE_NATS_CA")).natsTLS(url: url)
    }

    /// The start log line: HTTPS, or plain HTTP with a warning when the address is reachable from other hosts.
    static func announce(host: String, port: Int, tls: APIServerTLS?, logger: Logger) {
        if let tls {
            logger.notice("controller listening, serving the API over TLS (1.2 and later)",
                          metadata: ["address": "https://\(host):\(port)", "certificate": "\(tls.subject)"])
        } else if TransportCheck.isLoopback(host: host) {
            logger.notice("controller listening", metadata: ["address": "http://\(host):\(port)"])
        } else {
            logger.warning("controller listening over plain HTTP on a non-loopback address: tokens and setup keys cross the network in clear text; pass --tls-cert and --tls-key (or put a TLS proxy in front)", metadata: ["address": "http://\(host):\(port)"])
        }
    }
}
