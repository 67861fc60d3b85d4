import FlintCore

/// The op cases `flint check --device` runs on a GPU and the tests run under the emulated driver:
/// every step kind of `Plan.Step`, odd sizes, every epilogue, f32/f16/bf16.
///
/// Tolerances, relative to each output's largest |value| (the CPU backend computes from the f32
/// weights; a device rounds weights and activations to its dtype, accumulates in fp32):
/// f32 1e-4 (DESIGN.md); f16 1e-2 (11-bit mantissa: rounding of inputs, weights and outputs, summed
/// over up to 300 products); bf16 5e-2 (8-bit mantissa, the same reasoning).
public enum OpChecks {
    public static func tolerance(_ dtype: DType) -> Float {
        switch dtype {
        case .f16: return 1e-2
        case .bf16: return 5e-2
        default: return 1e-4
        }
    }

    /// Every case, built from fixed seeds (the same inputs on every run and machine).
    public static func cases() -> [OpCase] {
        var b = Builder(seed: 1)
        var out: [OpCase] = []
        // Embeddings (+ LayerNorm, token types).
        for (cols, layerNorm, types) in [(37, true, true), (384, true, false), (769, true, true), (70, false, false)] {
            out.append(b.embedding(cols: cols, layerNorm: layerNorm, types: types))
        }
        // GEMMs with every epilogue, odd shapes, m = tokens of the batch.
        for (m, n, k, epilogue, bias) in [
            (1, 13, 5, Plan.Epilogue.none, true), (7, 769, 64, .gelu, true), (33, 96, 300, .geluTanh, true),
            (3, 32, 32, .tanh, false), (6, 40, 24, .relu, true), (17, 1000, 48, .none, false), (5, 200, 72, .geluTanh, false),
        ] {
            out.append(b.linear(m: m, n: n, k: k, epilogue: epilogue, bias: bias))
        }
        // One-row GEMMs (m = 1: one sequence through a pooler, classifier or LM head), where cuBLASLt
        // refuses fused epilogues; then the same plan with four sequences.
        for (n, k, epilogue, bias) in [
            (13, 37, Plan.Epilogue.none, true), (96, 64, .geluTanh, true), (50, 48, .tanh, true), (40, 24, .relu, false),
            (200, 72, .geluTanh, false),
            (33, 40, .gelu, true),
        ] {
            out.append(b.linearOnSequences(n: n, k: k, epilogue: epilogue, bias: bias))
        }
        for headDim in [32, 64, 80, 128] {
            for causal in [false, true] { out.append(b.attention(headDim: headDim, causal: causal)) }
        }
        for headDim in [12, 64, 128] { out.append(b.cachedAttention(headDim: headDim)) }
        for cols in [48, 769, 2500] { out.append(b.layerNorm(cols: cols)) }
        for cols in [37, 769] { out.append(b.pooling(cols: cols)) }
        out.append(b.sampling())
        out.append(b.sampling(logprobs: true))
        return out
    }
}

