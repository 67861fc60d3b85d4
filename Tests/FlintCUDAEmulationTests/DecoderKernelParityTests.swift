// The decoder (GPT-2) kernels under the CUDA emulation against the CPU backend: KV-cache attention,
// the last-token gather, LayerNorm that also writes the residual sum, embeddings without LayerNorm,
// and next-token sampling. Same conventions as KernelParityTests.
import CFlintCUDAEmulation
import FlintCPU
import FlintCore
import Testing

@Suite("CUDA decoder kernels under emulation vs CPU")
struct DecoderKernelParityTests {
    static let cacheCases: [(dtype: EmuDType, headDim: Int)] = EmuDType.allCases.flatMap { d in [12, 64, 128].map { (d, $0) } }

    /// A prefill of three sequences into slots 2, 0, 1 (one longer than a key tile), then decode
    /// steps of one token each, by cached_attention and by decode_attention (made for them): outputs
    /// and the cache contents match the CPU's.
    @Test(arguments: cacheCases)
    func cachedAttention(dtype: EmuDType, headDim: Int) {
        var rng = EmuRng(UInt64(21 + headDim))
        let heads = 2, hidden = heads * headDim, maxContext = 48, slots: [Int32] = [2, 0, 1]
        let rowStride = 3 * hidden + 2, outStride = hidden + 1
        let scale = 0.7 / Float(headDim).squareRoot()
        let keyCache = DeviceBuffer(count: 3 * maxContext * hidden, dtype: dtype)
        let valueCache = DeviceBuffer(count: 3 * maxContext * hidden, dtype: dtype)
        var cpuKeys = [Float](repeating: 0, count: 3 * maxContext * hidden), cpuValues = cpuKeys
        for (kernel, lengths, offsets) in [("cached_attention", [5, 37, 1] as [Int32], [0, 0, 0] as [Int32]),
                                           ("cached_attention", [1, 1, 1], [5, 37, 1]), ("decode_attention", [1, 1, 1], [6, 38, 2])] {
            var starts: [Int32] = [], positions: [Int32] = []
            for (s, l) in lengths.enumerated() {
                starts.append(Int32(positions.count))
                positions += (0..<l).map { offsets[s] + $0 }
            }
            let tokens = positions.count
            let qkv = dtype.rounded(rng.array(tokens * rowStride, scale: 2))
            let out = DeviceBuffer(count: tokens * outStride, dtype: dtype)
            let decode = kernel == "decode_attention"
            let blocks = attentionQueryBlocks(lengths, capacity: tokens / 16 + lengths.count)
            let grid = decode ? (heads, lengths.count, 1) : (blocks.count / 2, heads, 1)
            emuRun("\(kernel)_\(dtype)", grid: grid, block: (128, 1, 1), [
                .buffer(DeviceBuffer(qkv, dtype: dtype)), .int(rowStride), .ints(IntBuffer(starts)), .ints(IntBuffer(lengths)),
                .ints(IntBuffer(positions)), .ints(IntBuffer(slots)), .int(heads), .int(headDim), .f32(scale), .buffer(keyCache),
                .buffer(valueCache), .int(maxContext), .buffer(out), .int(outStride),
            ] + (decode ? [] : [.ints(IntBuffer(blocks))]))
            var ref = [Float](repeating: 0, count: tokens * outStride)
            CPUKernels.cachedAttention(
                qkv: qkv, rowStride: rowStride, starts: starts, lengths: lengths, positions: positions, slots: slots,
                heads: heads, headDim: headDim, scale: scale, keyCache: &cpuKeys, valueCache: &cpuValues,
                maxContext: maxContext, out: &ref, outStride: outStride, pool: cpuPool)
            expectClose(
                packRows(out.floats, rows: tokens, cols: hidden, ld: outStride), packRows(ref, rows: tokens, cols: hidden, ld: outStride),
                dtype, "\(kernel) head_dim \(headDim), \(tokens) tokens")
            #expect(keyCache.floats == dtype.rounded(cpuKeys) && valueCache.floats == dtype.rounded(cpuValues), "cache contents [\(dtype)]")
        }
    }

    @Test(arguments: EmuDType.allCases)
    func lastToken(dtype: EmuDType) {
        var rng = EmuRng(22)
        let lengths: [Int32] = [3, 1, 7, 0], starts: [Int32] = [0, 3, 4, 11], cols = 37, ld = 40
        let x = dtype.rounded(rng.array(11 * ld))
        let out = DeviceBuffer(count: 4 * cols, dtype: dtype)
        emuRun(
            "last_token_\(dtype)", grid: (4, 1, 1), block: (256, 1, 1),
            [
                .buffer(DeviceBuffer(x, dtype: dtype)), .int(ld), .ints(IntBuffer(starts)), .ints(IntBuffer(lengths)), .int(4), .int(cols),
                .buffer(out),
            ])
        var want = [Float](repeating: 0, count: 4 * cols)  // the empty sequence's row stays untouched
        for s in 0..<3 { for c in 0..<cols { want[s * cols + c] = x[(Int(starts[s] + lengths[s]) - 1) * ld + c] } }
        #expect(out.floats == want, "last_token [\(dtype)]")
    }

