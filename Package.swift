// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Flint",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "flint", targets: ["flint"]),
        .library(name: "FlintTokenizers", targets: ["FlintTokenizers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "FlintTokenizers"),
        .executableTarget(
            name: "flint",
            dependencies: [
                "FlintTokenizers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "FlintTestSupport", dependencies: ["FlintTokenizers"], path: "Sources/FlintTestSupport"),
        .testTarget(
            name: "FlintTokenizersTests",
            dependencies: ["FlintTokenizers", "FlintTestSupport"],
            exclude: []
        ),
    ]
)
