import Foundation
import RouteAgent
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What to do when the namespace tests cannot run here: run them, skip them loudly, or (under CI=true, where the
/// machine is expected to run them) fail.
enum NamespaceSkip: Equatable {
    case run
    case skipLoudly(String)
    case fail(String)

    static func verdict(unusable reason: String?, environment: [String: String]) -> NamespaceSkip {
        guard let reason else { return .run }
        let message = "LinuxApplierNamespaceTests did NOT run: \(reason)"
        if environment["CI"] == "true" { return .fail(message + " (CI=true: this machine is expected to run them)") }
        return .skipLoudly(message)
    }
}

extension TestNamespace {
    /// Why the namespace tests cannot run here (nil: they can); the same conditions as `usable()`, with a reason.
    static func whyUnusable() async -> String? {
        if geteuid() != 0 { return "not root" }
        if CommandRunner.resolve("ip") == nil { return "`ip` (iproute2) not installed" }
        if CommandRunner.resolve("nft") == nil { return "`nft` (nftables) not installed" }
        return await usable() ? nil : "`ip netns add` does not work here"
    }
}

@Suite(.timeLimit(.minutes(2))) struct NamespaceSkipTests {
    /// The namespace suite skips itself where it cannot run; this says so on stderr, and fails under CI=true.
    @Test func namespaceTestsAreNotSkippedSilently() async {
        switch NamespaceSkip.verdict(unusable: await TestNamespace.whyUnusable(), environment: ProcessInfo.processInfo.environment) {
        case .run:
            break
        case .skipLoudly(let message):
            FileHandle.standardError.write(Data("\n*** SKIPPED: \(message)\n\n".utf8))
        case .fail(let message):
            Issue.record(Comment(rawValue: message))
        }
    }

    @Test func verdicts() {
        #expect(NamespaceSkip.verdict(unusable: nil, environment: ["CI": "true"]) == .run)
        #expect(NamespaceSkip.verdict(unusable: "not root", environment: [:]) == .skipLoudly("LinuxApplierNamespaceTests did NOT run: not root"))
        #expect(NamespaceSkip.verdict(unusable: "not root", environment: ["CI": "false"]) == .skipLoudly("LinuxApplierNamespaceTests did NOT run: not root"))
        #expect(NamespaceSkip.verdict(unusable: "not root", environment: ["CI": "true"])
                == .fail("LinuxApplierNamespaceTests did NOT run: not root (CI=true: this machine is expected to run them)"))
    }
}
