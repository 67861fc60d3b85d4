import FlintCore
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Runs plans on a CUDA device (or the emulated driver) in fp32, fp16 or bf16.
///
/// Weights are converted to the activation dtype and uploaded once; every buffer of the plan lives
/// at a fixed offset in one device arena. A batch is padded to its shape bucket (tokens to a
/// multiple of 16, sequences to a power of two; padded rows belong to no sequence and are never
/// read back). A bucket's first batch chooses cuBLASLt's algorithm for each GEMM shape and runs
/// the steps eagerly; then the steps are captured once as a graph, and each later forward is: copy
/// the inputs, replay the graph, copy the outputs. With graphs off (`FLINT_CUDA_GRAPHS=0`) every
/// forward runs eagerly and waits after each step, so a failure names its step and kernels.
public final class CUDABackend: Backend {
    public let driver: any CUDADriver
    public let dtype: DType
    /// Whether forwards are captured and replayed as CUDA graphs (the default) or run eagerly.
    public let usesGraphs: Bool
    let compiler: KernelCompiler?
    let progress: (@Sendable (String) -> Void)?
    let compileProgress: ProgressReport?
    private let noticeLog = Mutex<[String]>([])

    /// - Parameters:
    ///   - compiler: NVRTC compiler for drivers that need CUBINs (nil for the emulated driver).
    ///   - graphs: capture and replay CUDA graphs; nil reads `FLINT_CUDA_GRAPHS` (`0` turns them off).
    ///   - progress: told about slow one-time work (kernel compilation on a cache miss) and, once
    ///     each, about work-arounds (a cuBLASLt epilogue refused for a shape).
    ///   - compileProgress: told of each kernel file built or loaded by a plan's first `prepare`
    ///     (done 0 before the first), for a front end's progress line.
    public init(driver: any CUDADriver, dtype: DType = .f32, compiler: KernelCompiler? = nil, graphs: Bool? = nil,
                progress: (@Sendable (String) -> Void)? = nil, compileProgress: ProgressReport? = nil) throws(FlintError) {
        guard [.f32, .f16, .bf16].contains(dtype) else { throw .invalidInput("the CUDA backend runs f32, f16 or bf16, not \(dtype)") }
        if driver.architecture != nil, compiler == nil {
            throw .cudaUnavailable("a NVRTC compiler is needed to build kernels for \(driver.deviceName)")
        }
        if let supported = driver.cudaVersion, let nvrtc = compiler?.nvrtc,
           nvrtc.version.major * 1000 + nvrtc.version.minor * 10 > supported {
            // A CUBIN from a newer NVRTC than the driver fails to load, kernel by kernel; say why once.
            throw .cudaUnavailable("""
                NVRTC \(nvrtc.versionString) (\(nvrtc.folder?.lib ?? "loader path")) builds kernels for a newer CUDA than this driver \
                supports (CUDA \(supported / 1000).\(supported % 1000 / 10)); use the NVRTC of the driver's CUDA version \
                (pip install nvidia-cuda-nvrtc==\(supported / 1000).\(supported % 1000 / 10).*, or FLINT_CUDA_PATH=<that toolkit>)
                """)
        }
        self.driver = driver
        self.dtype = dtype
        self.compiler = compiler
        self.usesGraphs = graphs ?? Self.graphsFromEnvironment()
        self.progress = progress
        self.compileProgress = compileProgress
    }

    /// `FLINT_CUDA_GRAPHS=0` (or `off`, `false`) runs eagerly; anything else, or unset, uses graphs.
    public static func graphsFromEnvironment() -> Bool {
        guard let v = getenv("FLINT_CUDA_GRAPHS").map({ String(cString: $0).lowercased() }) else { return true }
        return !["0", "off", "false", "no"].contains(v)
    }

    public var deviceDescription: String { "cuda (\(driver.deviceName), graphs: \(usesGraphs ? "on" : "off"))" }

    /// What the backend worked around so far (each said once, also through `progress`).
    public var notices: [String] { noticeLog.withLock { $0 } }

