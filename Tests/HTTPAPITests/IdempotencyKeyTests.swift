import PostgresClient
import ControlPlane
import EventStore
import Foundation
import HTTPAPI
import HTTPTypes
import Logging
import Testing
import TestSupport

/// `Idempotency-Key` over real HTTP on a real database: a retry answers the first outcome and appends nothing; the
/// key is refused for another request (422), while its first request runs (409), when malformed (400) and where the
/// answer holds a secret (400); errors are not stored; keys belong to one tenant and token; they expire.
@Suite("Idempotency-Key", .timeLimit(.minutes(5)), .serialized)
struct IdempotencyKeyTests {
    struct World {
        let api: LiveAPI
        let tenant: String
        let token: String
        let peer: String
        let group: String
    }

    static func world(_ api: LiveAPI, _ name: String = "idem") async throws -> World {
        let (tenant, token) = try await api.tenant(name)
        let group = try await api.send(.post, "/api/groups", token: token, json: ["name": "clients"]).id
        let peer = try await api.enroll(token, names: ["r1"])[0]
        guard !group.isEmpty else { throw TestSetupError("no group") }
        return World(api: api, tenant: tenant, token: token, peer: peer, group: group)
    }

    @Test("a retried create answers the first outcome byte for byte, says it is a replay, and appends nothing")
    func replay() async throws {
        try await LiveAPI.run { api in
            let w = try await Self.world(api)
            let body = idempotencyRouteBody(w.peer, group: w.group, n: 1)
            let first = try await api.send(.post, "/api/routes", token: w.token, json: body, headers: keyed("create-1"))
            #expect(first.status == 200, "\(first.text)")
            #expect(first.headers[idempotentReplayedHeader] == nil)
            let events = try await api.db.eventCount(tenant: w.tenant)
            let again = try await api.send(.post, "/api/routes", token: w.token, json: body, headers: keyed("create-1"))
            #expect(again.status == 200)
            #expect(again.headers[idempotentReplayedHeader] == "true")
            #expect(again.text == first.text, "the stored answer, not a new route")
            #expect(again.etag == first.etag)
            #expect(again.headers[routeplaneSequenceHeader] == first.headers[routeplaneSequenceHeader])
            #expect(try await api.db.eventCount(tenant: w.tenant) == events, "a replay appends nothing")
            #expect(try await api.send(.get, "/api/routes", token: w.token).array.count == 1)
            // The record was written with the events: done, at the sequence the write answered.
            let rows = try await api.db.idempotencyRows(tenant: w.tenant)
            #expect(rows.count == 1 && rows[0].state == "done" && rows[0].seq.map { String($0) } == first.headers[routeplaneSequenceHeader])
            // Without a key the same body is a new write (409: the same network under the same network id and peer).
            #expect(try await api.send(.post, "/api/routes", token: w.token, json: body).status == 409)
        }
    }

