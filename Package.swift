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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // System libraries from Debian's packages (ops/setup installs them).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),

        // Pure domain: routes, groups, peers, commands, events, per-peer views. No I/O.
        .target(
            name: "RouteModel",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Event store on PostgreSQL through libpq: pool, migrations, append, read, subscribe.
        .target(
            name: "EventStore",
            dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Projections: per-peer route views, read models and the outbox, from the event stream.
        .target(
            name: "Projections",
            dependencies: ["EventStore", "RouteModel", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Fixtures for tests that need the real PostgreSQL of ops/services (fresh database per test).
        .target(name: "TestSupport", dependencies: ["EventStore", "RouteModel"], path: "Tests/TestSupport", swiftSettings: swiftSettings),
        // The one executable: serve, migrate, bench, demo, admin commands.
        .executableTarget(
            name: "routeplane",
            dependencies: [
                "EventStore", "RouteModel", "Projections",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "RouteModelTests", dependencies: ["RouteModel", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "EventStoreTests", dependencies: ["EventStore", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ProjectionsTests", dependencies: ["Projections", "EventStore", "RouteModel", "TestSupport"], swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)
