/// The ahead-of-time description of a forward pass (DESIGN.md, "The plan").
///
/// A model builds a `Plan` once: the weights it needs (by checkpoint key), the intermediate
/// buffers (each `[tokens, columns]` or `[sequences, columns]` f32), and the ordered fused steps.
/// A `Backend` prepares it (packs or uploads weights, lays every buffer out in one arena sized for
/// the largest batch) and then runs token batches through it with no per-request allocation.
/// Batches are packed: the tokens of all sequences are concatenated, so padding is never computed.
///
/// Decoders keep state between runs: per-slot buffers (`Rows.slots`) and KV caches (`Rows.cache`,
/// `[slots · maxContext, columns]`) live in the arena for the plan's whole life and are never shared
/// with other buffers. A batch names the slot of each sequence and the position of each token, so
/// one plan runs both the prompt (prefill) and every later single-token step (decode).
public struct Plan: Sendable {
    public enum WeightUsage: Sendable, Equatable {
        /// `[out, in]` matrix of a linear layer (nn.Linear layout); backends may repack it.
        case linear
        /// Embedding table `[rows, columns]`, read by row.
        case table
        /// A vector (bias, LayerNorm gamma/beta).
        case vector
    }

    public struct Weight: Sendable, Equatable {
        /// Checkpoint key, or a descriptive name for a weight made of `parts`.
        public var name: String
        public var shape: Shape
        public var usage: WeightUsage
        /// Checkpoint keys concatenated along the first dimension (fused QKV), equal parts;
        /// `[name]` for a plain weight.
        public var parts: [String]
        /// The checkpoint stores a `.linear` weight as `[in, out]` (GPT-2's Conv1D); loading
        /// transposes it to `shape` (`[out, in]`).
        public var transposed: Bool
        /// The checkpoint's table has this many more rows in front, which the plan skips (RoBERTa's
        /// positions start at `padding_idx + 1`): row `r` of the weight is row `r + firstRow` there.
        public var firstRow: Int = 0
    }

    public enum Rows: Sendable, Equatable {
        /// One row per token of the packed batch.
        case tokens
        /// One row per sequence.
        case sequences
        /// One row per cache slot (`maxSequences` rows), kept between runs.
        case slots
        /// `maxContext` rows per cache slot (`[slot, position]` row `slot · maxContext + position`),
        /// kept between runs: a KV cache.
        case cache

        /// Whether the buffer keeps its contents between runs.
        public var isPersistent: Bool { self == .slots || self == .cache }
    }

    public enum Element: Sendable, Equatable {
        /// The backend's activation dtype (f32 on the CPU; f32, f16 or bf16 on CUDA).
        case activation
        /// int32 (token ids, bit sets).
        case int32
        /// f32 whatever the activation dtype (log-probabilities).
        case float32
    }

    public struct Buffer: Sendable, Equatable {
        public var name: String
        public var columns: Int
        public var rows: Rows
        public var element: Element
    }

    public enum Pooling: String, Sendable, Equatable {
        case mean, max, cls
    }

