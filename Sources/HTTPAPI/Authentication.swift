import ControlPlane
import Hummingbird
import Synchronization

/// Authenticates a request before its handler runs, so before any of its body is read: the caller goes into
/// `context.principal`, where `ResourceAccess` takes it from. Added to every resource's routes (API tokens) and to the
/// agent's own routes (peer credentials); only `/healthz`, `/metrics`, `/api/openapi.json` and enrollment (whose
/// credential, the setup key, is in its body) are served without it.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let access: ResourceAccess
    let kind: CredentialStore.Kind
    /// `Idempotency-Key` on writes, checked right after authentication (the key belongs to the caller).
    var idempotency: IdempotencyGate? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let principal = try await access.authenticate(request, as: kind)
        context.principal = principal
        if let idempotency { return try await idempotency.handle(request, context: context, principal: principal, next: next) }
        return try await next(request, context)
    }
}

extension APIRequestContext {
    /// The authenticated caller (`AuthenticationMiddleware`); 401 when the route is not behind it.
    func caller() throws(APIError) -> Principal {
        guard let principal else { throw APIError(.unauthorized, "no authorization header; send \"Authorization: Token <token>\"", field: "Authorization") }
        return principal
    }
}

/// Recently presented secrets that matched no credential, by the SHA-256 of kind and secret (never the secret itself),
/// each for `ttl`, at most `capacity` of them (the oldest forgotten first). A burst of random tokens then costs one
/// database lookup per distinct token per `ttl`, and a repeated one none. Creating a credential needs no invalidation:
/// its secret is new, so nobody could have presented it before.
struct NegativeTokenCache: Equatable {
    /// Hex SHA-256 of the credential kind and the secret.
    typealias Key = String

    let ttl: Duration
    let capacity: Int
    /// Expiry of each remembered key.
    private(set) var expiries: [Key: ContinuousClock.Instant] = [:]
    /// Keys in the order they were remembered (with the expiry they were remembered with): expiries only grow along it,
    /// so the front holds the first to expire. Entries whose key was remembered again later are skipped when reached.
    private var order: [(key: Key, expiry: ContinuousClock.Instant)] = []
    private var front = 0

    init(ttl: Duration, capacity: Int) {
        self.ttl = ttl
        self.capacity = max(capacity, 1)
    }

    static func == (a: Self, b: Self) -> Bool { a.ttl == b.ttl && a.capacity == b.capacity && a.expiries == b.expiries }

    static func key(secret: String, kind: String) -> Key {
        Secrets.hash(kind + "\u{0}" + secret)
    }

    /// Keys held (expired ones go at the next insertion).
    var count: Int { expiries.count }

    /// Whether `key` was remembered less than `ttl` ago.
    func contains(_ key: Key, now: ContinuousClock.Instant) -> Bool {
        expiries[key].map { $0 > now } ?? false
    }

    mutating func insert(_ key: Key, now: ContinuousClock.Instant) {
        forgetExpired(now: now)
        while expiries.count >= capacity, expiries[key] == nil, front < order.count { forgetOldest() }
        let expiry = now + ttl
        expiries[key] = expiry
        order.append((key, expiry))
    }

    private mutating func forgetExpired(now: ContinuousClock.Instant) {
        while front < order.count, order[front].expiry <= now { forgetOldest() }
    }

    private mutating func forgetOldest() {
        let (key, expiry) = order[front]
        front += 1
        if expiries[key] == expiry { expiries[key] = nil }
        if front > 1024, front * 2 > order.count {
            order.removeFirst(front)
            front = 0
        }
    }

    /// One cache for the whole server, behind a lock (requests run on many threads).
    final class Shared: Sendable {
        private let cache: Mutex<NegativeTokenCache>

        init(ttl: Duration, capacity: Int) { cache = Mutex(NegativeTokenCache(ttl: ttl, capacity: capacity)) }

        func contains(_ key: Key) -> Bool { cache.withLock { $0.contains(key, now: .now) } }
        func insert(_ key: Key) { cache.withLock { $0.insert(key, now: .now) } }
    }
}
