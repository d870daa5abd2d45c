import ControlPlane
import HTTPAPI
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing
import TestSupport

/// Three controllers (each with its own connection pool, as three `routeplane serve` processes have)
/// on one database, served over real HTTP on loopback.
struct ControllerFleet: Sendable {
    let db: TestDatabase
    let controllers: [APIServer]
    let ports: [Int]

    static func run(count: Int = 3, _ body: @Sendable (ControllerFleet) async throws -> Void) async throws {
        let db = try await TestDatabase.create(maxConnections: 8)
        var logger = Logger(label: "test.fleet")
        logger.logLevel = .warning
        var stores = [db.store]
        for _ in 1..<count { stores.append(EventStore(url: db.url, maxConnections: 8)) }
        let controllers = stores.map { APIServer(configuration: .init(), store: $0, logger: logger) }
        let ports = Mutex<[Int: Int]>([:])
        var servers: [Task<Void, any Error>] = []
        for (i, controller) in controllers.enumerated() {
            let app = Application(router: controller.makeRouter().router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                  onServerRunning: { channel in ports.withLock { $0[i] = channel.localAddress?.port } },
                                  logger: logger)
            servers.append(Task { try await app.runService(gracefulShutdownSignals: []) })
        }
        func stop() async {
            for s in servers { s.cancel() }
            for s in servers { _ = try? await s.value }
            for store in stores.dropFirst() { await store.shutdown() }
            await db.drop()
        }
        do {
            guard await eventually(timeout: .seconds(10), { ports.withLock { $0.count } == count }) else {
                throw TestSetupError("\(count) controllers did not start listening")
            }
            let fleet = ControllerFleet(db: db, controllers: controllers, ports: (0..<count).map { i in ports.withLock { $0[i]! } })
            try await body(fleet)
        } catch {
            await stop()
            throw error
        }
        await stop()
    }

    /// One request over a connection of its own to controller `index`.
    func send(_ index: Int, _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: Any? = nil,
              headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Token \(token)" }
        var body: ByteBuffer?
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: json)))
        }
        let finalHeaders = headers
        let finalBody = body
        return try await TestClient.withClient(host: "127.0.0.1", port: ports[index]) { c in
            let r = try await c.execute(TestClient.Request(path, method: method, authority: "127.0.0.1", headers: finalHeaders, body: finalBody))
            return Reply(status: Int(r.status.code), headers: r.headers, text: r.body.map { String(buffer: $0) } ?? "")
        }
    }
}

private let requestIDHeader = HTTPField.Name("X-Request-Id")!
private let sequenceHeader = HTTPField.Name("X-Routeplane-Sequence")!

/// One write of the conflict run and what the controller answered.
private struct WriteOutcome: Sendable {
    var index: Int
    var route: String
    var controller: Int
    var ifMatch: String?
    var metric: Int
    var status: Int
    var sequence: Int64?
}

