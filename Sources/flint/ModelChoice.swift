import ArgumentParser
import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintCUDA
import FlintCUDAEmulation
import FlintModels

/// `--device`, `--dtype`, `--threads`: the backend options of `bench`, `embed` and `generate`.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, help: "auto (the GPU when CUDA works, else the CPU), cpu, cuda, or cuda-emulated (no GPU, slow: for tests).")
    var device = "auto"

    @Option(name: .long, help: "auto (f16 on a GPU, f32 on the CPU), f32, f16 (GPU), bf16, or int8 (CPU: int8 weights).")
    var dtype = "auto"

    @Option(name: .long, help: "CPU threads (default: all cores).")
    var threads: Int?

    /// Rejects values no backend takes before any model is read (a bad --dtype used to surface as a
    /// remark about the CPU's precision, a huge --threads as seconds per token).
    func validate() throws {
        guard Devices.names.contains(device) else { throw ValidationError("--device must be \(Devices.names.joined(separator: ", "))") }
        if dtype != "auto" { _ = try Devices.parse(dtype) }
        try Self.validate(threads: threads)
    }

    /// `--threads`: 1 up to `CPUBackend.maxThreads`.
    static func validate(threads: Int?) throws {
        if let threads, !(1...CPUBackend.maxThreads).contains(threads) {
            throw ValidationError("--threads must be between 1 and \(CPUBackend.maxThreads) (4 per core on this machine)")
        }
    }

    func backend() throws -> any Backend { try Devices.backend(device, threads: threads, dtype: dtype) }
}

/// Picking a backend (`--device`) and a model (`--model`: built-in name or folder) for the CLI.
enum Devices {
    static let names = ["auto", "cpu", "cuda", "cuda-emulated"]

    /// `auto` picks the GPU when CUDA works here, else the CPU; `cuda` insists on the GPU.
    static func backend(_ name: String, threads: Int?, dtype: String = "auto") throws -> any Backend {
        switch name {
        case "cpu":
            return CPUBackend(threads: threads, precision: try cpuPrecision(dtype))
        case "cuda", "auto":
            do {
                let driver = try RealCUDADriver()
                let compiler = KernelCompiler(nvrtc: try NVRTC())
                let d: DType = dtype == "auto" ? .f16 : try parse(dtype)
                Console.progress(
                    "using \(driver.deviceName); kernels compile for \(driver.architecture ?? "?") at first use (cached in \(compiler.cacheFolder ?? "no cache"))"
                )
                return try CUDABackend(
                    driver: driver, dtype: d, compiler: compiler, progress: { Console.progress($0) },
                    compileProgress: ProgressLine.reporter("kernels: "))
            } catch let error as FlintError {
                if name == "cuda" { throw error }
                guard let precision = try? cpuPrecision(dtype) else {
                    throw CommandError("\(error); the CPU fallback runs f32, bf16 or int8, not \(dtype)")
                }
                return CPUBackend(threads: threads, precision: precision)
            }
        case "cuda-emulated":  // the CUDA backend on the emulated driver: the GPU code path, slowly, without a GPU
            return try CUDABackend(driver: EmulatedCUDADriver(threads: threads), dtype: dtype == "auto" ? .f32 : try parse(dtype))
        default:
            throw ValidationError("--device must be \(names.joined(separator: ", "))")
        }
    }

    static func parse(_ dtype: String) throws -> DType {
        switch dtype {
        case "f32": return .f32
        case "f16": return .f16
        case "bf16": return .bf16
        case "int8": return .i8
        default: throw ValidationError("--dtype must be auto, f32, f16, bf16 or int8")
        }
    }

    /// `--dtype` on the CPU: auto and f32 are the f32 reference; bf16 and int8 pack the linear layers' weights.
    static func cpuPrecision(_ dtype: String) throws -> CPUPrecision {
        switch dtype {
        case "auto", "f32": return .f32
        case "bf16": return .bf16
        case "int8": return .int8
        default: throw ValidationError("the CPU backend runs --dtype f32, bf16 or int8, not \(dtype)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
