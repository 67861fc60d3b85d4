#if canImport(Glibc)
import Glibc
#endif
import FlintCore

/// Compiles the embedded kernel sources to CUBIN for one architecture, with a disk cache keyed by
/// hash(source, options, arch, NVRTC version), so a second start loads instead of compiling.
public final class KernelCompiler: @unchecked Sendable {
    public let nvrtc: NVRTC
    /// Where compiled CUBINs are kept: `$FLINT_KERNEL_CACHE`, else `$XDG_CACHE_HOME/flint/kernels`,
    /// else `~/.cache/flint/kernels`. nil disables the cache.
    public let cacheFolder: String?

    public init(nvrtc: NVRTC, cacheFolder: String? = KernelCompiler.defaultCacheFolder()) {
        self.nvrtc = nvrtc
        self.cacheFolder = cacheFolder
    }

    public static func defaultCacheFolder() -> String? {
        if let p = getenv("FLINT_KERNEL_CACHE") { return String(cString: p) }
        if let p = getenv("XDG_CACHE_HOME") { return String(cString: p) + "/flint/kernels" }
        if let p = getenv("HOME") { return String(cString: p) + "/.cache/flint/kernels" }
        return nil
    }

    /// NVRTC options for `arch` ("sm_90"): C++17, the CUDA headers' folder, fast but IEEE-exact
    /// division/sqrt (parity with the CPU matters more than the last few percent here).
    public func options(arch: String, verbose: Bool = false) -> [String] {
        var o = ["--gpu-architecture=\(arch)", "--std=c++17"]
        if let include = nvrtc.folder?.include { o.append("--include-path=\(include)") }
        for extra in ["/usr/local/cuda/include", "/usr/local/cuda/targets/x86_64-linux/include"] where CUDALocations.isDirectory(extra) {
            o.append("--include-path=\(extra)")
        }
        if verbose { o.append("--ptxas-options=-v") }
        return o
    }

    public struct Result: Sendable {
        public var cubin: [UInt8]
        public var fromCache: Bool
        public var log: String
        /// Registers per thread of each kernel, from ptxas' report (empty when loaded from cache
        /// and `verbose` was not asked).
        public var registers: [String: Int]
    }

    /// Compiles `source` for `arch`, or loads it from the cache.
    public func compile(_ source: KernelSource, arch: String, verbose: Bool = false) throws(FlintError) -> Result {
        let opts = options(arch: arch, verbose: verbose)
        let key = Self.cacheKey(source.text, opts.joined(separator: " "), arch, nvrtc.versionString)
        let path = cacheFolder.map { "\($0)/\(source.name)-\(arch)-\(key).cubin" }
        if let path, !verbose, let cached = Self.read(path), cached.starts(with: [0x7F, 0x45, 0x4C, 0x46]) {
            return Result(cubin: cached, fromCache: true, log: "", registers: [:])
        }
        let out = try nvrtc.compile(source: source.text, name: source.name + ".cu", options: opts)
        if let path, let folder = cacheFolder {
            Self.makeFolders(folder)
            Self.writeAtomically(out.cubin, to: path)
        }
        return Result(cubin: out.cubin, fromCache: false, log: out.log, registers: Self.registers(fromLog: out.log))
    }

    /// Parses ptxas -v output: "Compiling entry function 'name' for 'sm_90'" ... "Used 40 registers".
    static func registers(fromLog log: String) -> [String: Int] {
        var result: [String: Int] = [:]
        var current: String?
        for line in log.split(separator: "\n") {
            if let r = line.firstRange(of: "entry function '") {
                let rest = line[r.upperBound...]
                current = rest.firstIndex(of: "'").map { String(rest[..<$0]) }
            } else if let current, let r = line.firstRange(of: "Used ") {
                let digits = line[r.upperBound...].prefix(while: \.isNumber)
                if let n = Int(digits), line[r.upperBound...].dropFirst(digits.count).hasPrefix(" registers") { result[current] = n }
            }
        }
        return result
    }

    static func cacheKey(_ parts: String...) -> String {
        // Two independent 64-bit FNV-1a hashes: collisions would need both to collide.
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        var h2: UInt64 = 0x8422_2325_cbf2_9ce4
        for part in parts {
            for b in part.utf8 {
                h1 = (h1 ^ UInt64(b)) &* 0x100_0000_01b3
                h2 = (h2 &* 0x100_0000_01b3) ^ UInt64(b)
            }
            h1 = (h1 ^ 0xFF) &* 0x100_0000_01b3
            h2 = (h2 &* 0x100_0000_01b3) ^ 0xFF
        }
        return String(h1, radix: 16) + String(h2, radix: 16)
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            out.append(contentsOf: chunk[0..<n])
            if n < chunk.count { return ferror(f) == 0 ? out : nil }
        }
    }

    /// Best effort: a cache that cannot be written only costs a recompile next time.
    static func writeAtomically(_ bytes: [UInt8], to path: String) {
        let tmp = path + ".\(getpid()).tmp"
        guard let f = fopen(tmp, "wb") else { return }
        let ok = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) == $0.count }
        fclose(f)
        if ok { rename(tmp, path) } else { unlink(tmp) }
    }

    static func makeFolders(_ path: String) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            mkdir(prefix, 0o755)
        }
    }
}

/// One embedded `.cu` file and the `extern "C"` kernels it defines.
public struct KernelSource: Sendable {
    /// File name without extension ("layernorm").
    public var name: String
    public var text: String
    public var kernels: [String]

    public init(name: String, text: String, kernels: [String]) {
        self.name = name
        self.text = text
        self.kernels = kernels
    }
}
