import Foundation
import Logging
import ViewDistribution
import NATSAuth
import NATSClient
import Synchronization

// The agent's NATS user credentials: the renewal loop of `AgentRunner` and the state it shares with libnats.

extension AgentRunner {
    /// Keeps the NATS user JWT fresh: renews at half of its remaining life (and at once when NATS refused it), retrying
    /// with back-off while the controller is unreachable. A refusal by the controller (peer deleted) is logged once.
    func renewBusCredentials(_ identity: AgentIdentity) async {
        guard let key = bus.key else { return }
        let client = ControllerClient(baseURL: configuration.controller)
        var retry = Duration.seconds(2)
        var lastFailure = ""
        while !Task.isCancelled {
            let now = Int64(Date().timeIntervalSince1970)
            let expires = bus.jwt.flatMap { try? NATSJWT.decode($0) }?.expires
            // Renew at half of the JWT's own life (exp - iat, both the controller's clock), measured on this clock from
            // when it was received; an agent whose clock runs ahead of the controller's does not renew in a loop.
            let life = expires.map { $0 - (bus.issuedAt ?? now) } ?? 0
            let due = bus.takeRenewRequest() || expires == nil || now >= bus.receivedAt + max(1, life / 2)
            if due {
                do {
                    let issued = try await client.renewBusCredentials(credential: identity.credential, publicKey: key.publicKey)
                    bus.set(key: key, jwt: issued.jwt, fresh: true)
                    bus.refused = false
                    try? folder.saveNATSJWT(issued.jwt)
                    busRenewals += 1
                    logger.info("NATS credentials renewed", metadata: ["expires_at": "\(issued.expiresAt)"])
                    retry = .seconds(2)
                    lastFailure = ""
                } catch {
                    let text = "\(error)"
                    let refused = text.contains("answered 401") || text.contains("answered 403")
                    if refused {
                        // The controller no longer knows this agent's credential (peer deleted) or revoked its NATS user:
                        // asking every few seconds helps nobody. Keep the routes, ask again every 5 minutes.
                        if !bus.refused {
                            logger.error("the controller refused this agent's credentials (peer deleted or revoked); NATS stays off, the current routes stay; re-enroll to come back",
                                         metadata: ["error": "\(text)"])
                        }
                        bus.refused = true
                        retry = .seconds(300)
                    } else if text != lastFailure {
                        logger.warning("could not renew the NATS credentials; retrying", metadata: ["error": "\(text)"])
                    }
                    lastFailure = text
                    await bus.waitForRenewRequest(timeout: retry)
                    if !refused { retry = min(retry * 2, .seconds(60)) }
                    continue
                }
            }
            let lifeNow = (bus.jwt.flatMap { try? NATSJWT.decode($0) }).map { ($0.expires ?? $0.issuedAt) - $0.issuedAt } ?? 120
            let left = max(1, bus.receivedAt + max(1, lifeNow / 2) - Int64(Date().timeIntervalSince1970))
            await bus.waitForRenewRequest(timeout: .seconds(min(left, 3_600)))
        }
    }
}

/// The agent's NATS user key and current JWT, shared with libnats's credential callbacks (which run on its threads),
/// plus a wake-up for "renew now".
final class BusCredentialState: Sendable {
    private struct State {
        var key: NKeyPair?
        var jwt: String?
        var issuedAt: Int64?
        /// When this agent received the JWT (its own clock).
        var receivedAt: Int64 = 0
        var renewRequested = false
        var refused = false
        /// The one waiter of `waitForRenewRequest`, and which wait it belongs to.
        var waiter: CheckedContinuation<Void, Never>?
        var waiterID = 0
        var lastID = 0
        /// A wait whose timer fired (or that was cancelled) before its continuation was installed.
        var expiredID = 0
    }
    private let state = Mutex(State())

    var key: NKeyPair? { state.withLock { $0.key } }
    var jwt: String? { state.withLock { $0.jwt } }
    var issuedAt: Int64? { state.withLock { $0.issuedAt } }
    var receivedAt: Int64 { state.withLock { $0.receivedAt } }
    /// The controller refused to renew (401/403): the agent's peer was deleted or its NATS user revoked.
    var refused: Bool {
        get { state.withLock { $0.refused } }
        set { state.withLock { $0.refused = newValue } }
    }

    /// `fresh`: just received from the controller (its renewal is timed from now on this clock); otherwise loaded from
    /// disk, timed from its issue time as far as this clock can tell.
    func set(key: NKeyPair, jwt: String?, fresh: Bool = false) {
        let issued = jwt.flatMap { try? NATSJWT.decode($0) }?.issuedAt
        let now = Int64(Date().timeIntervalSince1970)
        state.withLock { s in
            s.key = key
            s.jwt = jwt
            s.issuedAt = issued
            s.receivedAt = fresh ? now : min(now, issued ?? now)
        }
    }

    /// What libnats asks for at each connect.
    var credentials: NATSUserCredentials {
        NATSUserCredentials(jwt: { [self] in state.withLock { $0.jwt } },
                            sign: { [self] nonce in state.withLock { $0.key }?.sign(nonce) ?? [] })
    }

    func renewNow() {
        let waiter = state.withLock { s in
            s.renewRequested = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    func takeRenewRequest() -> Bool {
        state.withLock { s in
            defer { s.renewRequested = false }
            return s.renewRequested
        }
    }

    /// Returns after `timeout`, on cancellation, or as soon as `renewNow()` was called (also before this wait began).
    /// One waiter at a time.
    func waitForRenewRequest(timeout: Duration) async {
        let id = state.withLock { s in
            s.lastID += 1
            return s.lastID
        }
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            wake(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.renewRequested || s.expiredID == id { return true }
                    s.waiter = continuation
                    s.waiterID = id
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            wake(id)
        }
        timer.cancel()
    }

    private func wake(_ id: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard s.waiter != nil, s.waiterID == id else {
                s.expiredID = max(s.expiredID, id)
                return nil
            }
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }
}