    /// One fused step. Integers index `weights` and `buffers`.
    public enum Step: Sendable, Equatable {
        /// `out = LayerNorm(word[id] + position[pos] + tokenType[type])`; without `gamma` and `beta`
        /// the plain sum (GPT-2).
        case embed(word: Int, position: Int, tokenType: Int?, gamma: Int?, beta: Int?, eps: Float, out: Int)
        /// `out = epilogue(input · weightᵀ + bias)`.
        case linear(input: Int, weight: Int, bias: Int?, epilogue: Epilogue, out: Int)
        /// Multi-head attention from a `[tokens, 3·heads·headDim]` QKV buffer into `[tokens, heads·headDim]`.
        case attention(qkv: Int, heads: Int, headDim: Int, causal: Bool, out: Int)
        /// Causal attention through a KV cache: the K and V of every token of the batch are written to
        /// `keys`/`values` (`.cache` buffers) at row `slot · maxContext + position`, then each token
        /// attends to its slot's cached keys at positions `0 ... position`, `softmax(scale · q·kᵀ)·v`.
        case cachedAttention(qkv: Int, keys: Int, values: Int, heads: Int, headDim: Int, scale: Float, out: Int)
        /// `out = LayerNorm(input + residual)`; `out` may be `input`. With `sum` and a residual,
        /// `input + residual` is also stored there (`sum` may be `residual`): the pre-LN residual stream.
        case layerNorm(input: Int, residual: Int?, gamma: Int, beta: Int, eps: Float, out: Int, sum: Int? = nil)
        /// `out[s] = input[first token of sequence s]` (`[tokens, c]` -> `[sequences, c]`).
        case firstToken(input: Int, out: Int)
        /// `out[s] = input[last token of sequence s]` (`[tokens, c]` -> `[sequences, c]`).
        case lastToken(input: Int, out: Int)
        /// Picks each sequence's next token from its logits row (`[sequences, vocab]`) with the
        /// batch's `SamplingParameters` (`Sampling.swift` defines the procedure), into `out`
        /// (`[sequences, 1]` int32). `seen` (`.slots`, int32, `ceil(vocab/32)` columns) is the
        /// bit set of the tokens each slot has seen, for the repetition penalty: cleared when a
        /// sequence starts at position 0, then the batch's tokens are added. `counts` (`.slots`,
        /// int32, `[slots, vocab]`) counts each slot's sampled tokens, for the presence and frequency
        /// penalties: cleared when a sequence starts at position 0, then the chosen token is added
        /// (so every sample of a sequence must be kept: prompts run whole at position 0).
        /// For sequences whose parameters ask for `logprobs`, `topIds` (`[sequences, k]` int32) and
        /// `logprobs` (`[sequences, 1 + k]` f32: the chosen token's, then the top ones') get the
        /// raw log-softmax's `min(k, logprobs)` most likely tokens; the other entries get id -1 and 0.
        case sample(logits: Int, seen: Int, counts: Int, out: Int, topIds: Int, logprobs: Int)
        /// Pools each sequence's tokens (`[tokens, c]` -> `[sequences, c]`).
        case pool(input: Int, mode: Pooling, out: Int)
        /// Scales each row to unit L2 norm, in place.
        case l2Normalize(buffer: Int)
    }

    public enum Epilogue: Sendable, Equatable {
        case none
        /// Exact GELU, `0.5·x·(1 + erf(x/√2))` (HF "gelu").
        case gelu
        /// Tanh approximation (HF "gelu_new", GPT-2).
        case geluTanh
        case tanh
        /// `max(x, 0)` (HF "relu"; DistilBERT's pre-classifier).
        case relu
    }

    public private(set) var weights: [Weight] = []
    /// Weight index by name: a plan of many layers is built in linear time.
    private var weightIndex: [String: Int] = [:]
    public private(set) var buffers: [Buffer] = []
    public private(set) var steps: [Step] = []
    /// Named results: which buffer holds them.
    public private(set) var outputs: [(name: String, buffer: Int)] = []
    /// The largest batch the plan must handle.
    public var maxTokens: Int
    public var maxSequences: Int
    /// Positions per cache slot (0 for plans without a KV cache).
    public var maxContext: Int

    public init(maxTokens: Int, maxSequences: Int, maxContext: Int = 0) {
        self.maxTokens = maxTokens
        self.maxSequences = maxSequences
        self.maxContext = maxContext
    }

    public mutating func weight(_ name: String, _ shape: Shape, _ usage: WeightUsage, parts: [String]? = nil,
                                transposed: Bool = false, firstRow: Int = 0) -> Int {
        if let i = weightIndex[name] {
            precondition(weights[i].shape == shape && weights[i].usage == usage, "weight \(name) used with two shapes")
            return i
        }
        weights.append(Weight(name: name, shape: shape, usage: usage, parts: parts ?? [name], transposed: transposed, firstRow: firstRow))
        weightIndex[name] = weights.count - 1
        return weights.count - 1
    }

