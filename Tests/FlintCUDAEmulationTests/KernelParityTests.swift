// Every Flint CUDA kernel, in every dtype, run under the CUDA emulation on random inputs of odd
// shapes and compared with the CPU backend (FlintCPU) or a by-hand reference. Launch geometry is
// the one each .cu file documents. Tolerances: see EmulationSupport.swift.
import CFlintCUDAEmulation
import FlintCPU
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Shapes shared by the row kernels: (rows, cols). cols 2500 > 8·256 exercises LayerNorm's
/// recompute path beyond the per-thread register cache.
let rowShapes: [(rows: Int, cols: Int)] = [(1, 32), (7, 32), (1, 384), (7, 384), (1, 769), (7, 769), (2, 2500)]

@Suite("CUDA kernels under emulation vs CPU")
struct KernelParityTests {
    @Test(arguments: EmuDType.allCases)
    func embeddingLayerNorm(dtype: EmuDType) {
        var rng = EmuRng(11)
        let vocab = 37, maxPositions = 23, types = 2
        for (index, shape) in rowShapes.enumerated() {
            let (rows, cols) = shape
            let variant = index % 3  // 0: type table + type ids, 1: type table, no ids (row 0), 2: no type table
            let word = dtype.rounded(rng.array(vocab * cols))
            let position = dtype.rounded(rng.array(maxPositions * cols, scale: 0.5))
            let type = dtype.rounded(rng.array(types * cols, scale: 0.3))
            let gamma = dtype.rounded(rng.array(cols).map { 1 + 0.2 * $0 })
            let beta = dtype.rounded(rng.array(cols, scale: 0.1))
            let ids = (0..<rows).map { _ in rng.index(vocab) }
            let positions = (0..<rows).map { _ in rng.index(maxPositions) }
            let typeIds = (0..<rows).map { _ in rng.index(types) }
            let out = DeviceBuffer(count: rows * cols, dtype: dtype)
            emuRun("embedding_layernorm_\(dtype)", grid: (rows, 1, 1), block: (256, 1, 1), [
                .ints(IntBuffer(ids)), .ints(IntBuffer(positions)), .ints(variant == 0 ? IntBuffer(typeIds) : nil),
                .buffer(DeviceBuffer(word, dtype: dtype)), .buffer(DeviceBuffer(position, dtype: dtype)),
                .buffer(variant == 2 ? nil : DeviceBuffer(type, dtype: dtype)),
                .buffer(DeviceBuffer(gamma, dtype: dtype)), .buffer(DeviceBuffer(beta, dtype: dtype)),
                .f32(1e-12), .int(rows), .int(cols), .buffer(out),
            ])
            var ref = [Float](repeating: 0, count: rows * cols)
            switch variant {
            case 0:
                CPUKernels.embeddingLayerNorm(ids: ids, positions: positions, typeIds: typeIds, word: word,
                                              position: position, type: type, gamma: gamma, beta: beta, eps: 1e-12,
                                              rows: rows, cols: cols, out: &ref, pool: cpuPool)
            case 1:
                CPUKernels.embeddingLayerNorm(ids: ids, positions: positions, typeIds: nil, word: word,
                                              position: position, type: type, gamma: gamma, beta: beta, eps: 1e-12,
                                              rows: rows, cols: cols, out: &ref, pool: cpuPool)
            default:
                CPUKernels.embeddingLayerNorm(ids: ids, positions: positions, typeIds: nil, word: word,
                                              position: position, type: nil, gamma: gamma, beta: beta, eps: 1e-12,
                                              rows: rows, cols: cols, out: &ref, pool: cpuPool)
            }
            expectClose(out.floats, ref, dtype, "embedding_layernorm rows \(rows) cols \(cols) variant \(variant)")
        }
    }

