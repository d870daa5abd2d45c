import ArgumentParser
import Foundation
import HTTPAPI

/// `routeplane serve`'s HTTP limits: how long a client may take to send a request, how long a connection may sit idle,
/// how long an unknown token is answered from memory. Each option falls back to an environment variable, then to
/// `HTTPServerSettings`'s default.
struct HTTPServerOptions: ParsableArguments {
    @Option(name: .customLong("http-idle-timeout"), help: "Seconds a connection may stay idle between requests (default: $ROUTEPLANE_HTTP_IDLE_TIMEOUT or 30).")
    var idleTimeout: Double?

    @Option(name: .customLong("http-head-timeout"), help: "Seconds from a request's first byte to its complete headers (default: $ROUTEPLANE_HTTP_HEAD_TIMEOUT or 10).")
    var headTimeout: Double?

    @Option(name: .customLong("http-body-timeout"), help: "Seconds from a request's headers to the end of its body (default: $ROUTEPLANE_HTTP_BODY_TIMEOUT or 30).")
    var bodyTimeout: Double?

    @Option(name: .customLong("negative-token-ttl"), help: "Seconds an unknown token is answered 401 without a database lookup (default: $ROUTEPLANE_NEGATIVE_TOKEN_TTL or 10; 0 disables).")
    var negativeTokenTTL: Double?

    /// The settings these options (or their environment variables) give.
    func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> HTTPServerSettings {
        var settings = HTTPServerSettings()
        func seconds(_ value: Double?, _ variable: String, _ option: String, minimum: Double) throws -> Duration? {
            let text = value.map { String($0) } ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 }
            guard let text else { return nil }
            guard let n = Double(text), n.isFinite, n >= minimum, n <= 3_600 else {
                throw ValidationError("\(option) (or \(variable)) must be a number of seconds from \(minimum) to 3600, got \(text)")
            }
            return .milliseconds(Int64(n * 1_000))
        }
        if let d = try seconds(idleTimeout, "ROUTEPLANE_HTTP_IDLE_TIMEOUT", "--http-idle-timeout", minimum: 0.1) { settings.idleTimeout = d }
        if let d = try seconds(headTimeout, "ROUTEPLANE_HTTP_HEAD_TIMEOUT", "--http-head-timeout", minimum: 0.1) { settings.headTimeout = d }
        if let d = try seconds(bodyTimeout, "ROUTEPLANE_HTTP_BODY_TIMEOUT", "--http-body-timeout", minimum: 0.1) { settings.bodyTimeout = d }
        if let d = try seconds(negativeTokenTTL, "ROUTEPLANE_NEGATIVE_TOKEN_TTL", "--negative-token-ttl", minimum: 0) { settings.negativeTokenTTL = d }
        return settings
    }
}