@Suite("Scale-out: several controllers on one database", .timeLimit(.minutes(10)), .serialized)
struct ScaleOutTests {
    @Test("1,000 concurrent conflicting updates of 5 routes through 3 controllers: no update lost, every loser 409/412 and traceless")
    func conflictingUpdatesThroughThreeControllers() async throws {
        try await ControllerFleet.run { fleet in
            let controller = fleet.controllers[0]
            let tenant = try await controller.controlPlane.createTenant(name: "acme")
            let token = try await controller.controlPlane.createToken(tenant: tenant, name: "fleet").token
            let group = try await fleet.send(1, .post, "/api/groups", token: token, json: ["name": "clients"])
            let key = try await fleet.send(2, .post, "/api/setup-keys", token: token, json: ["name": "k", "type": "reusable"])
            let secret = try #require(key.object["key"] as? String, "\(key.status) \(key.text)")
            let enrolled = try await fleet.send(0, .post, "/api/agent/enroll", json: ["setup_key": secret, "name": "gw", "os": "linux"])
            let peer = try #require(enrolled.object["peer_id"] as? String, "\(enrolled.status) \(enrolled.text)")
            let groupID = group.id
            let body: @Sendable (Int, Int) -> [String: Any] = { n, metric in
                ["network_id": "lan\(n)", "network": "10.\(n).0.0/24", "peer": peer, "metric": metric, "masquerade": true,
                 "groups": [groupID], "enabled": true, "description": "lan \(n)", "keep_route": false]
            }
            var created: [String] = []
            for n in 0..<5 {
                let r = try await fleet.send(n % 3, .post, "/api/routes", token: token, json: body(n, 9000 + n))
                #expect(r.status == 200, "\(r.text)")
                created.append(r.id)
            }
            let routes = created

            // 1,000 writes, 64 in flight: write k goes to route k % 5 through controller k % 3 with a metric only it
            // uses. Even k read the route first (from another controller) and send its ETag as If-Match; odd k are
            // unconditional. Every write carries its own request id, which the event's metadata keeps.
            let writes = 1_000
            let outcomes = try await withThrowingTaskGroup(of: WriteOutcome.self) { group in
                func start(_ k: Int) {
                    group.addTask {
                        let n = k % routes.count
                        let via = k % 3
                        var headers: HTTPFields = [requestIDHeader: "w-\(k)"]
                        var ifMatch: String?
                        if k % 2 == 0 {
                            let current = try await fleet.send((via + 1) % 3, .get, "/api/routes/\(routes[n])", token: token)
                            ifMatch = current.etag
                            if let ifMatch { headers[.ifMatch] = ifMatch }
                        }
                        let r = try await fleet.send(via, .put, "/api/routes/\(routes[n])", token: token, json: body(n, k + 1), headers: headers)
                        return WriteOutcome(index: k, route: routes[n], controller: via, ifMatch: ifMatch, metric: k + 1, status: r.status,
                                            sequence: r.headers[sequenceHeader].flatMap { Int64($0) })
                    }
                }
                var next = 0
                while next < min(64, writes) { start(next); next += 1 }
                var all: [WriteOutcome] = []
                while let outcome = try await group.next() {
                    all.append(outcome)
                    if next < writes { start(next); next += 1 }
                }
                return all
            }
            #expect(outcomes.count == writes)
            let accepted = outcomes.filter { $0.status == 200 }
            let losers = outcomes.filter { $0.status != 200 }
            #expect(losers.allSatisfy { $0.status == 409 || $0.status == 412 }, "unexpected statuses: \(Set(losers.map(\.status)))")
            #expect(losers.allSatisfy { $0.ifMatch != nil || $0.status == 409 }, "an unconditional write got 412")
            // Conditional writes that raced each other lost; unconditional ones queue (a 409 only after the retries ran out).
            #expect(accepted.count >= writes / 2, "accepted \(accepted.count) of \(writes)")

            // The event log: every accepted write exactly once, at the sequence it answered, with its metric; no loser.
            let events = try await fleet.db.store.read(tenant: tenant, fromSequence: 1, limit: 100_000)
            let updates = events.filter { $0.type == "RouteUpdated" }
            var byRequest: [String: [RecordedEvent]] = [:]
            for e in updates { byRequest[e.metadata.requestID ?? "", default: []].append(e) }
            #expect(updates.count == accepted.count, "RouteUpdated events \(updates.count) vs 2xx \(accepted.count)")
            for w in accepted {
                let found = byRequest["w-\(w.index)"] ?? []
                #expect(found.count == 1, "write w-\(w.index): \(found.count) events")
                if let e = found.first {
                    #expect(e.sequence == w.sequence, "w-\(w.index) answered sequence \(String(describing: w.sequence)), event at \(e.sequence)")
                    let new = (try JSONSerialization.jsonObject(with: Data(e.data.utf8)) as? [String: Any])?["new"] as? [String: Any]
                    #expect((new?["metric"] as? Int) == w.metric)
                }
            }
            for w in losers { #expect(byRequest["w-\(w.index)"] == nil, "loser w-\(w.index) (\(w.status)) left an event") }

            // One winner per (route, ETag): If-Match is a compare-and-set across all controllers.
            var winnersPerETag: [String: Int] = [:]
            for w in accepted { if let tag = w.ifMatch { winnersPerETag[w.route + tag, default: 0] += 1 } }
            #expect(winnersPerETag.values.allSatisfy { $0 == 1 })

            // Final state: on every controller, each route shows the metric of its last RouteUpdated in event order.
            let acceptedByRequest = Dictionary(uniqueKeysWithValues: accepted.map { ("w-\($0.index)", $0) })
            for (n, route) in routes.enumerated() {
                let last = updates.last { ($0.metadata.target ?? "") == route || $0.data.contains("\"\(route)\"") }
                let lastWrite = try #require(last.flatMap { acceptedByRequest[$0.metadata.requestID ?? ""] }, "route \(n) has no accepted update")
                for c in 0..<3 {
                    let shown = try await fleet.send(c, .get, "/api/routes/\(route)", token: token)
                    #expect(shown.object["metric"] as? Int == lastWrite.metric, "controller \(c) shows route \(n) with \(String(describing: shown.object["metric"])), last write \(lastWrite.metric)")
                }
            }
            print("ScaleOut: \(writes) writes through 3 controllers: \(accepted.count) accepted (\(accepted.filter { $0.ifMatch != nil }.count) conditional), "
                  + "\(losers.filter { $0.status == 412 }.count) × 412, \(losers.filter { $0.status == 409 }.count) × 409")
        }
    }

    @Test("read after write on another controller sees the write (reads catch up from the event log)")
    func readAfterWriteAcrossControllers() async throws {
        try await ControllerFleet.run { fleet in
            let tenant = try await fleet.controllers[0].controlPlane.createTenant(name: "acme")
            let token = try await fleet.controllers[0].controlPlane.createToken(tenant: tenant, name: "fleet").token
            for i in 0..<30 {
                let created = try await fleet.send(i % 3, .post, "/api/groups", token: token, json: ["name": "g\(i)"])
                #expect(created.status == 200)
                let read = try await fleet.send((i + 1) % 3, .get, "/api/groups/\(created.id)", token: token)
                #expect(read.status == 200 && read.object["name"] as? String == "g\(i)", "\(read.status) \(read.text)")
                let list = try await fleet.send((i + 2) % 3, .get, "/api/groups", token: token)
                #expect(list.array.count == i + 2, "the built-in All group and the \(i + 1) created")
            }
        }
    }

    @Test("database unreachable: API requests get 503 with Retry-After within seconds (no hang, no 500); /healthz says unavailable")
    func databaseOutageAnswers503() async throws {
        // A pool whose server refuses connections (a loopback port nobody listens on), as during a PostgreSQL restart.
        var logger = Logger(label: "test.outage")
        logger.logLevel = .critical
        let store = EventStore(url: "postgresql://postgres@127.0.0.1:1/routeplane?connect_timeout=2", maxConnections: 2, logger: logger)
        let controller = APIServer(configuration: .init(), store: store, logger: logger)
        let app = Application(router: controller.makeRouter().router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await app.test(.live) { client in
            for (method, path, body) in [(HTTPRequest.Method.get, "/api/routes", nil), (.post, "/api/groups", #"{"name":"g"}"#),
                                         (.get, "/api/events/audit", nil), (.post, "/api/agent/enroll", #"{"setup_key":"rps_x","name":"n","os":"linux"}"#)] as [(HTTPRequest.Method, String, String?)] {
                let start = ContinuousClock.now
                let r = try await client.execute(uri: path, method: method, headers: [.authorization: "Token rpt_whatever", .contentType: "application/json"],
                                                 body: body.map { ByteBuffer(string: $0) }) { response in
                    (status: response.status.code, retry: response.headers[HTTPField.Name("Retry-After")!], text: String(buffer: response.body))
                }
                #expect(r.status == 503, "\(method) \(path): \(r.status) \(r.text)")
                #expect(r.retry != nil, "\(method) \(path) without Retry-After")
                #expect(r.text.contains("\"code\":503") && !r.text.contains("Error("), "\(r.text)")
                #expect(ContinuousClock.now - start < .seconds(15), "\(method) \(path) took \(ContinuousClock.now - start)")
            }
            let health = try await client.execute(uri: "/healthz", method: .get) { $0 }
            #expect(health.status.code == 503)
        }
        await store.shutdown()
    }
}
