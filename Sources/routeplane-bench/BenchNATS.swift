import ArgumentParser
import Foundation
import ViewDistribution
import NATSAuth
import NATSClient

/// NATS connections of benchmarks and lab runs: the servers Routeplane starts run in operator mode, so a bench
/// connects with a user minted from the deployment's key folder ($ROUTEPLANE_NATS_KEYS, written by ops/services).
enum BenchNATS {
    static func keys() throws -> NATSKeyDirectory {
        guard let folder = ProcessInfo.processInfo.environment["ROUTEPLANE_NATS_KEYS"], !folder.isEmpty else {
            throw ValidationError("no NATS keys: set ROUTEPLANE_NATS_KEYS (ops/services start writes it to .services/env)")
        }
        return try NATSKeyDirectory.load(at: folder)
    }

    /// A connection configuration as a bench user without permission limits: the bench's relay also publishes the raw
    /// baseline's subjects, and its simulated agents subscribe to many peers' subjects at once.
    static func configuration(url: String, name: String) throws -> NATSConfiguration {
        let keys = try keys()
        var c = NATSConfiguration(url: url, name: name)
        c.failIfUnreachable = true
        c.userCredentials = .minted { user, now in
            keys.userJWT(name: name, user: user, permissions: nil, issuedAt: now, expires: now + 24 * 3_600)
        }
        return c
    }
}
