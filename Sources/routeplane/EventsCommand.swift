import CommandSupport
import ArgumentParser
import EventStore
import Foundation

/// Admin commands on the raw event log: append and read back (used by ops/demo and by operators).
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Append to and read the raw event log.",
        subcommands: [Append.self, Read.self, Tail.self]
    )

    struct Append: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Append one event (JSON data) to a tenant.")
        @OptionGroup var database: DatabaseOptions
        @Option var tenant: String
        @Option var type: String
        @Option(help: "The event's data, JSON text.") var data: String
        @Option var actor: String = "cli"
        @Option(help: "Expected tenant version (omit for any).") var expected: Int64?

        func run() async throws {
            guard (try? JSONSerialization.jsonObject(with: Data(data.utf8), options: [.fragmentsAllowed])) != nil else {
                throw ValidationError("--data: not valid JSON")
            }
            let store = try database.makeStore(maxConnections: 1)
            let seqs = try await store.append(tenant: tenant, expected: expected.map { .exactly($0) } ?? .any,
                                              events: [NewEvent(type: type, data: data, metadata: EventMetadata(actor: actor))])
            print("appended \(type) to tenant \(tenant) as seq \(seqs.lowerBound)")
            await store.shutdown()
        }
    }

    struct Read: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a tenant's events in sequence order.")
        @OptionGroup var database: DatabaseOptions
        @Option var tenant: String
        @Option var from: Int64 = 1
        @Option var limit: Int = 100

        func run() async throws {
            let store = try database.makeStore(maxConnections: 1)
            for event in try await store.read(tenant: tenant, fromSequence: from, limit: limit) {
                print(Events.line(event))
            }
            await store.shutdown()
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Follow every tenant's events (catch up, then live).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Stop after this many events.") var count: Int?
        @Option(help: "Stop after this many seconds.") var seconds: Double?

        func run() async throws {
            let store = try database.makeStore(maxConnections: 2)
            let count = self.count
            let task = Task {
                var seen = 0
                for try await event in store.subscribe() {
                    print(Events.line(event))
                    seen += 1
                    if let count, seen >= count { break }
                }
            }
            if let seconds {
                Task { try? await Task.sleep(for: .seconds(seconds)); task.cancel() }
            }
            _ = await task.result
            await store.shutdown()
        }
    }

    static func line(_ event: RecordedEvent) -> String {
        let time = ISO8601DateFormatter().string(from: event.recordedAt)
        return "\(event.tenant) #\(event.sequence) @\(event.globalPosition) \(time) \(event.type) by \(event.metadata.actor): \(event.data)"
    }
}
