import Foundation
import ProcessSpawn
import RouteAgent
import TestSupport
import Testing

/// The lean agent executable `routeplane-agent` of this build (next to the test bundle, like `routeplane`): it answers
/// as the agent command, runs from a state folder, and does not map what the agent does not need (the leanness cannot
/// silently regress through a new import).
@Suite(.timeLimit(.minutes(2))) struct AgentExecutableTests {
    static func executable(_ name: String) throws -> String {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let path = URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestSetupError("no \(name) executable at \(path): build the products (swift build --build-tests)")
        }
        return path
    }

    static func scratch(_ tag: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rp-agent-exe-\(tag)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `arguments` to its end (killed after `timeout`): exit code and output (stdout and stderr).
    static func run(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> (code: Int32, output: String) {
        let folder = try scratch("run")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/out.log"
        let pid = try ProcessSpawn.start(arguments, stdout: .file(output, append: false))
        var status: Int32?
        _ = await eventually(timeout: timeout) {
            status = ProcessSpawn.exited(pid)
            return status != nil
        }
        if status == nil {
            kill(pid, SIGKILL)
            status = ProcessSpawn.waitBlocking(pid)
        }
        return ((status! >> 8) & 0xff, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    /// A loopback port nothing listens on now (the kernel's pick, released at once).
    static func closedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func helpNamesTheLeanExecutableAndTheAgentsOptions() async throws {
        let result = try await Self.run([try Self.executable("routeplane-agent"), "--help"])
        #expect(result.code == 0, "\(result.output)")
        #expect(result.output.contains("USAGE: routeplane-agent"), "\(result.output)")
        for option in ["--controller", "--state-dir", "--applier", "--setup-key-file", "--nats-url", "--controller-ca", "--wireguard",
                       "--domain-ttl-min", "--cleanup", "routes"] {
            #expect(result.output.contains(option), "no \(option) in: \(result.output)")
        }
        // The same command stays a subcommand of the product.
        let product = try await Self.run([try Self.executable("routeplane"), "agent", "--help"])
        #expect(product.code == 0, "\(product.output)")
        #expect(product.output.contains("USAGE: routeplane agent"), "\(product.output)")
    }

    @Test func refusesToStartWithoutAController() async throws {
        let folder = try Self.scratch("refuse")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try await Self.run([try Self.executable("routeplane-agent"), "--state-dir", folder, "--applier", "dry-run"])
        #expect(result.code != 0)
        #expect(result.output.contains("--controller"), "\(result.output)")
    }

    /// An enrolled agent (identity in its state folder) whose controller and NATS are unreachable keeps running and
    /// retrying; meanwhile its memory map must hold none of the libraries the lean executable leaves out.
    @Test func runningAgentMapsNoneOfTheLeftOutLibraries() async throws {
        let folder = try Self.scratch("maps")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let controller = "http://127.0.0.1:\(Self.closedPort())"
        let nats = "nats://127.0.0.1:\(Self.closedPort())"
        let state = try AgentStateFolder(path: folder + "/state")
        _ = try state.createNATSKey()
        try state.save(AgentIdentity(controller: controller, tenantID: "t-lean", peerID: "p-lean", ip: "100.64.0.9", credential: "not-a-secret",
                                     natsURL: nats))
        let log = folder + "/agent.log"
        let pid = try ProcessSpawn.start([try Self.executable("routeplane-agent"), "--controller", controller, "--nats-url", nats,
                                          "--state-dir", folder + "/state", "--applier", "dry-run", "--assume-candidates-up", "--log-level", "info"],
                                         stdout: .file(log, append: false))
        defer {
            kill(pid, SIGKILL)
            _ = ProcessSpawn.waitBlocking(pid)
        }
        // Started for real: it tried NATS (refused) and goes on with HTTP; the runtime and its libraries are mapped by then.
        let running = await eventually(timeout: .seconds(30)) {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return ProcessSpawn.exited(pid) == nil && text.contains("NATS")
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try #require(running, "the agent did not start following its view: \(text)")
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        let libraries = LeanAgentMaps.libraries(maps)
        #expect(libraries.contains { $0.hasPrefix("libc.so") }, "no libc in the maps? \(libraries)")
        let present = LeanAgentMaps.forbiddenPresent(in: libraries)
        #expect(present.isEmpty, "the lean agent maps \(present); all: \(libraries.sorted())")
        #expect(ProcessSpawn.exited(pid) == nil, "the agent exited: \(text)")
    }

    @Test func forbiddenCheckFindsTheLibrariesOfTheFullProduct() {
        // The check itself: libpq in the maps of the full product is caught; FoundationEssentials is allowed.
        let maps = """
            7f0000000000-7f0000001000 r-xp 00000000 08:01 1 /opt/swift/usr/lib/swift/linux/libFoundation.so
            7f0000002000-7f0000003000 r--p 00000000 08:01 2 /opt/swift/usr/lib/swift/linux/lib_FoundationICU.so
            7f0000004000-7f0000005000 r--p 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/libpq.so.5.15
            7f0000006000-7f0000007000 r--p 00000000 08:01 4 /opt/swift/usr/lib/swift/linux/libFoundationEssentials.so
            7f0000008000-7f0000009000 rw-p 00000000 00:00 0
            """
        let libraries = LeanAgentMaps.libraries(maps)
        #expect(libraries == ["libFoundation.so", "lib_FoundationICU.so", "libpq.so.5.15", "libFoundationEssentials.so"])
        #expect(LeanAgentMaps.forbiddenPresent(in: libraries) == ["libpq.so.5.15"])
    }
}

/// Reading a process's memory map for the lean-agent check.
enum LeanAgentMaps {
    /// Name prefixes (up to ".so") of the libraries the lean agent must not map: the controller's PostgreSQL client
    /// (libpq and, through it, GnuTLS, Kerberos, LDAP: 3.4 MB resident), URLSession's and XML's Foundation modules.
    /// Not yet here: libFoundation, lib_FoundationICU, libFoundationInternationalization (the agent's modules and
    /// swift-crypto 3 import Foundation; see docs/notes/h23a.md).
    static let forbidden = ["libpq.so", "libgnutls.so", "libldap-2.5.so", "libFoundationNetworking.so", "libFoundationXML.so"]

    /// The file names of the mapped shared objects, once each, in order of first appearance.
    static func libraries(_ maps: String) -> [String] {
        var seen: [String] = []
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, let name = fields[5].split(separator: "/").last.map(String.init), name.contains(".so") else { continue }
            if !seen.contains(name) { seen.append(name) }
        }
        return seen
    }

    static func forbiddenPresent(in libraries: [String]) -> [String] {
        libraries.filter { name in forbidden.contains { name == $0 || name.hasPrefix($0 + ".") } }
    }
}
