import Foundation
import Logging
import RouteAgent
import RouteModel
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A network namespace of the test's own: unique name, a veth pair inside it, removed afterwards.
enum TestNamespace {
    static let runner = CommandRunner()
    static let prefix = "rpagent-test-"

    /// Root, `ip` and `nft` present, and `ip netns add` works here.
    static func usable() async -> Bool {
        guard geteuid() == 0, CommandRunner.resolve("ip") != nil, CommandRunner.resolve("nft") != nil else { return false }
        await removeStale()
        let name = prefix + "probe-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        guard let r = try? await runner.run(["ip", "netns", "add", name], input: nil, timeout: .seconds(10)), r.succeeded else {
            return false
        }
        await destroy(name)
        return true
    }

    /// Namespaces left by a test process that no longer runs (killed mid-test).
    static func removeStale() async {
        guard let r = try? await runner.run(["ip", "netns", "list"], input: nil, timeout: .seconds(10)) else { return }
        for line in r.stdout.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix(prefix) else { continue }
            let parts = name.dropFirst(prefix.count).split(separator: "-")
            guard let pidText = parts.first(where: { Int32($0) != nil }), let pid = Int32(pidText) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { await destroy(name) }
        }
    }

    /// Creates the namespace with `lo` up and a veth pair rp0/rp1; rp0 holds 100.64.0.1/24 and fd00:64::1/64.
    static func create() async throws -> String {
        let name = prefix + "\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try await sh(["ip", "netns", "add", name])
        do {
            for cmd in [["ip", "link", "set", "lo", "up"],
                        ["ip", "link", "add", "rp0", "type", "veth", "peer", "name", "rp1"],
                        ["ip", "link", "set", "rp0", "up"], ["ip", "link", "set", "rp1", "up"],
                        ["ip", "addr", "add", "100.64.0.1/24", "dev", "rp0"],
                        ["ip", "addr", "add", "fd00:64::1/64", "dev", "rp0", "nodad"]] {
                try await sh(["ip", "netns", "exec", name] + cmd)
            }
        } catch {
            await destroy(name)
            throw error
        }
        return name
    }

    static func destroy(_ name: String) async {
        _ = try? await runner.run(["ip", "netns", "del", name], input: nil, timeout: .seconds(10))
    }

    @discardableResult
    static func sh(_ args: [String], input: String? = nil) async throws -> CommandResult {
        let r = try await runner.run(args, input: input, timeout: .seconds(10))
        guard r.succeeded else {
            throw ApplierError.commandFailed(command: args.joined(separator: " "), status: r.status, stderr: r.stderr)
        }
        return r
    }
}

/// LinuxApplier against a real kernel, inside a namespace the test makes (nothing outside it changes).
@Suite(.serialized, .enabled("needs root, iproute2, nftables and working `ip netns` (skipped otherwise)") { await TestNamespace.usable() })
struct LinuxApplierNamespaceTests {
    @Test(.timeLimit(.minutes(2)))
    func appliesReconcilesAndCleansUpInANamespace() async throws {
        let ns = try await TestNamespace.create()
        do {
            try await scenario(ns)
        } catch {
            await TestNamespace.destroy(ns)
            throw error
        }
        await TestNamespace.destroy(ns)
    }

