import ArgumentParser
import Foundation
import Logging
import RouteAgent
import RouteModel

/// `routeplane agent`'s WireGuard options: with `--wireguard` (and `--applier linux`) the agent owns a WireGuard
/// interface, reports its public key and endpoints at enrollment, and routes over it (`WireGuardApplier`).
struct AgentWireGuardOptions: ParsableArguments {
    @Flag(help: "Route over a WireGuard interface of the agent's own (kernel module, else wireguard-go): peers, allowed IPs moved by the HA selection, routes in table 7239 with ip rules. Needs --applier linux, wireguard-tools, CAP_NET_ADMIN.")
    var wireguard = false

    @Option(name: .customLong("wg-interface"), help: "WireGuard interface name; unique on the host (default: rp- and 8 hex digits of the state folder's path). Or $ROUTEPLANE_WG_INTERFACE.")
    var interface: String?

    @Option(name: .customLong("wg-port"), help: "WireGuard UDP listen port.")
    var port: Int = 51820

    @Option(name: .customLong("wg-endpoint"), help: "Underlay address:port other peers send WireGuard to (repeatable; a.b.c.d:port or [v6]:port). Default: none (the peer only initiates; its routing peers learn its address from its handshakes).")
    var endpoints: [String] = []

    /// The interface name: given, or derived from the state folder (one agent per state folder, so unique on the host).
    func interfaceName(stateDir: String) -> String {
        if let interface { return interface }
        if let env = ProcessInfo.processInfo.environment["ROUTEPLANE_WG_INTERFACE"], !env.isEmpty { return env }
        let absolute = URL(fileURLWithPath: stateDir).standardizedFileURL.path
        return "rp-" + SHA256Hex.of(Array(absolute.utf8)).prefix(8)
    }

    /// The applier and the agent configuration's WireGuard parts, or nil without `--wireguard`.
    func setUp(stateDir: String, controller: String, natsURL: String?, configuration: inout AgentConfiguration,
               logger: Logger) throws -> WireGuardApplier? {
        guard wireguard else { return nil }
        guard (1...65535).contains(port) else { throw ArgumentParser.ValidationError("--wg-port must be 1...65535, got \(port)") }
        let folder = try AgentStateFolder(path: stateDir)
        let publicKey = try folder.loadOrCreateWireGuardKey()
        let identity: WireGuardIdentity?
        do {
            identity = try WireGuardIdentity.validated(publicKey: publicKey, endpoints: endpoints, keyField: "wireguard key",
                                                       endpointsField: "--wg-endpoint")
        } catch {
            throw ArgumentParser.ValidationError("\(error)")
        }
        configuration.wireguard = identity
        let applier = try WireGuardApplier(configuration: .init(interface: interfaceName(stateDir: stateDir), listenPort: port,
                                                                privateKeyFile: folder.wireGuardKeyPath),
                                           folder: folder, logger: logger)
        configuration.prepare = { identity in
            let range = identity.meshRange.flatMap { try? Prefix(parsing: $0) } ?? (try! Prefix(parsing: "100.64.0.0/10"))
            let exclusions = WireGuardApplier.addresses(ofURL: controller)
                + [natsURL ?? identity.natsURL].compactMap { $0 }.flatMap(WireGuardApplier.addresses(ofURL:))
            try await applier.start(meshAddress: try IPAddress(parsing: identity.ip), prefixLength: range.length, exclusions: exclusions)
            logger.notice("WireGuard interface up", metadata: [
                "interface": "\(applier.configuration.interface)", "public_key": "\(publicKey)", "mesh_ip": "\(identity.ip)/\(range.length)",
                "kept_off_the_tunnel": "\(exclusions.map(\.description).joined(separator: ","))"])
        }
        return applier
    }
}
