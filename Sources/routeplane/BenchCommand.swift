import ArgumentParser

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks; each prints its figures next to a baseline measured in the same run.",
        subcommands: [BenchAppend.self]
    )
}
