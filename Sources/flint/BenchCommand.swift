import ArgumentParser

/// `flint bench`: TensorRT-style measurements. Until the model benchmarks land, the default
/// (and only) benchmark is the tokenizer's.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (the tokenizer benchmark runs when no benchmark is named).",
        subcommands: [TokenizerBench.self],
        defaultSubcommand: TokenizerBench.self
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
