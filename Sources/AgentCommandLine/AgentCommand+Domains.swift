import ArgumentParser
import RouteAgent

/// `routeplane agent`'s domain-route options: how long a resolved address is trusted (the record's TTL, clamped) and how
/// a failed resolution is retried (the last good addresses stay meanwhile).
struct AgentDomainOptions: ParsableArguments {
    @Option(help: "Shortest time (s) a domain route's answer is kept before it is resolved again, whatever its TTL.")
    var domainTtlMin = 30
    @Option(help: "Longest time (s) a domain route's answer is kept before it is resolved again, whatever its TTL.")
    var domainTtlMax = 3600
    @Option(help: "First wait (s) before resolving again after a failure; doubles up to --domain-retry-max.")
    var domainRetryMin = 2
    @Option(help: "Longest wait (s) between retries of a failing name.")
    var domainRetryMax = 300

    func validate() throws {
        guard domainTtlMin >= 1, domainTtlMax >= domainTtlMin else {
            throw ArgumentParser.ValidationError("--domain-ttl-min must be at least 1 and at most --domain-ttl-max")
        }
        guard domainRetryMin >= 1, domainRetryMax >= domainRetryMin else {
            throw ArgumentParser.ValidationError("--domain-retry-min must be at least 1 and at most --domain-retry-max")
        }
    }

    var configuration: DomainResolutionStateMachine.Configuration {
        DomainResolutionStateMachine.Configuration(
            minimumTTL: .seconds(domainTtlMin), maximumTTL: .seconds(domainTtlMax),
            firstRetry: .seconds(domainRetryMin), maximumRetry: .seconds(domainRetryMax))
    }
}
