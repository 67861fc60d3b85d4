import ArgumentParser
import FlintBackendChecks
import FlintCUDA
import FlintCUDAEmulation
import FlintCore
import FlintJSON
#if canImport(Glibc)
import Glibc
#endif

/// `flint check`: verify the CUDA backend. `--compile-only` compiles every embedded kernel with
/// NVRTC for each architecture (no GPU needed: this runs in CI).
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the CUDA kernels (--compile-only: compile every kernel with NVRTC, no GPU needed).",
        discussion: """
            --compile-only --json prints {"nvrtc": "13.0", "kernels": [{"name", "file", "arch", "ok", "registers", "error"}, ...]}. \
            NVRTC is found through FLINT_CUDA_PATH, CUDA_HOME, /usr/local/cuda, the loader path, or pip's nvidia/cu13.
            """
    )

    @Flag(name: .long, help: "Only compile the kernels (no GPU needed).")
    var compileOnly = false

    @Option(name: .long, help: "Comma-separated architectures for --compile-only.")
    var arch = "sm_80,sm_90"

    @Option(name: .long, help: "Device to check: cuda, or cuda-emulated (the emulated driver, no GPU).")
    var device = "cuda"

    @Option(name: .long, help: "Folder of the tiny BERT fixtures.")
    var fixtures = "Tests/Fixtures/bert"

    @Option(name: .long, help: "Folder of the tiny GPT-2 fixtures.")
    var gpt2Fixtures = "Tests/Fixtures/gpt2"

    @Option(name: .long, help: "all-MiniLM-L6-v2 folder for the fp16 cosine check (skipped when absent).")
    var minilm = ".cache/assets/all-MiniLM-L6-v2"

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        guard compileOnly else { return try checkDevice() }
        let archs = arch.split(separator: ",").map { String($0).filter { $0 != " " } }
        guard !archs.isEmpty, archs.allSatisfy({ $0.hasPrefix("sm_") && Int($0.dropFirst(3)) != nil }) else {
            throw ValidationError("--arch takes real architectures such as sm_80,sm_90")
        }
        let compiler = KernelCompiler(nvrtc: try NVRTC(), cacheFolder: nil)
        if !json { Console.progress("NVRTC \(compiler.nvrtc.versionString) from \(compiler.nvrtc.folder?.lib ?? "the loader path")") }
        var rows: [JSONValue] = []
        var failures = 0
        for source in KernelSources.all {
            for a in archs {
                if !json { Console.progress("compiling \(source.name).cu for \(a)...") }
                var failure: String?
                var registers: [String: Int] = [:]
                do {
                    registers = try compiler.compile(source, arch: a, verbose: true).registers
                } catch {
                    failure = "\(error)"
                    failures += 1
                }
                for k in source.kernels {
                    // A listed kernel that ptxas did not report is missing from the CUBIN.
                    let kernelFailure = failure ?? (registers[k] == nil ? "\(k) is not defined by \(source.name).cu" : nil)
                    if failure == nil, kernelFailure != nil { failures += 1 }
                    rows.append(.object([
                        ("name", .string(k)), ("file", .string(source.name + ".cu")), ("arch", .string(a)), ("ok", .bool(kernelFailure == nil)),
                        ("registers", registers[k].map { .number(Double($0)) } ?? .null), ("error", kernelFailure.map { .string($0) } ?? .null),
                    ]))
                    if !json {
                        print("\(kernelFailure == nil ? "ok  " : "FAIL") \(a)  \(k)\(registers[k].map { "  (\($0) registers)" } ?? "")")
                    }
                }
                if let failure, !json { print(failure) }
            }
        }
        if json {
            print(JSONValue.object([("nvrtc", .string(compiler.nvrtc.versionString)), ("kernels", .array(rows))]).serialized)
        } else {
            print("\(rows.count) kernel builds, \(failures) failures")
        }
        if failures > 0 { throw ExitCode(1) }
    }

    func checkDevice() throws {
        let makeBackend: (DType) throws -> any Backend
        switch device {
        case "cuda":
            let driver = try RealCUDADriver()
            let compiler = KernelCompiler(nvrtc: try NVRTC())
            makeBackend = { try CUDABackend(driver: driver, dtype: $0, compiler: compiler, progress: { Console.progress($0) }) }
        case "cuda-emulated":
            makeBackend = { try CUDABackend(driver: EmulatedCUDADriver(), dtype: $0) }
        default:
            throw ValidationError("--device must be cuda or cuda-emulated")
        }
        let check = ParityCheck(makeBackend: makeBackend, fixtures: fixtures)
        var rows = try check.opRows(progress: { if !json { Console.progress($0) } })
        let encoderRows = try check.run(progress: { if !json { Console.progress($0) } })
        if encoderRows.isEmpty { throw CommandError("no tiny BERT fixtures in \(fixtures) (run from the repository root or pass --fixtures)") }
        rows += encoderRows
        let decoderRows = try check.gpt2Rows(fixtures: gpt2Fixtures, progress: { if !json { Console.progress($0) } })
        if decoderRows.isEmpty { throw CommandError("no tiny GPT-2 fixtures in \(gpt2Fixtures) (run from the repository root or pass --gpt2-fixtures)") }
        rows += decoderRows
        var cosine: Float?
        if access(minilm + "/model.safetensors", R_OK) == 0 {
            if !json { Console.progress("checking all-MiniLM-L6-v2 embeddings (f32, f16)...") }
            let f32 = try check.miniLM(folder: minilm, dtype: .f32)
            rows.append(ParityCheck.Row(name: "all-MiniLM-L6-v2", dtype: .f32, output: "sentence_embedding", maxError: f32.maxError, tolerance: 1e-4))
            cosine = try check.miniLM(folder: minilm, dtype: .f16).minCosine
            rows.append(ParityCheck.Row(name: "all-MiniLM-L6-v2", dtype: .f16, output: "1 - min cosine", maxError: 1 - cosine!, tolerance: 1e-4))
        } else if !json {
            Console.progress("note: \(minilm) not found, MiniLM checks skipped (scripts/fetch-assets)")
        }
        let failed = rows.filter { !$0.ok }
        if json {
            print(JSONValue.object([
                ("device", .string(device)),
                ("checks", .array(rows.map { r in
                    .object([("model", .string(r.name)), ("dtype", .string(r.dtype.description)), ("output", .string(r.output)),
                             ("max_error", .number(Double(r.maxError))), ("tolerance", .number(Double(r.tolerance))), ("ok", .bool(r.ok))])
                })),
                ("minilm_fp16_min_cosine", cosine.map { .number(Double($0)) } ?? .null),
            ]).serialized)
        } else {
            print(Table.row(["result", "dtype", "max error", "tolerance"]) + "model / output")
            for r in rows {
                print(Table.row([r.ok ? "ok" : "FAIL", r.dtype.description, "\(r.maxError)", "\(r.tolerance)"]) + "\(r.name) / \(r.output)")
            }
            print("\(rows.count) checks, \(failed.count) failed")
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