    /// GPT-2's pre-LN pass: out = LN(x + residual) and sum = x + residual written over the residual.
    @Test(arguments: EmuDType.allCases)
    func layerNormWithResidualSum(dtype: EmuDType) {
        var rng = EmuRng(23)
        for (rows, cols) in rowShapes {
            let x = dtype.rounded(rng.array(rows * cols, scale: 2)), residual = dtype.rounded(rng.array(rows * cols))
            let gamma = dtype.rounded(rng.array(cols).map { 1 + 0.2 * $0 }), beta = dtype.rounded(rng.array(cols, scale: 0.1))
            let stream = DeviceBuffer(residual, dtype: dtype)
            let out = DeviceBuffer(count: rows * cols, dtype: dtype)
            emuRun(
                "layernorm_\(dtype)", grid: (rows, 1, 1), block: (256, 1, 1),
                [
                    .buffer(DeviceBuffer(x, dtype: dtype)), .buffer(stream), .buffer(nil), .buffer(DeviceBuffer(gamma, dtype: dtype)),
                    .buffer(DeviceBuffer(beta, dtype: dtype)), .f32(1e-5), .int(rows), .int(cols), .int(cols), .buffer(out), .int(cols),
                    .buffer(stream),
                ])
            var ref = [Float](repeating: 0, count: rows * cols), sum = residual
            CPUKernels.layerNorm(
                x, residual: residual, gamma: gamma, beta: beta, eps: 1e-5, rows: rows, cols: cols, out: &ref, sum: &sum, pool: cpuPool)
            expectClose(out.floats, ref, dtype, "layernorm+sum rows \(rows) cols \(cols)")
            expectClose(stream.floats, sum, dtype, "residual sum rows \(rows) cols \(cols)")
        }
    }

    /// GPT-2's embeddings: word + position, no LayerNorm (null gamma).
    @Test(arguments: EmuDType.allCases)
    func embeddingWithoutLayerNorm(dtype: EmuDType) {
        var rng = EmuRng(24)
        let rows = 9, cols = 70, vocab = 31, positions = 12
        let word = dtype.rounded(rng.array(vocab * cols)), position = dtype.rounded(rng.array(positions * cols))
        let ids = (0..<rows).map { _ in rng.index(vocab) }, pos = (0..<rows).map { _ in rng.index(positions) }
        let out = DeviceBuffer(count: rows * cols, dtype: dtype)
        emuRun(
            "embedding_layernorm_\(dtype)", grid: (rows, 1, 1), block: (256, 1, 1),
            [
                .ints(IntBuffer(ids)), .ints(IntBuffer(pos)), .ints(nil), .buffer(DeviceBuffer(word, dtype: dtype)),
                .buffer(DeviceBuffer(position, dtype: dtype)), .buffer(nil), .buffer(nil), .buffer(nil), .f32(0), .int(rows), .int(cols),
                .buffer(out),
            ])
        var ref = [Float](repeating: 0, count: rows * cols)
        CPUKernels.embeddingLayerNorm(
            ids: ids, positions: pos, typeIds: nil, word: word, position: position, type: nil, gamma: nil, beta: nil,
            eps: 0, rows: rows, cols: cols, out: &ref, pool: cpuPool)
        expectClose(out.floats, ref, dtype, "embedding sum")
    }

    static let samplingCases: [SamplingParameters] = [
        .greedy, SamplingParameters(temperature: 0, repetitionPenalty: 1.5), SamplingParameters(temperature: 1, seed: 3),
        SamplingParameters(temperature: 0.7, topK: 5, seed: 4), SamplingParameters(temperature: 1.3, topP: 0.6, seed: 5),
        SamplingParameters(temperature: 0.9, topK: 50, topP: 0.9, repetitionPenalty: 1.2, seed: 6),
        SamplingParameters(temperature: 1, topK: 1, seed: 7),
        SamplingParameters(temperature: 0, presencePenalty: 1.5, frequencyPenalty: 0.5, logprobs: 5),
        SamplingParameters(temperature: 0.8, topK: 30, repetitionPenalty: 1.1, presencePenalty: -0.7, frequencyPenalty: 1.9, seed: 8,
                           logprobs: 2),
        SamplingParameters(temperature: 1, seed: 9, logprobs: 0),
    ]

