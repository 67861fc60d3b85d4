// Swift entry points of the fp32 CPU kernels (implemented in CFlintCPU, see the comment blocks
// at the top of gemm.c, rowops.c and pool.c for layouts, blocking and threading).
// All pointers are row-major fp32; sizes are element counts; `isa` forces a SIMD level
// (default: best available) and exists so tests cover every path.
import CFlintCPU
import FlintCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Epilogue activation of `linear`.
public enum Activation: Sendable, CaseIterable {
    case none
    /// HF "gelu": 0.5·x·(1 + erf(x/√2)).
    case gelu
    /// HF "gelu_new" / GPT-2: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
    case geluTanh
    /// tanh (BERT pooler).
    case tanh
    /// max(x, 0) (DistilBERT's pre-classifier).
    case relu

    var code: Int32 {
        switch self {
        case .none: return Int32(FLINT_ACT_NONE)
        case .gelu: return Int32(FLINT_ACT_GELU)
        case .geluTanh: return Int32(FLINT_ACT_GELU_TANH)
        case .tanh: return Int32(FLINT_ACT_TANH)
        case .relu: return Int32(FLINT_ACT_RELU)
        }
    }
}

public enum CPUKernels {
    /// out[rows, n] = activation(a[rows, k] · Wᵀ + bias), W = weight (packed [n, k]).
    /// lda, ldc: row strides of a and out (>= k, >= n). bias: n floats or nil.
    /// The ISA is the weight's packing ISA unless `isa` asks for .portable.
    public static func linear(_ a: UnsafePointer<Float>, rows: Int, lda: Int, weight: PackedWeight,
                              bias: UnsafePointer<Float>?, activation: Activation,
                              out: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool,
                              isa: CPUISA = .auto) {
        precondition(lda >= weight.k && ldc >= weight.n, "linear: lda \(lda) < k \(weight.k) or ldc \(ldc) < n \(weight.n)")
        let run: CPUISA = isa == .portable ? .portable : weight.isa
        switch weight.format {
        case .f32:
            flint_linear(pool.raw, run.rawValue, a, rows, lda, weight.packed, Int32(weight.panelWidth), weight.n,
                         weight.k, bias, activation.code, out, ldc)
        case .bf16, .int8Dynamic, .int8WeightOnly, .int8Grouped:
            let mode = weight.format == .int8Dynamic ? FLINT_INT8_DYNAMIC : FLINT_INT8_WEIGHT_ONLY
            flint_linear_lowp(pool.raw, run.rawValue, weight.format.code, Int32(mode), a, rows, lda, weight.storage.pointer,
                              weight.scalePointer, weight.n, weight.k, bias, activation.code, out, ldc)
        }
    }

    /// A[rows, k] as the dynamic int8 GEMM of `scheme` multiplies it (quantized per row, then scaled
    /// back), for reference checks: [rows, k] row-major.
    public static func int8Activations(_ a: [Float], rows: Int, k: Int, scheme: Int8Scheme = .s8s8) -> [Float] {
        precondition(a.count >= rows * k, "int8Activations: \(a.count) floats for [\(rows), \(k)]")
        return [Float](unsafeUninitializedCapacity: rows * k) { out, count in
            flint_quantize_rows_int8(scheme.rawValue, a, rows, k, k, out.baseAddress)
            count = rows * k
        }
    }

    /// A[rows, k] as `linear` multiplies it with `.int8Grouped` weights packed for `isa`: A itself for up to 4 rows,
    /// from 128 rows and without AVX2, else quantized to int16 per row and scaled back. [rows, k] row-major.
    public static func groupedInt8Activations(_ a: [Float], rows: Int, lda: Int, k: Int, isa: CPUISA) -> [Float] {
        precondition(lda >= k && a.count >= (rows - 1) * lda + k, "groupedInt8Activations: \(a.count) floats for [\(rows), \(k)]")
        return [Float](unsafeUninitializedCapacity: rows * k) { out, count in
            flint_grouped_int8_activations(isa.rawValue, a, rows, lda, k, out.baseAddress)
            count = rows * k
        }
    }

