#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import FlintCPU
import FlintCUDA
import FlintCore
import FlintJSON

/// What this machine reaches: memory bandwidth (read, copy) and the GEMM rate per dtype at large
/// sizes. The one place both `flint profile` (roofline per step) and `flint bench --sweep` (floor
/// lines) take their ceilings from; `flint bench ceilings` measures and caches them.
struct MachineCeilings {
    /// "cpu" or "cuda"; `device` is the backend's description.
    var kind: String
    var device: String
    /// What the cache file is keyed by: CPU model and ISA, threads, device.
    var machineKey: String
    /// GB/s of bytes read (nil where there is no read-only probe: CUDA) and of a copy (read + write).
    var readGBs: Double?
    var copyGBs: Double
    /// GFLOP/s of a large GEMM per dtype name, in measuring order.
    var gemmGFLOPs: [(dtype: String, gflops: Double)]
    var measuredAt: String
    var note: String
    /// "full" (`flint bench ceilings`) or "quick" (smaller sizes, fewer runs).
    var effort = "full"

    /// The GEMM rate of `dtype`, else of the first dtype measured.
    func gflops(_ dtype: String) -> Double { gemmGFLOPs.first { $0.dtype == dtype }?.gflops ?? gemmGFLOPs[0].gflops }

    /// The roofline `flint profile` holds steps against: the copy bandwidth (kernels read and write).
    func roofline(_ dtype: String) -> StepProfiler.Ceilings { StepProfiler.Ceilings(gflops: gflops(dtype), gbps: copyGBs) }

    var json: JSONValue {
        .object([
            ("schema", .string("flint-ceilings/1")), ("kind", .string(kind)), ("device", .string(device)),
            ("machine_key", .string(machineKey)), ("read_gbps", readGBs.map { .number($0) } ?? .null), ("copy_gbps", .number(copyGBs)),
            ("gemm_gflops", .object(gemmGFLOPs.map { (key: $0.dtype, value: .number($0.gflops)) })),
            ("measured_at", .string(measuredAt)), ("effort", .string(effort)), ("note", .string(note)),
        ])
    }

    init(kind: String, device: String, machineKey: String, readGBs: Double?, copyGBs: Double,
         gemmGFLOPs: [(dtype: String, gflops: Double)], note: String) {
        self.kind = kind
        self.device = device
        self.machineKey = machineKey
        self.readGBs = readGBs
        self.copyGBs = copyGBs
        self.gemmGFLOPs = gemmGFLOPs
        self.measuredAt = Self.utcNow()
        self.note = note
    }

    /// Reads a cache file's document; nil when it is not one.
    init?(json doc: JSONValue) {
        guard doc["schema"]?.string == "flint-ceilings/1", let kind = doc["kind"]?.string, let device = doc["device"]?.string,
            let key = doc["machine_key"]?.string, let copy = doc["copy_gbps"]?.double, copy > 0,
            let gemm = doc["gemm_gflops"]?.object, !gemm.isEmpty
        else { return nil }
        let rates = gemm.compactMap { m in m.value.double.map { (dtype: m.key, gflops: $0) } }
        guard rates.count == gemm.count, rates.allSatisfy({ $0.gflops > 0 }) else { return nil }
        self.init(kind: kind, device: device, machineKey: key, readGBs: doc["read_gbps"]?.double, copyGBs: copy, gemmGFLOPs: rates,
                  note: doc["note"]?.string ?? "")
        measuredAt = doc["measured_at"]?.string ?? "?"
        effort = doc["effort"]?.string ?? "full"
    }

    static func utcNow() -> String {
        var t = time(nil)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):"
            + "\(two(parts.tm_sec))Z"
    }
}

// MARK: - Measuring

extension MachineCeilings {
    /// How long to measure: `quick` for a profile's start (about half a second), `full` for
    /// `flint bench ceilings` (buffers and GEMMs well past the caches, every CPU precision).
    enum Effort { case quick, full }