    @Test(arguments: EmuDType.allCases)
    func layerNorm(dtype: EmuDType) {
        var rng = EmuRng(12)
        for (index, shape) in rowShapes.enumerated() {
            let (rows, cols) = shape
            let useBias = index % 2 == 0, useResidual = index % 3 != 2, inPlace = index % 4 == 1
            let ldx = cols + 3
            let ldo = inPlace ? ldx : cols + 5
            let x = dtype.rounded(rng.array(rows * ldx, scale: 2))
            let bias = dtype.rounded(rng.array(cols, scale: 0.5))
            let residual = dtype.rounded(rng.array(rows * ldo))
            let gamma = dtype.rounded(rng.array(cols).map { 1 + 0.2 * $0 })
            let beta = dtype.rounded(rng.array(cols, scale: 0.1))
            let xBuffer = DeviceBuffer(x, dtype: dtype)
            let out = inPlace ? xBuffer : DeviceBuffer(count: rows * ldo, dtype: dtype)
            emuRun("layernorm_\(dtype)", grid: (rows, 1, 1), block: (256, 1, 1), [
                .buffer(xBuffer), .buffer(useResidual ? DeviceBuffer(residual, dtype: dtype) : nil),
                .buffer(useBias ? DeviceBuffer(bias, dtype: dtype) : nil),
                .buffer(DeviceBuffer(gamma, dtype: dtype)), .buffer(DeviceBuffer(beta, dtype: dtype)),
                .f32(1e-5), .int(rows), .int(cols), .int(ldx), .buffer(out), .int(ldo), .buffer(nil),
            ])
            // CPU: LN(x' + residual) with x' = x + bias (the kernel's order of additions), contiguous rows.
            var xb = packRows(x, rows: rows, cols: cols, ld: ldx)
            if useBias { for r in 0..<rows { for c in 0..<cols { xb[r * cols + c] += bias[c] } } }
            let res = packRows(residual, rows: rows, cols: cols, ld: ldo)
            var ref = [Float](repeating: 0, count: rows * cols)
            if useResidual {
                CPUKernels.layerNorm(xb, residual: res, gamma: gamma, beta: beta, eps: 1e-5, rows: rows, cols: cols,
                                     out: &ref, pool: cpuPool)
            } else {
                CPUKernels.layerNorm(xb, residual: nil, gamma: gamma, beta: beta, eps: 1e-5, rows: rows, cols: cols,
                                     out: &ref, pool: cpuPool)
            }
            let got = packRows(out.floats, rows: rows, cols: cols, ld: ldo)
            expectClose(got, ref, dtype,
                        "layernorm rows \(rows) cols \(cols) bias \(useBias) residual \(useResidual) inPlace \(inPlace)")
            if !inPlace {  // padding columns of out are untouched
                let all = out.floats
                #expect((0..<rows).allSatisfy { r in (cols..<ldo).allSatisfy { all[r * ldo + $0] == 0 } })
            }
        }
    }

    @Test(arguments: EmuDType.allCases)
    func biasActivation(dtype: EmuDType) {
        var rng = EmuRng(13)
        let cases: [(rows: Int, cols: Int, ld: Int, bias: Bool)] = [(7, 769, 771, true), (1, 32, 32, false), (3, 384, 400, true)]
        for activation in Activation.allCases {
            let code: Int
            switch activation {
            case .none: code = 0
            case .gelu: code = 1
            case .geluTanh: code = 2
            case .tanh: code = 3
            case .relu: code = 4
            }
            for c in cases {
                let x = dtype.rounded(rng.array(c.rows * c.ld, scale: 4))
                let bias = dtype.rounded(rng.array(c.cols))
                let buffer = DeviceBuffer(x, dtype: dtype)
                emuRun("bias_activation_\(dtype)", grid: (c.rows, 1, 1), block: (256, 1, 1), [
                    .buffer(buffer), .buffer(c.bias ? DeviceBuffer(bias, dtype: dtype) : nil), .int(c.rows), .int(c.cols),
                    .int(c.ld), .int(code),
                ])
                var ref = packRows(x, rows: c.rows, cols: c.cols, ld: c.ld)
                if c.bias { for r in 0..<c.rows { for j in 0..<c.cols { ref[r * c.cols + j] += bias[j] } } }
                CPUKernels.activate(&ref, count: ref.count, activation: activation, pool: cpuPool)
                let all = buffer.floats
                expectClose(packRows(all, rows: c.rows, cols: c.cols, ld: c.ld), ref, dtype,
                            "bias_activation \(activation) rows \(c.rows) cols \(c.cols)")
                // columns between cols and ld are not touched
                #expect((0..<c.rows).allSatisfy { r in (c.cols..<c.ld).allSatisfy { all[r * c.ld + $0] == x[r * c.ld + $0] } })
            }
        }
    }

