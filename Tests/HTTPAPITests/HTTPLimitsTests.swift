import ControlPlane
import EventStore
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import PostgresClient
import RouteModel
import Synchronization
import Testing
import TestSupport

/// The HTTP layer facing strangers, over real TCP: slow clients dropped, authentication before any body, unknown tokens
/// answered from memory, `/healthz` and `/metrics` without internals or per-request SQL, shutdown answered 503.
@Suite("HTTP limits: timeouts, authentication first, health, metrics, shutdown", .serialized)
struct HTTPLimitsTests {
    static func controller(_ store: EventStore, _ http: HTTPServerSettings, healthChecks: [String: @Sendable () async -> String?] = [:]) -> APIServer {
        var configuration = ControllerConfiguration(maxBodyBytes: 64 * 1024, projectionWait: .milliseconds(100))
        configuration.http = http
        var logger = Logger(label: "test.http-limits")
        logger.logLevel = ProcessInfo.processInfo.environment["HTTP_LIMITS_LOG"] == nil ? .critical : .trace
        return APIServer(configuration: configuration, store: store, logger: logger, healthChecks: healthChecks)
    }

    static func withServer(_ http: HTTPServerSettings, maxConnections: Int = 8, healthChecks: [String: @Sendable () async -> String?] = [:],
                           _ body: (ServedController, TestDatabase) async throws -> Void) async throws {
        let db = try await TestDatabase.create(maxConnections: maxConnections)
        // The deadlines under test are timers on the server's event loop: one of its own (see `ServedController.start`).
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let served = try await ServedController.start(controller(db.store, http, healthChecks: healthChecks), eventLoopGroup: group)
        do {
            try await body(served, db)
        } catch {
            await served.stop()
            try? await group.shutdownGracefully()
            await db.drop()
            throw error
        }
        await served.stop()
        try? await group.shutdownGracefully()
        await db.drop()
    }

