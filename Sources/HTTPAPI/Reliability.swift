import ControlPlane
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import RouteModel
import Synchronization

/// What `routeplane serve` sets for retries and start-up: how long idempotency keys live, the gate that answers 503
/// while the controller waits for PostgreSQL at start, and the test-only lost-write switch.
public struct ReliabilitySettings: Sendable {
    /// How long an `Idempotency-Key` is remembered (24 h, Stripe's).
    public var idempotencyRetention = IdempotencyKeys.defaultRetention
    /// How long a claimed key holds before a retry may take it over (its first request died).
    public var idempotencyLease = IdempotencyKeys.defaultLease
    /// Closed until the database answered and migrations ran; nil = open from the start (tests, tools).
    public var startGate: StartGate?
    /// TEST ONLY: acknowledges one write without committing it (see `LostWriteSwitch`).
    public var lostWrite: LostWriteSwitch?
    public init() {}
}

/// Closed while the controller waits for something at start (PostgreSQL): every request gets 503 + `Retry-After`,
/// `/healthz` says what it waits for. Opened once, never closed again.
public final class StartGate: Sendable {
    private let reason = Mutex<String?>(nil)

    public init(waitingFor: String) { reason.withLock { $0 = waitingFor } }

    /// What the controller waits for (nil once open).
    public var waitingFor: String? { reason.withLock { $0 } }
    public func update(waitingFor: String) { reason.withLock { if $0 != nil { $0 = waitingFor } } }
    public func open() { reason.withLock { $0 = nil } }

    /// Returns once the gate is open (or the task is cancelled).
    public func wait() async {
        while waitingFor != nil, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
    }
}

/// Answers every request while the start gate is closed: `/healthz` with `{"status":"starting","checks":{"database":"starting"},
/// "waiting_for":…}`,
/// anything else 503 + `Retry-After: 2` (no handler runs, nothing touches the database).
struct StartGateMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let gate: StartGate?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let waiting = gate?.waitingFor else { return try await next(request, context) }
        if request.uri.path == "/healthz" {
            struct Health: Encodable { var status: String; var checks: [String: String]; var waiting_for: String }
            var response = jsonResponse(Health(status: "starting", checks: ["database": "starting"], waiting_for: waiting), status: .serviceUnavailable)
            response.headers[.retryAfter] = "2"
            return response
        }
        throw APIError(.unavailable, "the controller is starting (\(waiting)); retry shortly", retryAfter: 2)
    }
}

/// TEST ONLY — loses data on purpose. Acknowledges the `loseWrite`-th write of this process (counting from 1) with the
/// 2xx the real write would have answered, and commits nothing. It exists so the chaos run can prove that its checks
/// catch a lost acknowledged write. `routeplane serve` accepts it only together with an explicit second switch, and
/// logs it at start and when it fires.
public final class LostWriteSwitch: Sendable {
    public let loseWrite: Int
    private let count = Mutex(0)

    public init(loseWrite: Int) { self.loseWrite = max(1, loseWrite) }

    /// True exactly once: for the `loseWrite`-th call.
    public func fires() -> Bool { count.withLock { $0 += 1; return $0 == loseWrite } }
}

extension ResourceAccess {
    /// The lost-write switch's turn: the write decided as for real (same snapshot, If-Match, quotas) and answered, but
    /// never appended. nil when the switch is off or not firing.
    func loseThisWrite(_ context: APIRequestContext, ifMatch object: ObjectRef?, decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent],
                       answer: @Sendable (WriteResult) throws -> JSONAnswer) async throws -> Response? {
        guard let lost = lostWrite, lost.fires() else { return nil }
        let principal = try context.caller()
        let result = try await controlPlane.writer.unappended(tenant: principal.tenant, ifMatch: object, ifMatchVersion: nil, decide: decide)
        controlPlane.logger.critical("TEST SWITCH --test-lose-write: acknowledging this write WITHOUT committing it",
                                     metadata: ["tenant": "\(principal.tenant)", "request_id": "\(context.requestID)", "write": "\(lost.loseWrite)"])
        return try answer(result).response
    }
}
