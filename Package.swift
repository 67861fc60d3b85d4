// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Flint",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "flint", targets: ["flint"]),
        .library(name: "FlintTokenizers", targets: ["FlintTokenizers"]),
        .library(name: "FlintCore", targets: ["FlintCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "FlintJSON"),
        .target(name: "FlintCore"),
        .target(name: "FlintTokenizers", dependencies: ["FlintJSON"]),
        .executableTarget(
            name: "flint",
            dependencies: [
                "FlintTokenizers",
                "FlintJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "FlintTestSupport", dependencies: ["FlintTokenizers", "FlintJSON"]),
        .testTarget(
            name: "FlintTokenizersTests",
            dependencies: ["FlintTokenizers", "FlintJSON", "FlintTestSupport"]
        ),
    ]
)
