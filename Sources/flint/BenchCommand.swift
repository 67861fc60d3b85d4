import ArgumentParser

/// `flint bench`: TensorRT-style measurements. With no benchmark named, the encoder table runs
/// (built-in BERT-base with seeded random weights, on the best device present).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: encoder latency (default; --sweep: over a grid, with a plot), tokenizer throughput, CPU GEMM, ceilings.",
        subcommands: [ModelBench.self, TokenizerBench.self, GEMMBench.self, CeilingsBench.self],
        defaultSubcommand: ModelBench.self
    )
}

/// Where `scripts/fetch-assets` puts the test assets: `$FLINT_ASSETS`, else `.cache/assets`.
enum Assets {
    static var folder: String {
        if let p = getenv("FLINT_ASSETS") { return String(cString: p) }
        return ".cache/assets"
    }

    /// GPT-2's tokenizer files, for built-in GPT-2s and folders without tokenizer files (nil when
    /// `scripts/fetch-assets` has not run).
    static var gpt2Tokenizer: String? {
        let path = folder + "/gpt2-hf"
        return access(path, R_OK) == 0 ? path : nil
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
