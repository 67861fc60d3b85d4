/// The ahead-of-time description of a forward pass (DESIGN.md, "The plan").
///
/// A model builds a `Plan` once: the weights it needs (by checkpoint key), the intermediate
/// buffers (each `[tokens, columns]` or `[sequences, columns]` f32), and the ordered fused steps.
/// A `Backend` prepares it (packs or uploads weights, lays every buffer out in one arena sized for
/// the largest batch) and then runs token batches through it with no per-request allocation.
/// Batches are packed: the tokens of all sequences are concatenated, so padding is never computed.
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
    }

    public enum Rows: Sendable, Equatable {
        /// One row per token of the packed batch.
        case tokens
        /// One row per sequence.
        case sequences
    }

    public struct Buffer: Sendable, Equatable {
        public var name: String
        public var columns: Int
        public var rows: Rows
    }

    public enum Pooling: String, Sendable, Equatable {
        case mean, max, cls
    }

    /// One fused step. Integers index `weights` and `buffers`.
    public enum Step: Sendable, Equatable {
        /// `out = LayerNorm(word[id] + position[pos] + tokenType[type])`.
        case embed(word: Int, position: Int, tokenType: Int?, gamma: Int, beta: Int, eps: Float, out: Int)
        /// `out = epilogue(input · weightᵀ + bias)`.
        case linear(input: Int, weight: Int, bias: Int?, epilogue: Epilogue, out: Int)
        /// Multi-head attention from a `[tokens, 3·heads·headDim]` QKV buffer into `[tokens, heads·headDim]`.
        case attention(qkv: Int, heads: Int, headDim: Int, causal: Bool, out: Int)
        /// `out = LayerNorm(input + residual)`; `out` may be `input`.
        case layerNorm(input: Int, residual: Int?, gamma: Int, beta: Int, eps: Float, out: Int)
        /// `out[s] = input[first token of sequence s]` (`[tokens, c]` -> `[sequences, c]`).
        case firstToken(input: Int, out: Int)
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
    }

    public private(set) var weights: [Weight] = []
    public private(set) var buffers: [Buffer] = []
    public private(set) var steps: [Step] = []
    /// Named results: which buffer holds them.
    public private(set) var outputs: [(name: String, buffer: Int)] = []
    /// The largest batch the plan must handle.
    public var maxTokens: Int
    public var maxSequences: Int

    public init(maxTokens: Int, maxSequences: Int) {
        self.maxTokens = maxTokens
        self.maxSequences = maxSequences
    }

    public mutating func weight(_ name: String, _ shape: Shape, _ usage: WeightUsage, parts: [String]? = nil) -> Int {
        if let i = weights.firstIndex(where: { $0.name == name }) {
            precondition(weights[i].shape == shape && weights[i].usage == usage, "weight \(name) used with two shapes")
            return i
        }
        weights.append(Weight(name: name, shape: shape, usage: usage, parts: parts ?? [name]))
        return weights.count - 1
    }

    /// Loads weight `w` as one f32 tensor, concatenating its parts.
    public func load(weight w: Int, from source: any WeightSource) throws(FlintError) -> HostTensor {
        let spec = weights[w]
        if spec.parts.count == 1 { return try source.tensor(spec.parts[0], shape: spec.shape) }
        var partShape = spec.shape
        partShape.dims[0] /= spec.parts.count
        var data: [Float] = []
        data.reserveCapacity(spec.shape.count)
        for part in spec.parts { data += try source.tensor(part, shape: partShape).data }
        return HostTensor(shape: spec.shape, data: data)
    }

    public mutating func buffer(_ name: String, columns: Int, rows: Rows = .tokens) -> Int {
        buffers.append(Buffer(name: name, columns: columns, rows: rows))
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
        case let .layerNorm(input, residual, _, _, _, out): return ([input] + (residual.map { [$0] } ?? []), [out])
        case let .firstToken(input, out): return ([input], [out])
        case let .pool(input, _, out): return ([input], [out])
        case let .l2Normalize(buffer): return ([buffer], [buffer])
        }
    }

    /// Bytes of buffer `b` at the plan's limits, for elements of `elementBytes` (f32: 4, f16: 2).
    public func bytes(of b: Int, elementBytes: Int = 4) -> Int {
        let rows = buffers[b].rows == .tokens ? maxTokens : maxSequences
        return rows * buffers[b].columns * elementBytes
    }

    /// Where every buffer lives in the arena: buffers are alive from the first step that touches
    /// them to the last (outputs until the end), and buffers that are never alive together share
    /// memory.
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
        let requests = buffers.indices.map { b in
            ArenaLayout.Request(bytes: bytes(of: b, elementBytes: elementBytes), firstStep: first[b] == Int.max ? 0 : first[b], lastStep: max(last[b], 0))
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
            default: break
            }
        }
        return total
    }
}

/// A packed batch of token sequences: `ids[starts[s] ..< starts[s] + lengths[s]]` is sequence `s`.
public struct TokenBatch: Sendable, Equatable {
    public var ids: [Int32]
    public var typeIds: [Int32]
    public var positions: [Int32]
    public var starts: [Int32]
    public var lengths: [Int32]

    public init(sequences: [[Int32]], typeIds: [[Int32]]? = nil, positionOffset: Int32 = 0) {
        ids = sequences.flatMap { $0 }
        self.typeIds = typeIds?.flatMap { $0 } ?? [Int32](repeating: 0, count: ids.count)
        positions = sequences.flatMap { s in (0..<Int32(s.count)).map { $0 + positionOffset } }
        var start: Int32 = 0
        starts = []
        lengths = []
        for s in sequences {
            starts.append(start)
            lengths.append(Int32(s.count))
            start += Int32(s.count)
        }
    }

    public var tokenCount: Int { ids.count }
    public var sequenceCount: Int { lengths.count }
}
