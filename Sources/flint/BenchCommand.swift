import ArgumentParser

/// `flint bench`: TensorRT-style measurements. With no benchmark named, the encoder table runs
/// (built-in BERT-base with seeded random weights, on the best device present).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: encoder latency (default), tokenizer throughput, CPU GEMM.",
        subcommands: [ModelBench.self, TokenizerBench.self, GEMMBench.self],
        defaultSubcommand: ModelBench.self
    )
}

/// Where `scripts/fetch-assets` puts the test assets: `$FLINT_ASSETS`, else `.cache/assets`.
enum Assets {
    static var folder: String {
        if let p = getenv("FLINT_ASSETS") { return String(cString: p) }
        return ".cache/assets"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
