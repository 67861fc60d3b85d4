#if canImport(Glibc)
import Glibc
#endif
import FlintCore

/// NVRTC, CUDA's run-time compiler, opened with dlopen: CUDA C++ source -> CUBIN for one exact
/// architecture (`sm_90`), which the driver loads without JIT (PTX from a newer NVRTC than the
/// driver would be refused; CUBIN is not).
public final class NVRTC: @unchecked Sendable {
    typealias Program = OpaquePointer?
    private typealias VersionFn = @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32
    private typealias CreateFn = @convention(c) (UnsafeMutablePointer<Program>, UnsafePointer<CChar>, UnsafePointer<CChar>, Int32,
                                                 UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    private typealias DestroyFn = @convention(c) (UnsafeMutablePointer<Program>) -> Int32
    private typealias CompileFn = @convention(c) (Program, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    private typealias SizeFn = @convention(c) (Program, UnsafeMutablePointer<Int>) -> Int32
    private typealias GetFn = @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Int32
    private typealias ErrorStringFn = @convention(c) (Int32) -> UnsafePointer<CChar>?

    private let library: DynamicLibrary
    /// Kept open so NVRTC's own `dlopen("libnvrtc-builtins...")` finds it without LD_LIBRARY_PATH.
    private let builtins: DynamicLibrary?
    /// The folder NVRTC came from, and its include/ (cuda_fp16.h, cuda_bf16.h) if it has one.
    public let folder: CUDALocations.Folder?
    public let version: (major: Int, minor: Int)
    private let create: CreateFn, destroy: DestroyFn, compile: CompileFn
    private let logSize: SizeFn, log: GetFn, cubinSize: SizeFn, cubin: GetFn, errorString: ErrorStringFn

    public init() throws(FlintError) {
        let (lib, folder) = try CUDALocations.open(["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"], what: "NVRTC (libnvrtc)")
        // NVRTC dlopens libnvrtc-builtins by bare name: load it first by full path, globally.
        var builtins: DynamicLibrary?
        if let folder {
            let names = CUDALocations.glob(folder.lib + "/libnvrtc-builtins.so.*").filter { !$0.contains(".alt.") }.sorted()
            if let p = names.first { builtins = try DynamicLibrary(p, global: true) }
        }
        library = lib
        self.builtins = builtins
        self.folder = folder
        let versionFn: VersionFn = try lib.symbol("nvrtcVersion")
        var major: Int32 = 0, minor: Int32 = 0
        _ = versionFn(&major, &minor)
        version = (Int(major), Int(minor))
        create = try lib.symbol("nvrtcCreateProgram")
        destroy = try lib.symbol("nvrtcDestroyProgram")
        compile = try lib.symbol("nvrtcCompileProgram")
        logSize = try lib.symbol("nvrtcGetProgramLogSize")
        log = try lib.symbol("nvrtcGetProgramLog")
        cubinSize = try lib.symbol("nvrtcGetCUBINSize")
        cubin = try lib.symbol("nvrtcGetCUBIN")
        errorString = try lib.symbol("nvrtcGetErrorString")
    }

    public var versionString: String { "\(version.major).\(version.minor)" }

    public struct Output: Sendable {
        public var cubin: [UInt8]
        /// The compiler's log (warnings; ptxas register usage when asked).
        public var log: String
    }

    /// Compiles `source` (named `name` in messages) with `options`. Failures carry NVRTC's log.
    public func compile(source: String, name: String, options: [String]) throws(FlintError) -> Output {
        var program: Program = nil
        var rc = source.withCString { src in name.withCString { create(&program, src, $0, 0, nil, nil) } }
        guard rc == 0 else { throw .backend("NVRTC: cannot create program \(name): \(message(rc))") }
        defer { _ = destroy(&program) }
        let cOptions = options.map { strdup($0) }
        defer { cOptions.forEach { free($0) } }
        rc = cOptions.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { compile(program, Int32(options.count), $0.baseAddress) }
        var size = 0
        _ = logSize(program, &size)
        var logText = ""
        if size > 1 {
            var buffer = [CChar](repeating: 0, count: size)
            _ = log(program, &buffer)
            logText = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        guard rc == 0 else {
            throw .backend("NVRTC \(versionString) failed to compile \(name) (\(message(rc))):\n\(logText)")
        }
        _ = cubinSize(program, &size)
        var bytes = [CChar](repeating: 0, count: size)
        rc = cubin(program, &bytes)
        guard rc == 0, size > 0 else { throw .backend("NVRTC: no CUBIN for \(name) (\(message(rc))); was the arch virtual?") }
        return Output(cubin: bytes.map { UInt8(bitPattern: $0) }, log: logText)
    }

    private func message(_ rc: Int32) -> String {
        errorString(rc).map { String(cString: $0) } ?? "NVRTC error \(rc)"
    }
}
