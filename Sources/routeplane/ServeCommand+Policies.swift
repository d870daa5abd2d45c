import ArgumentParser
import ControlPlane
import HTTPAPI
import RouteModel

/// `routeplane serve` options for access-control policies: how many one tenant may hold.
struct PolicyOptions: ParsableArguments {
    @Option(name: .customLong("quota-policies"), help: "Most access-control policies per tenant.")
    var quotaPolicies = TenantQuotas.defaults.policies

    func validate() throws {
        if quotaPolicies < 0 { throw ArgumentParser.ValidationError("--quota-policies must be 0 or more, got \(quotaPolicies)") }
    }

    /// Sets the policy quota of `configuration` (after `AdmissionOptions.apply`, which sets the other quotas).
    func apply(to configuration: inout ControllerConfiguration) {
        configuration.controlPlane.admission?.quotas.policies = quotaPolicies
    }
}
