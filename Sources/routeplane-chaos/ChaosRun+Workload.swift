// The fault-injection run's HTTP workload: each request recorded in the ledger, the workers drawing operations from
// `ChaosWorkload` and feeding the answers back.
import ChaosKit
import Foundation
import RouteModel
import Synchronization

extension ChaosRun {
    // MARK: - Requests

    /// One request through controller `controller`, recorded in the ledger.
    @discardableResult
    func send(_ tenant: ChaosTenant, kind: ChaosRequestKind, controller: Int, method: String, path: String, body: [UInt8]? = nil,
              ifMatch: String? = nil, burst: Int? = nil, requestID: String? = nil,
              attempt: (@Sendable (ChaosRequestRecord) -> Void)? = nil) async -> (ChaosOutcome, ChaosHTTP.Response?) {
        let c = controllers[controller]
        let rid = requestID ?? ledger.newRequestID()
        // Workload writes go through `sendRetryingByKey` (ChaosRun+Retries), which calls back here once per attempt.
        if kind.isWrite, kind != .setup, attempt == nil {
            return await sendRetryingByKey(tenant, kind: kind, controller: controller, method: method, path: path, body: body, ifMatch: ifMatch,
                                           burst: burst, requestID: rid)
        }
        var headers = [("Authorization", "Token \(tenant.token)"), ("X-Request-Id", rid)]
        if attempt != nil { headers.append(("Idempotency-Key", rid)) }
        if let ifMatch { headers.append(("If-Match", ifMatch)) }
        let generation = c.generation
        let wasUp = c.isUp
        let started = now
        let result = await http.send(ChaosHTTP.Request(method: method, path: path, headers: headers, body: body), port: c.port)
        let killed = !wasUp || c.generation != generation || !c.isUp
        let outcome: ChaosOutcome
        switch result {
        case .answered(let r):
            outcome = .answered(status: r.status, sequence: r.header("X-Routeplane-Sequence").flatMap { Int64($0) },
                                retryAfter: r.header("Retry-After"), message: r.status >= 400 ? Self.field("message", of: r.body) : nil)
        case .notSent: outcome = .notSent
        case .broken(let why): outcome = .unknown(reason: why, timedOut: false)
        case .timedOut: outcome = .unknown(reason: "no answer within the deadline", timedOut: true)
        }
        let record = ChaosRequestRecord(requestID: rid, tenant: tenant.id, kind: kind, controller: controller, conditional: ifMatch != nil,
                                        burst: burst, outcome: outcome, controllerKilledDuring: killed, start: started, end: now)
        if let attempt { attempt(record) } else { ledger.add(record) }
        return (outcome, result.response)
    }

