import ArgumentParser

/// `routeplane-bench`: the benchmark suite, apart from the product executable. Benches that need a controller or an
/// agent start the product `routeplane` that sits next to this executable.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routeplane-bench",
        abstract: "Benchmarks; each prints its figures next to a baseline measured in the same run (`routeplane-bench all`: the whole suite).",
        subcommands: [BenchAppend.self, BenchModel.self, BenchProjection.self, BenchAPI.self, BenchPropagation.self, BenchMemory.self, BenchScaleOut.self, BenchAuditLoad.self, BenchHistory.self, BenchExport.self, BenchAll.self]
    )
}

/// `routeplane-bench model`: the pure route model at tenant scale (no I/O).
struct BenchModel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Cost of view(for:) and affectedPeers at 10,000 peers, vs recomputing every view; cost of signing and verifying a view message.")

    @Option var peers = 10_000
    @Option var groups = 500
    @Option var routes = 2_000
    @Option var seed: UInt64 = 42
    @Flag(help: "Only the view signing / verification micro-benchmark (seconds).") var signingOnly = false

    func run() async throws {
        #if DEBUG
        print("note: debug build; use `swift run -c release routeplane-bench model` for representative figures")
        #endif
        if !signingOnly {
            for line in runModelBenchmark(peers: peers, groups: groups, routes: routes, seed: seed) {
                print(line)
            }
        }
        for line in runSigningBenchmark() { print(line) }
    }
}
