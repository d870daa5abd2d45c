import RouteModel

/// Domain routes on the client: which names to resolve, when, and which addresses each has now. Pure; the shell
/// (`AgentRunner`) performs `.resolve(name)` with the system resolver (`SystemResolver`) and feeds the outcome back.
///
/// Rules:
/// - Exact names only. A wildcard (`*.example.com`) cannot be resolved by the agent (it would need to see the
///   client's DNS queries); it is `unsupported`, never resolved, and the API refuses new ones (422, field `domains`).
/// - A name is resolved as soon as it appears, then again when its answer expires: the smallest TTL of its A/AAAA
///   records, clamped to [`minimumTTL`, `maximumTTL`] (an answer without a TTL counts as `minimumTTL`).
/// - A failure (timeout, SERVFAIL, no resolver) keeps the last good addresses and retries after `firstRetry`, doubling up
///   to `maximumRetry`. A definite answer without addresses (NXDOMAIN, no A/AAAA) is an answer: no addresses.
/// - With `keep_route`, addresses of earlier answers stay (newest first, at most `maximumAddresses` per name);
///   without it a name has exactly the addresses of its last good answer.
/// - A resolution that never reports back is given up after `resolveTimeout` (counted as a failure).
public struct DomainResolutionStateMachine: Sendable {
    public typealias Instant = ContinuousClock.Instant

    public struct Configuration: Hashable, Sendable {
        public var minimumTTL: Duration
        public var maximumTTL: Duration
        public var firstRetry: Duration
        public var maximumRetry: Duration
        public var maximumAddresses: Int
        public var resolveTimeout: Duration

        public init(minimumTTL: Duration = .seconds(30), maximumTTL: Duration = .seconds(3600), firstRetry: Duration = .seconds(2),
                    maximumRetry: Duration = .seconds(300), maximumAddresses: Int = 64, resolveTimeout: Duration = .seconds(60)) {
            precondition(minimumTTL > .zero && maximumTTL >= minimumTTL, "domain TTL bounds: 0 < minimum <= maximum")
            precondition(firstRetry > .zero && maximumRetry >= firstRetry, "domain retry bounds: 0 < first <= maximum")
            precondition(maximumAddresses > 0, "at least one address per name")
            self.minimumTTL = minimumTTL
            self.maximumTTL = maximumTTL
            self.firstRetry = firstRetry
            self.maximumRetry = maximumRetry
            self.maximumAddresses = maximumAddresses
            self.resolveTimeout = resolveTimeout
        }

        /// The TTL an answer is trusted for: its own, clamped.
        public func clamp(_ ttl: Duration?) -> Duration {
            guard let ttl else { return minimumTTL }
            return min(max(ttl, minimumTTL), maximumTTL)
        }

        /// The wait before retry number `failures` (1 = the first retry): doubling, bounded.
        public func retryDelay(afterFailures failures: Int) -> Duration {
            var d = firstRetry
            var i = 1
            while i < failures && d < maximumRetry {
                d = d * 2
                i += 1
            }
            return min(d, maximumRetry)
        }
    }

    /// The addresses a name has, from its answers.
    public struct Addresses: Hashable, Sendable {
        /// Newest answer's addresses first (with keep_route, older ones after them).
        public var addresses: [IPAddress]
        public var answeredAt: Instant
        /// The clamped TTL of the last answer.
        public var ttl: Duration
    }

    /// One name's state.
    public enum NameState: Hashable, Sendable {
        /// A resolution is running since `since`; `last`: what the name has meanwhile.
        case resolving(since: Instant, last: Addresses?, failures: Int)
        /// Answered; asked again at `refreshAt`.
        case resolved(Addresses, refreshAt: Instant)
        /// The last resolution failed (`failures` in a row); the last good addresses stay; asked again at `retryAt`.
        case failed(last: Addresses?, failures: Int, retryAt: Instant, error: String)
        /// A wildcard: not resolved by the agent.
        case unsupported

