import FlintCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The precision of a CPU backend's linear layers (activations, attention and normalizations stay f32).
public enum CPUPrecision: String, Sendable, CaseIterable, CustomStringConvertible {
    /// f32 weights: the reference.
    case f32
    /// bf16 weights (half the bytes), f32 accumulation. A decoder keeps its first MLP (c_fc and c_proj
    /// of block 0) in f32: rounding errors made there pass through every later block. On the
    /// 124M-shape GPT-2 check (`flint check --dtype bf16`: random weights, 511 teacher-forced positions,
    /// contract 99% identical greedy next tokens) bf16 everywhere kept 98.4%, the first MLP in f32
    /// 99.4%, all of block 0 99.0%, its attention only 98.6%, the last block 98.6%, the LM head
    /// (38.6M weights) 98.2%. The first MLP costs 4.7M weights x 2 bytes more per decode step (+4%).
    case bf16
    /// int8 weights, symmetric. Decoders (plans with a KV cache) run every linear layer, the LM head included,
    /// weight-only with one scale per output channel (f32 activations: their one-token steps are bound by reading
    /// the weights). Encoders run the attention output projection with activations quantized per token at run
    /// time (s32 accumulation, per-channel weights) and QKV, FFN-in and FFN-out with one scale per 64 input
    /// features per output channel (`PackedWeight.Format.int8Grouped`: on AVX2 up to 127 rows run on activations
    /// rounded to int16 per token, the integer kernel's rate at f32 activations' accuracy; more rows widen the
    /// weights to f32 per tile). Per-channel
    /// int8 there fails all-MiniLM-L6-v2's contract (embedding cosine >= 0.999 for every fixture text): dynamic
    /// int8 QKV, FFN-in or FFN-out alone gives 0.995-0.998 (their inputs, LayerNorm and GELU outputs, carry outlier
    /// channels) and weight-only per-channel for all three 0.9983; 64-k groups keep 0.99956 (f64 simulation,
    /// scripts/int8_group_sim.py: g128 0.99936, g32 0.99951; measured in Flint 0.99956). Those layers were bf16
    /// before. With int16 activations MiniLM s16 b1 takes 0.71-0.75x the widened forward's time, s128 unchanged
    /// (bench/results/2026-12-02-int8-a16).
    /// The dynamic layers' arithmetic is the CPU's `Int8Scheme.cpuDefault`
    /// (on AVX2 without VNNI u7s7: bench/results/2026-12-02-int8-avx2).
    case int8

    public var description: String { rawValue }

    /// The weight dtype (what `Backend.dtype` reports: benches count weight bytes by it).
    public var dtype: DType {
        switch self {
        case .f32: return .f32
        case .bf16: return .bf16
        case .int8: return .i8
        }
    }
}

/// The reference backend: fp32 on the host, every step a call into `CPUKernels`
/// (packed SIMD GEMM with fused epilogues, fused attention, fused residual+LayerNorm).
/// All cores work on each step; one forward runs at a time per prepared plan.
/// With a bf16 or int8 `precision`, `prepare` packs the linear layers' weights in it.
public final class CPUBackend: Backend {
    public let pool: ThreadPool
    public let precision: CPUPrecision

    /// The most threads worth asking for: more than a few per core only adds scheduling cost
    /// (10,000 threads make a GPT-2 step take seconds), so front ends refuse more than this.
    public static var maxThreads: Int { 4 * CPUFeatures.cpuCount }

    public init(threads: Int? = nil, precision: CPUPrecision = .f32) {
        pool = ThreadPool(threads: threads)
        self.precision = precision
    }

    public var deviceDescription: String { "cpu (\(CPUFeatures.isaName), \(pool.threadCount) threads)" }
    public var dtype: DType { precision.dtype }

    public func prepare(_ plan: Plan, weights source: any WeightSource) throws(FlintError) -> any PreparedPlan {
        try CPUPreparedPlan(plan: plan, source: source, pool: pool, formats: Self.weightFormats(plan, precision))
    }