    /// Fused multi-head attention over a packed (padding-free) batch.
    /// Sequence b is token rows starts[b] ..< starts[b]+lengths[b] of `qkv`; each row is
    /// [Q | K | V] with hidden = heads*headDim floats each (row stride rowStride >= 3*hidden).
    /// out[row, h*headDim ..< (h+1)*headDim] = softmax(scale·q·Kᵀ)·V for that sequence and head h.
    /// causal: query i attends keys j <= i of its own sequence.
    public static func attention(qkv: UnsafePointer<Float>, rowStride: Int, starts: [Int32], lengths: [Int32],
                                 heads: Int, headDim: Int, scale: Float, causal: Bool,
                                 out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool,
                                 isa: CPUISA = .auto) {
        precondition(starts.count == lengths.count, "attention: \(starts.count) starts vs \(lengths.count) lengths")
        precondition(rowStride >= 3 * heads * headDim && outStride >= heads * headDim, "attention: strides too small")
        starts.withUnsafeBufferPointer { s in
            lengths.withUnsafeBufferPointer { l in
                flint_attention(pool.raw, isa.rawValue, qkv, rowStride, s.baseAddress, l.baseAddress, starts.count,
                                heads, headDim, scale, causal ? 1 : 0, out, outStride)
            }
        }
    }

    /// The plain version of `attention` (double accumulation, one query at a time, no packing or
    /// threads): the reference the fast kernel is tested against. Same arguments and layout.
    public static func attentionReference(qkv: UnsafePointer<Float>, rowStride: Int, starts: [Int32], lengths: [Int32],
                                          heads: Int, headDim: Int, scale: Float, causal: Bool,
                                          out: UnsafeMutablePointer<Float>, outStride: Int) {
        precondition(starts.count == lengths.count, "attentionReference: \(starts.count) starts vs \(lengths.count) lengths")
        precondition(rowStride >= 3 * heads * headDim && outStride >= heads * headDim, "attentionReference: strides too small")
        flint_attention_reference(qkv, rowStride, starts, lengths, starts.count, heads, headDim, scale, causal ? 1 : 0, out, outStride)
    }

    /// Causal attention through a KV cache: K and V of each token go to row
    /// `slots[b]·maxContext + position` of `keyCache`/`valueCache` (`[slots·maxContext, heads·headDim]`),
    /// then each query attends to its slot's keys at positions `0 ... its position`.
    /// Sequence b is token rows starts[b] ..< starts[b]+lengths[b] of `qkv` (rows `[Q | K | V]`), at
    /// consecutive positions from `positions[starts[b]]`. Slots and positions are not range-checked here.
    public static func cachedAttention(qkv: UnsafePointer<Float>, rowStride: Int, starts: [Int32], lengths: [Int32],
                                       positions: UnsafePointer<Int32>, slots: [Int32], heads: Int, headDim: Int,
                                       scale: Float, keyCache: UnsafeMutablePointer<Float>,
                                       valueCache: UnsafeMutablePointer<Float>, maxContext: Int,
                                       out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool,
                                       isa: CPUISA = .auto) {
        precondition(starts.count == lengths.count && slots.count == lengths.count, "cachedAttention: batch arrays disagree")
        precondition(rowStride >= 3 * heads * headDim && outStride >= heads * headDim, "cachedAttention: strides too small")
        starts.withUnsafeBufferPointer { s in
            lengths.withUnsafeBufferPointer { l in
                slots.withUnsafeBufferPointer { slot in
                    flint_cached_attention(pool.raw, isa.rawValue, qkv, rowStride, s.baseAddress, l.baseAddress, positions,
                                           slot.baseAddress, starts.count, heads, headDim, scale, keyCache, valueCache,
                                           maxContext, out, outStride)
                }
            }
        }
    }

    /// out = LayerNorm(x + residual)·gamma + beta per row (biased variance, eps inside the sqrt).
    /// out may alias x or residual; rows are contiguous with stride cols. With `sum` (and a
    /// residual), x + residual is stored there too (it may alias x or residual, not out).
    public static func layerNorm(_ x: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
                                 gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                                 rows: Int, cols: Int, out: UnsafeMutablePointer<Float>,
                                 sum: UnsafeMutablePointer<Float>? = nil, pool: ThreadPool, isa: CPUISA = .auto) {
        flint_layernorm(pool.raw, isa.rawValue, x, residual, gamma, beta, eps, rows, cols, out, sum)
    }