    func notice(_ message: String) {
        let new = noticeLog.withLock { log -> Bool in
            guard !log.contains(message) else { return false }
            log.append(message)
            return true
        }
        if new { progress?(message) }
    }

    public func prepare(_ plan: Plan, weights: any WeightSource) throws(FlintError) -> any PreparedPlan {
        // Modules live as long as the driver: a second plan (or backend) on it loads nothing.
        let pending = KernelSources.all.filter { !driver.hasLoaded($0.name) }
        if !pending.isEmpty { compileProgress?(0, pending.count, "") }
        for (index, source) in pending.enumerated() {
            defer { compileProgress?(index + 1, pending.count, "\(source.name).cu") }
            var cubin: [UInt8]?
            if let arch = driver.architecture, let compiler {
                let started = ContinuousClock.now
                let r = try compiler.compile(source, arch: arch)
                if !r.fromCache { progress?("compiled \(source.name).cu for \(arch) in \(ContinuousClock.now - started) (now cached)") }
                cubin = r.cubin
            }
            try driver.load(source, cubin: cubin)
        }
        return try CUDAPreparedPlan(plan: plan, weights: weights, backend: self)
    }
}

final class CUDAPreparedPlan: ProfiledPlan, StepTimedPlan, @unchecked Sendable {
    let plan: Plan
    let backend: CUDABackend
    var driver: any CUDADriver { backend.driver }
    let dtype: DType
    let weights: [DevicePointer]
    let layout: ArenaLayout
    let arena: DevicePointer
    /// The batch's inputs, laid out per bucket (`InputLayout`) so one contiguous copy sends them.
    let inputs: DevicePointer
    private let state = Mutex<[Bucket: BucketState]>([:])
    /// Events around each forward, and what the last one measured.
    private let startEvent: Int, endEvent: Int
    private let profile = Mutex<RunProfile?>(nil)
    /// With a timer, every run goes step by step (no graph), waiting after each step: host spans.
    private let timer = Mutex<StepTimer?>(nil)

    /// Two events per step (before, after) for timed runs, made at the first; what they measured last.
    private let stepEvents = Mutex<[Int]>([])
    private let deviceSteps = Mutex<[Double]?>(nil)

    var stepTimer: StepTimer? {
        get { timer.withLock { $0 } }
        set { timer.withLock { $0 = newValue } }
    }
    var lastDeviceStepMs: [Double]? { deviceSteps.withLock { $0 } }

    private func timingEvents() throws(FlintError) -> [Int] {
        try stepEvents.withLock { (events) throws(FlintError) -> [Int] in
            while events.count < 2 * plan.steps.count { events.append(try driver.makeEvent()) }
            return events
        }
    }
    var lastProfile: RunProfile? { profile.withLock { $0 } }

    struct Bucket: Hashable {
        var tokens: Int
        var sequences: Int
        /// Every sequence brings one token (a decode step): attention through the KV cache uses the
        /// kernel made for one query per sequence.
        var singleTokens = false
    }

    /// What a bucket's first batch settled: which linear steps run cuBLASLt's epilogue, and the graph.
    struct BucketState {
        /// Linear step index -> whether its bias/activation run in cuBLASLt's epilogue.
        var fusedEpilogue: [Int: Bool] = [:]
        var graph: Int?
    }

    var arenaBytes: Int { layout.totalBytes }