    /// Takes `other`'s packed (or plain) copy of every weight whose plan entry and packing are the
    /// same here (a CPU plan of either precision; another backend's plan shares nothing).
    public func prepare(_ plan: Plan, weights source: any WeightSource, sharingWeightsOf other: any PreparedPlan) throws(FlintError)
        -> any PreparedPlan {
        try CPUPreparedPlan(plan: plan, source: source, pool: pool, formats: Self.weightFormats(plan, precision),
                            sharing: other as? CPUPreparedPlan)
    }

    /// The packing of each plan weight, indexed like `plan.weights` (nil: not a linear layer, kept plain
    /// f32). See `CPUPrecision.bf16` for the weights a decoder keeps in f32 and `CPUPrecision.int8` for
    /// which layers of an encoder take int8.
    public static func weightFormats(_ plan: Plan, _ precision: CPUPrecision) -> [PackedWeight.Format?] {
        var attentionOutputs = Set<Int>()
        var decoder = false
        for step in plan.steps {
            switch step {
            case let .attention(_, _, _, _, out): attentionOutputs.insert(out)
            case let .cachedAttention(_, _, _, _, _, _, out): attentionOutputs.insert(out); decoder = true
            default: break
            }
        }
        var projections = Set<Int>()  // weights of the linear layers that read an attention output
        for case let .linear(input, weight, _, _, _) in plan.steps where attentionOutputs.contains(input) { projections.insert(weight) }
        let keptF32 = precision == .bf16 && decoder ? firstDecoderMLP(plan) : []
        return plan.weights.indices.map { w -> PackedWeight.Format? in
            guard plan.weights[w].usage == .linear else { return nil }
            switch precision {
            case .f32: return .f32
            case .bf16: return keptF32.contains(w) ? .f32 : .bf16
            case .int8: return decoder ? .int8WeightOnly : (projections.contains(w) ? .int8Dynamic : .int8Grouped)
            }
        }
    }
}

extension CPUBackend {
    /// The weights of a decoder's first MLP (the linear layers between the first attention's output
    /// projection and the second block's QKV), which `CPUPrecision.bf16` keeps in f32. Empty for a
    /// single-block decoder (whose MLP feeds the head directly).
    static func firstDecoderMLP(_ plan: Plan) -> Set<Int> {
        var qkvBuffers = Set<Int>(), attentionOutputs = Set<Int>(), attentions = 0
        for case let .cachedAttention(qkv, _, _, _, _, _, out) in plan.steps {
            qkvBuffers.insert(qkv)
            attentionOutputs.insert(out)
            attentions += 1
        }
        guard attentions >= 2 else { return [] }
        var weights = Set<Int>(), afterFirstAttention = false
        for step in plan.steps {
            switch step {
            case .cachedAttention: afterFirstAttention = true
            case let .linear(input, weight, _, _, out) where afterFirstAttention:
                if qkvBuffers.contains(out) { return weights }  // the second block begins
                if !attentionOutputs.contains(input) { weights.insert(weight) }
            default: break
            }
        }
        return weights
    }
}

final class CPUPreparedPlan: StepTimedPlan, @unchecked Sendable {
    let plan: Plan
    let pool: ThreadPool
    /// Per plan weight: packed for GEMMs, plain otherwise.
    private let packed: [PackedWeight?]
    private let plain: [[Float]]
    private let layout: ArenaLayout
    private let arena: UnsafeMutableRawPointer
    /// Guards the arena: forwards on one prepared plan run one at a time. Holds the step timer,
    /// so the plain path reads it under the lock it takes anyway.
    private let running = Mutex<StepTimer?>(nil)

    var stepTimer: StepTimer? {
        get { running.withLock { $0 } }
        set { running.withLock { $0 = newValue } }
    }

    var arenaBytes: Int { layout.totalBytes }

    /// The packed weights, indexed like `plan.weights` (tests: which storage two plans share).
    var packedWeights: [PackedWeight?] { packed }