    @Test("a retried delete answers its first 200 again, not 404; a retried update does not append twice")
    func deleteAndUpdate() async throws {
        try await LiveAPI.run { api in
            let w = try await Self.world(api)
            let route = try await api.send(.post, "/api/routes", token: w.token, json: idempotencyRouteBody(w.peer, group: w.group, n: 2)).id
            var update = idempotencyRouteBody(w.peer, group: w.group, n: 2)
            update["description"] = "changed"
            let u1 = try await api.send(.put, "/api/routes/\(route)", token: w.token, json: update, headers: keyed("upd"))
            let events = try await api.db.eventCount(tenant: w.tenant)
            let u2 = try await api.send(.put, "/api/routes/\(route)", token: w.token, json: update, headers: keyed("upd"))
            #expect(u1.status == 200 && u2.status == 200 && u2.text == u1.text && u2.headers[idempotentReplayedHeader] == "true")
            #expect(try await api.db.eventCount(tenant: w.tenant) == events)
            let d1 = try await api.send(.delete, "/api/routes/\(route)", token: w.token, headers: keyed("del"))
            let d2 = try await api.send(.delete, "/api/routes/\(route)", token: w.token, headers: keyed("del"))
            #expect(d1.status == 200 && d2.status == 200 && d2.headers[idempotentReplayedHeader] == "true")
            #expect(try await api.send(.delete, "/api/routes/\(route)", token: w.token, headers: keyed("del-2")).status == 404, "a new key runs the write")
            // A write that changes nothing (PUT of the same group) is stored too and replayed.
            let group = try await api.send(.get, "/api/groups/\(w.group)", token: w.token).object
            let same: [String: Any] = ["name": group["name"] as? String ?? "", "peers": []]
            let n1 = try await api.send(.put, "/api/groups/\(w.group)", token: w.token, json: same, headers: keyed("noop"))
            let n2 = try await api.send(.put, "/api/groups/\(w.group)", token: w.token, json: same, headers: keyed("noop"))
            #expect(n1.status == 200 && n2.headers[idempotentReplayedHeader] == "true" && n2.text == n1.text)
        }
    }

    @Test("the same key for another request is 422 naming the header; a malformed key is 400; secrets' endpoints refuse it")
    func refusals() async throws {
        try await LiveAPI.run { api in
            let w = try await Self.world(api)
            #expect(try await api.send(.post, "/api/routes", token: w.token, json: idempotencyRouteBody(w.peer, group: w.group, n: 3), headers: keyed("k")).status == 200)
            let other = try await api.send(.post, "/api/routes", token: w.token, json: idempotencyRouteBody(w.peer, group: w.group, n: 4), headers: keyed("k"))
            #expect(other.status == 422 && other.object["field"] as? String == "Idempotency-Key", "\(other.text)")
            let otherPath = try await api.send(.post, "/api/groups", token: w.token, json: ["name": "x"], headers: keyed("k"))
            #expect(otherPath.status == 422)
            for bad in [String(repeating: "a", count: 256), "has space", "tab\there"] {
                let r = try await api.send(.post, "/api/groups", token: w.token, json: ["name": "y"], headers: keyed(bad))
                #expect(r.status == 400 && r.object["field"] as? String == "Idempotency-Key", "\(bad): \(r.status) \(r.text)")
            }
            #expect(try await api.send(.post, "/api/groups", token: w.token, json: ["name": "z"], headers: keyed(String(repeating: "a", count: 255))).status == 200)
            let token = try await api.send(.post, "/api/users/\(w.tenant)/tokens", token: w.token, json: ["name": "t", "expires_in": 5], headers: keyed("tok"))
            #expect(token.status == 400 && token.object["field"] as? String == "Idempotency-Key", "\(token.text)")
            let setupKey = try await api.send(.post, "/api/setup-keys", token: w.token, json: ["name": "k", "type": "reusable"], headers: keyed("sk"))
            #expect(setupKey.status == 400 && setupKey.object["field"] as? String == "Idempotency-Key")
            // Reads ignore the header.
            #expect(try await api.send(.get, "/api/routes", token: w.token, headers: keyed("read")).status == 200)
        }
    }

