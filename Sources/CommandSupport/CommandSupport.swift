import ArgumentParser
@_exported import CommandLogging
import EventStore
import Foundation
import Logging

/// What the command-line tools share (the product `routeplane`, `routeplane-bench`, `routeplane-chaos`): database
/// options, logging set-up, finding each other's executables.

/// Options every command that talks to PostgreSQL shares.
public struct DatabaseOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .customLong("database-url"), help: "libpq URL of PostgreSQL (default: $ROUTEPLANE_DATABASE_URL).")
    public var databaseURL: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    public var logLevel: Logger.Level = .notice

    public func resolvedURL() throws -> String {
        if let databaseURL { return databaseURL }
        if let env = ProcessInfo.processInfo.environment["ROUTEPLANE_DATABASE_URL"], !env.isEmpty { return env }
        throw ValidationError("no database: pass --database-url or set ROUTEPLANE_DATABASE_URL (ops/services start writes it to .services/env)")
    }

    public func makeStore(maxConnections: Int = 8) throws -> EventStore {
        bootstrapLogging(level: logLevel)
        return EventStore(url: try resolvedURL(), maxConnections: maxConnections)
    }
}

/// The executables of one build sit side by side (`.build/<config>/routeplane`, `routeplane-bench`, `routeplane-chaos`).
public enum Executables {
    /// This process's own executable.
    public static func own() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The executable `name` next to this one (e.g. the product `routeplane` that a bench starts as `serve`).
    public static func sibling(_ name: String) -> String {
        URL(fileURLWithPath: own()).deletingLastPathComponent().appendingPathComponent(name).path
    }
}

/// `s` left-aligned in a column of `width` characters (at least one space after it): the tools' plain tables.
public func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}

/// A duration in seconds, as the tools print them.
public func projectionSeconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
