import CFlintCUDAEmulation
import FlintCPU
import FlintCUDA
import FlintCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A `CUDADriver` without a GPU, so the CUDA backend's whole plan runs in CI:
/// - "device" memory is host memory. A fresh allocation is filled with 0xFF bytes (NaN in f32 / f16
///   / bf16, -1 in int32), so a read of memory never written shows up instead of reading zeros;
/// - every launch's pointer arguments must lie in a live allocation, and inside the kernel each
///   access through flint_load / flint_store / flint_load_int / flint_copy must stay inside the
///   allocation its pointer lies in (`flint_emu_launch_checked`): the first that does not fails the
///   launch with a `FlintError` naming the kernel, thread, address and allocation;
/// - launches run the same `.cu` sources compiled for the CPU under the emulated execution model
///   (CFlintCUDAEmulation), with the launch geometry the real backend uses;
/// - the GEMM is FlintCPU's, on values rounded through the storage dtype as cuBLASLt reads them,
///   with the bias and activation of cuBLASLt's epilogue and one rounding of the result;
/// - events read the host clock when recorded (work runs as it is queued, outside a capture);
/// - stream capture records operations and `replay` runs the recording, like a CUDA graph.
public final class EmulatedCUDADriver: CUDADriver, @unchecked Sendable {
    public let deviceName = "emulated (CPU)"
    public let architecture: String? = nil
    /// nil: kernels need no compiling; a version makes the backend compare it with NVRTC's.
    public let cudaVersion: Int?
    private let pool: ThreadPool

    private enum Operation {
        case launch(String, (UInt32, UInt32, UInt32), (UInt32, UInt32, UInt32), UInt32, [KernelArgument])
        case gemm(GEMMDescriptor)
        case copy(DevicePointer, DevicePointer, Int)
    }

    private struct State {
        var allocations: [DevicePointer: Int] = [:]
        var recording: [Operation]?
        var graphs: [[Operation]] = []
        var loaded: Set<String> = []
        var launches = 0
        var replays = 0
        /// Host time of each event's last recording (work runs when queued, so it is done by then).
        var events: [ContinuousClock.Instant?] = []
        /// What cuBLASLt's heuristic answered per GEMM shape, and how often it was asked.
        var gemmAlgorithms: [GEMMShapeKey: GEMMSupport] = [:]
        var heuristicQueries = 0
        var moduleLoads = 0
        /// Blocks launched per kernel (captured launches count when replayed).
        var blocks: [String: Int] = [:]
        var destroyedGraphs: Set<Int> = []
        var destroyedEvents: Set<Int> = []
    }
    private let state = Mutex(State())

    /// Refuse GEMMs with a bias or activation epilogue, as a cuBLASLt without them for some types
    /// would (the backend must then fall back to its own kernel).
    public let refusesGEMMEpilogues: Bool

    /// Refuse fused epilogues on one-row GEMMs (m = 1 or n = 1), as cuBLASLt's heuristic does
    /// (CUBLAS_STATUS_INVALID_VALUE; PyTorch avoids the epilogue there for the same reason).
    public let refusesOneRowEpilogues: Bool

    /// Launches of this kernel fail as a device fault would (tests of how errors name their step).
    public let failingKernel: String?

    public init(threads: Int? = 1, refusesGEMMEpilogues: Bool = false, refusesOneRowEpilogues: Bool = true, cudaVersion: Int? = nil,
                failingKernel: String? = nil) {
        pool = ThreadPool(threads: threads)
        self.cudaVersion = cudaVersion
        self.failingKernel = failingKernel
        self.refusesGEMMEpilogues = refusesGEMMEpilogues
        self.refusesOneRowEpilogues = refusesOneRowEpilogues
    }

    /// cuBLASLt heuristic queries so far (one per new GEMM shape).
    public var heuristicQueryCount: Int { state.withLock { $0.heuristicQueries } }
    /// Kernel files loaded so far (each should load once per driver).
    public var moduleLoadCount: Int { state.withLock { $0.moduleLoads } }
    /// Blocks launched for `kernel` so far.
    public func launchedBlocks(_ kernel: String) -> Int { state.withLock { $0.blocks[kernel, default: 0] } }
    /// Graphs captured and not yet destroyed.
    public var liveGraphCount: Int { state.withLock { $0.graphs.count - $0.destroyedGraphs.count } }
    /// Events made and not yet destroyed.
    public var liveEventCount: Int { state.withLock { $0.events.count - $0.destroyedEvents.count } }
    /// Bytes of device memory allocated and not yet freed.
    public var liveAllocationBytes: Int { state.withLock { $0.allocations.values.reduce(0, +) } }

