import ArgumentParser
import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintCUDA
import FlintModels

/// Picking a backend (`--device`) and a model (`--model`: built-in name or folder) for the CLI.
enum Devices {
    /// `auto` picks the GPU when CUDA works here, else the CPU; `cuda` insists on the GPU.
    static func backend(_ name: String, threads: Int?, dtype: String = "auto") throws -> any Backend {
        switch name {
        case "cpu":
            guard dtype == "auto" || dtype == "f32" else { throw ValidationError("the CPU backend computes in f32 (--dtype f32)") }
            return CPUBackend(threads: threads)
        case "cuda", "auto":
            do {
                let driver = try RealCUDADriver()
                let compiler = KernelCompiler(nvrtc: try NVRTC())
                let d: DType = dtype == "auto" ? .f16 : try parse(dtype)
                Console.progress("using \(driver.deviceName); kernels compile for \(driver.architecture ?? "?") at first use (cached in \(compiler.cacheFolder ?? "no cache"))")
                return try CUDABackend(driver: driver, dtype: d, compiler: compiler, progress: { Console.progress($0) })
            } catch let error as FlintError {
                if name == "cuda" { throw error }
                guard dtype == "auto" || dtype == "f32" else { throw CommandError("\(error); the CPU fallback computes in f32") }
                return CPUBackend(threads: threads)
            }
        default:
            throw ValidationError("--device must be auto, cpu or cuda")
        }
    }

    static func parse(_ dtype: String) throws -> DType {
        switch dtype {
        case "f32": return .f32
        case "f16": return .f16
        case "bf16": return .bf16
        default: throw ValidationError("--dtype must be auto, f32, f16 or bf16")
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