        public var addresses: [IPAddress] {
            switch self {
            case .unsupported: []
            case .resolving(_, let last, _), .failed(let last, _, _, _): last?.addresses ?? []
            case .resolved(let a, _): a.addresses
            }
        }
    }

    public enum Outcome: Hashable, Sendable {
        /// The resolver answered (possibly with no address); `ttl`: the smallest TTL of the records, if known.
        case answered([IPAddress], ttl: Duration?)
        case failed(String)
    }

    public enum Action: Hashable, Sendable {
        case resolve(String)
    }

    public let configuration: Configuration
    public private(set) var names: [String: NameState] = [:]
    /// Names whose routes keep earlier addresses (their HA set has `keep_route`).
    public private(set) var keepRoute: Set<String> = []

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    public static func isWildcard(_ name: String) -> Bool { name.hasPrefix("*.") }

    /// The names the view's domain routes hold now (name → keep_route). New names are resolved at once; names gone are
    /// forgotten (their routes go with their HA set).
    public mutating func namesChanged(_ wanted: [String: Bool], now: Instant) -> [Action] {
        for name in names.keys where wanted[name] == nil { names[name] = nil }
        keepRoute = Set(wanted.filter(\.value).keys)
        var actions: [Action] = []
        for name in wanted.keys.sorted() where names[name] == nil {
            if Self.isWildcard(name) {
                names[name] = .unsupported
            } else {
                names[name] = .resolving(since: now, last: nil, failures: 0)
                actions.append(.resolve(name))
            }
        }
        return actions
    }

    /// The resolver's outcome for `name`. Returns true when the name's addresses changed (the routes must follow).
    public mutating func resolved(_ name: String, _ outcome: Outcome, now: Instant) -> Bool {
        guard let state = names[name], case .resolving(_, let last, let failures) = state else { return false }
        let before = state.addresses
        switch outcome {
        case .answered(let fresh, let ttl):
            let clamped = configuration.clamp(ttl)
            var list = Self.unique(fresh)
            if keepRoute.contains(name), let last {
                for a in last.addresses where !list.contains(a) { list.append(a) }
            }
            if list.count > configuration.maximumAddresses { list.removeLast(list.count - configuration.maximumAddresses) }
            names[name] = .resolved(Addresses(addresses: list, answeredAt: now, ttl: clamped), refreshAt: now + clamped)
        case .failed(let error):
            let n = failures + 1
            names[name] = .failed(last: last, failures: n, retryAt: now + configuration.retryDelay(afterFailures: n), error: error)
        }
        return names[name]!.addresses != before
    }

    /// Names whose time came: answers expired, retries due, resolutions that never reported back (then failed: returns
    /// `changed` false, since a failure keeps the addresses).
    public mutating func tick(now: Instant) -> [Action] {
        var actions: [Action] = []
        for name in names.keys.sorted() {
            switch names[name]! {
            case .resolved(let a, let refreshAt) where now >= refreshAt:
                names[name] = .resolving(since: now, last: a, failures: 0)
                actions.append(.resolve(name))
            case .failed(let last, let failures, let retryAt, _) where now >= retryAt:
                names[name] = .resolving(since: now, last: last, failures: failures)
                actions.append(.resolve(name))
            case .resolving(let since, let last, let failures) where now - since >= configuration.resolveTimeout:
                let n = failures + 1
                names[name] = .failed(last: last, failures: n, retryAt: now + configuration.retryDelay(afterFailures: n),
                                      error: "no answer within \(configuration.resolveTimeout)")
            default:
                break
            }
        }
        return actions
    }

    public func addresses(of name: String) -> [IPAddress] { names[name]?.addresses ?? [] }

    /// The earliest time `tick` has work.
    public var nextDeadline: Instant? {
        names.values.compactMap { state -> Instant? in
            switch state {
            case .resolved(_, let at), .failed(_, _, let at, _): at
            case .resolving(let since, _, _): since + configuration.resolveTimeout
            case .unsupported: nil
            }
        }.min()
    }

    static func unique(_ list: [IPAddress]) -> [IPAddress] {
        var seen = Set<IPAddress>()
        return list.filter { seen.insert($0).inserted }
    }
}