    /// Kernel launches executed so far (captured launches count when replayed).
    public var launchCount: Int { state.withLock { $0.launches } }
    /// Graph replays so far.
    public var replayCount: Int { state.withLock { $0.replays } }
    /// Graphs captured so far.
    public var graphCount: Int { state.withLock { $0.graphs.count } }

    public func allocate(bytes: Int, what: String) throws(FlintError) -> DevicePointer {
        var p: UnsafeMutableRawPointer?
        guard bytes >= 0, posix_memalign(&p, 256, max(bytes, 1)) == 0, let p else {
            throw .outOfMemory(device: deviceName, bytes: bytes, what: what)
        }
        p.initializeMemory(as: UInt8.self, repeating: Self.freshByte, count: max(bytes, 1))
        let address = DevicePointer(UInt(bitPattern: p))
        state.withLock { $0.allocations[address] = bytes }
        flint_emu_register_allocation(p, bytes)
        return address
    }

    /// The byte fresh allocations are filled with: 0xFFFF / 0xFFFFFFFF are NaN in every float dtype.
    public static let freshByte: UInt8 = 0xFF

    public func free(_ pointer: DevicePointer) {
        let known = state.withLock { $0.allocations.removeValue(forKey: pointer) != nil }
        if known { flint_emu_unregister_allocation(UnsafeRawPointer(bitPattern: UInt(pointer))) }
        Glibc.free(UnsafeMutableRawPointer(bitPattern: UInt(pointer)))
    }

    /// Throws unless `[pointer, pointer + bytes)` lies inside one live allocation.
    func checkRange(_ pointer: DevicePointer, _ bytes: Int, _ what: String) throws(FlintError) {
        let ok = state.withLock { s in
            s.allocations.contains { base, size in pointer >= base && pointer + UInt64(bytes) <= base + UInt64(size) }
        }
        if !ok {
            throw .backend("emulated CUDA: \(what) touches \(bytes) bytes at 0x\(String(pointer, radix: 16)) outside every allocation")
        }
    }

    public func copy(toDevice destination: DevicePointer, from source: UnsafeRawPointer, bytes: Int) throws(FlintError) {
        try checkRange(destination, bytes, "host-to-device copy")
        UnsafeMutableRawPointer(bitPattern: UInt(destination))!.copyMemory(from: source, byteCount: bytes)
    }

    public func zero(_ destination: DevicePointer, bytes: Int) throws(FlintError) {
        try checkRange(destination, bytes, "memset")
        UnsafeMutableRawPointer(bitPattern: UInt(destination))!.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    }

    public func copy(toHost destination: UnsafeMutableRawPointer, from source: DevicePointer, bytes: Int) throws(FlintError) {
        try checkRange(source, bytes, "device-to-host copy")
        destination.copyMemory(from: UnsafeRawPointer(bitPattern: UInt(source))!, byteCount: bytes)
    }

    public func hasLoaded(_ name: String) -> Bool { state.withLock { $0.loaded.contains(name) } }

    public func load(_ source: KernelSource, cubin: [UInt8]?) throws(FlintError) {
        guard !hasLoaded(source.name) else { return }
        let available = Set((0..<flint_emu_kernel_count()).map { String(cString: flint_emu_kernel_name($0)) })
        for k in source.kernels where !available.contains(k) {
            throw .backend("emulated CUDA: kernel \(k) of \(source.name).cu is not in the emulation build")
        }
        state.withLock {
            $0.loaded.formUnion(source.kernels + [source.name])
            $0.moduleLoads += 1
        }
    }

    public func launch(_ kernel: String, grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedBytes: UInt32,
                       arguments: [KernelArgument]) throws(FlintError)
    {
        guard state.withLock({ $0.loaded.contains(kernel) }) else { throw .backend("emulated CUDA: kernel \(kernel) was never loaded") }
        guard block.0 * block.1 * block.2 <= 1024, block.0 * block.1 * block.2 > 0 else {
            throw .backend("emulated CUDA: \(kernel) launched with \(block) threads per block (1...1024 allowed)")
        }
        for case let .pointer(p) in arguments where p != 0 {
            try checkRange(p, 1, "a pointer argument of \(kernel)")
        }
        try enqueue(.launch(kernel, grid, block, sharedBytes, arguments))
    }

