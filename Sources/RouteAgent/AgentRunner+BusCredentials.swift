import Foundation
import Logging
import ViewTransport
import NATSAuth
import NATSClient
import Synchronization

// The agent's NATS user credentials: the renewal loop of `AgentRunner` and the state it shares with libnats. The
// decisions (when to renew, how long to wait, what to log) are BusRenewalStateMachine's.

extension AgentRunner {
    /// Keeps the NATS user JWT fresh: renews at half of its remaining life (and at once when NATS refused it), retrying
    /// with back-off while the controller is unreachable. A refusal by the controller (peer deleted) is logged once.
    func renewBusCredentials(_ identity: AgentIdentity) async {
        guard let key = bus.key else { return }
        let client = configuration.controllerClient
        while !Task.isCancelled {
            switch bus.next(now: Int64(Date().timeIntervalSince1970)) {
            case .wait(let pause):
                await bus.waitForRenewRequest(timeout: pause)
            case .renew:
                do {
                    let issued = try await client.renewBusCredentials(credential: identity.credential, publicKey: key.publicKey)
                    bus.renewed(key: key, jwt: issued.jwt)
                    try? folder.saveNATSJWT(issued.jwt)
                    busRenewals += 1
                    logger.info("NATS credentials renewed", metadata: ["expires_at": "\(issued.expiresAt)"])
                    await bus.waitForRenewRequest(timeout: bus.pause(now: Int64(Date().timeIntervalSince1970)))
                } catch {
                    let text = "\(error)"
                    let action = bus.failed(text, now: Int64(Date().timeIntervalSince1970))
                    switch action.log {
                    case .refused:
                        // The controller no longer knows this agent's credential (peer deleted) or revoked its NATS user:
                        // asking every few seconds helps nobody. Keep the routes, ask again every 5 minutes.
                        logger.error("the controller refused this agent's credentials (peer deleted or revoked); NATS stays off, the current routes stay; re-enroll to come back",
                                     metadata: ["error": "\(text)"])
                    case .failing:
                        logger.warning("could not renew the NATS credentials; retrying", metadata: ["error": "\(text)"])
                    case nil:
                        break
                    }
                    await bus.waitForRenewRequest(timeout: action.wait)
                }
            }
        }
    }
}

/// The agent's NATS user key and current JWT, shared with libnats's credential callbacks (which run on its threads),
/// the renewal state machine, and the renewal loop's wait with its wake-up for "renew now".
final class BusCredentialState: Sendable {
    /// The renewal loop's wait (one at a time), by the id of the wait it belongs to.
    private enum Wait {
        case none
        case waiting(id: Int, CheckedContinuation<Void, Never>)
        /// The wait's timer fired (or it was cancelled) before its continuation was installed.
        case expired(id: Int)
    }
    private struct State {
        var credential: BusCredential?
        var machine = BusRenewalStateMachine()
        var wait = Wait.none
        /// The id of the last wait begun.
        var lastWaitID = 0
    }
    private let state = Mutex(State())

    var key: NKeyPair? { state.withLock { $0.credential?.key } }
    /// The controller refused to renew (401/403): the agent's peer was deleted or its NATS user revoked.
    var refused: Bool { state.withLock { $0.machine.refused } }

    /// Sets the key and the JWT loaded from disk, its renewal timed from its issue time as far as this clock can tell.
    func set(key: NKeyPair, jwt: String?) {
        let now = Int64(Date().timeIntervalSince1970)
        let credential = BusCredential(key: key, jwt: jwt.map { BusJWT(text: $0, now: now, fresh: false) })
        state.withLock { $0.credential = credential }
    }

    /// The controller issued `jwt` just now: its renewal is timed from now on this clock.
    func renewed(key: NKeyPair, jwt: String) {
        let now = Int64(Date().timeIntervalSince1970)
        let credential = BusCredential(key: key, jwt: BusJWT(text: jwt, now: now, fresh: true))
        state.withLock { s in
            s.credential = credential
            s.machine.renewed()
        }
    }

    func next(now: Int64) -> BusRenewalStateMachine.Step {
        state.withLock { s in s.machine.next(jwt: s.credential?.jwt, now: now) }
    }

    func failed(_ message: String, now: Int64) -> BusRenewalStateMachine.FailureAction {
        state.withLock { $0.machine.failed(message, now: now) }
    }

    func pause(now: Int64) -> Duration {
        BusRenewalStateMachine.pause(jwt: state.withLock { $0.credential?.jwt }, now: now)
    }

    /// What libnats asks for at each connect.
    var credentials: NATSUserCredentials {
        NATSUserCredentials(jwt: { [self] in state.withLock { $0.credential?.jwt?.text } },
                            sign: { [self] nonce in state.withLock { $0.credential?.key }?.sign(nonce) ?? [] })
    }

    /// Asks the renewal loop to renew at once; ignored while the controller refuses this agent.
    func renewNow() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard s.machine.requestRenewal(), case .waiting(_, let continuation) = s.wait else { return nil }
            s.wait = .none
            return continuation
        }
        waiter?.resume()
    }

    /// Returns after `timeout`, on cancellation, or as soon as `renewNow()` was called (also before this wait began).
    /// One waiter at a time.
    func waitForRenewRequest(timeout: Duration) async {
        let id = state.withLock { s in
            s.lastWaitID += 1
            return s.lastWaitID
        }
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            wake(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.machine.renewRequested { return true }
                    if case .expired(id) = s.wait { return true }
                    s.wait = .waiting(id: id, continuation)
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
            switch s.wait {
            case .waiting(id, let continuation):
                s.wait = .none
                return continuation
            case .waiting:
                // A late timer of an earlier wait.
                return nil
            case .none:
                s.wait = .expired(id: id)
                return nil
            case .expired(let expired):
                s.wait = .expired(id: max(expired, id))
                return nil
            }
        }
        waiter?.resume()
    }
}
