import Foundation
import HTTPTypes
import Testing
import TestSupport

/// `/api/peers` lookups and fields, checked against NetBird's code (netbirdio/netbird), cited inline.
@Suite("NetBird compatibility: peers", .timeLimit(.minutes(10)), .serialized)
struct NetBirdCompatPeersTests {
    @Test("?name= and ?ip= filter by substring as NetBird's store does; no match is an empty list; tenants see only their own")
    func filters() async throws {
        try await LiveAPI.run { api in
            let (_, tokenA) = try await api.tenant("a")
            let (_, tokenB) = try await api.tenant("b")
            _ = try await api.enroll(tokenA, names: ["Web-1", "web-2", "db-1"])
            _ = try await api.enroll(tokenB, names: ["web-9"])
            func names(_ query: String, _ token: String) async throws -> [String] {
                let r = try await api.send(.get, "/api/peers\(query)", token: token)
                #expect(r.status == 200, "\(query): \(r.text)")
                return r.array.compactMap { $0["name"] as? String }
            }
            // store/sql_store.go `GetAccountPeers`: `name LIKE '%'+name+'%'` (SQLite, NetBird's default store,
            // folds ASCII case), in creation order.
            #expect(try await names("?name=web", tokenA) == ["Web-1", "web-2"])
            #expect(try await names("?name=WEB-1", tokenA) == ["Web-1"])
            #expect(try await names("?name=-1", tokenA) == ["Web-1", "db-1"])
            // No match: an empty list, 200 (the store returns no rows, the handler an empty array).
            #expect(try await names("?name=nothing", tokenA) == [])
            // `%` and `_` are literal here (NetBird hands them to LIKE as wildcards).
            #expect(try await names("?name=%25", tokenA) == [])
            // An empty value filters nothing (`if nameFilter != ""`).
            #expect(try await names("?name=", tokenA).count == 3)
            // `ip LIKE '%'+ip+'%'`: a substring of the address; both filters together narrow.
            let all = try await api.send(.get, "/api/peers", token: tokenA).array
            let ipOfDB = try #require(all.first { $0["name"] as? String == "db-1" }?["ip"] as? String)
            #expect(try await names("?ip=\(ipOfDB)", tokenA) == ["db-1"])
            #expect(try await names("?ip=100.64.", tokenA).count == 3)
            #expect(try await names("?ip=100.64.&name=web-2", tokenA) == ["web-2"])
            #expect(try await names("?ip=\(ipOfDB)&name=web", tokenA) == [])
            // Isolation: B's filters see none of A's peers, and A none of B's.
            #expect(try await names("?name=web", tokenB) == ["web-9"])
            #expect(try await names("?name=web-9", tokenA) == [])
            #expect(try await names("?ip=\(ipOfDB)", tokenB).allSatisfy { $0 == "web-9" })
        }
    }

    @Test("peers come back in enrollment order with every field NetBird's spec marks required")
    func orderAndRequiredFields() async throws {
        try await LiveAPI.run { api in
            let (_, token) = try await api.tenant("acme")
            let names = ["p7", "p3", "p9", "p1", "p5", "p2", "p8", "p4"]
            let before = Date()
            let ids = try await api.enroll(token, names: names)
            // store `GetAccountPeers`: rows in insertion order (ids are random: id order matches once in 40,320).
            let list = try await api.send(.get, "/api/peers", token: token).array
            #expect(list.compactMap { $0["id"] as? String } == ids)
            // openapi.yml `Peer` + `PeerBatch` required fields; peers_handler.go `toPeerListItemResponse`.
            let required = ["id", "name", "city_name", "connected", "connection_ip", "country_code", "created_at", "dns_label", "geoname_id",
                            "groups", "hostname", "ip", "kernel_version", "last_login", "last_seen", "login_expiration_enabled", "login_expired",
                            "inactivity_expiration_enabled", "os", "ssh_enabled", "user_id", "version", "ui_version", "approval_required",
                            "serial_number", "extra_dns_labels", "ephemeral", "accessible_peers_count"]
            let single = try await api.send(.get, "/api/peers/\(ids[0])", token: token).object
            for peer in list + [single] {
                for key in required { #expect(has(peer, key), "\(key) in \(peer)") }
            }
            let p = single
            // Known: created_at = the enrollment (peer.go `AddPeer`: `CreatedAt: registrationTime`), and
            // `LastLogin: &registrationTime` — the same instant.
            let created = try #require(ISO8601DateFormatter().date(from: p["created_at"] as? String ?? ""))
            #expect(created.timeIntervalSince(before) > -2 && created.timeIntervalSinceNow < 2, "\(created)")
            #expect(p["last_login"] as? String == p["created_at"] as? String)
            // Unknown to Routeplane: Go's zero values (strings "", 0, false, no labels).
            for key in ["connection_ip", "kernel_version", "ui_version", "user_id", "serial_number", "country_code", "city_name"] {
                #expect(p[key] as? String == "", "\(key)")
            }
            #expect(p["geoname_id"] as? Int == 0 && p["ephemeral"] as? Bool == false && p["inactivity_expiration_enabled"] as? Bool == false)
            #expect((p["extra_dns_labels"] as? [Any])?.isEmpty == true)
        }
    }
}