    public func gemm(_ g: GEMMDescriptor) throws(FlintError) {
        let e = g.dtype.byteSize
        try checkRange(g.a, ((g.m - 1) * g.lda + g.k) * e, "GEMM A")
        try checkRange(g.w, ((g.n - 1) * g.ldw + g.k) * e, "GEMM W")
        try checkRange(g.c, ((g.m - 1) * g.ldc + g.n) * e, "GEMM C")
        if let bias = g.bias { try checkRange(bias, g.n * e, "GEMM bias") }
        let chosen = state.withLock { $0.gemmAlgorithms[g.shapeKey] }
        guard let chosen else {
            throw .backend("emulated cuBLASLt: cublasLtMatmul(\(g.summary)) without an algorithm chosen by prepareGEMM "
                + "(cuBLASLt would query its heuristic here, which fails inside a capture)")
        }
        guard chosen == .supported else { throw .backend("emulated cuBLASLt: cublasLtMatmul(\(g.summary)) was refused: \(chosen)") }
        try enqueue(.gemm(g))
    }

    /// cuBLASLt's heuristic query, refused inside a capture as on a GPU (recent cuBLASLt fails with
    /// CUBLAS_STATUS_INTERNAL_ERROR there), so a backend that queries lazily fails in CI too.
    public func prepareGEMM(_ g: GEMMDescriptor) throws(FlintError) -> GEMMSupport {
        try state.withLock { (s) throws(FlintError) -> GEMMSupport in
            guard s.recording == nil else {
                throw .backend(
                    "emulated cuBLASLt: cublasLtMatmulAlgoGetHeuristic(\(g.summary)) inside a stream capture (CUBLAS_STATUS_INTERNAL_ERROR)"
                )
            }
            if let known = s.gemmAlgorithms[g.shapeKey] { return known }
            s.heuristicQueries += 1
            let fused = g.bias != nil || g.activation != .none
            let answer: GEMMSupport = if fused, refusesGEMMEpilogues {
                .refused(status: "CUBLAS_STATUS_NOT_SUPPORTED")
            } else if fused, refusesOneRowEpilogues, g.m == 1 || g.n == 1 {
                .refused(status: "CUBLAS_STATUS_INVALID_VALUE")
            } else {
                .supported
            }
            s.gemmAlgorithms[g.shapeKey] = answer
            return answer
        }
    }

    public func copy(deviceToDevice destination: DevicePointer, from source: DevicePointer, bytes: Int) throws(FlintError) {
        try checkRange(destination, bytes, "device-to-device copy destination")
        try checkRange(source, bytes, "device-to-device copy source")
        try enqueue(.copy(destination, source, bytes))
    }

    public func makeEvent() throws(FlintError) -> Int {
        state.withLock {
            $0.events.append(nil)
            return $0.events.count - 1
        }
    }

    public func record(_ event: Int) throws(FlintError) {
        try state.withLock { (s) throws(FlintError) in
            guard s.events.indices.contains(event), !s.destroyedEvents.contains(event) else {
                throw .backend("emulated CUDA: no event \(event)")
            }
            guard s.recording == nil else { throw .backend("emulated CUDA: events are not recorded into graphs") }
            s.events[event] = ContinuousClock.now
        }
    }

    public func elapsedMilliseconds(from start: Int, to end: Int) throws(FlintError) -> Double {
        try state.withLock { (s) throws(FlintError) -> Double in
            guard s.events.indices.contains(start), s.events.indices.contains(end), let a = s.events[start], let b = s.events[end] else {
                throw .backend("emulated CUDA: events \(start), \(end) were not both recorded")
            }
            return (b - a).milliseconds
        }
    }

    public func synchronize() throws(FlintError) {}

    public func destroyEvent(_ event: Int) { state.withLock { _ = $0.destroyedEvents.insert(event) } }

    public func destroyGraph(_ graph: Int) { state.withLock { _ = $0.destroyedGraphs.insert(graph) } }

    public func beginCapture() throws(FlintError) {
        try state.withLock { (s) throws(FlintError) in
            if s.recording != nil { throw .backend("emulated CUDA: capture already in progress") }
            s.recording = []
        }
    }

    public func endCapture() throws(FlintError) -> Int {
        try state.withLock { (s) throws(FlintError) -> Int in
            guard let ops = s.recording else { throw .backend("emulated CUDA: endCapture without beginCapture") }
            s.recording = nil
            s.graphs.append(ops)
            return s.graphs.count - 1
        }
    }

    public func replay(_ graph: Int) throws(FlintError) {
        let ops = state.withLock { s -> [Operation]? in
            guard graph >= 0, graph < s.graphs.count, !s.destroyedGraphs.contains(graph) else { return nil }
            s.replays += 1
            return s.graphs[graph]
        }
        guard let ops else { throw .backend("emulated CUDA: no graph \(graph)") }
        for op in ops { try execute(op) }
    }