    init(plan: Plan, weights source: any WeightSource, backend: CUDABackend) throws(FlintError) {
        self.plan = plan
        self.backend = backend
        dtype = backend.dtype
        let driver = backend.driver
        var uploaded: [DevicePointer] = []
        for w in plan.weights.indices {
            let t = try plan.load(weight: w, from: source)
            let bytes = Self.encode(t.data, as: dtype)
            let p = try driver.allocate(bytes: bytes.count, what: "weight \(plan.weights[w].name)")
            try driver.copy(toDevice: p, bytes)
            uploaded.append(p)
        }
        weights = uploaded
        for step in plan.steps {
            switch step {
            case let .attention(_, _, headDim, _, _), let .cachedAttention(_, _, _, _, headDim, _, _):
                guard headDim <= KernelGeometry.maxHeadDim else {
                    throw .unsupportedModel(
                        path: plan.weights.first?.name ?? "plan",
                        reason: "head dim \(headDim): the CUDA attention kernel supports up to \(KernelGeometry.maxHeadDim)")
                }
            default: break
            }
        }
        layout = plan.arenaLayout(elementBytes: dtype.byteSize)
        arena = try driver.allocate(bytes: layout.totalBytes, what: "the activation arena for \(plan.maxTokens) tokens")
        inputs = try driver.allocate(bytes: InputLayout(Bucket(tokens: plan.maxTokens, sequences: plan.maxSequences)).bytes,
                                     what: "the input staging area")
        startEvent = try driver.makeEvent()
        endEvent = try driver.makeEvent()
        // Caches and seen-token sets start empty, so even a slot used out of order reads defined memory.
        for b in plan.buffers.indices where plan.buffers[b].rows.isPersistent {
            try driver.zero(arena + UInt64(layout.offsets[b]), bytes: plan.bytes(of: b, elementBytes: dtype.byteSize))
        }
    }

    deinit {
        for graph in state.withLock({ $0.values.compactMap(\.graph) }) { driver.destroyGraph(graph) }
        driver.destroyEvent(startEvent)
        driver.destroyEvent(endEvent)
        for event in stepEvents.withLock({ $0 }) { driver.destroyEvent(event) }
        for w in weights { driver.free(w) }
        driver.free(arena)
        driver.free(inputs)
    }

    /// f32 values as the bytes of `dtype` (round to nearest even).
    static func encode(_ values: [Float], as dtype: DType) -> [UInt8] {
        switch dtype {
        case .f16:
            return values.withUnsafeBufferPointer { v in
                [UInt16](unsafeUninitializedCapacity: v.count) { out, n in
                    for i in 0..<v.count { out[i] = Float16(v[i]).bitPattern }
                    n = v.count
                }.withUnsafeBytes { Array($0) }
            }
        case .bf16:
            return values.map { FloatConversion.bfloat16(from: $0) }.withUnsafeBytes { Array($0) }
        default:
            return values.withUnsafeBytes { Array($0) }
        }
    }

