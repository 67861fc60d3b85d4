// CPU kernel tests: every kernel against a straightforward double-accumulating Swift reference,
// on random inputs with odd sizes (M = 1, N not a multiple of the panel, K not a multiple of the
// K block), on every ISA path this CPU supports (portable C always included).
// Set FLINT_BENCH=1 to print GEMM GFLOP/s (meaningful in release builds only).
import Testing
import FlintCPU
import FlintCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Rng {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int32(truncatingIfNeeded: state >> 33)) / Float(Int32.max)  // [-1, 1]
    }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
}

func refActivation(_ x: Double, _ act: Activation) -> Double {
    switch act {
    case .none: return x
    case .gelu: return 0.5 * x * (1 + Glibc.erf(x / 2.0.squareRoot()))
    case .geluTanh: return 0.5 * x * (1 + Glibc.tanh((2.0 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    case .tanh: return Glibc.tanh(x)
    case .relu: return max(x, 0)
    }
}

let pools: [Int: ThreadPool] = [1: ThreadPool(threads: 1), 2: ThreadPool(threads: 2), 3: ThreadPool(threads: 3)]

@Suite("CPU kernels")
struct KernelTests {
    @Test func features() {
        #expect(["avx512", "avx2", "portable"].contains(CPUFeatures.isaName))
        #expect(CPUFeatures.supportedISAs.contains(.portable))
        #expect(ThreadPool(threads: 2).threadCount == 2)
    }

    @Test func threadPoolCoversEveryIndexOnce() {
        let pool = ThreadPool(threads: 3)
        for count in [0, 1, 2, 5, 1000] {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(1, count))
            hits.initialize(repeating: 0, count: max(1, count))
            for _ in 0..<20 { pool.parallelFor(count) { i in hits[i] += 1 } }
            for i in 0..<count { #expect(hits[i] == 20) }
            hits.deallocate()
        }
        // nested call runs serially instead of deadlocking
        var inner = [Int](repeating: 0, count: 4)
        inner.withUnsafeMutableBufferPointer { buf in
            pool.parallelFor(4) { i in pool.parallelFor(1) { _ in buf[i] = i + 1 } }
        }
        #expect(inner == [1, 2, 3, 4])
    }

    @Test(arguments: CPUFeatures.supportedISAs)
    func erfAndExp(isa: CPUISA) {
        let n = 200_001
        let xs = (0..<n).map { Float(-10.0 + 20.0 * Double($0) / Double(n - 1)) }
        var ys = [Float](repeating: 0, count: n)
        CPUKernels.erf(xs, &ys, count: n, isa: isa)
        var maxErr = 0.0
        for i in 0..<n { maxErr = max(maxErr, abs(Double(ys[i]) - Glibc.erf(Double(xs[i])))) }
        #expect(maxErr <= 1e-6, "erf max abs error \(maxErr) (\(isa))")
        let es = (0..<n).map { Float(-80.0 + 160.0 * Double($0) / Double(n - 1)) }
        CPUKernels.exp(es, &ys, count: n, isa: isa)
        var maxRel = 0.0
        for i in 0..<n {
            let r = Glibc.exp(Double(es[i]))
            maxRel = max(maxRel, abs(Double(ys[i]) - r) / r)
        }
        #expect(maxRel <= 2e-6, "exp max rel error \(maxRel) (\(isa))")
    }

    static let gemmShapes: [(m: Int, n: Int, k: Int)] = [
        (1, 7, 13), (1, 100, 300), (2, 33, 1), (5, 16, 16), (13, 32, 256), (12, 64, 257),
        (25, 70, 300), (64, 129, 513), (200, 48, 40), (7, 1, 5), (250, 96, 520), (3, 40, 1030), (4, 20, 770),
    ]

    @Test(arguments: CPUFeatures.supportedISAs, [1, 2, 3])
    func linear(isa: CPUISA, threads: Int) throws {
        var rng = Rng(UInt64(threads) * 31 + UInt64(isa.rawValue))
        let pool = pools[threads]!
        for (si, s) in Self.gemmShapes.enumerated() {
            let lda = s.k + (si % 3), ldc = s.n + (si % 2) * 5
            let a = rng.array(s.m * lda), w = rng.array(s.n * s.k), bias = rng.array(s.n)
            let packed = try PackedWeight(weight: w, n: s.n, k: s.k, isa: isa)
            for act in Activation.allCases {
                for useBias in [false, true] where useBias || act == .none {
                    var c = [Float](repeating: .nan, count: s.m * ldc)
                    a.withUnsafeBufferPointer { ap in
                        bias.withUnsafeBufferPointer { bp in
                            c.withUnsafeMutableBufferPointer { cp in
                                CPUKernels.linear(ap.baseAddress!, rows: s.m, lda: lda, weight: packed,
                                                  bias: useBias ? bp.baseAddress! : nil, activation: act,
                                                  out: cp.baseAddress!, ldc: ldc, pool: pool, isa: isa)
                            }
                        }
                    }
                    var worst = 0.0
                    for i in 0..<s.m {
                        for j in 0..<s.n {
                            var sum = useBias ? Double(bias[j]) : 0, mag = abs(sum)
                            for kk in 0..<s.k {
                                let p = Double(a[i * lda + kk]) * Double(w[j * s.k + kk])
                                sum += p
                                mag += abs(p)
                            }
                            let ref = refActivation(sum, act)
                            let err = abs(Double(c[i * ldc + j]) - ref) / max(mag, 1e-3)
                            if !(err <= worst) { worst = err.isNaN ? .infinity : err }
                        }
                    }
                    #expect(worst <= 1e-5, "linear \(s) act \(act) bias \(useBias) isa \(isa) threads \(threads): rel err \(worst)")
                }
            }
        }
    }

    /// Attention written out in Swift (double accumulation): only the check of the C reference, which
    /// the fast kernel is tested against.
    func referenceAttention(_ qkv: [Float], rowStride: Int, starts: [Int32], lengths: [Int32], heads: Int, d: Int,
                            scale: Float, causal: Bool, out: inout [Float], outStride: Int) {
        let hidden = heads * d
        for (b, start) in starts.enumerated() {
            let s0 = Int(start), L = Int(lengths[b])
            for h in 0..<heads {
                for i in 0..<L {
                    let nk = causal ? i + 1 : L
                    var scores = [Double](repeating: 0, count: nk)
                    for j in 0..<nk {
                        var dot = 0.0
                        for e in 0..<d {
                            dot += Double(qkv[(s0 + i) * rowStride + h * d + e]) * Double(qkv[(s0 + j) * rowStride + hidden + h * d + e])
                        }
                        scores[j] = dot * Double(scale)
                    }
                    let mx = scores.max()!
                    var z = 0.0
                    for j in 0..<nk { scores[j] = Glibc.exp(scores[j] - mx); z += scores[j] }
                    for e in 0..<d {
                        var o = 0.0
                        for j in 0..<nk { o += scores[j] * Double(qkv[(s0 + j) * rowStride + 2 * hidden + h * d + e]) }
                        out[(s0 + i) * outStride + h * d + e] = Float(o / z)
                    }
                }
            }
        }
    }

    /// The C reference (`CPUKernels.attentionReference`) over [rows, outStride] zeros: rows it must not
    /// write (gaps, padding columns) stay zero.
    func cAttentionReference(_ qkv: [Float], rowStride: Int, starts: [Int32], lengths: [Int32], heads: Int, d: Int,
                             scale: Float, causal: Bool, rows: Int, outStride: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * outStride)
        qkv.withUnsafeBufferPointer { q in
            out.withUnsafeMutableBufferPointer { o in
                CPUKernels.attentionReference(qkv: q.baseAddress!, rowStride: rowStride, starts: starts, lengths: lengths, heads: heads,
                                              headDim: d, scale: scale, causal: causal, out: o.baseAddress!, outStride: outStride)
            }
        }
        return out
    }

    /// Max |kernel - C reference| of `CPUKernels.attention` (2 threads) over [rows, outStride] zeros.
    func attentionError(_ qkv: [Float], rowStride: Int, starts: [Int32], lengths: [Int32], heads: Int, d: Int, scale: Float,
                        causal: Bool, rows: Int, outStride: Int, isa: CPUISA) -> Float {
        var out = [Float](repeating: 0, count: rows * outStride)
        qkv.withUnsafeBufferPointer { q in
            out.withUnsafeMutableBufferPointer { o in
                CPUKernels.attention(qkv: q.baseAddress!, rowStride: rowStride, starts: starts, lengths: lengths, heads: heads,
                                     headDim: d, scale: scale, causal: causal, out: o.baseAddress!, outStride: outStride,
                                     pool: pools[2]!, isa: isa)
            }
        }
        let ref = cAttentionReference(qkv, rowStride: rowStride, starts: starts, lengths: lengths, heads: heads, d: d,
                                      scale: scale, causal: causal, rows: rows, outStride: outStride)
        var worst: Float = 0
        for i in 0..<out.count { worst = max(worst, abs(out[i] - ref[i])) }
        return worst
    }

    /// The C reference against the Swift one on the layouts the kernel tests use: unused rows in front
    /// and between sequences, padded row and output strides, a one-token sequence, head dims 20-128
    /// (small: the Swift reference is slow in debug builds).
    @Test(arguments: [false, true])
    func attentionReferenceMatchesSwift(causal: Bool) {
        var rng = Rng(131)
        for (heads, d, lengths) in [(2, 20, [Int32(9), 33]), (1, 128, [1, 7, 20]), (3, 32, [64])] {
            var starts: [Int32] = [], t: Int32 = 1
            for l in lengths { starts.append(t); t += l + 1 }
            let rows = Int(t), hidden = heads * d, rowStride = 3 * hidden + 1, outStride = hidden + 2
            let qkv = rng.array(rows * rowStride, scale: 2)
            let cRef = cAttentionReference(qkv, rowStride: rowStride, starts: starts, lengths: lengths, heads: heads, d: d,
                                           scale: 0.3, causal: causal, rows: rows, outStride: outStride)
            var swiftRef = [Float](repeating: 0, count: rows * outStride)
            referenceAttention(qkv, rowStride: rowStride, starts: starts, lengths: lengths, heads: heads, d: d, scale: 0.3,
                               causal: causal, out: &swiftRef, outStride: outStride)
            var worst: Float = 0
            for i in 0..<cRef.count { worst = max(worst, abs(cRef[i] - swiftRef[i])) }
            #expect(worst <= 1e-6, "C attention reference vs Swift, heads \(heads) d \(d) causal \(causal): max err \(worst)")
        }
    }

    /// The kernel against the C reference, with unused rows in front and between sequences and padded
    /// strides (whatever the kernel writes outside the sequences' rows or past hidden shows as an error).
    @Test(arguments: CPUFeatures.supportedISAs, [false, true])
    func attention(isa: CPUISA, causal: Bool) {
        var rng = Rng(77 + UInt64(isa.rawValue))
        for (heads, d) in [(3, 32), (2, 64), (2, 20), (1, 128)] {
            let lengths: [Int32] = [1, 7, 64, 130]
            var starts: [Int32] = []
            var t: Int32 = 2  // leave two unused rows in front
            for l in lengths { starts.append(t); t += l + 1 }  // and a gap row between sequences
            let rows = Int(t), hidden = heads * d, rowStride = 3 * hidden + 3, outStride = hidden + 2
            let qkv = rng.array(rows * rowStride, scale: 2)
            let scale = 1 / Float(d).squareRoot()
            let worst = attentionError(qkv, rowStride: rowStride, starts: starts, lengths: lengths, heads: heads, d: d, scale: scale,
                                       causal: causal, rows: rows, outStride: outStride, isa: isa)
            #expect(worst <= 2e-5, "attention heads \(heads) d \(d) causal \(causal) isa \(isa): max err \(worst)")
        }
    }

    /// BERT shapes (12 heads of 64 at seq 128-384, batch 1 and 3) and one head alone (split into query
    /// groups across threads), against the C reference (itself checked in attentionReferenceMatchesSwift).
    @Test(arguments: CPUFeatures.supportedISAs, [false, true])
    func attentionAtBertShapes(isa: CPUISA, causal: Bool) {
        var rng = Rng(91 + UInt64(isa.rawValue))
        for (heads, lengths) in [(12, [Int32(384)]), (12, [128, 383, 201]), (1, [384])] {
            let d = 64, hidden = heads * d, rowStride = 3 * hidden
            var starts: [Int32] = [], t: Int32 = 0
            for l in lengths { starts.append(t); t += l }
            let rows = Int(t)
            let qkv = rng.array(rows * rowStride, scale: 2)
            let scale = 1 / Float(d).squareRoot()
            let worst = attentionError(qkv, rowStride: rowStride, starts: starts, lengths: lengths, heads: heads, d: d, scale: scale,
                                       causal: causal, rows: rows, outStride: hidden, isa: isa)
            #expect(worst <= 2e-5, "attention heads \(heads) lengths \(lengths) causal \(causal) isa \(isa): max err \(worst)")
        }
    }

    /// Lengths on both sides of the query block (48 rows) and of seq 384, where the softmax's vector
    /// loop leaves 1-15 scores to its masked tail, with head dims the V pack copies as whole 16-column
    /// panels (64) or pads (20); the larger scale pushes the smallest scores past exp's clamp.
    @Test(arguments: CPUFeatures.supportedISAs, [false, true])
    func attentionAtBlockBoundaries(isa: CPUISA, causal: Bool) {
        var rng = Rng(203 + UInt64(isa.rawValue))
        let lengths: [Int32] = [1, 47, 48, 49, 383, 384, 385]
        for (heads, d, scale) in [(2, 64, Float(0.125)), (1, 20, Float(4))] {
            var starts: [Int32] = [], t: Int32 = 0
            for l in lengths { starts.append(t); t += l }
            let rows = Int(t), hidden = heads * d, rowStride = 3 * hidden
            let qkv = rng.array(rows * rowStride, scale: 2)
            let worst = attentionError(qkv, rowStride: rowStride, starts: starts, lengths: lengths, heads: heads, d: d, scale: scale,
                                       causal: causal, rows: rows, outStride: hidden, isa: isa)
            #expect(worst <= 2e-5, "attention heads \(heads) d \(d) scale \(scale) causal \(causal) isa \(isa): max err \(worst)")
        }
    }

    /// The KV-cache path: two sequences in two slots fed in chunks (a prompt of 47 or 49 tokens, then
    /// chunks of 1, 2 and 48 tokens), each chunk's rows against full causal attention over the sequence.
    @Test(arguments: CPUFeatures.supportedISAs)
    func cachedAttentionMatchesFullCausal(isa: CPUISA) {
        var rng = Rng(307 + UInt64(isa.rawValue))
        let heads = 2, d = 64, hidden = heads * d, rowStride = 3 * hidden, maxContext = 112
        let scale = 1 / Float(d).squareRoot()
        let chunks: [[Int]] = [[47, 49], [1, 1], [2, 1], [48, 48]]  // per step: tokens of sequence 0, 1
        let totals = (0..<2).map { b in chunks.reduce(0) { $0 + $1[b] } }
        let full = totals.map { rng.array($0 * rowStride, scale: 2) }
        var keyCache = [Float](repeating: 0, count: 3 * maxContext * hidden)
        var valueCache = keyCache
        let slots: [Int32] = [2, 0]
        var done = [0, 0], worst: Float = 0
        for chunk in chunks {
            var qkv: [Float] = [], starts: [Int32] = [], positions: [Int32] = []
            for b in 0..<2 {
                starts.append(Int32(qkv.count / rowStride))
                qkv += full[b][(done[b] * rowStride)..<((done[b] + chunk[b]) * rowStride)]
                positions += (done[b]..<(done[b] + chunk[b])).map { Int32($0) }
            }
            var out = [Float](repeating: 0, count: qkv.count / rowStride * hidden)
            qkv.withUnsafeBufferPointer { q in
                positions.withUnsafeBufferPointer { p in
                    CPUKernels.cachedAttention(qkv: q.baseAddress!, rowStride: rowStride, starts: starts,
                                               lengths: chunk.map { Int32($0) }, positions: p.baseAddress!, slots: slots,
                                               heads: heads, headDim: d, scale: scale, keyCache: &keyCache,
                                               valueCache: &valueCache, maxContext: maxContext, out: &out, outStride: hidden,
                                               pool: pools[2]!, isa: isa)
                }
            }
            for b in 0..<2 {
                let n = done[b] + chunk[b]
                let ref = cAttentionReference(Array(full[b][0..<(n * rowStride)]), rowStride: rowStride, starts: [0],
                                              lengths: [Int32(n)], heads: heads, d: d, scale: scale, causal: true, rows: n,
                                              outStride: hidden)
                for i in 0..<chunk[b] {
                    for e in 0..<hidden {
                        let got = out[(Int(starts[b]) + i) * hidden + e], want = ref[(done[b] + i) * hidden + e]
                        worst = max(worst, abs(got - want))
                    }
                }
                done[b] = n
            }
        }
        #expect(worst <= 2e-5, "cached attention isa \(isa): max err \(worst) against full causal attention")
    }

    func refLayerNorm(_ v: [Double], gamma: [Float], beta: [Float], eps: Float) -> [Double] {
        let n = Double(v.count)
        let mean = v.reduce(0, +) / n
        let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        let rstd = 1 / (variance + Double(eps)).squareRoot()
        return v.indices.map { (v[$0] - mean) * rstd * Double(gamma[$0]) + Double(beta[$0]) }
    }

    @Test(arguments: CPUFeatures.supportedISAs)
    func layerNorm(isa: CPUISA) {
        var rng = Rng(5 + UInt64(isa.rawValue))
        for (rows, cols) in [(1, 7), (3, 384), (37, 768), (5, 1000)] {
            let x = rng.array(rows * cols, scale: 3).map { $0 + 0.5 }, r = rng.array(rows * cols)
            let gamma = rng.array(cols), beta = rng.array(cols)
            for withResidual in [false, true] {
                var out = [Float](repeating: 0, count: rows * cols)
                var aliased = x
                x.withUnsafeBufferPointer { xp in
                    r.withUnsafeBufferPointer { rp in
                        CPUKernels.layerNorm(xp.baseAddress!, residual: withResidual ? rp.baseAddress! : nil, gamma: gamma,
                                             beta: beta, eps: 1e-12, rows: rows, cols: cols, out: &out, pool: pools[2]!, isa: isa)
                        aliased.withUnsafeMutableBufferPointer { ap in
                            CPUKernels.layerNorm(ap.baseAddress!, residual: withResidual ? rp.baseAddress! : nil, gamma: gamma,
                                                 beta: beta, eps: 1e-12, rows: rows, cols: cols, out: ap.baseAddress!,
                                                 pool: pools[2]!, isa: isa)
                        }
                    }
                }
                var worst = 0.0
                for i in 0..<rows {
                    let v = (0..<cols).map { Double(x[i * cols + $0]) + (withResidual ? Double(r[i * cols + $0]) : 0) }
                    let ref = refLayerNorm(v, gamma: gamma, beta: beta, eps: 1e-12)
                    for j in 0..<cols {
                        worst = max(worst, abs(Double(out[i * cols + j]) - ref[j]), abs(Double(aliased[i * cols + j]) - ref[j]))
                    }
                }
                #expect(worst <= 1e-5, "layerNorm \(rows)x\(cols) residual \(withResidual) isa \(isa): \(worst)")
            }
        }
    }

    @Test(arguments: CPUFeatures.supportedISAs)
    func embeddingLayerNorm(isa: CPUISA) {
        var rng = Rng(9 + UInt64(isa.rawValue))
        let vocab = 50, maxPos = 20, types = 2, cols = 67, rows = 19
        let word = rng.array(vocab * cols), pos = rng.array(maxPos * cols), type = rng.array(types * cols)
        let gamma = rng.array(cols), beta = rng.array(cols)
        let ids = (0..<rows).map { Int32(($0 * 7 + 3) % vocab) }
        let positions = (0..<rows).map { Int32($0 % maxPos) }
        let typeIds = (0..<rows).map { Int32($0 % 2) }
        for mode in 0..<3 {  // 0: type ids, 1: type table without ids (row 0), 2: no type table
            var out = [Float](repeating: 0, count: rows * cols)
            typeIds.withUnsafeBufferPointer { tp in
                type.withUnsafeBufferPointer { tt in
                    CPUKernels.embeddingLayerNorm(ids: ids, positions: positions, typeIds: mode == 0 ? tp.baseAddress! : nil,
                                                  word: word, position: pos, type: mode == 2 ? nil : tt.baseAddress!,
                                                  gamma: gamma, beta: beta, eps: 1e-12, rows: rows, cols: cols, out: &out,
                                                  pool: pools[2]!, isa: isa)
                }
            }
            var worst = 0.0
            for i in 0..<rows {
                let v = (0..<cols).map { j -> Double in
                    var s = Double(word[Int(ids[i]) * cols + j]) + Double(pos[Int(positions[i]) * cols + j])
                    if mode == 0 { s += Double(type[Int(typeIds[i]) * cols + j]) }
                    if mode == 1 { s += Double(type[j]) }
                    return s
                }
                let ref = refLayerNorm(v, gamma: gamma, beta: beta, eps: 1e-12)
                for j in 0..<cols { worst = max(worst, abs(Double(out[i * cols + j]) - ref[j])) }
            }
            #expect(worst <= 1e-5, "embeddingLayerNorm mode \(mode) isa \(isa): \(worst)")
        }
    }

    @Test(arguments: CPUFeatures.supportedISAs)
    func elementwiseAndSoftmax(isa: CPUISA) {
        var rng = Rng(11 + UInt64(isa.rawValue))
        let n = 100_003
        let x = rng.array(n, scale: 8)
        for act in [Activation.gelu, .geluTanh, .tanh] {
            var y = x
            CPUKernels.activate(&y, count: n, activation: act, pool: pools[2]!, isa: isa)
            var worst = 0.0
            for i in 0..<n { worst = max(worst, abs(Double(y[i]) - refActivation(Double(x[i]), act))) }
            #expect(worst <= 2e-6, "\(act) isa \(isa): \(worst)")
        }
        for (rows, cols) in [(1, 1), (3, 7), (17, 130), (4, 1000)] {
            var s = rng.array(rows * cols, scale: 20)
            let orig = s
            CPUKernels.softmaxRows(&s, rows: rows, cols: cols, pool: pools[2]!, isa: isa)
            var worst = 0.0
            for i in 0..<rows {
                let row = (0..<cols).map { Double(orig[i * cols + $0]) }
                let mx = row.max()!
                let e = row.map { Glibc.exp($0 - mx) }
                let z = e.reduce(0, +)
                for j in 0..<cols { worst = max(worst, abs(Double(s[i * cols + j]) - e[j] / z)) }
            }
            #expect(worst <= 1e-6, "softmax \(rows)x\(cols) isa \(isa): \(worst)")
        }
    }

    @Test func aWeightTooLargeToPackIsAnErrorNotACrash() {
        // [2^20, 2^20] packs to 4 TiB: refused by size before the weight is read, so one float stands in for it.
        let one: [Float] = [1]
        for format in [PackedWeight.Format.f32, .bf16, .int8Dynamic] {
            let error = #expect(throws: FlintError.self) {
                _ = try one.withUnsafeBufferPointer { buffer throws(FlintError) in
                    try PackedWeight(weight: buffer.baseAddress!, n: 1 << 20, k: 1 << 20, format: format, name: "lm_head.weight")
                }
            }
            let message = error.map { "\($0)" } ?? ""
            #expect(message.contains("out of memory on cpu: weight lm_head.weight [1048576, 1048576] packed as \(format)")
                    && message.contains("--dtype"), "\(message)")
        }
    }

    @Test func benchmark() throws {
        guard getenv("FLINT_BENCH") != nil else { return }
        // FLINT_BENCH_ISA=avx2|portable forces a lower path (the weight is packed for it).
        let isa = getenv("FLINT_BENCH_ISA").flatMap { name in CPUISA.allCases.first { $0.description == String(cString: name) } } ?? .auto
        let shapes = [(128, 768, 768), (128, 768, 3072), (128, 3072, 768), (1024, 768, 768), (1024, 1024, 1024),
                      (1, 768, 768), (1, 50257, 768)]
        for threads in [1, 2] {
            let pool = ThreadPool(threads: threads)
            for (m, n, k) in shapes {
                let flops = 2.0 * Double(m * n * k)
                let iters = max(3, Int(2e10 / flops))
                let gf = try CPUKernels.benchmarkGEMM(m: m, n: n, k: k, iterations: iters, pool: pool, isa: isa)
                print(
                    "GEMM m=\(m) n=\(n) k=\(k) threads=\(threads) isa=\(isa == .auto ? CPUFeatures.gemmISA : isa.resolved): \(Int(gf.rounded())) GFLOP/s"
                )
            }
        }
    }
}