    @Test("slow-loris: a client trickling its request head is dropped after the head timeout", .timeLimit(.minutes(1)))
    func slowHead() async throws {
        try await Self.withServer(HTTPServerSettings(idleTimeout: .seconds(30), headTimeout: .seconds(1), bodyTimeout: .seconds(30))) { served, _ in
            let connection = try await RawConnection.open(port: served.port)
            let head = "GET /api/routes HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Padding: slow-loris\r\n", count: 50) + "\r\n"
            let result = await connection.trickle(head, every: .milliseconds(100), limit: .seconds(12))
            #expect(result.closed, "the server kept a trickling client for \(result.after)")
            #expect(result.after >= .milliseconds(900) && result.after < .seconds(8), "closed after \(result.after), head timeout 1 s")
            #expect(try await HTTPLimitsClient(port: served.port).get("/metrics").text.contains(#"routeplane_http_request_timeouts_total{phase="head"} 1"#))
        }
    }

    @Test("a client trickling its request body is dropped after the body timeout", .timeLimit(.minutes(1)))
    func slowBody() async throws {
        try await Self.withServer(HTTPServerSettings(idleTimeout: .seconds(30), headTimeout: .seconds(1), bodyTimeout: .milliseconds(1500))) { served, _ in
            let tenant = try await served.controller.controlPlane.createTenant(name: "slow")
            let token = try await served.controller.controlPlane.createToken(tenant: tenant, name: "t").token
            let connection = try await RawConnection.open(port: served.port)
            let body = #"{"name":"g","peers":[]}"# + String(repeating: " ", count: 2_000)
            #expect(await connection.send("POST /api/groups HTTP/1.1\r\nHost: x\r\nAuthorization: Token \(token)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"))
            let result = await connection.trickle(body, every: .milliseconds(100), limit: .seconds(12))
            let after = result.after  // timed by the trickling thread, from the body's first byte
            #expect(result.closed, "the server kept a client trickling its body for \(after)")
            #expect(after >= .milliseconds(1300) && after < .seconds(8), "closed after \(after), body timeout 1.5 s")
            #expect(try await HTTPLimitsClient(port: served.port).get("/metrics").text.contains(#"routeplane_http_request_timeouts_total{phase="body"} 1"#))
        }
    }

    @Test("an idle connection is closed after the idle timeout, one that never sent a byte too", .timeLimit(.minutes(1)))
    func idleConnection() async throws {
        try await Self.withServer(HTTPServerSettings(idleTimeout: .seconds(1), headTimeout: .seconds(20), bodyTimeout: .seconds(20))) { served, _ in
            let used = try await RawConnection.open(port: served.port)
            #expect(await used.send("GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"))
            let response = await used.readResponse(limit: .seconds(5))
            #expect(response.hasPrefix("HTTP/1.1 200"), "\(response.prefix(200))")
            // Generous bounds (idle timeout 1 s): the full suite loads both cores; without the timeout it stays open.
            let idle = await used.readUntilClosed(limit: .seconds(15))
            #expect(idle.closed && idle.after < .seconds(10), "kept an idle connection \(idle.after), idle timeout 1 s")

            let silent = try await RawConnection.open(port: served.port)
            let quiet = await silent.readUntilClosed(limit: .seconds(15))
            #expect(quiet.closed && quiet.after < .seconds(10), "kept a silent connection \(quiet.after)")
        }
    }

    @Test("no credentials: 401 at once, before any of the body is read (a body that never ends)", .timeLimit(.minutes(1)))
    func unauthorizedBeforeBody() async throws {
        try await Self.withServer(HTTPServerSettings(idleTimeout: .seconds(30), headTimeout: .seconds(30), bodyTimeout: .seconds(30))) { served, _ in
            for (path, authorization) in [("/api/groups", ""), ("/api/routes", "Authorization: Token rpt_unknown\r\n"),
                                          ("/api/setup-keys", ""), ("/api/agent/nats-credentials", "Authorization: Token rpp_unknown\r\n")] {
                let connection = try await RawConnection.open(port: served.port)
                let start = ContinuousClock.now
                #expect(await connection.send("POST \(path) HTTP/1.1\r\nHost: x\r\n\(authorization)Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"name\":"))
                let response = await connection.readResponse(limit: .seconds(10))
                #expect(response.hasPrefix("HTTP/1.1 401"), "\(path): \(response.prefix(300))")
                #expect(ContinuousClock.now - start < .seconds(5), "\(path): 401 took \(ContinuousClock.now - start)")
            }
        }
    }

    @Test("a burst of random tokens costs one database lookup per token per TTL; a valid token is still found", .timeLimit(.minutes(1)))
    func negativeTokenCache() async throws {
        try await Self.withServer(HTTPServerSettings(negativeTokenTTL: .seconds(60), negativeTokenEntries: 1_000)) { served, _ in
            let tenant = try await served.controller.controlPlane.createTenant(name: "cache")
            let token = try await served.controller.controlPlane.createToken(tenant: tenant, name: "t").token
            let metrics = served.controller.metrics
            let client = HTTPLimitsClient(port: served.port)
            let before = metrics.credentialLookups
            let tokens = (0..<25).map { _ in "rpt_" + Secrets.id() }
            // Three bursts of the same 25 random tokens, each burst concurrent.
            for _ in 0..<3 {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for t in tokens { group.addTask { try await client.status("/api/routes", token: t) } }
                    for try await status in group { #expect(status == 401) }
                }
            }
            let after = metrics.credentialLookups
            #expect(after.database - before.database == 25, "25 unknown tokens, 75 requests: \(after.database - before.database) lookups")
            #expect(after.cached - before.cached == 50)
            for t in tokens { #expect(try await client.status("/api/routes", token: t) == 401) }
            let settled = metrics.credentialLookups
            #expect(settled.database == after.database, "repeated unknown tokens looked up again: \(after.database) → \(settled.database)")
            #expect(settled.cached >= after.cached + 25)
            #expect(try await client.status("/api/routes", token: token) == 200)
            #expect(try await client.get("/metrics").text.contains("routeplane_credential_lookups_total"))
        }
    }

    @Test("/healthz: per dependency ok/degraded; the database unreachable is 503 without host, user or libpq text", .timeLimit(.minutes(1)))
    func healthWithoutInternals() async throws {
        // A dependency that fails with an internal-looking reason: the reason goes to the log, never to the client.
        try await Self.withServer(HTTPServerSettings(healthRefresh: .milliseconds(10)),
                                  healthChecks: ["nats": { "nats://10.9.8.7:4222: connection refused (user routeplane)" }]) { served, _ in
            let client = HTTPLimitsClient(port: served.port)
            let health = try await client.get("/healthz")
            #expect(health.status == 200, "\(health.text)")
            #expect(health.text.contains(#""status":"degraded""#) && health.text.contains(#""nats":"degraded""#), "\(health.text)")
            #expect(health.text.contains(#""database":"ok""#) && health.text.contains(#""projections":"ok""#), "\(health.text)")
            #expect(!health.text.contains("10.9.8.7") && !health.text.contains("refused"), "\(health.text)")
        }
        // The database gone (a port nobody listens on, as during a PostgreSQL outage).
        let store = EventStore(url: "postgresql://routeplane_user@127.0.0.1:1/routeplane_db?connect_timeout=2", maxConnections: 2,
                               logger: Logger(label: "test.outage", factory: { _ in SwiftLogNoOpLogHandler() }))
        let served = try await ServedController.start(Self.controller(store, HTTPServerSettings()))
        let health = try await HTTPLimitsClient(port: served.port).get("/healthz")
        await served.stop()
        await store.shutdown()
        #expect(health.status == 503 && health.retryAfter != nil, "\(health.status) \(health.text)")
        #expect(health.text.contains(#""database":"degraded""#) && health.text.contains(#""status":"unavailable""#), "\(health.text)")
        for secret in ["127.0.0.1", "routeplane_user", "routeplane_db", "connect", "Error", "5432", ":1"] {
            #expect(!health.text.contains(secret), "/healthz leaks \(secret): \(health.text)")
        }
    }

    @Test("/metrics serves the database gauges from a reading refreshed at a bounded rate, not per scrape", .timeLimit(.minutes(1)))
    func metricsFromCache() async throws {
        try await Self.withServer(HTTPServerSettings(metricsRefresh: .seconds(60))) { served, _ in
            let client = HTTPLimitsClient(port: served.port)
            let tenant = try await served.controller.controlPlane.createTenant(name: "m")
            let first = try await client.get("/metrics")
            let lag = Self.gauge("routeplane_projection_lag_events", "\(first.text)")
            #expect(lag != nil, "\(first.text)")
            // Writes move the real lag (no projection runner here); the served gauge stays the last reading.
            for i in 0..<3 {
                _ = try await served.controller.controlPlane.writer.write(tenant: tenant, actor: Actor(id: "t"), requestID: "r\(i)") { s in
                    try decideOrThrow(.createGroup(id: GroupID("g\(i)"), name: "g\(i)", peers: []), s.state)
                }
            }
            for _ in 0..<10 {
                let again = try await client.get("/metrics")
                #expect(Self.gauge("routeplane_projection_lag_events", again.text) == lag)
            }
        }
        try await Self.withServer(HTTPServerSettings(metricsRefresh: .milliseconds(200))) { served, _ in
            let client = HTTPLimitsClient(port: served.port)
            let tenant = try await served.controller.controlPlane.createTenant(name: "m")
            let lag = Self.gauge("routeplane_projection_lag_events", try await client.get("/metrics").text) ?? -1
            _ = try await served.controller.controlPlane.writer.write(tenant: tenant, actor: Actor(id: "t"), requestID: "r") { s in
                try decideOrThrow(.createGroup(id: GroupID("g"), name: "g", peers: []), s.state)
            }
            #expect(try await eventually(timeout: .seconds(10)) {
                Self.gauge("routeplane_projection_lag_events", try await client.get("/metrics").text) == lag + 1
            })
        }
    }

    static func gauge(_ name: String, _ text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test("requests caught by a graceful shutdown get 503 with Retry-After after the grace period, never 500", .timeLimit(.minutes(1)))
    func shutdownAnswers503() async throws {
        // One pool connection, held by the test: an API request waits for it (authentication needs the database) when
        // the server stops; a test route waits on a timer, as a handler waiting on anything cancellable does; a quick
        // request in the grace period is answered normally.
        let db = try await TestDatabase.create(maxConnections: 1)
        let controller = Self.controller(db.store, HTTPServerSettings(shutdownGrace: .milliseconds(500)))
        let tenant = try await controller.controlPlane.createTenant(name: "s")
        let token = try await controller.controlPlane.createToken(tenant: tenant, name: "t").token
        let started = Mutex(0)
        let routes: @Sendable (Router<APIRequestContext>) -> Void = { router in
            router.get("/test/slow") { _, _ -> String in
                started.withLock { $0 += 1 }
                try await Task.sleep(for: .seconds(60))
                return "late"
            }
            router.get("/test/quick") { _, _ -> String in
                started.withLock { $0 += 1 }
                try? await Task.sleep(for: .milliseconds(200))
                return "quick"
            }
        }
        let served = try await ServedController.start(controller, routes: routes)
        let release = DispatchSemaphore(value: 0)
        let held = Mutex(false)
        let holding = Task { try await db.store.pool.withSession { _ in held.withLock { $0 = true }; release.wait() } }
        #expect(await eventually(timeout: .seconds(10)) { held.withLock { $0 } }, "the test holds the only pool connection")
        let slow = try await RawConnection.open(port: served.port)
        #expect(await slow.send("GET /test/slow HTTP/1.1\r\nHost: x\r\n\r\n"))
        let api = try await RawConnection.open(port: served.port)
        #expect(await api.send("GET /api/routes HTTP/1.1\r\nHost: x\r\nAuthorization: Token \(token)\r\n\r\n"))
        #expect(await eventually(timeout: .seconds(10)) { started.withLock { $0 } == 1 })
        try await Task.sleep(for: .milliseconds(200))
        let quick = try await RawConnection.open(port: served.port)
        #expect(await quick.send("GET /test/quick HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(await eventually(timeout: .seconds(10)) { started.withLock { $0 } == 2 })
        let stopping = Task { await served.stop() }
        let quickResponse = await quick.readResponse(limit: .seconds(10))
        let slowResponse = await slow.readResponse(limit: .seconds(10))
        let apiResponse = await api.readResponse(limit: .seconds(10))
        await stopping.value
        release.signal()
        _ = try? await holding.value
        await db.drop()
        #expect(quickResponse.hasPrefix("HTTP/1.1 200") && quickResponse.hasSuffix("quick"), "\(quickResponse)")
        for (name, response) in [("handler waiting", slowResponse), ("API request waiting for the database", apiResponse)] {
            #expect(response.hasPrefix("HTTP/1.1 503"), "\(name): \(response.prefix(400))")
            #expect(response.lowercased().contains("retry-after: "), "\(name): \(response.prefix(400))")
            #expect(response.contains("shutting down") && !response.contains("\"code\":500"), "\(name): \(response)")
        }
    }
}

/// Requests over connections of their own (HummingbirdTesting's client), statuses and bodies only.
struct HTTPLimitsClient: Sendable {
    let port: Int

    struct Answer: Sendable {
        var status: Int
        var text: String
        var retryAfter: String?
    }

    func get(_ path: String, token: String? = nil) async throws -> Answer {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Token \(token)" }
        let finalHeaders = headers
        return try await TestClient.withClient(host: "127.0.0.1", port: port) { c in
            let r = try await c.execute(TestClient.Request(path, method: .get, authority: "127.0.0.1", headers: finalHeaders))
            return Answer(status: Int(r.status.code), text: r.body.map { String(buffer: $0) } ?? "",
                          retryAfter: r.headers[HTTPField.Name("Retry-After")!])
        }
    }

    func status(_ path: String, token: String) async throws -> Int {
        try await get(path, token: token).status
    }
}