    static func decode(_ raw: UnsafeRawBufferPointer, as dtype: DType, count: Int) -> [Float] {
        switch dtype {
        case .f16: return (0..<count).map { FloatConversion.float(fromHalf: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        case .bf16:
            return (0..<count).map { FloatConversion.float(fromBFloat16: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        default: return (0..<count).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        }
    }

    func bucket(for batch: TokenBatch) -> Bucket {
        var s = 1
        while s < batch.sequenceCount { s <<= 1 }
        return Bucket(tokens: min((batch.tokenCount + 15) / 16 * 16, plan.maxTokens), sequences: min(s, plan.maxSequences),
                      singleTokens: batch.tokenCount == batch.sequenceCount)
    }

    func run(_ batch: TokenBatch) throws(FlintError) -> [String: HostTensor] {
        let started = ContinuousClock.now
        try validate(batch)
        let b = bucket(for: batch)
        return try state.withLock { (buckets) throws(FlintError) -> [String: HostTensor] in
            try upload(batch, bucket: b)
            let stepTimer = self.stepTimer
            if stepTimer == nil, let graph = buckets[b]?.graph {
                try driver.record(startEvent)
                try driver.replay(graph)
            } else {
                var settled: BucketState
                if let known = buckets[b] { settled = known } else { settled = try settle(b) }
                buckets[b] = settled
                try driver.record(startEvent)
                // The bucket's first batch (every batch with graphs off) runs step by step, so the
                // first run of every kernel and GEMM happens outside a capture, where a failure
                // names its step; graphs off also waits after each step.
                let events = stepTimer == nil ? [] : try timingEvents()
                for i in plan.steps.indices {
                    let stepStart = ContinuousClock.now
                    if !events.isEmpty { try driver.record(events[2 * i]) }
                    let queued = try named(i) { () throws(FlintError) in try enqueue(i, b, settled) }
                    if !events.isEmpty { try driver.record(events[2 * i + 1]) }
                    if !backend.usesGraphs || stepTimer != nil {
                        try named(i, queued) { () throws(FlintError) in try driver.synchronize() }
                    }
                    stepTimer?(i, stepStart, ContinuousClock.now)
                }
                if !events.isEmpty {
                    var device: [Double] = []
                    for i in plan.steps.indices {
                        device.append(try driver.elapsedMilliseconds(from: events[2 * i], to: events[2 * i + 1]))
                    }
                    deviceSteps.withLock { $0 = device }
                }
                if backend.usesGraphs, stepTimer == nil {
                    settled.graph = try capture(b, settled)
                    buckets[b] = settled
                }
            }
            try driver.record(endEvent)
            let enqueued = (ContinuousClock.now - started).milliseconds
            do throws(FlintError) {
                try driver.synchronize()
            } catch let .backend(message) where backend.usesGraphs {
                throw .backend("\(message) (during the forward of a \(b.tokens)-token, \(b.sequences)-sequence bucket; "
                    + "FLINT_CUDA_GRAPHS=0 runs it step by step and names the failing step)")
            }
            let deviceMs = try driver.elapsedMilliseconds(from: startEvent, to: endEvent)
            profile.withLock { $0 = RunProfile(hostEnqueueMs: enqueued, deviceMs: deviceMs) }
            var out: [String: HostTensor] = [:]
            for (name, buffer) in plan.outputs {
                let rows = plan.buffers[buffer].rows == .tokens ? batch.tokenCount : batch.sequenceCount
                let cols = plan.buffers[buffer].columns
                if plan.buffers[buffer].element == .int32 {
                    let raw = try driver.copyToHost(from: address(buffer), bytes: rows * cols * 4)
                    out[name] = raw.withUnsafeBytes { r in
                        HostTensor(
                            shape: [rows, cols],
                            data: (0..<(rows * cols)).map { Float(r.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) })
                    }
                } else if plan.buffers[buffer].element == .float32 {
                    let raw = try driver.copyToHost(from: address(buffer), bytes: rows * cols * 4)
                    out[name] = raw.withUnsafeBytes { HostTensor(shape: [rows, cols], data: Self.decode($0, as: .f32, count: rows * cols)) }
                } else {
                    let raw = try driver.copyToHost(from: address(buffer), bytes: rows * cols * dtype.byteSize)
                    out[name] = raw.withUnsafeBytes {
                        HostTensor(shape: [rows, cols], data: Self.decode($0, as: dtype, count: rows * cols))
                    }
                }
            }
            // NaN or infinity (an f16 overflow, say) is an error naming the output and its step, never a result.
            try requireFinite(out)
            try requireFiniteSampledLogits(out, batch)
            return out
        }
    }

    /// The logits a `.sample` step picks from stay on the device; sampling.cu writes id -1 for a row
    /// holding NaN or infinity. Such a row is an error naming the logits and the step that wrote
    /// them (the logits are copied back only then, to count the bad values).
    private func requireFiniteSampledLogits(_ out: [String: HostTensor], _ batch: TokenBatch) throws(FlintError) {
        for case let .sample(logits, _, _, ids, _, _) in plan.steps {
            guard let name = plan.outputs.first(where: { $0.buffer == ids })?.name, let chosen = out[name],
                  chosen.data.contains(-1) else { continue }
            let count = batch.sequenceCount * plan.buffers[logits].columns
            let raw = try driver.copyToHost(from: address(logits), bytes: count * dtype.byteSize)
            let values = raw.withUnsafeBytes { Self.decode($0, as: dtype, count: count) }
            throw plan.nonFiniteError(buffer: logits, count: values.count { !$0.isFinite }, of: count)
        }
    }

    /// Records the bucket's steps as a graph (nothing runs); the bucket's GEMM algorithms are chosen.
    private func capture(_ b: Bucket, _ settled: BucketState) throws(FlintError) -> Int {
        try driver.beginCapture()
        do throws(FlintError) {
            for i in plan.steps.indices { _ = try named(i) { () throws(FlintError) in try enqueue(i, b, settled) } }
        } catch {
            _ = try? driver.endCapture()
            throw error
        }
        return try driver.endCapture()
    }

    /// Runs `body` for plan step `i`; a backend error is prefixed with the step, its output buffer
    /// and what it queued ("step 12 of 45 (linear ... -> "ffn_output") [queued ...]: cuStreamSynchronize failed: ...").
    @discardableResult
    func named<R>(_ i: Int, _ queued: [String] = [], _ body: () throws(FlintError) -> R) throws(FlintError) -> R {
        do {
            return try body()
        } catch let FlintError.backend(message) {
            let kernels = queued.isEmpty ? "" : " [queued " + queued.joined(separator: ", ") + "]"
            throw .backend("\(plan.describe(step: i))\(kernels): \(message)")
        }
    }

    /// Where each input array sits in the staging area for one bucket: ids, positions, type ids
    /// (`tokens` each), then starts, lengths, slots (`sequences` each), the sampling parameters
    /// (12 words per sequence, sampling.cu's FlintSampling) and attention's (sequence, query block)
    /// work list. A bucket's graph captures these addresses.
    struct InputLayout {
        let bucket: Bucket
        init(_ bucket: Bucket) { self.bucket = bucket }
        var ids: Int { 0 }
        var positions: Int { 4 * bucket.tokens }
        var typeIds: Int { 8 * bucket.tokens }
        var starts: Int { 12 * bucket.tokens }
        var lengths: Int { starts + 4 * bucket.sequences }
        var slots: Int { lengths + 4 * bucket.sequences }
        var sampling: Int { slots + 4 * bucket.sequences }
        var queryBlocks: Int { sampling + 48 * bucket.sequences }
        var queryBlockCapacity: Int { KernelGeometry.queryBlockCapacity(tokens: bucket.tokens, sequences: bucket.sequences) }
        var bytes: Int { queryBlocks + 8 * queryBlockCapacity }
    }

    /// Copies the batch, padded to its bucket, into the input area (one copy).
    private func upload(_ batch: TokenBatch, bucket b: Bucket) throws(FlintError) {
        func padded(_ v: [Int32], to n: Int, with fill: Int32) -> [Int32] { v + [Int32](repeating: fill, count: n - v.count) }
        var area = padded(batch.ids, to: b.tokens, with: 0) + padded(batch.positions, to: b.tokens, with: 0)
            + padded(batch.typeIds, to: b.tokens, with: 0)
        // Padding sequences are empty and start at row 0: kernels skip them or read a valid row whose
        // result is never copied back.
        area += padded(batch.starts, to: b.sequences, with: 0) + padded(batch.lengths, to: b.sequences, with: 0)
            + padded(batch.slots, to: b.sequences, with: 0)
        for s in 0..<b.sequences {
            let p = s < batch.sequenceCount ? batch.sampling[s] : .greedy
            area += [Int32(bitPattern: p.temperature.bitPattern), Int32(bitPattern: p.topP.bitPattern),
                     Int32(bitPattern: p.repetitionPenalty.bitPattern), Int32(clamping: p.topK),
                     Int32(bitPattern: UInt32(truncatingIfNeeded: p.seed)), Int32(bitPattern: UInt32(truncatingIfNeeded: p.seed >> 32)),
                     Int32(bitPattern: p.presencePenalty.bitPattern), Int32(bitPattern: p.frequencyPenalty.bitPattern),
                     Int32(clamping: p.logprobs ?? -1), 0, 0, 0]
        }
        area += KernelGeometry.queryBlocks(lengths: batch.lengths, capacity: InputLayout(b).queryBlockCapacity)
        try driver.copy(toDevice: inputs, area.withUnsafeBytes { Array($0) })
    }

}