    static let attentionCases: [(dtype: EmuDType, headDim: Int, causal: Bool)] =
        EmuDType.allCases.flatMap { d in [32, 64, 128].flatMap { h in [false, true].map { (d, h, $0) } } }

    @Test(arguments: attentionCases)
    func attention(dtype: EmuDType, headDim: Int, causal: Bool) {
        var rng = EmuRng(UInt64(14 + headDim + (causal ? 1 : 0)))
        let lengths: [Int32] = [1, 5, 64, 130]
        var starts = [Int32]()
        var total: Int32 = 0
        for l in lengths {
            starts.append(total)
            total += l
        }
        let tokens = Int(total)
        let heads = 2
        let hidden = heads * headDim
        let rowStride = 3 * hidden + 4
        let outStride = hidden + 2
        let scale = 1 / Float(headDim).squareRoot()
        let qkv = dtype.rounded(rng.array(tokens * rowStride, scale: 2))
        let out = DeviceBuffer(count: tokens * outStride, dtype: dtype)
        let blocks = attentionQueryBlocks(lengths, capacity: tokens / 16 + lengths.count + 2)
        emuRun("attention_\(dtype)", grid: (blocks.count / 2, heads, 1), block: (128, 1, 1), [
            .buffer(DeviceBuffer(qkv, dtype: dtype)), .int(rowStride), .ints(IntBuffer(starts)), .ints(IntBuffer(lengths)),
            .int(heads), .int(headDim), .f32(scale), .int(causal ? 1 : 0), .buffer(out), .int(outStride), .ints(IntBuffer(blocks)),
        ])
        var ref = [Float](repeating: 0, count: tokens * outStride)
        CPUKernels.attention(qkv: qkv, rowStride: rowStride, starts: starts, lengths: lengths, heads: heads,
                             headDim: headDim, scale: scale, causal: causal, out: &ref, outStride: outStride,
                             pool: cpuPool)
        let got = out.floats
        expectClose(packRows(got, rows: tokens, cols: hidden, ld: outStride),
                    packRows(ref, rows: tokens, cols: hidden, ld: outStride), dtype,
                    "attention head_dim \(headDim) causal \(causal)")
        #expect((0..<tokens).allSatisfy { r in (hidden..<outStride).allSatisfy { got[r * outStride + $0] == 0 } })
        if causal {  // the first token of each sequence sees only itself: its output is its own V
            for (s, start) in starts.enumerated() where lengths[s] > 0 {
                let r = Int(start)
                let v = (0..<hidden).map { qkv[r * rowStride + 2 * hidden + $0] }
                expectClose(Array(got[(r * outStride)..<(r * outStride + hidden)]), v, dtype, "causal first row")
            }
        }
    }

    @Test(arguments: EmuDType.allCases)
    func pooling(dtype: EmuDType) {
        var rng = EmuRng(15)
        let lengths: [Int32] = [1, 5, 64, 130, 0]
        var starts = [Int32]()
        var total: Int32 = 0
        for l in lengths {
            starts.append(total)
            total += l
        }
        let sequences = lengths.count
        for cols in [32, 769] {
            let ld = cols + 3
            let x = dtype.rounded(rng.array(Int(total) * ld, scale: 3))
            let xBuffer = DeviceBuffer(x, dtype: dtype)
            let startsBuffer = IntBuffer(starts), lengthsBuffer = IntBuffer(lengths)
            var first = [Float](repeating: 0, count: sequences * cols)
            var mean = first, maxv = first
            for s in 0..<sequences {
                let start = Int(starts[s]), length = Int(lengths[s])
                for c in 0..<cols {
                    var sum = 0.0, m = -Double.infinity
                    for i in 0..<length {
                        let v = Double(x[(start + i) * ld + c])
                        sum += v
                        m = max(m, v)
                    }
                    if length > 0 { first[s * cols + c] = x[start * ld + c] }
                    mean[s * cols + c] = length > 0 ? Float(sum / Double(length)) : 0
                    maxv[s * cols + c] = length > 0 ? Float(m) : 0
                }
            }
            // first_token on the non-empty sequences only (an empty sequence has no first token).
            let firstOut = DeviceBuffer(count: (sequences - 1) * cols, dtype: dtype)
            emuRun("first_token_\(dtype)", grid: (sequences - 1, 1, 1), block: (256, 1, 1), [
                .buffer(xBuffer), .int(ld), .ints(startsBuffer), .int(sequences - 1), .int(cols), .buffer(firstOut),
            ])
            #expect(firstOut.floats == Array(first[0..<((sequences - 1) * cols)]), "first_token [\(dtype)] cols \(cols)")
            for (name, ref) in [("mean_pool", mean), ("max_pool", maxv)] {
                let out = DeviceBuffer(count: sequences * cols, dtype: dtype)
                emuRun("\(name)_\(dtype)", grid: (sequences, 1, 1), block: (256, 1, 1), [
                    .buffer(xBuffer), .int(ld), .ints(startsBuffer), .ints(lengthsBuffer), .int(sequences), .int(cols),
                    .buffer(out),
                ])
                expectClose(out.floats, ref, dtype, "\(name) cols \(cols)")
            }
        }
    }