    static func field(_ name: String, of body: [UInt8]) -> String? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else { return nil }
        return object[name] as? String
    }

    // MARK: - Workload

    func worker(_ w: Int, until deadline: Double) async {
        var rng = ChaosRandom(seed: settings.seed &* 31 &+ UInt64(w) &+ 1)
        while now < deadline && ledger.writes < settings.maxWrites && !stopping.load(ordering: .relaxed) {
            let snapshot = tenants.withLock { $0 }
            guard let tenant = snapshot.randomElement(using: &rng) else { return }
            let operation = ChaosWorkload.next(tenant, using: &rng)
            await perform(operation, on: tenant, using: &rng)
            if settings.pauseMs > 0 { await chaosSleep(.milliseconds(Int.random(in: 0...settings.pauseMs, using: &rng))) }
        }
    }

    func randomController(_ rng: inout ChaosRandom) -> Int { Int.random(in: 0..<controllers.count, using: &rng) }

    /// GET an object for its ETag (nil when it is gone or the read failed; a 404 is learned).
    func etag(_ tenant: ChaosTenant, path: String, operation: ChaosOperation, using rng: inout ChaosRandom) async -> String? {
        let (outcome, response) = await send(tenant, kind: .read, controller: randomController(&rng), method: "GET", path: path)
        if outcome.status == 404 { learn(tenant.id, operation, status: 404, createdID: nil) }
        guard outcome.status == 200 else { return nil }
        return response?.header("ETag")
    }

    func learn(_ tenantID: String, _ operation: ChaosOperation, status: Int?, createdID: String?) {
        tenants.withLock { all in
            guard let i = all.firstIndex(where: { $0.id == tenantID }) else { return }
            ChaosWorkload.learn(&all[i], operation: operation, status: status, createdID: createdID)
        }
    }

    func perform(_ operation: ChaosOperation, on tenant: ChaosTenant, using rng: inout ChaosRandom) async {
        switch operation {
        case .createRoute:
            let rid = ledger.newRequestID()
            let body = ChaosWorkload.routeBody(tenant, requestID: rid, using: &rng)
            let (outcome, response) = await send(tenant, kind: .createRoute, controller: randomController(&rng), method: "POST", path: "/api/routes",
                                                 body: ChaosWorkload.json(body), requestID: rid)
            learn(tenant.id, operation, status: outcome.status, createdID: response.flatMap { Self.field("id", of: $0.body) })

        case .updateRoute(let id, let conditional):
            var tag: String?
            if conditional {
                tag = await etag(tenant, path: "/api/routes/\(id)", operation: operation, using: &rng)
                if tag == nil { return }
            }
            let rid = ledger.newRequestID()
            let body = ChaosWorkload.routeBody(tenant, requestID: rid, using: &rng)
            let (outcome, _) = await send(tenant, kind: .updateRoute, controller: randomController(&rng), method: "PUT", path: "/api/routes/\(id)",
                                          body: ChaosWorkload.json(body), ifMatch: tag, requestID: rid)
            learn(tenant.id, operation, status: outcome.status, createdID: nil)

        case .conflictBurst(let id, let count):
            guard let tag = await etag(tenant, path: "/api/routes/\(id)", operation: operation, using: &rng) else { return }
            let burst = ledger.newBurst()
            let first = randomController(&rng)
            let requests: [(String, [UInt8], Int)] = (0..<count).map { k in
                let rid = ledger.newRequestID()
                return (rid, ChaosWorkload.json(ChaosWorkload.routeBody(tenant, requestID: rid, using: &rng)), (first + k) % controllers.count)
            }
            await withTaskGroup(of: Void.self) { group in
                for (rid, body, controller) in requests {
                    group.addTask {
                        let (outcome, _) = await self.send(tenant, kind: .updateRoute, controller: controller, method: "PUT", path: "/api/routes/\(id)",
                                                           body: body, ifMatch: tag, burst: burst, requestID: rid)
                        self.learn(tenant.id, operation, status: outcome.status, createdID: nil)
                    }
                }
            }

        case .deleteRoute(let id, let conditional):
            var tag: String?
            if conditional {
                tag = await etag(tenant, path: "/api/routes/\(id)", operation: operation, using: &rng)
                if tag == nil { return }
            }
            let (outcome, _) = await send(tenant, kind: .deleteRoute, controller: randomController(&rng), method: "DELETE", path: "/api/routes/\(id)",
                                          ifMatch: tag)
            learn(tenant.id, operation, status: outcome.status, createdID: nil)

        case .createGroup:
            let rid = ledger.newRequestID()
            let body = ChaosWorkload.groupBody(tenant, prefix: "x", requestID: rid, using: &rng)
            let (outcome, response) = await send(tenant, kind: .createGroup, controller: randomController(&rng), method: "POST", path: "/api/groups",
                                                 body: ChaosWorkload.json(body), requestID: rid)
            learn(tenant.id, operation, status: outcome.status, createdID: response.flatMap { Self.field("id", of: $0.body) })

        case .updateGroup(let id, let conditional):
            var tag: String?
            if conditional {
                tag = await etag(tenant, path: "/api/groups/\(id)", operation: operation, using: &rng)
                if tag == nil { return }
            }
            let rid = ledger.newRequestID()
            let body = ChaosWorkload.groupBody(tenant, prefix: "g", requestID: rid, using: &rng)
            await send(tenant, kind: .updateGroup, controller: randomController(&rng), method: "PUT", path: "/api/groups/\(id)",
                       body: ChaosWorkload.json(body), ifMatch: tag, requestID: rid)

        case .groupBurst(let id, let count):
            let first = randomController(&rng)
            let requests: [(String, [UInt8], Int)] = (0..<count).map { k in
                let rid = ledger.newRequestID()
                return (rid, ChaosWorkload.json(ChaosWorkload.groupBody(tenant, prefix: "g", requestID: rid, using: &rng)), (first + k) % controllers.count)
            }
            await withTaskGroup(of: Void.self) { group in
                for (rid, body, controller) in requests {
                    group.addTask {
                        await self.send(tenant, kind: .updateGroup, controller: controller, method: "PUT", path: "/api/groups/\(id)", body: body, requestID: rid)
                    }
                }
            }

        case .deleteGroup(let id):
            let (outcome, _) = await send(tenant, kind: .deleteGroup, controller: randomController(&rng), method: "DELETE", path: "/api/groups/\(id)")
            learn(tenant.id, operation, status: outcome.status, createdID: nil)

        case .drainPeer(let id, let draining):
            let rid = ledger.newRequestID()
            await send(tenant, kind: .updatePeer, controller: randomController(&rng), method: "PUT", path: "/api/peers/\(id)",
                       body: ChaosWorkload.json(ChaosWorkload.peerBody(tenant, peer: id, draining: draining, requestID: rid)), requestID: rid)
        }
    }
}