/// Builds the op cases' plans, random weights and batches.
struct Builder {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state = SamplingParameters.splitMix64(state)
        return state
    }

    /// Uniform in [-scale, scale).
    mutating func values(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in (Float(next() >> 40) / 16_777_216 * 2 - 1) * scale }
    }

    mutating func tensor(_ shape: Shape, scale: Float = 1, offset: Float = 0) -> HostTensor {
        HostTensor(shape: shape, data: values(shape.count, scale: scale).map { $0 + offset })
    }

    static let vocabulary = 50, positions = 256

    /// Random token sequences of the given lengths.
    mutating func sequences(_ lengths: [Int]) -> [[Int32]] {
        lengths.map { n in (0..<n).map { _ in Int32(next() % UInt64(Self.vocabulary)) } }
    }

    /// A plan whose first step embeds tokens into a `[tokens, cols]` buffer `x` (word + position
    /// tables, no LayerNorm), with its weights.
    mutating func embedded(cols: Int, maxTokens: Int, maxSequences: Int, maxContext: Int = 0) -> (Plan, TensorDictionary, Int) {
        var p = Plan(maxTokens: maxTokens, maxSequences: maxSequences, maxContext: maxContext)
        let x = p.buffer("x", columns: cols)
        var w = TensorDictionary()
        w.tensors["word"] = tensor([Self.vocabulary, cols])
        w.tensors["position"] = tensor([Self.positions, cols], scale: 0.5)
        p.append(
            .embed(
                word: p.weight("word", [Self.vocabulary, cols], .table), position: p.weight("position", [Self.positions, cols], .table),
                tokenType: nil, gamma: nil, beta: nil, eps: 0, out: x))
        return (p, w, x)
    }

    mutating func embedding(cols: Int, layerNorm: Bool, types: Bool) -> OpCase {
        var p = Plan(maxTokens: 64, maxSequences: 4)
        let x = p.buffer("x", columns: cols)
        var w = TensorDictionary()
        w.tensors["word"] = tensor([Self.vocabulary, cols])
        w.tensors["position"] = tensor([Self.positions, cols], scale: 0.5)
        w.tensors["type"] = tensor([2, cols], scale: 0.3)
        w.tensors["gamma"] = tensor([cols], scale: 0.2, offset: 1)
        w.tensors["beta"] = tensor([cols], scale: 0.1)
        p.append(
            .embed(
                word: p.weight("word", [Self.vocabulary, cols], .table), position: p.weight("position", [Self.positions, cols], .table),
                tokenType: types ? p.weight("type", [2, cols], .table) : nil,
                gamma: layerNorm ? p.weight("gamma", [cols], .vector) : nil, beta: layerNorm ? p.weight("beta", [cols], .vector) : nil,
                eps: 1e-12, out: x))
        p.output("x", x)
        let seqs = sequences([7, 1, 25])
        let typeIds = types ? seqs.map { s in s.indices.map { Int32($0 % 2) } } : nil
        return OpCase(name: "embed cols \(cols)\(layerNorm ? " + LayerNorm" : "")\(types ? " + token types" : "")", plan: p, weights: w,
                      batches: [TokenBatch(sequences: seqs, typeIds: typeIds)])
    }

    mutating func linear(m: Int, n: Int, k: Int, epilogue: Plan.Epilogue, bias: Bool) -> OpCase {
        var (p, w, x) = embedded(cols: k, maxTokens: 40, maxSequences: 4)
        let y = p.buffer("y", columns: n)
        w.tensors["W"] = tensor([n, k], scale: 1 / Float(k).squareRoot())
        w.tensors["b"] = tensor([n], scale: 0.5)
        p.append(
            .linear(
                input: x, weight: p.weight("W", [n, k], .linear), bias: bias ? p.weight("b", [n], .vector) : nil, epilogue: epilogue, out: y
            ))
        p.output("y", y)
        return OpCase(name: "linear \(m)x\(n)x\(k) \(epilogue)\(bias ? " + bias" : "")", plan: p, weights: w,
                      batches: [TokenBatch(sequences: sequences(m > 2 ? [m - 2, 2] : [m]))])
    }

    /// A linear layer over `[sequences, k]` rows (first token of each sequence): one sequence makes
    /// an m = 1 GEMM on a device that pads sequences to powers of two.
    mutating func linearOnSequences(n: Int, k: Int, epilogue: Plan.Epilogue, bias: Bool) -> OpCase {
        var (p, w, x) = embedded(cols: k, maxTokens: 40, maxSequences: 4)
        let pooled = p.buffer("pooled", columns: k, rows: .sequences), y = p.buffer("y", columns: n, rows: .sequences)
        w.tensors["W"] = tensor([n, k], scale: 1 / Float(k).squareRoot())
        w.tensors["b"] = tensor([n], scale: 0.5)
        p.append(.firstToken(input: x, out: pooled))
        p.append(.linear(input: pooled, weight: p.weight("W", [n, k], .linear), bias: bias ? p.weight("b", [n], .vector) : nil,
                         epilogue: epilogue, out: y))
        p.output("y", y)
        return OpCase(
            name: "linear 1x\(n)x\(k) on sequence rows \(epilogue)\(bias ? " + bias" : "") (then 4 sequences)", plan: p, weights: w,
            batches: [TokenBatch(sequences: sequences([5])), TokenBatch(sequences: sequences([3, 1, 7, 2]))])
    }

    mutating func attention(headDim: Int, causal: Bool) -> OpCase {
        let heads = 2
        var (p, w, qkv) = embedded(cols: 3 * heads * headDim, maxTokens: 200, maxSequences: 4)
        let o = p.buffer("context", columns: heads * headDim)
        p.append(.attention(qkv: qkv, heads: heads, headDim: headDim, causal: causal, out: o))
        p.output("context", o)
        return OpCase(name: "attention head dim \(headDim)\(causal ? " causal" : "")", plan: p, weights: w,
                      batches: [TokenBatch(sequences: sequences([1, 5, 64, 130]))])
    }

    /// A prefill into slots 2, 0, 1 (one prompt longer than a key tile), then two decode steps with
    /// the slots in other orders: outputs depend on what earlier batches left in the cache.
    mutating func cachedAttention(headDim: Int) -> OpCase {
        let heads = 2, hidden = heads * headDim
        var (p, w, qkv) = embedded(cols: 3 * hidden, maxTokens: 64, maxSequences: 3, maxContext: 48)
        let keys = p.buffer("keys", columns: hidden, rows: .cache), values = p.buffer("values", columns: hidden, rows: .cache)
        let o = p.buffer("context", columns: hidden)
        p.append(
            .cachedAttention(
                qkv: qkv, keys: keys, values: values, heads: heads, headDim: headDim, scale: 0.7 / Float(headDim).squareRoot(), out: o))
        p.output("context", o)
        let lengths = [5, 37, 1]
        var batches = [TokenBatch(sequences: sequences(lengths), slots: [2, 0, 1])]
        for (step, order) in [[1, 2, 0], [0, 2, 1]].enumerated() {
            batches.append(TokenBatch(sequences: sequences([1, 1, 1]), positionOffsets: order.map { Int32(lengths[$0] + step) },
                                      slots: order.map { [2, 0, 1][$0] }))
        }
        return OpCase(name: "cached attention head dim \(headDim)", plan: p, weights: w, batches: batches)
    }

    /// out = LN(x·Wᵀ + x) also writing the sum over x (GPT-2's pre-LN step), and LN without a residual.
    mutating func layerNorm(cols: Int) -> OpCase {
        var (p, w, x) = embedded(cols: cols, maxTokens: 32, maxSequences: 4)
        let r = p.buffer("r", columns: cols), n = p.buffer("n", columns: cols), plain = p.buffer("plain", columns: cols)
        w.tensors["W"] = tensor([cols, cols], scale: 1 / Float(cols).squareRoot())
        w.tensors["gamma"] = tensor([cols], scale: 0.2, offset: 1)
        w.tensors["beta"] = tensor([cols], scale: 0.1)
        let gamma = p.weight("gamma", [cols], .vector), beta = p.weight("beta", [cols], .vector)
        p.append(.layerNorm(input: x, residual: nil, gamma: gamma, beta: beta, eps: 1e-5, out: plain))
        p.append(.linear(input: x, weight: p.weight("W", [cols, cols], .linear), bias: nil, epilogue: .none, out: r))
        p.append(.layerNorm(input: r, residual: x, gamma: gamma, beta: beta, eps: 1e-5, out: n, sum: x))
        p.output("plain", plain)
        p.output("n", n)
        p.output("sum", x)
        return OpCase(name: "layernorm cols \(cols) (plain; + residual, writing the sum)", plan: p, weights: w,
                      batches: [TokenBatch(sequences: sequences([3, 9]))])
    }

    mutating func pooling(cols: Int) -> OpCase {
        var (p, w, x) = embedded(cols: cols, maxTokens: 96, maxSequences: 4)
        for (name, step) in [("mean", Plan.Pooling.mean), ("max", .max), ("cls", .cls)] {
            let o = p.buffer(name, columns: cols, rows: .sequences)
            p.append(.pool(input: x, mode: step, out: o))
            if step == .mean { p.append(.l2Normalize(buffer: o)) }
            p.output(name, o)
        }
        let first = p.buffer("first", columns: cols, rows: .sequences), last = p.buffer("last", columns: cols, rows: .sequences)
        p.append(.firstToken(input: x, out: first))
        p.append(.lastToken(input: x, out: last))
        p.output("first", first)
        p.output("last", last)
        return OpCase(name: "pooling cols \(cols) (mean + L2, max, cls, first, last token)", plan: p, weights: w,
                      batches: [TokenBatch(sequences: sequences([1, 5, 64, 9]))])
    }

    /// Next-token choice over 1000 logits: greedy, penalties (repetition, presence, frequency),
    /// temperature, top-k, top-p, in one batch, through a prefill and three decode steps (the
    /// seen-token sets and generated-token counts carry over). f32 only: the ids must be identical,
    /// which needs identical logits. With `logprobs`, the raw log-softmax of the chosen and top tokens
    /// instead (values, within the f32 tolerance; a differing top id shows as an error of >= 1e-3).
    mutating func sampling(logprobs: Bool = false) -> OpCase {
        let cols = 24, vocab = 1000, k = SamplingParameters.maxLogprobs
        var (p, w, x) = embedded(cols: cols, maxTokens: 32, maxSequences: 4, maxContext: 32)
        let last = p.buffer("last", columns: cols, rows: .sequences), logits = p.buffer("logits", columns: vocab, rows: .sequences)
        let seen = p.buffer("seen", columns: (vocab + 31) / 32, rows: .slots, element: .int32)
        let counts = p.buffer("counts", columns: vocab, rows: .slots, element: .int32)
        let ids = p.buffer("ids", columns: 1, rows: .sequences, element: .int32)
        let topIds = p.buffer("top_ids", columns: k, rows: .sequences, element: .int32)
        let lp = p.buffer("logprobs", columns: 1 + k, rows: .sequences, element: .float32)
        w.tensors["W"] = tensor([vocab, cols], scale: 0.8)
        p.append(.lastToken(input: x, out: last))
        p.append(.linear(input: last, weight: p.weight("W", [vocab, cols], .linear), bias: nil, epilogue: .none, out: logits))
        p.append(.sample(logits: logits, seen: seen, counts: counts, out: ids, topIds: topIds, logprobs: lp))
        if logprobs {
            p.output("top_ids", topIds)
            p.output("logprobs", lp)
        } else {
            p.output("ids", ids)
        }
        // Large presence / frequency penalties, so that they change greedy picks within three steps.
        var modes = [SamplingParameters(temperature: 0, repetitionPenalty: 1.3, presencePenalty: 1.5, frequencyPenalty: 0.7),
                     SamplingParameters(temperature: 0.8, topK: 40, frequencyPenalty: -1.1, seed: 3),
                     SamplingParameters(temperature: 1.1, topP: 0.7, repetitionPenalty: 1.2, presencePenalty: -0.9, seed: 4),
                     SamplingParameters(temperature: 0.9, topK: 100, topP: 0.9, presencePenalty: 2, frequencyPenalty: 2, seed: 5)]
        if logprobs { for (i, n) in [5, 0, 3, 1].enumerated() { modes[i].logprobs = n } }
        let lengths = [3, 8, 1, 5]
        var batches = [TokenBatch(sequences: sequences(lengths), sampling: modes)]
        for step in 0..<3 {
            batches.append(
                TokenBatch(sequences: sequences([1, 1, 1, 1]), positionOffsets: lengths.map { Int32($0 + step) }, sampling: modes))
        }
        if logprobs {
            return OpCase(name: "sample logprobs (raw log-softmax, top 5, 0, 3, 1)", plan: p, weights: w, batches: batches, dtypes: [.f32])
        }
        return OpCase(name: "sample (greedy + penalties, top-k, top-p, both)", plan: p, weights: w, batches: batches, comparison: .exact,
                      dtypes: [.f32])
    }
}