    /// out[r] = LN(word[ids[r]] + position[positions[r]] + type[typeIds[r]]).
    /// type nil: no token-type embedding; typeIds nil with a type table: type row 0;
    /// gamma nil: no LayerNorm, the plain sum (GPT-2).
    /// Indices are not range-checked here (the model validates them).
    public static func embeddingLayerNorm(ids: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
                                          typeIds: UnsafePointer<Int32>?, word: UnsafePointer<Float>,
                                          position: UnsafePointer<Float>, type: UnsafePointer<Float>?,
                                          gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, eps: Float,
                                          rows: Int, cols: Int, out: UnsafeMutablePointer<Float>,
                                          pool: ThreadPool, isa: CPUISA = .auto) {
        flint_embedding_layernorm(pool.raw, isa.rawValue, ids, positions, typeIds, word, position, type, gamma, beta,
                                  eps, rows, cols, out)
    }

    /// x = activation(x) elementwise, in place.
    public static func activate(_ x: UnsafeMutablePointer<Float>, count: Int, activation: Activation,
                                pool: ThreadPool, isa: CPUISA = .auto) {
        flint_activation(pool.raw, isa.rawValue, x, count, activation.code)
    }

    /// x = gelu(x) (erf form) elementwise, in place.
    public static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool, isa: CPUISA = .auto) {
        activate(x, count: count, activation: .gelu, pool: pool, isa: isa)
    }

    /// x = tanh(x) elementwise, in place.
    public static func tanh(_ x: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool, isa: CPUISA = .auto) {
        activate(x, count: count, activation: .tanh, pool: pool, isa: isa)
    }

    /// Softmax over each row of x[rows, cols], in place (max-subtracted, fp32).
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, pool: ThreadPool,
                                   isa: CPUISA = .auto) {
        flint_softmax_rows(pool.raw, isa.rawValue, x, rows, cols)
    }

    /// The vectorized erf GELU uses (for tests).
    public static func erf(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, isa: CPUISA = .auto) {
        flint_erf(isa.rawValue, x, y, count)
    }

    /// The vectorized exp softmax/tanh use (for tests).
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, isa: CPUISA = .auto) {
        flint_exp(isa.rawValue, x, y, count)
    }

    /// Seconds on a monotonic clock.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// GFLOP/s of linear (no bias, no activation) for C[m, n] = A[m, k]·W[n, k]ᵀ: random data,
    /// 2 warm-up calls, then the best of 3 rounds of `iterations` calls (FLOPs = 2mnk).
    public static func benchmarkGEMM(m: Int, n: Int, k: Int, iterations: Int, pool: ThreadPool,
                                     isa: CPUISA = .auto, format: PackedWeight.Format = .f32,
                                     scheme: Int8Scheme? = nil) throws(FlintError) -> Double {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int32(truncatingIfNeeded: state >> 33)) / Float(Int32.max)
        }
        let a = (0..<(m * k)).map { _ in next() }
        let w = (0..<(n * k)).map { _ in next() }
        let packed = try PackedWeight(weight: w, n: n, k: k, isa: isa, format: format, scheme: scheme)
        var c = [Float](repeating: 0, count: m * n)
        let iters = max(1, iterations)
        var best = Double.infinity
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                for _ in 0..<2 {
                    linear(ap.baseAddress!, rows: m, lda: k, weight: packed, bias: nil, activation: .none,
                           out: cp.baseAddress!, ldc: n, pool: pool, isa: isa)
                }
                for _ in 0..<3 {
                    let t0 = now()
                    for _ in 0..<iters {
                        linear(ap.baseAddress!, rows: m, lda: k, weight: packed, bias: nil, activation: .none,
                               out: cp.baseAddress!, ldc: n, pool: pool, isa: isa)
                    }
                    best = min(best, (now() - t0) / Double(iters))
                }
            }
        }
        return 2.0 * Double(m) * Double(n) * Double(k) / best / 1e9
    }
}