    @Test("an error is not stored: the retry runs again; a dry run ignores the key")
    func errorsAndDryRuns() async throws {
        try await LiveAPI.run { api in
            let w = try await Self.world(api)
            let bad = idempotencyRouteBody(w.peer, group: w.group, n: 5, metric: 0)
            #expect(try await api.send(.post, "/api/routes", token: w.token, json: bad, headers: keyed("e")).status == 422)
            #expect(try await api.send(.post, "/api/routes", token: w.token, json: bad, headers: keyed("e")).status == 422, "run again, not replayed")
            #expect(try await api.db.idempotencyRows(tenant: w.tenant).isEmpty, "nothing stored for an error")
            let good = idempotencyRouteBody(w.peer, group: w.group, n: 5)
            let dry = try await api.send(.post, "/api/routes?dry_run=true", token: w.token, json: good, headers: keyed("d"))
            #expect(dry.status == 200 && dry.object["dry_run"] as? Bool == true)
            #expect(try await api.db.idempotencyRows(tenant: w.tenant).isEmpty, "a dry run takes no key")
            let real = try await api.send(.post, "/api/routes", token: w.token, json: good, headers: keyed("d"))
            #expect(real.status == 200 && real.headers[idempotentReplayedHeader] == nil)
            // A stale If-Match (412) is an error: not stored, the key stays free.
            let stale = try await api.send(.put, "/api/routes/\(real.id)", token: w.token, json: good, headers: keyed("s", [.ifMatch: "\"1\""]))
            #expect(stale.status == 412)
            #expect(try await api.db.idempotencyRows(tenant: w.tenant).map(\.key) == ["d"])
        }
    }

    @Test("another tenant, or another token of the same tenant, with the same key and request gets nothing of the first")
    func isolation() async throws {
        try await LiveAPI.run { api in
            let a = try await Self.world(api, "idem-a")
            let b = try await Self.world(api, "idem-b")
            let body = ["name": "shared-name"]
            let ra = try await api.send(.post, "/api/groups", token: a.token, json: body, headers: keyed("same-key"))
            let rb = try await api.send(.post, "/api/groups", token: b.token, json: body, headers: keyed("same-key"))
            #expect(ra.status == 200 && rb.status == 200)
            #expect(rb.headers[idempotentReplayedHeader] == nil && rb.id != ra.id, "B's own group, not A's answer")
            #expect(try await api.send(.get, "/api/groups/\(ra.id)", token: b.token).status == 404)
            let second = try await api.controller.controlPlane.createToken(tenant: a.tenant, name: "second").token
            let ra2 = try await api.send(.post, "/api/groups", token: second, json: ["name": "other-token"], headers: keyed("same-key"))
            #expect(ra2.status == 200 && ra2.headers[idempotentReplayedHeader] == nil, "keys belong to one token: \(ra2.text)")
            // Without credentials nothing answers, key or not.
            #expect(try await api.send(.post, "/api/groups", json: body, headers: keyed("same-key")).status == 401)
        }
    }

