// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Flint",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "flint", targets: ["flint"]),
        .library(name: "FlintTokenizers", targets: ["FlintTokenizers"]),
        .library(name: "FlintCore", targets: ["FlintCore"]),
        .library(name: "FlintModels", targets: ["FlintModels"]),
        .library(name: "FlintCPU", targets: ["FlintCPU"]),
        .library(name: "FlintServe", targets: ["FlintServe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The server (`flint serve`); traits off: no swift-configuration, no full Foundation.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(name: "FlintJSON"),
        .target(name: "FlintCore"),
        .target(name: "FlintCheckpoint", dependencies: ["FlintCore", "FlintJSON"]),
        .target(name: "FlintTokenizers", dependencies: ["FlintJSON"]),
        // Fast fp32 kernels in C: ISA chosen at run time per function (no unsafeFlags).
        .target(name: "CFlintCPU"),
        .target(name: "FlintCPU", dependencies: ["FlintCore", "CFlintCPU"]),
        // CUDA through dlopen (no link-time dependency); kernels are embedded .cu sources.
        .target(
            name: "FlintCUDA",
            dependencies: ["FlintCore"],
            resources: ["activation", "attention", "convert", "layernorm", "pooling", "sampling"].map { .embedInCode("Kernels/\($0).cu") }
                + [.embedInCode("Kernels/common.cuh")]
        ),
        // The CUDA kernels (Sources/FlintCUDA/Kernels/*.cu) compiled as C++ and run under an emulation of
        // the CUDA execution model (tests without a GPU).
        .target(name: "CFlintCUDAEmulation"),
        // The emulated CUDA driver: the CUDA backend's plans run in CI without a GPU.
        .target(name: "FlintCUDAEmulation", dependencies: ["FlintCUDA", "FlintCPU", "FlintCore", "CFlintCUDAEmulation"]),
        .target(name: "FlintModels", dependencies: ["FlintCore", "FlintCheckpoint", "FlintTokenizers", "FlintJSON"]),
        // Op cases (one plan step each, odd sizes) that any backend runs against the CPU backend.
        .target(name: "FlintBackendChecks", dependencies: ["FlintCore", "FlintModels"]),
        // `flint serve`: OpenAI, TEI and KServe v2 routes over batching schedulers; models run on their own threads.
        .target(
            name: "FlintServe",
            dependencies: [
                "FlintCore", "FlintModels", "FlintTokenizers", "FlintJSON",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "flint",
            dependencies: [
                "FlintTokenizers",
                "FlintJSON",
                "FlintCore",
                "FlintCheckpoint",
                "FlintCPU",
                "FlintModels",
                "FlintBackendChecks",
                "FlintCUDA",
                "FlintCUDAEmulation",
                "FlintServe",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // libFuzzer targets for every reader of untrusted input (scripts/fuzz builds them with
        // --sanitize=fuzzer --sanitize=address; a normal build is a corpus replayer).
        .executableTarget(name: "FlintFuzz", dependencies: [
            "FlintJSON", "FlintCore", "FlintCheckpoint", "FlintModels", "FlintTokenizers", "FlintServe", "FlintCPU",
        ]),
        .target(name: "FlintTestSupport", dependencies: ["FlintTokenizers", "FlintJSON", "FlintCore"]),
        .testTarget(
            name: "FlintTokenizersTests",
            dependencies: ["FlintTokenizers", "FlintJSON", "FlintTestSupport"]
        ),
        .testTarget(name: "FlintCheckpointTests", dependencies: ["FlintCheckpoint", "FlintTestSupport"]),
        .testTarget(name: "FlintCoreTests", dependencies: ["FlintCore"]),
        // Runs the flint binary built beside the test bundle on hostile input (exit codes, messages).
        .testTarget(name: "FlintCLITests", dependencies: ["FlintTestSupport", "FlintJSON"]),
        .testTarget(
            name: "FlintCUDABackendTests",
            dependencies: ["FlintCUDA", "FlintCUDAEmulation", "FlintCPU", "FlintModels", "FlintCheckpoint", "FlintCore", "FlintBackendChecks",
                           "FlintTestSupport"]
        ),
        .testTarget(name: "FlintCUDATests", dependencies: ["FlintCUDA", "FlintCore", "FlintTestSupport"]),
        .testTarget(
            name: "FlintServeTests",
            dependencies: ["FlintServe", "FlintModels", "FlintCPU", "FlintCore", "FlintJSON", "FlintTestSupport",
                           .product(name: "HummingbirdTesting", package: "hummingbird")]
        ),
        .testTarget(name: "FlintCUDAEmulationTests", dependencies: ["CFlintCUDAEmulation", "FlintCPU", "FlintCore"]),
        .testTarget(name: "FlintCPUTests", dependencies: ["FlintCPU", "FlintTestSupport"]),
        .testTarget(
            name: "FlintModelsTests",
            dependencies: [
                "FlintModels", "FlintCPU", "FlintCheckpoint", "FlintCore", "FlintJSON", "FlintBackendChecks", "FlintTestSupport",
                "FlintTokenizers",
            ]
        ),
    ]
)