    /// `sharing`: a plan prepared from the same weights whose copies this one reads where its weight
    /// entry and packing are the same (PackedWeight and [Float] are references to immutable storage).
    init(plan: Plan, source: any WeightSource, pool: ThreadPool, formats: [PackedWeight.Format?],
         sharing other: CPUPreparedPlan? = nil) throws(FlintError) {
        self.plan = plan
        self.pool = pool
        var packed: [PackedWeight?] = []
        var plain: [[Float]] = []
        let otherIndex = Dictionary((other?.plan.weights ?? []).enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        for w in plan.weights.indices {
            if let other, let j = otherIndex[plan.weights[w].name], other.plan.weights[j] == plan.weights[w],
               other.packed[j]?.format == formats[w] {
                packed.append(other.packed[j])
                plain.append(other.plain[j])
                continue
            }
            let t = try plan.load(weight: w, from: source)
            if let format = formats[w] {
                let n = t.shape[0]
                let k = t.shape.count / n
                packed.append(try PackedWeight(weight: t.data, n: n, k: k, format: format, name: plan.weights[w].name))
                plain.append([])
            } else {
                packed.append(nil)
                plain.append(t.data)
            }
        }
        self.packed = packed
        self.plain = plain
        layout = plan.arenaLayout()
        arena = try Self.allocate(bytes: layout.totalBytes, what: "the activation arena for \(plan.maxTokens) tokens")
        // Caches and seen-token sets start empty, so even a slot used out of order reads defined memory.
        for b in plan.buffers.indices where plan.buffers[b].rows.isPersistent {
            (arena + layout.offsets[b]).initializeMemory(as: UInt8.self, repeating: 0, count: plan.bytes(of: b))
        }
    }

    deinit { free(arena) }

    static func allocate(bytes: Int, what: String) throws(FlintError) -> UnsafeMutableRawPointer {
        // Refuse what cannot fit instead of letting the OS kill the process on first touch.
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        var p: UnsafeMutableRawPointer?
        guard bytes < physical, posix_memalign(&p, ArenaLayout.alignment, max(bytes, 64)) == 0, let p else {
            throw .outOfMemory(device: "cpu", bytes: bytes, what: what)
        }
        return p
    }

    @inline(__always)
    private func buffer(_ b: Int) -> UnsafeMutablePointer<Float> {
        (arena + layout.offsets[b]).assumingMemoryBound(to: Float.self)
    }

    private func rows(_ b: Int, _ batch: TokenBatch) -> Int {
        switch plan.buffers[b].rows {
        case .tokens: return batch.tokenCount
        case .sequences: return batch.sequenceCount
        case .slots, .cache: return plan.rowCapacity(plan.buffers[b].rows)
        }
    }

    func idle() { pool.park() }

    func run(_ batch: TokenBatch) throws(FlintError) -> [String: HostTensor] {
        try validate(batch)
        return try running.withLock { timer throws(FlintError) in
            if let timer {
                for (i, step) in plan.steps.enumerated() {
                    let start = ContinuousClock.now
                    execute(step, batch)
                    timer(i, start, ContinuousClock.now)
                }
            } else {
                for step in plan.steps { execute(step, batch) }
            }
            try requireFiniteResults(batch)
            var out: [String: HostTensor] = [:]
            for (name, b) in plan.outputs {
                let r = rows(b, batch)
                let cols = plan.buffers[b].columns
                if plan.buffers[b].element == .int32 {
                    let ints = UnsafeRawPointer(buffer(b)).assumingMemoryBound(to: Int32.self)
                    out[name] = HostTensor(shape: [r, cols], data: (0..<(r * cols)).map { Float(ints[$0]) })
                } else {
                    out[name] = HostTensor(shape: [r, cols], data: Array(UnsafeBufferPointer(start: buffer(b), count: r * cols)))
                }
            }
            return out
        }
    }

    /// The rows of buffer `b` this batch used.
    private func values(_ b: Int, _ batch: TokenBatch) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: buffer(b), count: rows(b, batch) * plan.buffers[b].columns)
    }

    /// Scans the result buffers (outputs and sampled logits: cheap next to the forward). When one
    /// holds NaN or infinity, runs the batch again scanning every step's output to name the first
    /// step that produced one; that re-run is idempotent (cache rows and seen-token bits are
    /// rewritten with the same values) and only happens on the way to an error.
    private func requireFiniteResults(_ batch: TokenBatch) throws(FlintError) {
        guard let bad = plan.resultBuffers.first(where: { !FiniteCheck.allFinite(values($0, batch)) }) else { return }
        for (i, step) in plan.steps.enumerated() {
            execute(step, batch)
            for w in Plan.uses(step).writes where plan.buffers[w].element == .activation && plan.buffers[w].rows != .cache {
                let v = values(w, batch)
                if !FiniteCheck.allFinite(v) {
                    throw .nonFinite(buffer: "buffer \"\(plan.buffers[w].name)\" (\(FiniteCheck.nonFiniteCount(v)) of \(v.count) values, "
                                        + "first of the forward)", step: plan.describe(step: i))
                }
            }
        }
        let v = values(bad, batch)
        throw plan.nonFiniteError(buffer: bad, count: FiniteCheck.nonFiniteCount(v), of: v.count)
    }

    private func execute(_ step: Plan.Step, _ batch: TokenBatch) {
        switch step {
        case let .embed(word, position, tokenType, gamma, beta, eps, out):
            let cols = plan.buffers[out].columns
            batch.ids.withUnsafeBufferPointer { ids in
                batch.positions.withUnsafeBufferPointer { pos in
                    batch.typeIds.withUnsafeBufferPointer { types in
                        withOptional(gamma, in: plain) { g in
                            withOptional(beta, in: plain) { b in
                                CPUKernels.embeddingLayerNorm(
                                    ids: ids.baseAddress!, positions: pos.baseAddress!,
                                    typeIds: tokenType == nil ? nil : types.baseAddress!,
                                    word: plain[word], position: plain[position], type: tokenType.map { plain[$0] },
                                    gamma: g, beta: b, eps: eps, rows: batch.tokenCount, cols: cols, out: buffer(out), pool: pool)
                            }
                        }
                    }
                }
            }
        case let .linear(input, weight, bias, epilogue, out):
            let w = packed[weight]!
            let activation: Activation
            switch epilogue {
            case .none: activation = .none
            case .gelu: activation = .gelu
            case .geluTanh: activation = .geluTanh
            case .tanh: activation = .tanh
            case .relu: activation = .relu
            }
            let run = { (b: UnsafePointer<Float>?) in
                CPUKernels.linear(
                    self.buffer(input), rows: self.rows(out, batch), lda: self.plan.buffers[input].columns, weight: w,
                    bias: b, activation: activation, out: self.buffer(out), ldc: self.plan.buffers[out].columns, pool: self.pool)
            }
            if let bias { plain[bias].withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
        case let .attention(qkv, heads, headDim, causal, out):
            CPUKernels.attention(qkv: buffer(qkv), rowStride: plan.buffers[qkv].columns, starts: batch.starts, lengths: batch.lengths,
                                 heads: heads, headDim: headDim, scale: 1 / Float(headDim).squareRoot(), causal: causal,
                                 out: buffer(out), outStride: plan.buffers[out].columns, pool: pool)
        case let .cachedAttention(qkv, keys, values, heads, headDim, scale, out):
            batch.positions.withUnsafeBufferPointer { positions in
                CPUKernels.cachedAttention(
                    qkv: buffer(qkv), rowStride: plan.buffers[qkv].columns, starts: batch.starts, lengths: batch.lengths,
                    positions: positions.baseAddress!, slots: batch.slots, heads: heads, headDim: headDim, scale: scale,
                    keyCache: buffer(keys), valueCache: buffer(values), maxContext: plan.maxContext,
                    out: buffer(out), outStride: plan.buffers[out].columns, pool: pool)
            }
        case let .layerNorm(input, residual, gamma, beta, eps, out, sum):
            CPUKernels.layerNorm(
                buffer(input), residual: residual.map { UnsafePointer(buffer($0)) }, gamma: plain[gamma], beta: plain[beta],
                eps: eps, rows: rows(out, batch), cols: plan.buffers[out].columns, out: buffer(out),
                sum: sum.map { buffer($0) }, pool: pool)
        case let .firstToken(input, out), let .lastToken(input, out):
            let cols = plan.buffers[out].columns
            let last: Int32
            if case .lastToken = step { last = 1 } else { last = 0 }
            for s in 0..<batch.sequenceCount {
                let row = Int(batch.starts[s] + last * (batch.lengths[s] - 1))
                (buffer(out) + s * cols).update(from: buffer(input) + row * plan.buffers[input].columns, count: cols)
            }
        case let .sample(logits, seen, counts, out, topIds, logprobs):
            let vocab = plan.buffers[logits].columns, words = plan.buffers[seen].columns, k = plan.buffers[topIds].columns
            let bits = UnsafeMutableRawPointer(buffer(seen)).assumingMemoryBound(to: UInt32.self)
            let generated = UnsafeMutableRawPointer(buffer(counts)).assumingMemoryBound(to: Int32.self)
            let ids = UnsafeMutableRawPointer(buffer(out)).assumingMemoryBound(to: Int32.self)
            let top = UnsafeMutableRawPointer(buffer(topIds)).assumingMemoryBound(to: Int32.self)
            let lp = buffer(logprobs)
            pool.parallelFor(batch.sequenceCount) { s in
                let first = Int(batch.starts[s]), last = first + Int(batch.lengths[s]) - 1
                let slotBits = bits + Int(batch.slots[s]) * words
                let slotCounts = generated + Int(batch.slots[s]) * vocab
                Sampler.markSeen(slotBits, words: words, ids: batch.ids[first...last], reset: batch.positions[first] == 0)
                if batch.positions[first] == 0 { slotCounts.update(repeating: 0, count: vocab) }
                let row = buffer(logits) + s * vocab
                let id = Sampler.sample(logits: row, vocabularySize: vocab, seen: slotBits, counts: slotCounts,
                                        parameters: batch.sampling[s], position: batch.positions[last] + 1)
                ids[s] = id
                slotCounts[Int(id)] += 1
                (top + s * k).update(repeating: -1, count: k)
                (lp + s * (k + 1)).update(repeating: 0, count: k + 1)
                if let n = batch.sampling[s].logprobs {
                    let r = Sampler.logprobs(logits: row, vocabularySize: vocab, chosen: id, top: min(n, k))
                    lp[s * (k + 1)] = r.chosen
                    for (j, t) in r.top.enumerated() {
                        top[s * k + j] = t.id
                        lp[s * (k + 1) + 1 + j] = t.logprob
                    }
                }
            }
        case let .pool(input, mode, out):
            Pooling.pool(buffer(input), inputStride: plan.buffers[input].columns, starts: batch.starts, lengths: batch.lengths,
                         mode: mode, out: buffer(out), cols: plan.buffers[out].columns)
        case let .l2Normalize(b):
            Pooling.l2Normalize(buffer(b), rows: rows(b, batch), cols: plan.buffers[b].columns)
        }
    }
}