    /// The CPU's ceilings on all the pool's threads: read and copy bandwidth over buffers far past the
    /// caches (every thread takes its share, as the kernels' parallel loops do), and per precision
    /// the GEMM rate of a large linear.
    static func measureCPU(pool: ThreadPool, effort: Effort, dtypes: [String] = ["f32"]) throws -> MachineCeilings {
        let count = (effort == .quick ? 16 : 32) << 20  // floats per buffer: 64 or 128 MiB
        let source = UnsafeMutablePointer<Float>.allocate(capacity: count)
        let target = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer {
            source.deallocate()
            target.deallocate()
        }
        source.initialize(repeating: 1, count: count)
        target.initialize(repeating: 0, count: count)
        let chunks = 64, chunk = count / chunks
        let rounds = effort == .quick ? 4 : 8
        func best(_ body: () -> Void) -> Double {
            var ms = Double.infinity
            for _ in 0..<rounds {
                let t0 = ContinuousClock.now
                body()
                ms = min(ms, (ContinuousClock.now - t0).milliseconds)
            }
            return ms
        }
        let copyMs = best { pool.parallelFor(chunks) { c in (target + c * chunk).update(from: source + c * chunk, count: chunk) } }
        var readGBs: Double?
        if effort == .full {
            let sums = UnsafeMutablePointer<Float>.allocate(capacity: chunks)
            defer { sums.deallocate() }
            let readMs = best { pool.parallelFor(chunks) { c in sums[c] = readSum(source + c * chunk, count: chunk) } }
            readGBs = Double(count * 4) / readMs / 1e6
        }
        let (m, n, k) = effort == .quick ? (512, 1024, 1024) : (1024, 2048, 2048)
        let rates = try dtypes.map { name in
            (dtype: name, gflops: try CPUKernels.benchmarkGEMM(m: m, n: n, k: k, iterations: effort == .quick ? 4 : 3, pool: pool,
                                                            format: GEMMBench.formats[name]?.0 ?? .f32))
        }
        return MachineCeilings(
            kind: "cpu", device: "cpu (\(CPUFeatures.isaName), \(pool.threadCount) threads)",
            machineKey: cpuKey(threads: pool.threadCount), readGBs: readGBs, copyGBs: 2 * Double(count * 4) / copyMs / 1e6,
            gemmGFLOPs: rates,
            note: "read: a parallel sum, copy: a parallel copy (bytes read + written), \((count * 4) >> 20) MiB buffers; "
                + "GEMM \(m)x\(n)x\(k) C = A·Wᵀ, best of several runs; all \(pool.threadCount) threads")
    }

