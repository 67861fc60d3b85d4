import ArgumentParser
import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintModels

/// Picking a backend (`--device`) and a model (`--model`: built-in name or folder) for the CLI.
enum Devices {
    static func backend(_ name: String, threads: Int?) throws -> any Backend {
        switch name {
        case "cpu", "auto":
            return CPUBackend(threads: threads)
        case "cuda":
            throw CommandError("the CUDA backend is not built yet (issue 5); use --device cpu")
        default:
            throw ValidationError("--device must be auto, cpu or cuda")
        }
    }
}

/// A model to benchmark: a built-in configuration with seeded random weights, or a folder.
struct BenchModel {
    let name: String
    let config: BertConfig
    let weights: any WeightSource
    let hasTensor: (String) -> Bool

    static let builtIn: [String: BertConfig] = ["bert-base": .bertBase, "bert-large": .bertLarge, "minilm-l6": .miniLML6]

    static func resolve(_ name: String) throws -> BenchModel {
        if let config = builtIn[name] {
            return BenchModel(name: name, config: config, weights: RandomWeights(seed: 0), hasTensor: { _ in false })
        }
        guard access(name, R_OK) == 0 else {
            throw ValidationError("--model must be one of \(builtIn.keys.sorted().joined(separator: ", ")) or a model folder; \(name) is neither")
        }
        let config = try BertConfig.load(path: name + "/config.json")
        let checkpoint = try Checkpoint(path: name)
        return BenchModel(name: name, config: config, weights: checkpoint, hasTensor: { checkpoint.contains($0) })
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
