import Foundation

/// Where the agent's setup key comes from. A key on the command line is readable by every local user
/// (`/proc/<pid>/cmdline`), so it is for tests only; a file (mode 0600) or the environment is the way.
public enum SetupKeySource: Equatable, Sendable {
    case file(String)
    case environment
    /// `--setup-key`: tests only, warned about.
    case commandLine
    case none

    public static let environmentVariable = "ROUTEPLANE_SETUP_KEY"

    public struct Resolved: Equatable, Sendable {
        public var key: String?
        public var source: SetupKeySource
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case several([String])
        case unreadable(path: String, reason: String)
        case empty(path: String)

        public var description: String {
            switch self {
            case .several(let names): "give the setup key one way only, not \(names.joined(separator: " and "))"
            case .unreadable(let path, let reason): "--setup-key-file \(path) cannot be read: \(reason)"
            case .empty(let path): "--setup-key-file \(path) is empty"
            }
        }
    }

    /// The key from `--setup-key-file` (its content, surrounding white space trimmed), `ROUTEPLANE_SETUP_KEY`, or
    /// `--setup-key`; more than one of them is refused (which one wins would be a guess). None is fine (an agent that
    /// already enrolled needs no key).
    public static func resolve(flag: String?, file: String?, environment: [String: String],
                               read: (String) throws -> String = { try String(contentsOfFile: $0, encoding: .utf8) }) throws(Failure) -> Resolved {
        let fromEnvironment = environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        let given = [(file != nil, "--setup-key-file"), (fromEnvironment != nil, environmentVariable), (flag != nil, "--setup-key")]
            .filter(\.0).map(\.1)
        if given.count > 1 { throw .several(given) }
        if let file {
            let text: String
            do {
                text = try read(file)
            } catch {
                throw .unreadable(path: file, reason: "\(error)")
            }
            let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if key.isEmpty { throw .empty(path: file) }
            return Resolved(key: key, source: .file(file))
        }
        if let fromEnvironment { return Resolved(key: fromEnvironment.trimmingCharacters(in: .whitespacesAndNewlines), source: .environment) }
        if let flag { return Resolved(key: flag, source: .commandLine) }
        return Resolved(key: nil, source: .none)
    }
}