    /// Sums `count` floats: a pure streaming read (four independent SIMD accumulators, so the adds'
    /// latency does not bound the loads).
    static func readSum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var a0 = SIMD8<Float>(repeating: 0), a1 = a0, a2 = a0, a3 = a0
        let raw = UnsafeRawPointer(p)
        var i = 0
        while i + 32 <= count {
            a0 += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            a1 += raw.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self)
            a2 += raw.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD8<Float>.self)
            a3 += raw.loadUnaligned(fromByteOffset: i * 4 + 96, as: SIMD8<Float>.self)
            i += 32
        }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while i < count {
            s += p[i]
            i += 1
        }
        return s
    }

    /// The CUDA device's ceilings, one backend per dtype (event-timed device copy and cuBLASLt GEMM;
    /// the emulated driver times the host at small sizes: its numbers say nothing of a GPU).
    static func measureCUDA(_ cuda: CUDABackend, dtypes: [DType]) throws -> MachineCeilings {
        let emulated = cuda.driver.architecture == nil
        var copy = 0.0
        var rates: [(dtype: String, gflops: Double)] = []
        var skipped: [String] = []
        for dtype in dtypes {
            do {
                let backend = dtype == cuda.dtype ? cuda : try CUDABackend(driver: cuda.driver, dtype: dtype)
                let c = try backend.measureCeilings(copyBytes: emulated ? 16 << 20 : 512 << 20, gemmSize: emulated ? 256 : 8192)
                copy = max(copy, c.bandwidthGBs)
                rates.append((dtype.description, c.gemmTFLOPs * 1000))
            } catch {
                skipped.append("\(dtype): \(error)")
            }
        }
        guard !rates.isEmpty else { throw CommandError("no GEMM ran on \(cuda.deviceDescription): \(skipped.joined(separator: "; "))") }
        return MachineCeilings(
            kind: "cuda", device: cuda.deviceDescription,
            machineKey: "cuda-" + fnv1a("\(cuda.driver.deviceName)|\(cuda.driver.architecture ?? "emulated")|\(cpuKey(threads: 0))"),
            readGBs: nil, copyGBs: copy, gemmGFLOPs: rates,
            note: "copy: device-to-device (bytes read + written), GEMM: square cuBLASLt, CUDA events"
                + (emulated ? "; emulated driver: host times at small sizes, the structure only" : "")
                + (skipped.isEmpty ? "" : "; not measured: " + skipped.joined(separator: "; ")))
    }

    /// The CPU part of the cache key: model name, ISA, int8 kernel, threads.
    static func cpuKey(threads: Int) -> String {
        "cpu-" + fnv1a("\(cpuModelName())|\(CPUFeatures.isaName)|\(CPUFeatures.int8KernelName)|\(CPUFeatures.cpuCount)|\(threads)")
    }

    static func cpuModelName() -> String {
        guard let bytes = try? BoundedFile.contents("/proc/cpuinfo", limit: 1 << 22) else { return "unknown cpu" }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { String($0.drop { $0 == " " }) } ?? "unknown cpu"
        }
        return "unknown cpu"
    }

    /// The 1-minute load average (/proc/loadavg), nil where there is none.
    static func loadAverage() -> Double? {
        guard let bytes = try? BoundedFile.contents("/proc/loadavg", limit: 4096) else { return nil }
        return String(decoding: bytes, as: UTF8.self).split(separator: " ").first.flatMap { Double($0) }
    }

    /// ", load average 1.9 at start, 2.4 at end": how busy the machine was, as measured, for a
    /// result's machine line ("" where the system has no load average).
    static func loadNote(start: Double?, end: Double?) -> String {
        guard let start, let end else { return "" }
        return ", load average \(Table.fmt(start, 1)) at start, \(Table.fmt(end, 1)) at end"
    }

    /// 64-bit FNV-1a in hex: a short, stable file-name-safe key.
    static func fnv1a(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

// MARK: - Cache

extension MachineCeilings {
    /// `$FLINT_CACHE_DIR`, else `$XDG_CACHE_HOME/flint`, else `~/.cache/flint`.
    static var cacheFolder: String {
        if let p = getenv("FLINT_CACHE_DIR") { return String(cString: p) }
        if let p = getenv("XDG_CACHE_HOME") { return String(cString: p) + "/flint" }
        return (getenv("HOME").map { String(cString: $0) } ?? "/tmp") + "/.cache/flint"
    }

    static func cachePath(key: String) -> String { cacheFolder + "/ceilings-\(key).json" }

    /// The cached ceilings of `key`, nil when absent or unreadable (then they are measured again).
    static func cached(key: String) -> MachineCeilings? {
        guard let bytes = try? BoundedFile.contents(cachePath(key: key), limit: 1 << 20), let doc = try? JSONParser.parse(bytes),
            let c = MachineCeilings(json: doc), c.machineKey == key
        else { return nil }
        return c
    }

    /// Writes the cache file (creating the folder); a failure to cache is reported, not fatal.
    func save() {
        var folder = Self.cacheFolder.hasPrefix("/") ? "" : "."
        for part in Self.cacheFolder.split(separator: "/") {
            folder += "/" + part
            mkdir(folder, 0o755)
        }
        do {
            try Console.writeFile(Self.cachePath(key: machineKey), json.serialized + "\n")
        } catch {
            Console.progress("warning: ceilings not cached: \(error)")
        }
    }

    /// The cache key of `backend`'s ceilings (nil: a backend without ceilings).
    static func key(for backend: any Backend) -> String? {
        if let cpu = backend as? CPUBackend { return cpuKey(threads: cpu.pool.threadCount) }
        if let cuda = backend as? CUDABackend {
            return "cuda-" + fnv1a("\(cuda.driver.deviceName)|\(cuda.driver.architecture ?? "emulated")|\(cpuKey(threads: 0))")
        }
        return nil
    }

    /// The ceilings of `backend` from the cache, or measured now when absent or `refresh` (every
    /// precision at `.full`; at `.quick` only `dtype`'s), and cached when `save`.
    static func forBackend(_ backend: any Backend, refresh: Bool, effort: Effort, dtype: String = "f32", save: Bool) throws
        -> MachineCeilings?
    {
        guard let key = key(for: backend) else { return nil }
        if !refresh, let c = cached(key: key) { return c }
        Console.progress("measuring this machine's ceilings (\(effort == .quick ? "quick" : "full"): memory bandwidth, GEMM rate)"
            + (save ? "; cached in \(cachePath(key: key))" : "; `flint bench ceilings` measures them fully and caches them") + "...")
        var c: MachineCeilings
        if let cpu = backend as? CPUBackend {
            let dtypes = effort == .full ? ["f32", "bf16", "int8"] : Array(Set(["f32", dtype])).sorted()
            c = try measureCPU(pool: cpu.pool, effort: effort, dtypes: dtypes)
        } else {
            let cuda = backend as! CUDABackend
            c = try measureCUDA(cuda, dtypes: effort == .full ? [.f32, .f16, .bf16] : [cuda.dtype])
        }
        c.effort = effort == .quick ? "quick" : "full"
        if save { c.save() }
        return c
    }
}

/// `flint bench ceilings`: the machine's ceilings, from the cache or measured.
struct CeilingsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ceilings", abstract: "Memory bandwidth (read, copy) and GEMM rate per dtype at large sizes; cached.",
        discussion: """
            CPU: read (parallel sum) and copy bandwidth over 128 MiB buffers, GEMM 1024x2048x2048 per precision (f32, bf16, \
            int8), all threads. CUDA: device-to-device copy and square cuBLASLt GEMMs per dtype (f32, f16, bf16), timed by \
            events; on the emulated driver the numbers are the host's (structure only). Cached per machine (CPU model and \
            ISA, threads, device) in $FLINT_CACHE_DIR, $XDG_CACHE_HOME/flint or ~/.cache/flint; --refresh measures again. \
            `flint bench --sweep` draws its floor lines from these.
            """)

    @OptionGroup var options: DeviceOptions

    @Flag(name: .long, help: "Measure again even when cached.")
    var refresh = false

    @Flag(name: .long, help: "Smaller buffers and GEMMs, f32 only (seconds; for smoke tests).")
    var quick = false

    @Option(name: .long, help: "Also write the ceilings as JSON to this file.")
    var json: String?

    func run() throws {
        let backend = try options.backend()
        let key = MachineCeilings.key(for: backend)
        let wasCached = !refresh && key.flatMap { MachineCeilings.cached(key: $0) } != nil
        guard let c = try MachineCeilings.forBackend(backend, refresh: refresh, effort: quick ? .quick : .full, save: true) else {
            throw CommandError("no ceilings for \(backend.deviceDescription)")
        }
        print("\(c.device): \(wasCached ? "cached" : "measured now"), \(c.effort), at \(c.measuredAt) "
              + "(\(MachineCeilings.cachePath(key: c.machineKey)))")
        print("memory: read \(c.readGBs.map { Table.fmt($0, 1) + " GB/s" } ?? "not measured"), copy \(Table.fmt(c.copyGBs, 1)) GB/s")
        for r in c.gemmGFLOPs { print("GEMM \(r.dtype): \(Table.fmt(r.gflops, 1)) GFLOP/s") }
        print(c.note)
        if let json { try Console.writeFile(json, c.json.serialized + "\n") }
    }
}
