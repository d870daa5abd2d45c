import NATSAuth

// When the agent renews its NATS user JWT, how long it waits and what it logs: pure decisions over one `Renewal` enum,
// driven by AgentRunner+BusCredentials.swift (which does the HTTP calls, the waiting and the logging).

/// The agent's NATS user key and the JWT the controller issued for it, set as one unit (a key without a JWT: just
/// enrolled, or the JWT file is missing).
struct BusCredential: Sendable {
    let key: NKeyPair
    let jwt: BusJWT?
}

/// A NATS user JWT as this agent holds it.
struct BusJWT: Sendable, Equatable {
    /// The claims' times, the controller's clock (nil when the JWT does not decode).
    struct Claims: Sendable, Equatable {
        var issuedAt: Int64
        var expires: Int64?
    }
    let text: String
    let claims: Claims?
    /// When this agent received the JWT (its own clock).
    let receivedAt: Int64

    /// `fresh`: just received from the controller (its renewal is timed from now on this clock); otherwise loaded from
    /// disk, timed from its issue time as far as this clock can tell.
    init(text: String, claims: Claims?, now: Int64, fresh: Bool) {
        self.text = text
        self.claims = claims
        receivedAt = fresh ? now : min(now, claims?.issuedAt ?? now)
    }

    init(text: String, now: Int64, fresh: Bool) {
        let decoded = try? NATSJWT.decode(text)
        self.init(text: text, claims: decoded.map { Claims(issuedAt: $0.issuedAt, expires: $0.expires) }, now: now, fresh: fresh)
    }
}

/// Renews at half of the JWT's remaining life, at once when asked (NATS refused or closed the connection), retries
/// with back-off while the controller is unreachable, and backs off for 5 minutes when the controller refuses.
struct BusRenewalStateMachine: Sendable, Equatable {
    /// The last failed renewal: how long to wait before the next attempt, and its message (logged once per change).
    struct Failure: Sendable, Equatable {
        var retry: Duration
        var message: String
    }

    enum Renewal: Sendable, Equatable {
        /// Renew at half of the JWT's life.
        case scheduled
        /// Renew at once; `after`: the failure of the last attempt, if it failed.
        case requested(after: Failure?)
        /// The controller could not be reached (or answered otherwise than a refusal): retry after `retry`.
        case failing(Failure)
        /// The controller refused this agent's credential (401/403: peer deleted or NATS user revoked): ask again
        /// every 5 minutes, and ignore requests to renew at once until a renewal succeeds.
        case refused(since: Int64)
    }

    enum Step: Sendable, Equatable {
        case renew
        case wait(Duration)
    }

    /// What to log after a failed renewal.
    enum Log: Sendable, Equatable {
        /// The controller refused (logged as an error once, when it starts refusing).
        case refused
        /// Another failure (logged as a warning when its message changes).
        case failing
    }

    struct FailureAction: Sendable, Equatable {
        var log: Log?
        /// How long to wait before the next attempt (a request to renew at once cuts it short, unless refused).
        var wait: Duration
    }

    static let firstRetry = Duration.seconds(2)
    static let maximumRetry = Duration.seconds(60)
    static let refusedRetry = Duration.seconds(300)

    private(set) var renewal: Renewal = .scheduled

    var refused: Bool {
        if case .refused = renewal { return true }
        return false
    }

    /// A request to renew pending (a wait for it returns at once).
    var renewRequested: Bool {
        if case .requested = renewal { return true }
        return false
    }

    /// Someone asks to renew at once. Returns whether to wake the renewal loop (not while refused: the controller
    /// said no, and asking it again at once helps nobody).
    mutating func requestRenewal() -> Bool {
        switch renewal {
        case .refused: return false
        case .scheduled: renewal = .requested(after: nil)
        case .failing(let failure): renewal = .requested(after: failure)
        case .requested: break
        }
        return true
    }

    /// The top of the renewal loop: renew now (when asked, when the JWT is missing or has no expiry, or once half of its
    /// life has passed), or wait. Renewing takes a pending request.
    mutating func next(jwt: BusJWT?, now: Int64) -> Step {
        if case .requested(let failure) = renewal {
            renewal = failure.map { .failing($0) } ?? .scheduled
            return .renew
        }
        guard let jwt, let claims = jwt.claims, let expires = claims.expires else { return .renew }
        // Half of the JWT's own life (exp - iat, both the controller's clock), measured on this clock from when it was
        // received: an agent whose clock runs ahead of the controller's does not renew in a loop.
        let life = expires - claims.issuedAt
        if now >= jwt.receivedAt + max(1, life / 2) { return .renew }
        return .wait(Self.pause(jwt: jwt, now: now))
    }

    /// The controller issued a new JWT. A request to renew that came during the call stays pending.
    mutating func renewed() {
        renewal = renewRequested ? .requested(after: nil) : .scheduled
    }

    /// The renewal failed with `message`.
    mutating func failed(_ message: String, now: Int64) -> FailureAction {
        let last: Failure?
        var since: Int64?
        switch renewal {
        case .scheduled: last = nil
        case .requested(let failure): last = failure
        case .failing(let failure): last = failure
        case .refused(let s):
            since = s
            last = Failure(retry: Self.refusedRetry, message: "")
        }
        if Self.isRefusal(message) {
            renewal = .refused(since: since ?? now)
            return FailureAction(log: since == nil ? .refused : nil, wait: Self.refusedRetry)
        }
        let wait = last?.retry ?? Self.firstRetry
        let failure = Failure(retry: min(wait * 2, Self.maximumRetry), message: message)
        renewal = renewRequested ? .requested(after: failure) : .failing(failure)
        return FailureAction(log: message != (last?.message ?? "") ? .failing : nil, wait: wait)
    }

    /// The controller answered 401 or 403 (see `ControllerClient`'s errors).
    static func isRefusal(_ message: String) -> Bool {
        message.contains("answered 401") || message.contains("answered 403")
    }

    /// How long to wait after a renewal, or while the JWT is young: until half of its life, at least 1 s, at most 1 h.
    static func pause(jwt: BusJWT?, now: Int64) -> Duration {
        let life = jwt?.claims.map { ($0.expires ?? $0.issuedAt) - $0.issuedAt } ?? 120
        let left = max(1, (jwt?.receivedAt ?? now) + max(1, life / 2) - now)
        return .seconds(min(left, 3_600))
    }
}