    @Test("while the key's first request holds it the retry gets 409 + Retry-After; a claim whose lease passed is taken over and the old one cannot commit")
    func inFlightAndTakeover() async throws {
        try await LiveAPI.run { api in
            let w = try await Self.world(api)
            let body = ["name": "in-flight"]
            let bytes = Array(try JSONSerialization.data(withJSONObject: body))
            let fingerprint = IdempotencyKeys.fingerprint(method: "POST", uri: "/api/groups", body: bytes)
            let principal = "token:" + (try await api.send(.get, "/api/users/\(w.tenant)/tokens", token: w.token).array.first?["id"] as? String ?? "")
            let scope = IdempotencyKeys.Scope(tenant: w.tenant, principal: principal, key: "busy")
            let keys = IdempotencyKeys(pool: api.db.store.pool, logger: Logger(label: "test"), lease: .seconds(60))
            guard case .claimed(let held) = try await keys.claim(scope, fingerprint: fingerprint) else { throw TestSetupError("claim") }
            let busy = try await api.sendOnOwnConnection(.post, "/api/groups", token: w.token, body: Data(bytes), headers: keyed("busy"))
            #expect(busy.status == 409 && busy.object["field"] as? String == "Idempotency-Key" && busy.headers[HTTPField.Name("Retry-After")!] == "1", "\(busy.text)")
            await keys.release(held)
            #expect(try await api.sendOnOwnConnection(.post, "/api/groups", token: w.token, body: Data(bytes), headers: keyed("busy")).status == 200)

            // A claim with a lease that has passed (its request died): the retry takes the key over and appends once.
            let short = IdempotencyKeys(pool: api.db.store.pool, logger: Logger(label: "test"), lease: .milliseconds(1))
            let scope2 = IdempotencyKeys.Scope(tenant: w.tenant, principal: principal, key: "dead")
            let deadBody = try JSONSerialization.data(withJSONObject: ["name": "dead"])
            let fingerprint2 = IdempotencyKeys.fingerprint(method: "POST", uri: "/api/groups", body: Array(deadBody))
            guard case .claimed(let dead) = try await short.claim(scope2, fingerprint: fingerprint2) else { throw TestSetupError("claim 2") }
            #expect(await eventually(timeout: .seconds(10)) {
                (try? await api.sendOnOwnConnection(.post, "/api/groups", token: w.token, body: deadBody, headers: keyed("dead")).status) == 200
            })
            // The dead request's commit is refused (its transaction would roll back with its events).
            await #expect(throws: (any Error).self) {
                try await short.finish(dead, IdempotencyKeys.Answer(status: 200, body: "{}", etag: nil, sequence: nil))
            }
            #expect(try await api.send(.get, "/api/groups", token: w.token).array.filter { $0["name"] as? String == "dead" }.count == 1)
        }
    }

    @Test("keys expire: after the retention the same key runs the write again, and expired rows are purged in bounded batches")
    func expiry() async throws {
        var configuration = ControllerConfiguration(maxBodyBytes: 64 * 1024)
        configuration.reliability.idempotencyRetention = .seconds(1)
        try await LiveAPI.run(configuration: configuration) { api in
            let w = try await Self.world(api)
            // A rename: the first run appends; after expiry the same request runs again (a no-op now) instead of replaying.
            let first = try await api.send(.put, "/api/groups/\(w.group)", token: w.token, json: ["name": "exp", "peers": []], headers: keyed("exp"))
            #expect(first.status == 200, "\(first.text)")
            let events = try await api.db.eventCount(tenant: w.tenant)
            #expect(await eventually(timeout: .seconds(10)) {
                let rows = try? await api.db.store.pool.withSession { s in
                    try s.query("SELECT 1 FROM idempotency_keys WHERE tenant_id = $1 AND expires_at < now()", [w.tenant])
                }
                return rows?.count == 1
            })
            let again = try await api.send(.put, "/api/groups/\(w.group)", token: w.token, json: ["name": "exp", "peers": []], headers: keyed("exp"))
            #expect(again.status == 200 && again.headers[idempotentReplayedHeader] == nil, "ran again, not replayed: \(again.text)")
            #expect(try await api.db.eventCount(tenant: w.tenant) == events, "the rename was already done")
            let keys = IdempotencyKeys(pool: api.db.store.pool, logger: Logger(label: "test"), retention: .seconds(1))
            #expect(await eventually(timeout: .seconds(10)) { ((try? await keys.purgeExpired()) ?? 0) >= 1 })
            #expect(try await api.db.idempotencyRows(tenant: w.tenant).isEmpty)
        }
    }

    @Test("the test-only lost-write switch answers the chosen write 2xx and commits nothing")
    func lostWriteSwitch() async throws {
        var configuration = ControllerConfiguration(maxBodyBytes: 64 * 1024)
        configuration.reliability.lostWrite = LostWriteSwitch(loseWrite: 2)
        try await LiveAPI.run(configuration: configuration) { api in
            let (tenant, token) = try await api.tenant("lost")
            let kept = try await api.send(.post, "/api/groups", token: token, json: ["name": "kept"])
            let lost = try await api.send(.post, "/api/groups", token: token, json: ["name": "lost"])
            #expect(kept.status == 200 && lost.status == 200 && !lost.id.isEmpty)
            #expect(try await api.send(.get, "/api/groups/\(kept.id)", token: token).status == 200)
            #expect(try await api.send(.get, "/api/groups/\(lost.id)", token: token).status == 404, "acknowledged, never committed")
            #expect(try await api.db.eventCount(tenant: tenant, type: "GroupCreated") == 2, "All and kept")
        }
    }
}
