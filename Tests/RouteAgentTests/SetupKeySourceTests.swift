import Foundation
@testable import RouteAgent
import Testing

/// Where the agent reads its setup key: a file, the environment, or (tests only) the command line.
@Suite struct SetupKeySourceTests {
    @Test("a key file is read (white space trimmed), from a real file")
    func file() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rp-key-\(UUID().uuidString)").path
        try "rps_fromfile\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let resolved = try SetupKeySource.resolve(flag: nil, file: path, environment: [:])
        #expect(resolved == .init(key: "rps_fromfile", source: .file(path)))
    }

    @Test("ROUTEPLANE_SETUP_KEY is read; an empty one counts as absent")
    func environment() throws {
        #expect(try SetupKeySource.resolve(flag: nil, file: nil, environment: ["ROUTEPLANE_SETUP_KEY": "rps_env"])
                == .init(key: "rps_env", source: .environment))
        #expect(try SetupKeySource.resolve(flag: nil, file: nil, environment: ["ROUTEPLANE_SETUP_KEY": ""]) == .init(key: nil, source: .none))
    }

    @Test("the flag still works and says where it came from (the command warns); two ways at once, a missing or empty file are refused")
    func flagAndErrors() throws {
        #expect(try SetupKeySource.resolve(flag: "rps_flag", file: nil, environment: [:]) == .init(key: "rps_flag", source: .commandLine))
        #expect(throws: SetupKeySource.Failure.several(["ROUTEPLANE_SETUP_KEY", "--setup-key"])) {
            try SetupKeySource.resolve(flag: "a", file: nil, environment: ["ROUTEPLANE_SETUP_KEY": "b"])
        }
        #expect(throws: SetupKeySource.Failure.several(["--setup-key-file", "ROUTEPLANE_SETUP_KEY"])) {
            try SetupKeySource.resolve(flag: nil, file: "/x", environment: ["ROUTEPLANE_SETUP_KEY": "b"])
        }
        #expect(throws: SetupKeySource.Failure.empty(path: "/k")) {
            try SetupKeySource.resolve(flag: nil, file: "/k", environment: [:], read: { _ in " \n" })
        }
        let missing = "/nonexistent-\(UUID().uuidString)"
        do {
            _ = try SetupKeySource.resolve(flag: nil, file: missing, environment: [:])
            Issue.record("a missing file was accepted")
        } catch {
            guard case .unreadable(let path, _) = error else { Issue.record("\(error)"); return }
            #expect(path == missing)
        }
    }
}
