import ArgumentParser
import FlintCUDA
import FlintCore
import FlintJSON

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

    @Option(name: .long, help: "Device to check (cuda).")
    var device = "cuda"

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        guard compileOnly else {
            throw CommandError("""
                flint check --device \(device): the CUDA backend's on-device op checks are not built yet (issue 5); \
                use --compile-only to check that every kernel compiles
                """)
        }
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
}
