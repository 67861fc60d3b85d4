import FlintCore
import Synchronization

/// Runs plans on a CUDA device (or the emulated driver) in fp32, fp16 or bf16.
///
/// Weights are converted to the activation dtype and uploaded once; every buffer of the plan lives
/// at a fixed offset in one device arena. A batch is padded to its shape bucket (tokens to a
/// multiple of 16, sequences to a power of two; padded rows belong to no sequence and are never
/// read back), the bucket's steps are captured once as a graph, and each later forward is: copy
/// the inputs, replay the graph, copy the outputs.
public final class CUDABackend: Backend {
    public let driver: any CUDADriver
    public let dtype: DType
    let compiler: KernelCompiler?
    let progress: (@Sendable (String) -> Void)?

    /// - Parameters:
    ///   - compiler: NVRTC compiler for drivers that need CUBINs (nil for the emulated driver).
    ///   - progress: told about slow one-time work (kernel compilation on a cache miss).
    public init(driver: any CUDADriver, dtype: DType = .f32, compiler: KernelCompiler? = nil,
                progress: (@Sendable (String) -> Void)? = nil) throws(FlintError) {
        guard [.f32, .f16, .bf16].contains(dtype) else { throw .invalidInput("the CUDA backend runs f32, f16 or bf16, not \(dtype)") }
        if driver.architecture != nil, compiler == nil { throw .cudaUnavailable("a NVRTC compiler is needed to build kernels for \(driver.deviceName)") }
        self.driver = driver
        self.dtype = dtype
        self.compiler = compiler
        self.progress = progress
    }

    public var deviceDescription: String { "cuda (\(driver.deviceName))" }