private func withOptional<R>(_ index: Int?, in plain: [[Float]], _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let index else { return body(nil) }
    return plain[index].withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Sequence pooling for sentence embeddings (cheap next to the encoder: plain loops).
enum Pooling {
    static func pool(_ x: UnsafePointer<Float>, inputStride: Int, starts: [Int32], lengths: [Int32], mode: Plan.Pooling,
                     out: UnsafeMutablePointer<Float>, cols: Int)
    {
        for s in starts.indices {
            let o = out + s * cols
            let first = x + Int(starts[s]) * inputStride
            switch mode {
            case .cls:
                o.update(from: first, count: cols)
            case .mean, .max:
                o.update(from: first, count: cols)
                for t in 1..<max(Int(lengths[s]), 1) {
                    let row = first + t * inputStride
                    if mode == .mean {
                        for c in 0..<cols { o[c] += row[c] }
                    } else {
                        for c in 0..<cols { o[c] = Swift.max(o[c], row[c]) }
                    }
                }
                if mode == .mean {
                    let inv = 1 / Float(lengths[s])
                    for c in 0..<cols { o[c] *= inv }
                }
            }
        }
    }

    /// Row-wise x / max(‖x‖₂, 1e-12), as torch.nn.functional.normalize.
    static func l2Normalize(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows {
            let row = x + r * cols
            var sum: Double = 0
            for c in 0..<cols { sum += Double(row[c]) * Double(row[c]) }
            let inv = Float(1 / Swift.max(sum.squareRoot(), 1e-12))
            for c in 0..<cols { row[c] *= inv }
        }
    }
}
