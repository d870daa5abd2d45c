import RouteAgent
import RouteModel
import Testing

/// Parsers fed with output captured from iproute2 6.1 and nftables 1.0.6 (Debian 12).
@Suite struct KernelStateParserTests {
    @Test func parsesIPv4Routes() throws {
        let json = """
            [{"dst":"default","gateway":"192.168.1.1","dev":"eth0","protocol":"16","metric":100,"flags":[]},\
            {"dst":"10.20.0.0/24","gateway":"100.64.0.2","dev":"rp0","protocol":"239","flags":[]},\
            {"dst":"10.30.0.5","gateway":"100.64.0.3","dev":"rp0","protocol":"4","flags":[]},\
            {"type":"blackhole","dst":"10.99.0.0/16","protocol":"static","flags":[]},\
            {"dst":"100.64.0.0/24","dev":"rp0","protocol":"2","scope":"253","prefsrc":"100.64.0.1","flags":[]}]
            """
        let routes = try KernelStateParser.routes(fromIPJSON: json, family: .v4, table: 254)
        #expect(routes.count == 5)
        #expect(routes[0] == KernelRoute(destination: pfx("0.0.0.0/0"), gateway: addr("192.168.1.1"), device: "eth0", metric: 100,
                                         protocolNumber: 16, table: 254))
        #expect(routes[1] == KernelRoute(destination: pfx("10.20.0.0/24"), gateway: addr("100.64.0.2"), device: "rp0", metric: 0,
                                         protocolNumber: 239, table: 254))
        #expect(routes[2].destination == pfx("10.30.0.5/32"))
        #expect(routes[3].type == "blackhole" && routes[3].protocolNumber == 4 && routes[3].gateway == nil)
        #expect(routes[4].gateway == nil && routes[4].protocolNumber == 2)
        #expect(try KernelStateParser.routes(fromIPJSON: "[]\n", family: .v4, table: 254).isEmpty)
        #expect(try KernelStateParser.routes(fromIPJSON: "", family: .v4, table: 254).isEmpty)
        #expect(throws: KernelStateParseError.self) { try KernelStateParser.routes(fromIPJSON: "Error: …", family: .v4, table: 254) }
    }

    @Test func parsesIPv6Routes() throws {
        let json = """
            [{"dst":"fd00:20::/64","gateway":"fd00:64::2","dev":"rp0","protocol":"238","metric":1024,"flags":[],"pref":"medium"},\
            {"dst":"fe80::/64","dev":"rp0","protocol":"2","metric":256,"flags":[],"pref":"medium"},\
            {"dst":"default","protocol":"9","metric":1024,"flags":[],"nexthops":[{"gateway":"fe80::1","dev":"eth0"}]}]
            """
        let routes = try KernelStateParser.routes(fromIPJSON: json, family: .v6, table: 254)
        #expect(routes[0] == KernelRoute(destination: pfx("fd00:20::/64"), gateway: addr("fd00:64::2"), device: "rp0", metric: 1024,
                                         protocolNumber: 238, table: 254))
        #expect(routes[2].destination == pfx("::/0") && routes[2].gateway == nil)
    }

    @Test func parsesOurNATTable() throws {
        let json = """
            {"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, \
            {"table": {"family": "inet", "name": "routeplane", "handle": 2}}, \
            {"chain": {"family": "inet", "table": "routeplane", "name": "postrouting", "handle": 1, "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}, \
            {"rule": {"family": "inet", "table": "routeplane", "chain": "postrouting", "handle": 2, "expr": [\
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "100.64.0.0", "len": 10}}}}, \
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "10.20.0.0", "len": 24}}}}, \
            {"masquerade": null}]}}, \
            {"rule": {"family": "inet", "table": "routeplane", "chain": "postrouting", "handle": 3, "expr": [\
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"addr": "fd00:64::", "len": 64}}}}, \
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": {"prefix": {"addr": "fd00:20::", "len": 64}}}}, \
            {"masquerade": null}]}}, \
            {"rule": {"family": "inet", "table": "routeplane", "chain": "postrouting", "handle": 4, "expr": [\
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "100.64.0.0", "len": 10}}}}, \
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.9.9.9"}}, \
            {"masquerade": null}]}}]}
            """
        let table = try KernelStateParser.natTable(fromNftJSON: json, tableName: "routeplane")
        #expect(table.wellFormed)
        #expect(table.rules == [
            MasqueradeRule(source: pfx("100.64.0.0/10"), destination: pfx("10.20.0.0/24")),
            MasqueradeRule(source: pfx("fd00:64::/64"), destination: pfx("fd00:20::/64")),
            MasqueradeRule(source: pfx("100.64.0.0/10"), destination: pfx("10.9.9.9/32")),
        ])
    }

    @Test func foreignShapesAreNotWellFormed() throws {
        let head = """
            {"nftables": [{"table": {"family": "inet", "name": "routeplane", "handle": 2}}, \
            {"chain": {"family": "inet", "table": "routeplane", "name": "postrouting", "handle": 1, "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}
            """
        // An extra rule that is not a plain masquerade (someone's `counter accept`).
        let extraRule = head + """
            , {"rule": {"family": "inet", "table": "routeplane", "chain": "postrouting", "handle": 5, "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]}}]}
            """
        #expect(try KernelStateParser.natTable(fromNftJSON: extraRule, tableName: "routeplane").wellFormed == false)
        // A second chain.
        let extraChain = head + """
            , {"chain": {"family": "inet", "table": "routeplane", "name": "forward", "handle": 9, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}]}
            """
        #expect(try KernelStateParser.natTable(fromNftJSON: extraChain, tableName: "routeplane").wellFormed == false)
        // No chain at all.
        let empty = #"{"nftables": [{"table": {"family": "inet", "name": "routeplane", "handle": 2}}]}"#
        let t = try KernelStateParser.natTable(fromNftJSON: empty, tableName: "routeplane")
        #expect(t.rules.isEmpty && !t.wellFormed)
        #expect(throws: KernelStateParseError.self) { try KernelStateParser.natTable(fromNftJSON: "nope", tableName: "routeplane") }
    }
}