    /// Loads weight `w` as one f32 tensor, concatenating its parts (transposed ones first transposed).
    public func load(weight w: Int, from source: any WeightSource) throws(FlintError) -> HostTensor {
        let spec = weights[w]
        var partShape = spec.shape
        partShape.dims[0] /= spec.parts.count
        func part(_ name: String) throws(FlintError) -> [Float] {
            if spec.firstRow > 0 {
                var stored = partShape
                stored.dims[0] += spec.firstRow
                let skipped = spec.firstRow * (partShape.rank > 1 ? partShape.dims.dropFirst().reduce(1, *) : 1)
                return Array(try source.tensor(name, shape: stored).data.dropFirst(skipped))
            }
            guard spec.transposed, partShape.rank == 2 else { return try source.tensor(name, shape: partShape).data }
            let (rows, cols) = (partShape[0], partShape[1])
            let stored = try source.tensor(name, shape: [cols, rows]).data
            return [Float](unsafeUninitializedCapacity: stored.count) { out, n in
                for r in 0..<rows { for c in 0..<cols { out[r * cols + c] = stored[c * rows + r] } }
                n = stored.count
            }
        }
        if spec.parts.count == 1 { return HostTensor(shape: spec.shape, data: try part(spec.parts[0])) }
        var data: [Float] = []
        data.reserveCapacity(spec.shape.count)
        for name in spec.parts { data += try part(name) }
        return HostTensor(shape: spec.shape, data: data)
    }

    public mutating func buffer(_ name: String, columns: Int, rows: Rows = .tokens, element: Element = .activation) -> Int {
        buffers.append(Buffer(name: name, columns: columns, rows: rows, element: element))
        return buffers.count - 1
    }

    public mutating func append(_ step: Step) { steps.append(step) }

    public mutating func output(_ name: String, _ buffer: Int) { outputs.append((name, buffer)) }

    /// Buffers each step reads and writes (for lifetimes and for backends' checks).
    public static func uses(_ step: Step) -> (reads: [Int], writes: [Int]) {
        switch step {
        case let .embed(_, _, _, _, _, _, out): return ([], [out])
        case let .linear(input, _, _, _, out): return ([input], [out])
        case let .attention(qkv, _, _, _, out): return ([qkv], [out])
        case let .cachedAttention(qkv, keys, values, _, _, _, out): return ([qkv, keys, values], [keys, values, out])
        case let .layerNorm(input, residual, _, _, _, out, sum):
            return ([input] + (residual.map { [$0] } ?? []), [out] + (sum.map { [$0] } ?? []))
        case let .firstToken(input, out), let .lastToken(input, out): return ([input], [out])
        case let .sample(logits, seen, counts, out, topIds, logprobs):
            return ([logits, seen, counts], [seen, counts, out, topIds, logprobs])
        case let .pool(input, _, out): return ([input], [out])
        case let .l2Normalize(buffer): return ([buffer], [buffer])
        }
    }

    /// Rows of a buffer kind at the plan's limits.
    public func rowCapacity(_ rows: Rows) -> Int {
        switch rows {
        case .tokens: return maxTokens
        case .sequences, .slots: return maxSequences
        case .cache: return Self.product([maxSequences, maxContext])
        }
    }

    /// Bytes of buffer `b` at the plan's limits, for activations of `elementBytes` (f32: 4, f16: 2).
    public func bytes(of b: Int, elementBytes: Int = 4) -> Int {
        Self.product([rowCapacity(buffers[b].rows), buffers[b].columns, buffers[b].element == .activation ? elementBytes : 4])
    }

    /// A product of sizes, saturated at 2^60 (an absurd plan then fails to allocate with an
    /// out-of-memory error instead of overflowing).
    static func product(_ factors: [Int]) -> Int {
        var r = 1
        for f in factors {
            let (p, overflow) = r.multipliedReportingOverflow(by: f)
            if overflow || p > 1 << 60 { return 1 << 60 }
            r = p
        }
        return r
    }

