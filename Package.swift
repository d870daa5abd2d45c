// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Routeplane",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "routeplane", targets: ["routeplane"]),
        .executable(name: "routeplane-bench", targets: ["routeplane-bench"]),
        .executable(name: "routeplane-chaos", targets: ["routeplane-chaos"]),
        .executable(name: "routeplane-agent", targets: ["routeplane-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Already in the graph through Hummingbird; HTTPAPI's request deadline handler reads its HTTP parts (NIOHTTPTypes).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // System libraries from Debian's packages (ops/setup installs them).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        // glibc's resolver (libresolv, part of libc6-dev): the agent resolves domain routes with it to read the records' TTLs.
        .systemLibrary(name: "CResolv"),
        // glibc's posix_spawn_file_actions_addclosefrom_np (declared only under _GNU_SOURCE): children get descriptors 0-2 only.
        .systemLibrary(name: "CSpawn"),

        // The hot paths' JSON: one strict byte-level reader (stored events, view envelopes, JetStream acks) and one writer
        // and string escaper (canonical views, envelopes, event metadata). Codable everywhere else. No I/O.
        .target(name: "JSONKit", swiftSettings: swiftSettings),
        // Pure domain: routes, groups, peers, commands, events, per-peer views. No I/O.
        .target(
            name: "RouteModel",
            dependencies: ["JSONKit", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The PostgreSQL client over libpq: connection, non-blocking I/O loop, pool (+ its state machine), COPY, cells in
        // place, errors, and LISTEN notifications that reconnect. The only target that imports CLibPQ.
        .target(
            name: "PostgresClient",
            dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Event store on PostgreSQL (through PostgresClient): migrations, append, read, subscribe.
        .target(
            name: "EventStore",
            dependencies: ["PostgresClient", "JSONKit", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Projections: per-peer route views, read models and the outbox, from the event stream.
        .target(
            name: "Projections",
            dependencies: ["PostgresClient", "EventStore", "RouteModel", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // NATS operator mode: nkeys, JWTs (operator, account, user), the deployment's key folder, nats-server.conf. Pure
        // except NATSKeyDirectory's file reading and writing.
        .target(name: "NATSAuth", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: swiftSettings),
        // The agent's choice between HA routing peers: a pure state machine (no I/O).
        .target(name: "RouteSelection", dependencies: ["RouteModel"], swiftSettings: swiftSettings),
        // The NATS client over libnats: connection, subscriptions, JetStream (streams, pipelined publish, direct get), errors.
        // The only target that imports CNATS.
        .target(
            name: "NATSClient",
            dependencies: ["CNATS", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // What controllers and agents both speak about views, without PostgreSQL: view envelopes and signatures, the view
        // feed, subjects, JetStream acks, bus permissions, status reports. The agent links this, not ViewDistribution.
        .target(
            name: "ViewTransport",
            dependencies: ["NATSClient", "RouteModel", "NATSAuth", "JSONKit", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Getting views to agents, the controller's side: the outbox relay, peer status, NATS account pushes (re-exports
        // ViewTransport).
        .target(
            name: "ViewDistribution",
            dependencies: ["ViewTransport", "NATSClient", "PostgresClient", "EventStore", "RouteModel", "NATSAuth", "JSONKit", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The agent: enrollment, subscription, health probes, selection loop, OS appliers.
        .target(
            name: "RouteAgent",
            dependencies: [
                "RouteModel", "RouteSelection", "NATSClient", "ViewTransport", "NATSAuth", "ProcessSpawn", "CResolv",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The write path without HTTP: tenant snapshots, the command writer, credentials, enrollment, agents' bus
        // credentials, the audit log; domain errors (ControlPlaneError).
        .target(
            name: "ControlPlane",
            dependencies: ["JSONKit", "PostgresClient", "EventStore", "Projections", "RouteModel", "NATSClient", "ViewDistribution", "NATSAuth", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The controller's HTTP API (Hummingbird 2): one controller per resource, Codable request bodies, domain errors
        // mapped to HTTP in one place, the server the executables start. The only target that imports Hummingbird.
        .target(
            name: "HTTPAPI",
            dependencies: [
                "ControlPlane", "PostgresClient", "EventStore", "RouteModel", "NATSClient", "ViewDistribution", "JSONKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The web console's page, scripts and style sheet, compiled into the binary as byte arrays
            // (`PackageResources`): served offline with nothing next to the executable (ConsoleController).
            resources: [
                .embedInCode("Console/index.html"), .embedInCode("Console/console.css"), .embedInCode("Console/app.js"),
                .embedInCode("Console/api.js"), .embedInCode("Console/ui.js"), .embedInCode("Console/routes.js"),
                .embedInCode("Console/pages.js"), .embedInCode("Console/audit.js"), .embedInCode("Console/history.js"),
                .embedInCode("Console/dryrun.js"),
            ],
            swiftSettings: swiftSettings
        ),
        // Starting child processes with posix_spawn: the one helper for the agent's commands, the chaos run and the tests.
        .target(name: "ProcessSpawn", dependencies: ["CSpawn"], swiftSettings: swiftSettings),
        // The benchmarks' pure parts: percentiles, CDF, tables, the SVG chart (no I/O).
        .target(name: "BenchKit", swiftSettings: swiftSettings),
        // The fault-injection run's pure parts: request records and the checks over them, the fault plan, the workload
        // model, the settings, the report (no I/O).
        .target(name: "ChaosKit", dependencies: ["RouteModel"], swiftSettings: swiftSettings),
        // Fixtures for tests that need the real PostgreSQL of ops/services (fresh database per test).
        .target(name: "TestSupport", dependencies: ["PostgresClient", "EventStore", "RouteModel", "NATSAuth", "ProcessSpawn"], path: "Tests/TestSupport", swiftSettings: swiftSettings),
        // The command-line tools' logging set-up and --log-level (no PostgreSQL: the lean agent links it).
        .target(
            name: "CommandLogging",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // What the three command-line tools share: database options, logging set-up (re-exports CommandLogging), finding
        // each other's executables.
        .target(
            name: "CommandSupport",
            dependencies: ["CommandLogging", "PostgresClient", "EventStore", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The agent's command line (`routeplane agent` and `routeplane-agent`): options, start, `agent routes`.
        .target(
            name: "AgentCommandLine",
            dependencies: [
                "CommandLogging", "RouteAgent", "RouteModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The lean agent executable: the agent command alone, without the controller, Hummingbird or the console.
        .executableTarget(
            name: "routeplane-agent",
            dependencies: ["AgentCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        // The product: serve, agent, migrate, nats, demo, admin commands.
        .executableTarget(
            name: "routeplane",
            dependencies: [
                "AgentCommandLine",
                "CommandSupport", "PostgresClient", "EventStore", "RouteModel", "Projections", "ControlPlane", "HTTPAPI", "NATSClient", "ViewDistribution", "RouteAgent", "NATSAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The benchmark suite (`routeplane-bench all`); starts the product `routeplane` next to it where it needs a controller.
        .executableTarget(
            name: "routeplane-bench",
            dependencies: [
                "CommandSupport", "PostgresClient", "EventStore", "RouteModel", "Projections", "ControlPlane", "HTTPAPI", "NATSClient", "ViewDistribution", "RouteAgent", "BenchKit", "NATSAuth", "ProcessSpawn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The fault-injection run (`ops/chaos`): controllers (the product, started as processes), agents in process.
        .executableTarget(
            name: "routeplane-chaos",
            dependencies: [
                "ChaosKit", "CommandSupport", "PostgresClient", "EventStore", "RouteModel", "Projections", "NATSClient", "ViewDistribution", "RouteAgent", "NATSAuth", "ProcessSpawn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "JSONKitTests", dependencies: ["JSONKit"], swiftSettings: swiftSettings),
        .testTarget(name: "BenchKitTests", dependencies: ["BenchKit", "RouteModel"], swiftSettings: swiftSettings),
        .testTarget(name: "RouteModelTests", dependencies: ["RouteModel", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "EventStoreTests", dependencies: ["EventStore", "PostgresClient", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ProjectionsTests", dependencies: ["Projections", "PostgresClient", "EventStore", "RouteModel", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ControlPlaneTests", dependencies: ["ControlPlane", "PostgresClient", "EventStore", "RouteModel", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RouteSelectionTests", dependencies: ["RouteSelection", "RouteModel", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "NATSAuthTests", dependencies: ["NATSAuth", "NATSClient", "ViewDistribution", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ViewDistributionTests", dependencies: ["ViewDistribution", "ViewTransport", "NATSClient", "PostgresClient", "EventStore", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RouteAgentTests", dependencies: ["RouteAgent", "ViewTransport", "RouteSelection", "RouteModel", "TestSupport", "ProcessSpawn", .product(name: "Logging", package: "swift-log")], swiftSettings: swiftSettings),
        .testTarget(name: "ChaosTests", dependencies: ["ChaosKit", "RouteModel"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SystemTests",
            dependencies: [
                "ControlPlane", "HTTPAPI", "NATSClient", "ViewDistribution", "RouteAgent", "Projections", "PostgresClient", "EventStore", "RouteModel", "TestSupport", "NATSAuth",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // TLS over real TCP: the API served over HTTPS, NATS with a tls {} block, the agent's controller client with a CA,
        // and the command line's start errors. Certificates are made at run time (TestSupport's TestCA, openssl CLI).
        .testTarget(
            name: "TLSTests",
            dependencies: [
                "HTTPAPI", "NATSClient", "NATSAuth", "RouteAgent", "TestSupport", "ProcessSpawn", "ControlPlane", "ViewDistribution", "Projections",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HTTPAPITests",
            dependencies: [
                "ControlPlane", "HTTPAPI", "PostgresClient", "EventStore", "Projections", "RouteModel", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