    func scenario(_ ns: String) async throws {
        let exec = ["ip", "netns", "exec", ns]
        @discardableResult
        func inNS(_ args: [String], input: String? = nil) async throws -> CommandResult {
            try await TestNamespace.sh(exec + args, input: input)
        }
        func routes(_ family: String) async throws -> [KernelRoute] {
            let out = try await inNS(["ip", "-j", "-N", family, "route", "show", "table", "main"]).stdout
            return try KernelStateParser.routes(fromIPJSON: out, family: family == "-4" ? .v4 : .v6, table: 254)
        }
        func route(_ dst: String) async throws -> KernelRoute? {
            let p = pfx(dst)
            return try await routes(p.isV4 ? "-4" : "-6").first { $0.destination == p }
        }
        func forwarding() async throws -> String {
            try await inNS(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func nftTables() async throws -> String { try await inNS(["nft", "list", "tables"]).stdout }

        let hostForwarding = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)

        // Someone else's state, which must survive everything below.
        try await inNS(["ip", "route", "add", "10.40.0.0/24", "via", "100.64.0.9", "proto", "static"])
        try await inNS(["ip", "route", "add", "10.50.0.0/24", "via", "100.64.0.9"]) // holds the key of a desired route
        try await inNS(["nft", "-f", "-"], input: "table ip other {\n chain passthrough { type filter hook forward priority 0; policy accept; counter; }\n}\n")

        var quiet = Logger(label: "test.applier")
        quiet.logLevel = .error
        let applier = try LinuxApplier(configuration: .init(commandPrefix: exec), logger: quiet)
        let rule = MasqueradeRule(source: pfx("100.64.0.0/10"), destination: pfx("10.20.0.0/24"))
        var desired = DesiredRouteState(
            routes: [ClientRoute(destination: pfx("10.20.0.0/24"), nextHop: addr("100.64.0.2"), device: "rp0"),
                     ClientRoute(destination: pfx("10.30.0.0/24"), nextHop: addr("100.64.0.3"), keepRoute: true),
                     ClientRoute(destination: pfx("10.50.0.0/24"), nextHop: addr("100.64.0.2")),
                     ClientRoute(destination: pfx("fd00:20::/64"), nextHop: addr("fd00:64::2"))],
            routingPeer: RoutingPeerState(forwardIPv4: true, forwardIPv6: false, masquerade: [rule]))

        // 1. First apply: routes with our marker, forwarding on, NAT table; the held key is a conflict.
        let first = try await applier.apply(desired)
        #expect(first.changed)
        #expect(first.conflicts.map(\.route.destination) == [pfx("10.50.0.0/24")])
        let r20 = try #require(try await route("10.20.0.0/24"))
        #expect(r20.gateway == addr("100.64.0.2") && r20.protocolNumber == 239 && r20.device == "rp0")
        let r30 = try #require(try await route("10.30.0.0/24"))
        #expect(r30.gateway == addr("100.64.0.3") && r30.protocolNumber == 238)
        let r6 = try #require(try await route("fd00:20::/64"))
        #expect(r6.gateway == addr("fd00:64::2") && r6.protocolNumber == 239 && r6.metric == 1024)
        #expect(try await route("10.50.0.0/24")?.protocolNumber == 3) // still theirs (proto boot)
        #expect(try await forwarding() == "1")
        let nat = try KernelStateParser.natTable(fromNftJSON: try await inNS(["nft", "-j", "list", "table", "inet", "routeplane"]).stdout,
                                                 tableName: "routeplane")
        #expect(nat.wellFormed && nat.rules == [rule])
        #expect(try await nftTables().contains("table ip other"))

        // 2. The same state again changes nothing (read back from the kernel, not remembered).
        let again = try await applier.apply(desired)
        #expect(again.actions.isEmpty, "\(again)")

        // 3. New next hop, masquerade off: route replaced in place, NAT table gone, forwarding stays.
        desired.routes[0].nextHop = addr("100.64.0.4")
        desired.routingPeer.masquerade = []
        let third = try await applier.apply(desired)
        #expect(third.actions.count == 2, "\(third)")
        #expect(try await route("10.20.0.0/24")?.gateway == addr("100.64.0.4"))
        let tables = try await nftTables()
        #expect(!tables.contains("routeplane") && tables.contains("table ip other"))
        #expect(try await forwarding() == "1")

        // 4. A route of ours deleted behind our back comes back; one added by hand with our marker and
        //    not wanted goes.
        try await inNS(["ip", "route", "del", "10.20.0.0/24", "proto", "239"])
        try await inNS(["ip", "route", "add", "10.60.0.0/24", "via", "100.64.0.2", "proto", "239"])
        let repair = try await applier.apply(desired)
        #expect(repair.actions.count == 2, "\(repair)")
        #expect(try await route("10.20.0.0/24")?.gateway == addr("100.64.0.4"))
        #expect(try await route("10.60.0.0/24") == nil)

        // 5. Masquerade back on, then cleanup keeping keep_route routes.
        desired.routingPeer.masquerade = [rule]
        try await applier.apply(desired)
        #expect(try await nftTables().contains("table inet routeplane"))
        let cleanup = try await applier.cleanup(keepRoutes: true)
        #expect(cleanup.changed)
        #expect(try await route("10.20.0.0/24") == nil)
        #expect(try await route("fd00:20::/64") == nil)
        #expect(try await route("10.30.0.0/24")?.protocolNumber == 238)
        #expect(try await forwarding() == "0") // we turned it on, so we turn it off
        #expect(!(try await nftTables().contains("routeplane")))

        // 6. A fresh applier (as `routeplane agent --cleanup` after a restart) removes the rest.
        let fresh = try LinuxApplier(configuration: .init(commandPrefix: exec), logger: quiet)
        let all = try await fresh.cleanup(keepRoutes: false)
        #expect(all.actions.count == 1)
        #expect(try await route("10.30.0.0/24") == nil)
        #expect(try await fresh.cleanup(keepRoutes: false).actions.isEmpty)

        // Others' state is untouched; so is the host.
        #expect(try await route("10.40.0.0/24")?.protocolNumber == 4)
        #expect(try await route("10.50.0.0/24")?.gateway == addr("100.64.0.9"))
        #expect(try await nftTables().contains("table ip other"))
        #expect(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8) == hostForwarding)
    }
}

/// A runner that plays a kernel without nft, to check the applier's refusal.
private struct NoNftRunner: CommandRunning {
    func run(_ arguments: [String], input: String?, timeout: Duration) async throws -> CommandResult {
        switch arguments.first {
        case "ip": return CommandResult(status: 0, stdout: "[]", stderr: "")
        case "sysctl": return CommandResult(status: 0, stdout: "0\n", stderr: "")
        default: throw CommandError.notFound(arguments[0])
        }
    }
}

@Suite struct LinuxApplierShellTests {
    @Test func masqueradeWithoutNftIsRefusedClearly() async throws {
        let applier = try LinuxApplier(configuration: .init(requirePrivileges: false), runner: NoNftRunner())
        let desired = DesiredRouteState(routingPeer: RoutingPeerState(
            forwardIPv4: true, forwardIPv6: false,
            masquerade: [MasqueradeRule(source: pfx("100.64.0.0/10"), destination: pfx("10.20.0.0/24"))]))
        do {
            try await applier.apply(desired)
            Issue.record("expected a refusal")
        } catch let error as ApplierError {
            #expect("\(error)".contains("nftables"))
        }
        // Nothing to do needs no nft.
        #expect(try await applier.apply(.empty).actions.isEmpty)
    }

    @Test(.enabled(if: !Privileges.hasNetAdmin(), "runs only without CAP_NET_ADMIN"))
    func refusesWithoutPrivileges() throws {
        #expect(throws: ApplierError.self) { _ = try LinuxApplier() }
    }
}
