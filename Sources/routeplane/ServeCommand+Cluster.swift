import ArgumentParser
import Foundation
import NATSClient
import ViewDistribution

/// `routeplane serve`'s options for a clustered NATS: how many JetStream servers keep a copy of the views stream.
/// The servers themselves are listed in `--nats-url` (comma-separated: libnats tries them in order and reconnects to
/// another one when its server goes); the database's standby is named in `--database-url` (libpq's multi-host URL with
/// `target_session_attrs=read-write`, so every new connection finds the primary after a promotion).
struct ServeClusterOptions: ParsableArguments {
    @Option(name: .customLong("nats-stream-replicas"),
            help: "Replicas of the views stream on a NATS JetStream cluster: 1 (a single server, the default) or 3 (survives the loss of one server); default $ROUTEPLANE_NATS_STREAM_REPLICAS, else 1.")
    var streamReplicas: Int?

    /// The replica count, from the option or its environment variable; 1 to 5 (JetStream's own limit), checked now.
    func replicas(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int {
        let value: Int
        if let streamReplicas {
            value = streamReplicas
        } else if let text = environment["ROUTEPLANE_NATS_STREAM_REPLICAS"], !text.isEmpty {
            guard let parsed = Int(text) else { throw ValidationError("ROUTEPLANE_NATS_STREAM_REPLICAS must be a number from 1 to 5, got \(text)") }
            value = parsed
        } else {
            value = 1
        }
        guard (1...5).contains(value) else { throw ValidationError("--nats-stream-replicas must be from 1 to 5 (JetStream's limit), got \(value)") }
        return value
    }

    /// The relay's configuration with the views stream at this replica count.
    func relayConfiguration(name: String) throws -> OutboxRelay.Configuration {
        var stream = StreamSpec.views
        stream.replicas = try replicas()
        return OutboxRelay.Configuration(stream: stream, name: name)
    }
}
