#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FlintCore

/// The plain reference of the `.sample` step (`SamplingParameters` documents the procedure;
/// Kernels/sampling.cu is the CUDA version, which finds the top-k and top-p thresholds by bisection
/// instead of sorting). Straightforward on purpose: sorting is cheap next to the LM-head GEMM.
public enum Sampler {
    /// 32-bit words of a vocabulary bit set.
    public static func words(vocabularySize: Int) -> Int { (vocabularySize + 31) / 32 }

    /// Adds `ids` to a slot's bit set of seen tokens (cleared first when `reset`).
    public static func markSeen(_ bits: UnsafeMutablePointer<UInt32>, words: Int, ids: ArraySlice<Int32>, reset: Bool) {
        if reset { bits.update(repeating: 0, count: words) }
        for id in ids { bits[Int(id) >> 5] |= 1 << UInt32(id & 31) }
    }

    /// The next token from one logits row. `seen`: the slot's bit set (for the repetition penalty);
    /// `counts`: the slot's generated-token counts (`[vocab]`, for the presence and frequency
    /// penalties; nil: none generated); `position`: the position the new token will take (seeds the draw).
    public static func sample(logits: UnsafePointer<Float>, vocabularySize vocab: Int, seen: UnsafePointer<UInt32>,
                              counts: UnsafePointer<Int32>? = nil, parameters p: SamplingParameters, position: Int32) -> Int32 {
        var x = Array(UnsafeBufferPointer(start: logits, count: vocab))
        if p.repetitionPenalty != 1 {
            for v in 0..<vocab where seen[v >> 5] & (1 << UInt32(v & 31)) != 0 {
                x[v] = x[v] > 0 ? x[v] / p.repetitionPenalty : x[v] * p.repetitionPenalty
            }
        }
        if let counts, p.presencePenalty != 0 || p.frequencyPenalty != 0 {
            for v in 0..<vocab where counts[v] > 0 {
                x[v] -= p.presencePenalty.addingProduct(p.frequencyPenalty, Float(counts[v]))  // one rounding, as sampling.cu's fmaf
            }
        }
        if p.isGreedy {
            var best = 0
            for v in 1..<max(vocab, 1) where x[v] > x[best] { best = v }
            return Int32(best)
        }
        // Top-k and the order of logits do not change under a positive temperature: only the
        // weights do, exp((x - max) / T), which stays finite for any T > 0.
        var keep = [Bool](repeating: true, count: vocab)
        if p.topK > 0, p.topK < vocab {
            var copy = x
            let kth = select(&copy, rankFromTop: p.topK - 1)
            for v in 0..<vocab where x[v] < kth { keep[v] = false }
        }
        var maxLogit = -Float.infinity
        for v in 0..<vocab where keep[v] { maxLogit = max(maxLogit, x[v]) }
        let e = x.map { expf(($0 - maxLogit) / p.temperature) }
        if p.topP < 1 {
            let kept = (0..<vocab).filter { keep[$0] }
            let total = kept.reduce(Float(0)) { $0 + e[$1] }
            // Walk the logits from the largest down, a group of equal logits at a time: a group is
            // kept while the mass strictly above it is below topP.
            let order = kept.sorted { x[$0] > x[$1] }
            var above: Float = 0
            var i = 0
            while i < order.count {
                var j = i
                var groupMass: Float = 0
                while j < order.count, x[order[j]] == x[order[i]] {
                    groupMass += e[order[j]]
                    j += 1
                }
                if !(above < p.topP * total) { for v in order[i...] { keep[v] = false }; break }
                above += groupMass
                i = j
            }
        }
        var total: Float = 0
        for v in 0..<vocab where keep[v] { total += e[v] }
        let target = SamplingParameters.uniform(seed: p.seed, position: position) * total
        var running: Float = 0
        var last = 0
        for v in 0..<vocab where keep[v] {
            running += e[v]
            last = v
            if running > target { return Int32(v) }
        }
        return Int32(last)  // rounding left the target at the very end
    }

    /// The raw log-softmax of one logits row: `RawLogprobs.of` (FlintCore), kept here for the kernels' callers.
    public static func logprobs(logits: UnsafePointer<Float>, vocabularySize vocab: Int, chosen: Int32,
                                top: Int) -> (chosen: Float, top: [(id: Int32, logprob: Float)]) {
        RawLogprobs.of(logits: logits, vocabularySize: vocab, chosen: chosen, top: top)
    }

    /// The element that would sit at index `rank` if `values` were sorted in descending order
    /// (quickselect; reorders `values`).
    static func select(_ values: inout [Float], rankFromTop rank: Int) -> Float {
        var lo = 0, hi = values.count - 1
        while lo < hi {
            let pivot = values[(lo + hi) / 2]
            var i = lo, j = hi
            while i <= j {
                while values[i] > pivot { i += 1 }
                while values[j] < pivot { j -= 1 }
                if i <= j {
                    values.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if rank <= j { hi = j } else if rank >= i { lo = i } else { return values[rank] }
        }
        return values[rank]
    }
}