    private func enqueue(_ op: Operation) throws(FlintError) {
        let captured = state.withLock { s -> Bool in
            guard s.recording != nil else { return false }
            s.recording!.append(op)
            return true
        }
        if !captured { try execute(op) }
    }

    private func execute(_ op: Operation) throws(FlintError) {
        switch op {
        case let .launch(kernel, grid, block, shared, arguments):
            if kernel == failingKernel { throw .backend("emulated CUDA: \(kernel) failed: CUDA_ERROR_ILLEGAL_ADDRESS (injected)") }
            state.withLock {
                $0.launches += 1
                $0.blocks[kernel, default: 0] += Int(grid.0 * grid.1 * grid.2)
            }
            // cuLaunchKernel convention: params[i] points at the i-th argument's value.
            let storage = UnsafeMutableRawPointer.allocate(byteCount: 8 * max(arguments.count, 1), alignment: 8)
            defer { storage.deallocate() }
            var params: [UnsafeMutableRawPointer?] = []
            for (i, a) in arguments.enumerated() {
                let slot = storage + 8 * i
                switch a {
                case let .pointer(p): slot.storeBytes(of: UInt(p), as: UInt.self)
                case let .int32(v): slot.storeBytes(of: v, as: Int32.self)
                case let .int64(v): slot.storeBytes(of: v, as: Int64.self)
                case let .float(v): slot.storeBytes(of: v, as: Float.self)
                }
                params.append(slot)
            }
            let rc = params.withUnsafeMutableBufferPointer { p in
                flint_emu_launch_checked(kernel, grid.0, grid.1, grid.2, block.0, block.1, block.2, shared, p.baseAddress, Int32(p.count))
            }
            if rc != 0 { throw .backend("emulated CUDA: launching \(kernel) failed: \(String(cString: flint_emu_last_error()))") }
        case let .gemm(g):
            try runGEMM(g)
        case let .copy(destination, source, bytes):
            UnsafeMutableRawPointer(bitPattern: UInt(destination))!.copyMemory(
                from: UnsafeRawPointer(bitPattern: UInt(source))!, byteCount: bytes)
        }
    }

    /// cuBLASLt's contract on the CPU: read A and W in their dtype, accumulate in fp32, round C.
    private func runGEMM(_ g: GEMMDescriptor) throws(FlintError) {
        func load(_ p: DevicePointer, rows: Int, cols: Int, ld: Int) -> [Float] {
            let raw = UnsafeRawPointer(bitPattern: UInt(p))!
            var out = [Float](repeating: 0, count: rows * cols)
            for r in 0..<rows {
                for c in 0..<cols {
                    let i = r * ld + c
                    switch g.dtype {
                    case .f16:
                        out[r * cols + c] = FloatConversion.float(fromHalf: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    case .bf16:
                        out[r * cols + c] = FloatConversion.float(fromBFloat16: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    default: out[r * cols + c] = raw.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                    }
                }
            }
            return out
        }
        let a = load(g.a, rows: g.m, cols: g.k, ld: g.lda)
        let w = load(g.w, rows: g.n, cols: g.k, ld: g.ldw)
        let bias = g.bias.map { load($0, rows: 1, cols: g.n, ld: g.n) }
        var c = [Float](repeating: 0, count: g.m * g.n)
        let packed = try PackedWeight(weight: w, n: g.n, k: g.k)
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                let out = cp.baseAddress!
                func run(_ b: UnsafePointer<Float>?) {
                    CPUKernels.linear(ap.baseAddress!, rows: g.m, lda: g.k, weight: packed, bias: b,
                                      activation: g.activation == .geluTanh ? .geluTanh : .none, out: out, ldc: g.n, pool: pool)
                }
                if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
            }
        }
        let out = UnsafeMutableRawPointer(bitPattern: UInt(g.c))!
        for r in 0..<g.m {
            for col in 0..<g.n {
                let v = c[r * g.n + col], i = r * g.ldc + col
                switch g.dtype {
                case .f16: out.storeBytes(of: Float16(v).bitPattern, toByteOffset: 2 * i, as: UInt16.self)
                case .bf16: out.storeBytes(of: FloatConversion.bfloat16(from: v), toByteOffset: 2 * i, as: UInt16.self)
                default: out.storeBytes(of: v, toByteOffset: 4 * i, as: Float.self)
                }
            }
        }
    }
}
