// How the agent reaches the controller and NATS: which URLs it accepts in clear text (loopback only, unless
// --insecure), and the CA files it trusts for HTTPS and NATS over TLS. The URL check is a pure function.

import Foundation
import RouteModel
import NATSClient

/// The agent's transport settings (`routeplane agent --insecure --controller-ca --nats-ca`).
public struct AgentTransport: Sendable, Equatable {
    /// Allow `http://` and `nats://` to hosts other than loopback (a closed lab network, tests in namespaces).
    public var insecure: Bool
    /// PEM CA file to verify the controller's HTTPS certificate (nil: the system's trust store).
    public var controllerCA: String?
    /// PEM CA file to verify the NATS server's certificate; given, NATS is spoken over TLS even on a `nats://` URL.
    public var natsCA: String?

    public init(insecure: Bool = false, controllerCA: String? = nil, natsCA: String? = nil) {
        self.insecure = insecure
        self.controllerCA = controllerCA
        self.natsCA = natsCA
    }

    /// libnats's TLS settings for `url` (nil: plain, only for `nats://` without a CA file).
    public func natsTLS(url: String) -> NATSTLSSettings? {
        if let natsCA { return NATSTLSSettings(caFile: natsCA, required: true) }
        let servers = NATSConfiguration(url: url, name: "").servers
        return NATSTLSSettings.anyTLSURL(servers) ? NATSTLSSettings(required: true) : nil
    }

    /// Checks the controller URL and a NATS URL (a comma-separated list) against the clear-text rule; throws the first
    /// refusal, naming the URL and the way out.
    public func check(controller: String, nats: String?) throws {
        if case .refused(let reason) = TransportCheck.evaluate(url: controller, option: "--controller", encryptedAnyway: false, insecure: insecure) {
            throw AgentError.insecureTransport(reason)
        }
        guard let nats else { return }
        for server in NATSConfiguration(url: nats, name: "").servers {
            if case .refused(let reason) = TransportCheck.evaluate(url: server, option: "the NATS URL", encryptedAnyway: natsCA != nil,
                                                                  insecure: insecure) {
                throw AgentError.insecureTransport(reason)
            }
        }
    }
}

/// The verdict on one URL the agent would talk to (pure: parses the URL, no name resolution).
public enum TransportCheck: Equatable, Sendable {
    /// `https://` or `tls://` (or TLS forced by a CA file).
    case encrypted
    /// Clear text to this machine only (127.0.0.0/8, ::1, localhost).
    case loopback
    /// Clear text to another host, allowed by `--insecure`.
    case insecureAllowed
    /// Refused, with the message to show.
    case refused(String)

    /// `option`: how the user gave the URL (`--controller`), for the message. `encryptedAnyway`: TLS is used whatever
    /// the scheme says (NATS with a CA file).
    public static func evaluate(url: String, option: String, encryptedAnyway: Bool, insecure: Bool) -> TransportCheck {
        // A NATS server list (comma-separated URLs): every server is checked; the weakest verdict is the list's.
        if url.contains(",") {
            let verdicts = url.split(separator: ",", omittingEmptySubsequences: false).map {
                evaluate(url: String($0).trimmingCharacters(in: .whitespaces), option: option, encryptedAnyway: encryptedAnyway, insecure: insecure)
            }
            if let refused = verdicts.first(where: { if case .refused = $0 { true } else { false } }) { return refused }
            for weakest in [TransportCheck.insecureAllowed, .loopback] where verdicts.contains(weakest) { return weakest }
            return .encrypted
        }
        guard let parts = parse(url) else { return .refused("\(option) \(url) is not a URL (scheme://host[:port])") }
        switch parts.scheme {
        case "https", "tls": return .encrypted
        case "http", "nats":
            if encryptedAnyway { return .encrypted }
            if isLoopback(host: parts.host) { return .loopback }
            if insecure { return .insecureAllowed }
            return .refused("refusing unencrypted \(parts.scheme):// to \(parts.host) (\(option) \(url)): use \(parts.scheme == "http" ? "https" : "tls")://, "
                            + "or pass --insecure to allow clear text to a host other than loopback")
        default:
            return .refused("\(option) \(url): unsupported scheme \(parts.scheme):// (use https:// for the controller, tls:// or nats:// for NATS)")
        }
    }

    /// Scheme (lowercased) and host (without brackets or port) of `scheme://[user@]host[:port][/…]`.
    static func parse(_ url: String) -> (scheme: String, host: String)? {
        guard let separator = url.range(of: "://") else { return nil }
        let scheme = url[..<separator.lowerBound].lowercased()
        var authority = url[separator.upperBound...]
        if let end = authority.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) { authority = authority[..<end] }
        guard !scheme.isEmpty, let host = URLAuthority.host(authority) else { return nil }
        return (scheme, host)
    }

    /// 127.0.0.0/8, ::1 (any spelling), ::ffff:127.x.x.x, `localhost` and names under `.localhost` (RFC 6761).
    public static func isLoopback(host: String) -> Bool {
        let name = host.hasSuffix(".") ? String(host.dropLast()).lowercased() : host.lowercased()
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, name, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, name, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
        let mapped = bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff
        return mapped && bytes[12] == 127
    }
}

extension AgentConfiguration {
    /// A client of the controller trusting `transport.controllerCA`.
    var controllerClient: ControllerClient { ControllerClient(baseURL: controller, caFile: transport.controllerCA) }
}