    public func prepare(_ plan: Plan, weights: any WeightSource) throws(FlintError) -> any PreparedPlan {
        for source in KernelSources.all {
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

final class CUDAPreparedPlan: ProfiledPlan, @unchecked Sendable {
    let plan: Plan
    let backend: CUDABackend
    var driver: any CUDADriver { backend.driver }
    let dtype: DType
    private let weights: [DevicePointer]
    private let layout: ArenaLayout
    private let arena: DevicePointer
    /// The batch's inputs, laid out per bucket (`InputLayout`) so one contiguous copy sends them.
    private let inputs: DevicePointer
    private let state = Mutex<[Bucket: Int]>([:])
    /// Events around each forward, and what the last one measured.
    private let startEvent: Int, endEvent: Int
    private let profile = Mutex<RunProfile?>(nil)
    var lastProfile: RunProfile? { profile.withLock { $0 } }

    struct Bucket: Hashable {
        var tokens: Int
        var sequences: Int
        /// Every sequence brings one token (a decode step): attention through the KV cache uses the
        /// kernel made for one query per sequence.
        var singleTokens = false
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
                    throw .unsupportedModel(path: plan.weights.first?.name ?? "plan",
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
        case .bf16: return (0..<count).map { FloatConversion.float(fromBFloat16: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
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
        return try state.withLock { (graphs) throws(FlintError) -> [String: HostTensor] in
            try upload(batch, bucket: b)
            if let graph = graphs[b] {
                try driver.record(startEvent)
                try driver.replay(graph)
            } else {
                try driver.beginCapture()
                do throws(FlintError) {
                    for step in plan.steps { try enqueue(step, b) }
                } catch {
                    _ = try? driver.endCapture()
                    throw error
                }
                let graph = try driver.endCapture()
                graphs[b] = graph
                try driver.record(startEvent)
                try driver.replay(graph)
            }
            try driver.record(endEvent)
            let enqueued = (ContinuousClock.now - started).milliseconds
            try driver.synchronize()
            let deviceMs = try driver.elapsedMilliseconds(from: startEvent, to: endEvent)
            profile.withLock { $0 = RunProfile(hostEnqueueMs: enqueued, deviceMs: deviceMs) }
            var out: [String: HostTensor] = [:]
            for (name, buffer) in plan.outputs {
                let rows = plan.buffers[buffer].rows == .tokens ? batch.tokenCount : batch.sequenceCount
                let cols = plan.buffers[buffer].columns
                if plan.buffers[buffer].element == .int32 {
                    let raw = try driver.copyToHost(from: address(buffer), bytes: rows * cols * 4)
                    out[name] = raw.withUnsafeBytes { r in
                        HostTensor(shape: [rows, cols], data: (0..<(rows * cols)).map { Float(r.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) })
                    }
                } else {
                    let raw = try driver.copyToHost(from: address(buffer), bytes: rows * cols * dtype.byteSize)
                    out[name] = raw.withUnsafeBytes { HostTensor(shape: [rows, cols], data: Self.decode($0, as: dtype, count: rows * cols)) }
                }
            }
            return out
        }
    }

    /// Where each input array sits in the staging area for one bucket: ids, positions, type ids
    /// (`tokens` each), then starts, lengths, slots (`sequences` each) and the sampling parameters
    /// (8 words per sequence, sampling.cu's FlintSampling). A bucket's graph captures these addresses.
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
        var bytes: Int { sampling + 32 * bucket.sequences }
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
                     Int32(bitPattern: UInt32(truncatingIfNeeded: p.seed)), Int32(bitPattern: UInt32(truncatingIfNeeded: p.seed >> 32)), 0, 0]
        }
        try driver.copy(toDevice: inputs, area.withUnsafeBytes { Array($0) })
    }

    private func staged(_ offset: KeyPath<InputLayout, Int>, _ b: Bucket) -> DevicePointer {
        inputs + UInt64(InputLayout(b)[keyPath: offset])
    }

    private func address(_ buffer: Int) -> DevicePointer { arena + UInt64(layout.offsets[buffer]) }

    private func rows(_ buffer: Int, _ b: Bucket) -> Int32 {
        switch plan.buffers[buffer].rows {
        case .tokens: return Int32(b.tokens)
        case .sequences: return Int32(b.sequences)
        case .slots, .cache: return Int32(plan.rowCapacity(plan.buffers[buffer].rows))
        }
    }

    /// Queues one plan step as kernel launches / GEMMs for bucket `b`.
    private func enqueue(_ step: Plan.Step, _ b: Bucket) throws(FlintError) {
        let t = dtype.kernelSuffix
        let null = KernelArgument.pointer(0)
        let ids = staged(\.ids, b), positions = staged(\.positions, b), typeIds = staged(\.typeIds, b)
        let starts = staged(\.starts, b), lengths = staged(\.lengths, b)
        switch step {
        case let .embed(word, position, tokenType, gamma, beta, eps, out):
            let cols = plan.buffers[out].columns
            try launchRows("embedding_layernorm_\(t)", rows: b.tokens, [
                .pointer(ids), .pointer(positions), tokenType == nil ? null : .pointer(typeIds), .pointer(weights[word]),
                .pointer(weights[position]), tokenType.map { .pointer(weights[$0]) } ?? null, gamma.map { .pointer(weights[$0]) } ?? null,
                beta.map { .pointer(weights[$0]) } ?? null, .float(eps), .int32(Int32(b.tokens)), .int32(Int32(cols)), .pointer(address(out)),
            ])
        case let .linear(input, weight, bias, epilogue, out):
            let shape = plan.weights[weight].shape
            let n = shape[0], k = shape.count / shape[0]
            let m = Int(rows(out, b))
            // cuBLASLt's epilogue adds the bias and applies tanh-GELU; exact GELU and tanh run in our kernel,
            // and so does everything when this cuBLASLt refuses the epilogue for these types.
            let plain = GEMMDescriptor(m: m, n: n, k: k, a: address(input), lda: plan.buffers[input].columns, w: weights[weight], ldw: k,
                                       c: address(out), ldc: plan.buffers[out].columns, bias: nil, dtype: dtype)
            var fused = epilogue == .none || epilogue == .geluTanh
            if fused, bias != nil || epilogue == .geluTanh {
                var withEpilogue = plain
                withEpilogue.bias = bias.map { weights[$0] }
                withEpilogue.activation = epilogue == .geluTanh ? .geluTanh : .none
                do { try driver.gemm(withEpilogue) } catch { fused = false }
            } else if fused {
                try driver.gemm(plain)
            }
            if !fused {
                try driver.gemm(plain)
                let code: Int32 = switch epilogue {
                case .none: 0
                case .gelu: 1
                case .geluTanh: 2
                case .tanh: 3
                }
                try launchRows("bias_activation_\(t)", rows: m, [
                    .pointer(address(out)), bias.map { .pointer(weights[$0]) } ?? null, .int32(Int32(m)), .int32(Int32(n)),
                    .int32(Int32(plan.buffers[out].columns)), .int32(code),
                ])
            }
        case let .attention(qkv, heads, headDim, causal, out):
            let geometry = KernelGeometry.attention(maxLength: b.tokens, heads: heads, sequences: b.sequences, headDim: headDim)
            try driver.launch("attention_\(t)", grid: geometry.grid, block: geometry.block, sharedBytes: geometry.shared, arguments: [
                .pointer(address(qkv)), .int32(Int32(plan.buffers[qkv].columns)), .pointer(starts), .pointer(lengths), .int32(Int32(heads)),
                .int32(Int32(headDim)), .float(1 / Float(headDim).squareRoot()), .int32(causal ? 1 : 0), .pointer(address(out)),
                .int32(Int32(plan.buffers[out].columns)),
            ])
        case let .cachedAttention(qkv, keys, values, heads, headDim, scale, out):
            let geometry = b.singleTokens ? KernelGeometry.decodeAttention(heads: heads, sequences: b.sequences)
                : KernelGeometry.attention(maxLength: b.tokens, heads: heads, sequences: b.sequences, headDim: headDim)
            let kernel = "\(b.singleTokens ? "decode" : "cached")_attention_\(t)"
            try driver.launch(kernel, grid: geometry.grid, block: geometry.block, sharedBytes: geometry.shared, arguments: [
                .pointer(address(qkv)), .int32(Int32(plan.buffers[qkv].columns)), .pointer(starts), .pointer(lengths), .pointer(positions),
                .pointer(staged(\.slots, b)), .int32(Int32(heads)), .int32(Int32(headDim)), .float(scale), .pointer(address(keys)),
                .pointer(address(values)), .int32(Int32(plan.maxContext)), .pointer(address(out)), .int32(Int32(plan.buffers[out].columns)),
            ])
        case let .layerNorm(input, residual, gamma, beta, eps, out, sum):
            let r = rows(out, b)
            try launchRows("layernorm_\(t)", rows: Int(r), [
                .pointer(address(input)), residual.map { .pointer(address($0)) } ?? null, null, .pointer(weights[gamma]), .pointer(weights[beta]),
                .float(eps), .int32(r), .int32(Int32(plan.buffers[out].columns)), .int32(Int32(plan.buffers[input].columns)),
                .pointer(address(out)), .int32(Int32(plan.buffers[out].columns)), residual == nil ? null : sum.map { .pointer(address($0)) } ?? null,
            ])
        case let .lastToken(input, out):
            try launchRows("last_token_\(t)", rows: b.sequences, [
                .pointer(address(input)), .int32(Int32(plan.buffers[input].columns)), .pointer(starts), .pointer(lengths),
                .int32(Int32(b.sequences)), .int32(Int32(plan.buffers[out].columns)), .pointer(address(out)),
            ])
        case let .sample(logits, seen, out):
            let g = KernelGeometry.sampling(sequences: b.sequences)
            try driver.launch("sample_tokens_\(t)", grid: g.grid, block: g.block, sharedBytes: g.shared, arguments: [
                .pointer(address(logits)), .int32(Int32(plan.buffers[logits].columns)), .int32(Int32(plan.buffers[logits].columns)),
                .pointer(ids), .pointer(starts), .pointer(lengths), .pointer(positions), .pointer(staged(\.slots, b)),
                .pointer(address(seen)), .int32(Int32(plan.buffers[seen].columns)), .pointer(staged(\.sampling, b)), .pointer(address(out)),
            ])
        case let .firstToken(input, out):
            try launchRows("first_token_\(t)", rows: b.sequences, [
                .pointer(address(input)), .int32(Int32(plan.buffers[input].columns)), .pointer(starts), .int32(Int32(b.sequences)),
                .int32(Int32(plan.buffers[out].columns)), .pointer(address(out)),
            ])
        case let .pool(input, mode, out):
            if mode == .cls { return try enqueue(.firstToken(input: input, out: out), b) }
            try launchRows("\(mode == .mean ? "mean" : "max")_pool_\(t)", rows: b.sequences, [
                .pointer(address(input)), .int32(Int32(plan.buffers[input].columns)), .pointer(starts), .pointer(lengths),
                .int32(Int32(b.sequences)), .int32(Int32(plan.buffers[out].columns)), .pointer(address(out)),
            ])
        case let .l2Normalize(buffer):
            try launchRows("l2_normalize_\(t)", rows: Int(rows(buffer, b)), [
                .pointer(address(buffer)), .int32(rows(buffer, b)), .int32(Int32(plan.buffers[buffer].columns)),
            ])
        }
    }

    /// Row kernels: one block per row.
    private func launchRows(_ kernel: String, rows: Int, _ arguments: [KernelArgument]) throws(FlintError) {
        let g = KernelGeometry.rows(rows)
        try driver.launch(kernel, grid: g.grid, block: g.block, sharedBytes: g.shared, arguments: arguments)
    }
}