    @Test(arguments: EmuDType.allCases)
    func l2Normalize(dtype: EmuDType) {
        var rng = EmuRng(16)
        for (rows, cols) in rowShapes {
            var x = dtype.rounded(rng.array(rows * cols, scale: 5))
            if rows > 1 { for c in 0..<cols { x[cols + c] = 0 } }  // a zero row stays zero (norm clamped to 1e-12)
            let buffer = DeviceBuffer(x, dtype: dtype)
            emuRun("l2_normalize_\(dtype)", grid: (rows, 1, 1), block: (256, 1, 1), [.buffer(buffer), .int(rows), .int(cols)])
            var ref = x
            for r in 0..<rows {
                var sq = 0.0
                for c in 0..<cols { sq += Double(x[r * cols + c]) * Double(x[r * cols + c]) }
                let inv = 1 / max(sq.squareRoot(), 1e-12)
                for c in 0..<cols { ref[r * cols + c] = Float(Double(x[r * cols + c]) * inv) }
            }
            expectClose(buffer.floats, ref, dtype, "l2_normalize rows \(rows) cols \(cols)")
        }
    }

    @Test(arguments: EmuDType.allCases)
    func conversions(dtype: EmuDType) {
        var rng = EmuRng(17)
        var values = rng.array(1000, scale: 70000)
        values += [0, -0.0, 1, -1, 65504, 65520, 1e-8, 6e-5, 1.00048828125, .infinity, -.infinity, .nan,
                   Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), 3.4e38]
        let n = values.count
        let input = DeviceBuffer(values, dtype: .f32)
        let stored = DeviceBuffer(count: n, dtype: dtype)
        emuRun("convert_f32_to_\(dtype)", grid: ((n + 255) / 256, 1, 1), block: (256, 1, 1),
               [.buffer(input), .buffer(stored), .i64(n)])
        // bit-exact with the host conversions (DeviceBuffer.store uses them)
        let expected = DeviceBuffer(values, dtype: dtype)
        #expect(memcmp(stored.raw, expected.raw, n * dtype.size) == 0, "convert_f32_to_\(dtype) bits")
        let back = DeviceBuffer(count: n, dtype: .f32)
        // a grid smaller than n / 256 exercises the grid-stride loop
        emuRun("convert_\(dtype)_to_f32", grid: (2, 1, 1), block: (256, 1, 1), [.buffer(stored), .buffer(back), .i64(n)])
        let got = back.floats, want = dtype.rounded(values)
        #expect((0..<n).allSatisfy { got[$0] == want[$0] || (got[$0].isNaN && want[$0].isNaN) }, "convert_\(dtype)_to_f32")
    }
}

/// attention.cu's work list: a (sequence, query block of 16) pair per block that has rows, then
/// (-1, 0) up to `capacity` pairs (blocks with nothing to do, as a bucket's graph has).
func attentionQueryBlocks(_ lengths: [Int32], capacity: Int) -> [Int32] {
    var list: [Int32] = []
    for (s, l) in lengths.enumerated() {
        for b in 0..<((Int(l) + 15) / 16) { list += [Int32(s), Int32(b)] }
    }
    precondition(list.count <= 2 * capacity)
    return list + [Int32](repeating: 0, count: 2 * capacity - list.count).enumerated().map { $0.offset % 2 == 0 ? -1 : 0 }
}
