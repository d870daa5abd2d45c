import ArgumentParser
import ControlPlane
import Foundation
import HTTPAPI
import RouteModel

/// `routeplane serve` options for what a controller admits: the tenants' mesh range, enrollment rate limits and
/// per-tenant quotas. Rate limits are per controller process (N controllers admit N times the rate); quotas are
/// checked in the write path, so they hold across controllers.
struct AdmissionOptions: ParsableArguments {
    @Option(name: .customLong("mesh-range"),
            help: "Mesh range peers get their address in, for every tenant; every controller of a deployment must give the same (default: $ROUTEPLANE_MESH_RANGE or 100.64.0.0/10).")
    var meshRange: String?

    @Option(name: .customLong("enroll-key-burst"), help: "Enrollments with one setup key allowed at once, per controller.")
    var enrollKeyBurst = 20
    @Option(name: .customLong("enroll-key-rate"), help: "Sustained enrollments per second with one setup key, per controller.")
    var enrollKeyRate = 2.0
    @Option(name: .customLong("enroll-source-burst"), help: "Enrollments from one source address allowed at once, per controller.")
    var enrollSourceBurst = 40
    @Option(name: .customLong("enroll-source-rate"), help: "Sustained enrollments per second from one source address, per controller.")
    var enrollSourceRate = 5.0
    @Option(name: .customLong("enroll-tracked-keys"), help: "Most setup keys and most source addresses each enrollment limiter remembers (idle ones are dropped first).")
    var enrollTrackedKeys = 10_000

    @Option(name: .customLong("quota-peers"), help: "Most peers per tenant.") var quotaPeers = TenantQuotas.defaults.peers
    @Option(name: .customLong("quota-routes"), help: "Most routes per tenant.") var quotaRoutes = TenantQuotas.defaults.routes
    @Option(name: .customLong("quota-groups"), help: "Most groups per tenant (the All group included).") var quotaGroups = TenantQuotas.defaults.groups
    @Option(name: .customLong("quota-setup-keys"), help: "Most setup keys per tenant.") var quotaSetupKeys = TenantQuotas.defaults.setupKeys
    @Option(name: .customLong("quota-tokens"), help: "Most API tokens (not revoked) per tenant created over the API.") var quotaTokens = TenantQuotas.defaults.tokens

    func validate() throws {
        for (name, value) in [("--enroll-key-burst", enrollKeyBurst), ("--enroll-source-burst", enrollSourceBurst), ("--enroll-tracked-keys", enrollTrackedKeys)]
        where value < 1 {
            throw ArgumentParser.ValidationError("\(name) must be at least 1, got \(value)")
        }
        for (name, value) in [("--enroll-key-rate", enrollKeyRate), ("--enroll-source-rate", enrollSourceRate)] where !(value > 0) || !value.isFinite {
            throw ArgumentParser.ValidationError("\(name) must be a positive number of enrollments per second, got \(value)")
        }
        for (name, value) in [("--quota-peers", quotaPeers), ("--quota-routes", quotaRoutes), ("--quota-groups", quotaGroups),
                              ("--quota-setup-keys", quotaSetupKeys), ("--quota-tokens", quotaTokens)] where value < 0 {
            throw ArgumentParser.ValidationError("\(name) must be 0 or more, got \(value)")
        }
        _ = try range()
    }

    func range() throws -> Prefix {
        let text = meshRange ?? ProcessInfo.processInfo.environment["ROUTEPLANE_MESH_RANGE"].flatMap { $0.isEmpty ? nil : $0 }
        guard let text else { return MeshAddresses.defaultRange }
        let prefix: Prefix
        do {
            prefix = try Prefix(parsing: text)
        } catch {
            throw ArgumentParser.ValidationError("--mesh-range: \(error)")
        }
        guard prefix.isV4, prefix.length >= 8, prefix.length <= 30 else {
            throw ArgumentParser.ValidationError("--mesh-range must be an IPv4 range from /8 to /30, got \(prefix)")
        }
        return prefix
    }

    /// Sets the mesh range, the enrollment limits and the quotas of `configuration`.
    func apply(to configuration: inout ControllerConfiguration) throws {
        configuration.controlPlane.meshRange = try range()
        configuration.controlPlane.admission = AdmissionSettings(
            enrollPerSetupKey: RateLimit(burst: enrollKeyBurst, perSecond: enrollKeyRate),
            enrollPerSource: RateLimit(burst: enrollSourceBurst, perSecond: enrollSourceRate),
            trackedKeys: enrollTrackedKeys,
            quotas: TenantQuotas(peers: quotaPeers, routes: quotaRoutes, groups: quotaGroups, setupKeys: quotaSetupKeys, tokens: quotaTokens))
    }
}
