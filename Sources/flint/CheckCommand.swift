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
        abstract: "Check the CUDA backend: kernels (--compile-only, no GPU needed), cuBLASLt (--gemm-probe), then every op and model.",
        discussion: """
            --compile-only --json prints {"nvrtc": "13.0", "kernels": [{"name", "file", "arch", "ok", "registers", "error"}, ...]}. \
            --environment lists where each CUDA library is found (FLINT_CUDA_PATH, CUDA_HOME, CUDA_PATH, /usr/local/cuda, \
            pip's nvidia/cu13 and nvidia/*/lib in the site-packages of $VIRTUAL_ENV, of each python3 on PATH and of common venvs, \
            then the loader path) and the driver's CUDA version. --gemm-probe runs cuBLASLt's GEMMs alone (f32/f16/bf16 x \
            plain/bias/GELU/bias+GELU x --gemm-shapes), eagerly and in a graph, against a float64 reference. \
            FLINT_CUDA_GRAPHS=0 runs every forward eagerly, waiting after each step (errors name their step and kernels).
            """
    )

    @Flag(name: .long, help: "Only compile the kernels (no GPU needed).")
    var compileOnly = false

    @Option(name: .long, help: "Comma-separated architectures for --compile-only.")
    var arch = "sm_80,sm_90"

    @Option(name: .long, help: "Device to check: cuda, cuda-emulated (the emulated driver, no GPU), or cpu (with --dtype).")
    var device = "cuda"

    @Option(name: .long, help: "With --device cpu: bf16 or int8, checked against f32 (MiniLM cosines, GPT-2 next tokens and perplexity).")
    var dtype: String?

    @Option(name: .long, help: "Folder of the tiny encoder fixtures (its bert/ and encoders/ folders).")
    var fixtures = "Tests/Fixtures"

    @Option(name: .long, help: "Folder of the tiny GPT-2 fixtures.")
    var gpt2Fixtures = "Tests/Fixtures/gpt2"

    @Option(name: .long, help: "all-MiniLM-L6-v2 folder for the fp16 cosine check (skipped when absent).")
    var minilm = ".cache/assets/all-MiniLM-L6-v2"

    @Flag(name: .long, help: "Only report where the CUDA libraries are found and the driver's CUDA version.")
    var environment = false

    @Flag(name: .long, help: "Only probe cuBLASLt's GEMMs (types x epilogues x shapes, eager and captured).")
    var gemmProbe = false

    @Option(name: .long, help: "Shapes for --gemm-probe, MxNxK comma-separated (default 1x50257x768,16x2x32,16x99x32,4096x4096x4096).")
    var gemmShapes: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        if environment { return try reportEnvironment() }
        if gemmProbe { return try probeGEMMs() }
        if device == "cpu" || dtype != nil { return try checkCPUPrecision() }
        guard compileOnly else { return try checkDevice() }
        let archs = arch.split(separator: ",").map { String($0).filter { $0 != " " } }
        guard !archs.isEmpty, archs.allSatisfy({ $0.hasPrefix("sm_") && Int($0.dropFirst(3)) != nil }) else {
            throw ValidationError("--arch takes real architectures such as sm_80,sm_90")
        }
        let compiler = KernelCompiler(nvrtc: try NVRTC(), cacheFolder: nil)
        if !json { Console.progress("NVRTC \(compiler.nvrtc.versionString) from \(compiler.nvrtc.folder?.lib ?? "the loader path")") }
        var rows: [JSONValue] = []
        var failures = 0
        // Stderr in every mode: with --json too, a slow CI or GPU log shows how far the builds got.
        let builds = KernelSources.all.flatMap { source in archs.map { (source: source, arch: $0) } }
        let progress = ProgressLine(total: builds.count, weights: builds.map { Double($0.source.text.utf8.count) })
        for (index, (source, a)) in builds.enumerated() {
            progress.update(done: index, "compiling \(source.name).cu for \(a)")
            var failure: String?
            var registers: [String: Int] = [:]
            do {
                registers = try compiler.compile(source, arch: a, verbose: true).registers
            } catch {
                failure = "\(error)"
                failures += 1
            }
            progress.finish(index: index, "\(failure == nil ? "compiled" : "FAILED") \(source.name).cu for \(a)")
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
        progress.close()
        if json {
            print(JSONValue.object([("nvrtc", .string(compiler.nvrtc.versionString)), ("kernels", .array(rows))]).serialized)
        } else {
            print("\(rows.count) kernel builds, \(failures) failures")
        }
        if failures > 0 { throw ExitCode(1) }
    }

    /// The driver `--device` names, and the compiler a real one needs.
    func openDriver() throws -> (any CUDADriver, KernelCompiler?) {
        switch device {
        case "cuda":
            let driver = try RealCUDADriver()
            let compiler = KernelCompiler(nvrtc: try NVRTC())
            if !json {
                let version = driver.driverVersion
                print(
                    "device: \(driver.deviceName), driver CUDA \(version / 1000).\(version % 1000 / 10), NVRTC \(compiler.nvrtc.versionString), "
                        + "graphs: \(CUDABackend.graphsFromEnvironment() ? "on" : "off")")
                for (what, path) in CUDALocations.openedLibraries { print("  \(what): \(path)") }
            }
            return (driver, compiler)
        case "cuda-emulated":
            if !json { print("device: emulated CUDA driver (CPU), graphs: \(CUDABackend.graphsFromEnvironment() ? "on" : "off")") }
            return (EmulatedCUDADriver(), nil)
        default:
            throw ValidationError("--device must be cuda or cuda-emulated")
        }
    }

    /// Progress goes to stderr in every mode (with --json too), so a step that hangs on a GPU still
    /// shows in its log how far it got.
    func checkDevice() throws {
        let (driver, compiler) = try openDriver()
        let progress: @Sendable (String) -> Void = { Console.progress($0) }
        let makeBackend: (DType) throws -> any Backend = { dtype in
            // The emulated driver is cheap: a fresh one per backend keeps each check's state its own.
            let d: any CUDADriver = driver is EmulatedCUDADriver ? EmulatedCUDADriver() : driver
            return try CUDABackend(driver: d, dtype: dtype, compiler: compiler, progress: progress)
        }
        let check = ParityCheck(makeBackend: makeBackend, fixtures: fixtures)
        var rows = try check.opRows(progress: { Console.progress($0) })
        let encoderRows = try check.run(progress: { Console.progress($0) })
        if encoderRows.isEmpty {
            throw CommandError("no tiny encoder fixtures in \(fixtures) (run from the repository root or pass --fixtures)")
        }
        rows += encoderRows
        let decoderRows = try check.gpt2Rows(fixtures: gpt2Fixtures, progress: { Console.progress($0) })
        if decoderRows.isEmpty {
            throw CommandError("no tiny GPT-2 fixtures in \(gpt2Fixtures) (run from the repository root or pass --gpt2-fixtures)")
        }
        rows += decoderRows
        var cosine: Float?
        if access(minilm + "/model.safetensors", R_OK) == 0 {
            Console.progress("checking all-MiniLM-L6-v2 embeddings (f32, f16)...")
            let f32 = try check.miniLM(folder: minilm, dtype: .f32)
            rows.append(
                ParityCheck.Row(
                    name: "all-MiniLM-L6-v2", dtype: .f32, output: "sentence_embedding", maxError: f32.maxError, tolerance: 1e-4))
            cosine = try check.miniLM(folder: minilm, dtype: .f16).minCosine
            rows.append(
                ParityCheck.Row(name: "all-MiniLM-L6-v2", dtype: .f16, output: "1 - min cosine", maxError: 1 - cosine!, tolerance: 1e-4))
        } else if !json {
            Console.progress("note: \(minilm) not found, MiniLM checks skipped (scripts/fetch-assets)")
        }
        let failed = rows.filter { !$0.ok }
        if json {
            print(JSONValue.object([
                ("device", .string(device)),
                ("graphs", .bool(CUDABackend.graphsFromEnvironment())),
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

    func reportEnvironment() throws {
        let found = CUDALocations.report()
        var driverVersion: Int?, deviceName: String?, failure: String?
        do {
            let driver = try RealCUDADriver()
            (driverVersion, deviceName) = (driver.driverVersion, driver.deviceName)
        } catch {
            failure = "\(error)"
        }
        let nvrtc = try? NVRTC()
        if json {
            print(
                JSONValue.object([
                    (
                        "libraries",
                        .array(found.map { .object([("library", .string($0.what)), ("path", $0.found.map { .string($0) } ?? .null)]) })
                    ),
                    ("searched", .array(CUDALocations.candidates().map { .string($0.lib) })),
                    ("driver_cuda_version", driverVersion.map { .number(Double($0)) } ?? .null),
                    ("device", deviceName.map { .string($0) } ?? .null), ("nvrtc", nvrtc.map { .string($0.versionString) } ?? .null),
                    ("graphs", .bool(CUDABackend.graphsFromEnvironment())), ("error", failure.map { .string($0) } ?? .null),
                ]).serialized)
        } else {
            for (what, path) in found { print("\(what): \(path ?? "not found")") }
            print("searched: " + CUDALocations.candidates().map(\.lib).joined(separator: ", "))
            print(
                "device: "
                    + (deviceName.map { "\($0), driver CUDA \(driverVersion! / 1000).\(driverVersion! % 1000 / 10)" } ?? failure ?? "none"))
            print("NVRTC: \(nvrtc?.versionString ?? "not loadable"), graphs: \(CUDABackend.graphsFromEnvironment() ? "on" : "off")")
        }
    }

    func probeGEMMs() throws {
        var shapes = GEMMProbe.defaultShapes
        if let gemmShapes {
            shapes = try gemmShapes.split(separator: ",").map { text in
                guard let s = GEMMProbe.Shape(String(text)) else {
                    throw ValidationError("--gemm-shapes takes MxNxK,MxNxK (sizes 1...65536), not \(text)")
                }
                return s
            }
        }
        let (driver, _) = try openDriver()
        let rows = GEMMProbe.run(driver: driver, shapes: shapes, progress: { Console.progress($0) })
        let failed = rows.filter { !$0.ok }
        if json {
            print(
                JSONValue.object([
                    ("device", .string(driver.deviceName)),
                    (
                        "rows",
                        .array(
                            rows.map { r in
                                .object([
                                    ("dtype", .string(r.dtype.description)), ("epilogue", .string(r.epilogue.rawValue)),
                                    ("m", .number(Double(r.shape.m))),
                                    ("n", .number(Double(r.shape.n))), ("k", .number(Double(r.shape.k))), ("mode", .string(r.mode)),
                                    ("status", .string(r.status)), ("max_error", r.maxError.map { .number(Double($0)) } ?? .null),
                                    ("tolerance", .number(Double(r.tolerance))), ("ok", .bool(r.ok)),
                                ])
                            })
                    ),
                ]).serialized)
        } else {
            print(Table.row(["result", "dtype", "epilogue", "shape", "mode", "max error"]) + "status")
            for r in rows {
                print(Table.row([r.ok ? "ok" : "FAIL", r.dtype.description, r.epilogue.rawValue, r.shape.description, r.mode,
                                 r.maxError.map { "\($0)" } ?? "-"]) + r.status)
            }
            print("\(rows.count) GEMM probes, \(failed.count) failed")
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