    /// The device sampler picks what the CPU reference picks, for every kind of sampling, over many
    /// draws (positions), keeps the seen-token bit sets and generated-token counts identical, and
    /// reports the CPU's log-probabilities (same top ids, values within 1e-5).
    @Test(arguments: samplingCases)
    func sampling(_ p: SamplingParameters) {
        var rng = EmuRng(25)
        let vocab = 1500, words = Sampler.words(vocabularySize: vocab), sequences = 3
        // Sequence 1 restarts at position 0 (its bit set is cleared); the others continue.
        let lengths: [Int32] = [2, 3, 1], starts: [Int32] = [0, 2, 5], positions: [Int32] = [9, 10, 0, 1, 2, 4], slots: [Int32] = [1, 2, 0]
        var mismatches = 0
        let k = SamplingParameters.maxLogprobs
        let counts = IntBuffer((0..<(sequences * vocab)).map { Int32($0 % 7 == 0 ? $0 % 3 : 0) })
        var cpuCounts = counts.values
        for round in 0..<12 {
            var logits = rng.array(sequences * vocab, scale: 4)
            logits[vocab + 17] = logits[vocab + 18]  // a tie
            let ids = (0..<6).map { _ in rng.index(vocab) }
            let seenStart = (0..<(sequences * words)).map { _ in UInt32(truncatingIfNeeded: Int(rng.index(1 << 30)) * 7) & 0x0101_0101 }
            let seen = IntBuffer(seenStart.map { Int32(bitPattern: $0) })
            let out = IntBuffer([Int32](repeating: -1, count: sequences))
            let topIds = IntBuffer([Int32](repeating: 7, count: sequences * k))
            let logprobs = DeviceBuffer([Float](repeating: 7, count: sequences * (k + 1)), dtype: .f32)
            var params = p
            params.seed = p.seed &+ UInt64(round)
            let packed: [Int32] = (0..<sequences).flatMap { _ in
                [Int32(bitPattern: params.temperature.bitPattern), Int32(bitPattern: params.topP.bitPattern),
                 Int32(bitPattern: params.repetitionPenalty.bitPattern), Int32(params.topK),
                 Int32(bitPattern: UInt32(truncatingIfNeeded: params.seed)),
                 Int32(bitPattern: UInt32(truncatingIfNeeded: params.seed >> 32)), Int32(bitPattern: params.presencePenalty.bitPattern),
                 Int32(bitPattern: params.frequencyPenalty.bitPattern),
                 Int32(params.logprobs ?? -1), 0, 0, 0]
            }
            emuRun("sample_tokens_f32", grid: (sequences, 1, 1), block: (1024, 1, 1), [
                .buffer(DeviceBuffer(logits, dtype: .f32)), .int(vocab), .int(vocab), .ints(IntBuffer(ids)), .ints(IntBuffer(starts)),
                .ints(IntBuffer(lengths)), .ints(IntBuffer(positions)), .ints(IntBuffer(slots)), .ints(seen), .int(words), .ints(counts),
                .ints(IntBuffer(packed)), .ints(out), .ints(topIds), .int(k), .buffer(logprobs),
            ])
            var cpuSeen = seenStart
            for s in 0..<sequences {
                let first = Int(starts[s]), last = first + Int(lengths[s]) - 1
                let slotCounts = Int(slots[s]) * vocab
                if positions[first] == 0 { for v in 0..<vocab { cpuCounts[slotCounts + v] = 0 } }
                let want = cpuSeen.withUnsafeMutableBufferPointer { bits -> Int32 in
                    let slotBits = bits.baseAddress! + Int(slots[s]) * words
                    Sampler.markSeen(slotBits, words: words, ids: ids[first...last], reset: positions[first] == 0)
                    return logits.withUnsafeBufferPointer { row in
                        cpuCounts.withUnsafeBufferPointer {
                            Sampler.sample(logits: row.baseAddress! + s * vocab, vocabularySize: vocab, seen: slotBits,
                                           counts: $0.baseAddress! + slotCounts, parameters: params, position: positions[last] + 1)
                        }
                    }
                }
                if out.values[s] != want { mismatches += 1 }
                cpuCounts[slotCounts + Int(out.values[s])] += 1  // the device's pick, so that one differing draw does not cascade
                let gotTop = Array(topIds.values[(s * k)..<(s * k + k)])
                let gotLogprobs = Array(logprobs.floats[(s * (k + 1))..<(s * (k + 1) + k + 1)])
                if let n = params.logprobs {
                    let ref = logits.withUnsafeBufferPointer {
                        Sampler.logprobs(logits: $0.baseAddress! + s * vocab, vocabularySize: vocab, chosen: out.values[s], top: n)
                    }
                    #expect(gotTop == ref.top.map(\.id) + [Int32](repeating: -1, count: k - n), "top ids, round \(round), sequence \(s)")
                    let wantLogprobs = [ref.chosen] + ref.top.map(\.logprob) + [Float](repeating: 0, count: k - n)
                    #expect(zip(gotLogprobs, wantLogprobs).allSatisfy { abs($0 - $1) <= 1e-5 },
                            "logprobs \(gotLogprobs) vs \(wantLogprobs)")
                } else {
                    #expect(gotTop == [Int32](repeating: -1, count: k) && gotLogprobs == [Float](repeating: 0, count: k + 1),
                            "no logprobs asked: id -1 and 0")
                }
            }
            #expect(seen.values.map { UInt32(bitPattern: $0) } == cpuSeen, "seen bits, round \(round)")
            #expect(counts.values == cpuCounts, "generated-token counts, round \(round)")
        }
        // Exact agreement is expected; one differing draw in 36 would mean a float sum landed on a boundary.
        #expect(mismatches == 0, "\(mismatches) of 36 draws differ from the CPU sampler for \(p)")
    }
}
