import ArgumentParser
import Foundation
import RouteAgent

/// `routeplane agent`'s transport options: clear text to non-loopback hosts only with `--insecure`, and the CA files
/// for an HTTPS controller and NATS over TLS.
struct AgentTransportOptions: ParsableArguments {
    @Flag(help: "Allow http:// and nats:// URLs to hosts other than loopback (clear text: setup keys, credentials and views readable on the network).")
    var insecure = false

    @Option(name: .customLong("controller-ca"), help: "PEM CA file the controller's HTTPS certificate must chain to (default: $ROUTEPLANE_CONTROLLER_CA, else the system's CAs).")
    var controllerCA: String?

    @Option(name: .customLong("nats-ca"), help: "PEM CA file NATS's certificate must chain to; with it NATS is spoken over TLS even on a nats:// URL (default: $ROUTEPLANE_NATS_CA).")
    var natsCA: String?

    private static func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    var settings: AgentTransport {
        AgentTransport(insecure: insecure, controllerCA: controllerCA ?? Self.environment("ROUTEPLANE_CONTROLLER_CA"),
                       natsCA: natsCA ?? Self.environment("ROUTEPLANE_NATS_CA"))
    }
}