    /// Where every buffer lives in the arena: buffers are alive from the first step that touches
    /// them to the last (outputs until the end; persistent buffers always), and buffers that are
    /// never alive together share memory.
    public func arenaLayout(elementBytes: Int = 4) -> ArenaLayout {
        var first = [Int](repeating: Int.max, count: buffers.count)
        var last = [Int](repeating: -1, count: buffers.count)
        for (i, step) in steps.enumerated() {
            let (r, w) = Self.uses(step)
            for b in r + w {
                first[b] = min(first[b], i)
                last[b] = max(last[b], i)
            }
        }
        for (_, b) in outputs { last[b] = steps.count }
        for b in buffers.indices where buffers[b].rows.isPersistent {
            first[b] = 0
            last[b] = steps.count
        }
        let requests = buffers.indices.map { b in
            ArenaLayout.Request(
                bytes: bytes(of: b, elementBytes: elementBytes), firstStep: first[b] == Int.max ? 0 : first[b], lastStep: max(last[b], 0))
        }
        return ArenaLayout(requests)
    }

    /// FLOPs of one forward over `tokens` tokens in `sequences` sequences of the given lengths
    /// (multiply-adds counted as 2), for throughput reports.
    public func flops(lengths: [Int]) -> Double {
        let tokens = Double(lengths.reduce(0, +))
        var total = 0.0
        for step in steps {
            switch step {
            case let .linear(_, w, _, _, out):
                let rows = buffers[out].rows == .tokens ? tokens : Double(lengths.count)
                total += 2 * rows * Double(weights[w].shape.count)
            case let .attention(_, heads, headDim, _, _):
                total += lengths.reduce(0.0) { $0 + 4 * Double($1) * Double($1) * Double(heads * headDim) }
            case let .cachedAttention(_, _, _, heads, headDim, _, _):
                // A prompt from an empty cache: query i sees i + 1 keys.
                total += lengths.reduce(0.0) { $0 + 2 * Double($1) * Double($1 + 1) * Double(heads * headDim) }
            default: break
            }
        }
        return total
    }
}

/// A packed batch of token sequences: `ids[starts[s] ..< starts[s] + lengths[s]]` is sequence `s`.
///
/// For plans with a KV cache, `slots[s]` is the cache slot sequence `s` uses and its tokens sit at
/// consecutive positions from `positions[starts[s]]` (the number of tokens already cached for it);
/// `sampling[s]` says how a `.sample` step picks its next token.
public struct TokenBatch: Sendable, Equatable {
    public var ids: [Int32]
    public var typeIds: [Int32]
    public var positions: [Int32]
    public var starts: [Int32]
    public var lengths: [Int32]
    public var slots: [Int32]
    public var sampling: [SamplingParameters]

    /// - Parameters:
    ///   - positionOffsets: per sequence, the position of its first token (default 0).
    ///   - slots: per sequence, its cache slot (default: its index).
    ///   - sampling: per sequence (default: greedy).
    public init(sequences: [[Int32]], typeIds: [[Int32]]? = nil, positionOffsets: [Int32]? = nil, slots: [Int32]? = nil,
                sampling: [SamplingParameters]? = nil) {
        precondition(positionOffsets.map { $0.count == sequences.count } ?? true, "TokenBatch: one position offset per sequence")
        precondition(slots.map { $0.count == sequences.count } ?? true, "TokenBatch: one slot per sequence")
        precondition(sampling.map { $0.count == sequences.count } ?? true, "TokenBatch: one sampling parameter set per sequence")
        ids = sequences.flatMap { $0 }
        self.typeIds = typeIds?.flatMap { $0 } ?? [Int32](repeating: 0, count: ids.count)
        positions = sequences.indices.flatMap { s in
            let offset = positionOffsets?[s] ?? 0
            return (0..<Int32(sequences[s].count)).map { $0 + offset }
        }
        var start: Int32 = 0
        starts = []
        lengths = []
        for s in sequences {
            starts.append(start)
            lengths.append(Int32(s.count))
            start += Int32(s.count)
        }
        self.slots = slots ?? (0..<Int32(sequences.count)).map { $0 }
        self.sampling = sampling ?? [SamplingParameters](repeating: .greedy, count: sequences.count)
    }

    public var tokenCount: Int { ids.count }
    public var sequenceCount: Int { lengths.count }
}
