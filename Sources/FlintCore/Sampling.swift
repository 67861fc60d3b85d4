#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a `.sample` plan step picks a sequence's next token from its logits row.
///
/// The procedure (every backend implements exactly this; the CPU backend's `Sampler` is the plain
/// reference, Kernels/sampling.cu the CUDA one), equivalent to transformers' order of logits
/// processors (repetition penalty, temperature, top-k, top-p):
/// 1. Repetition penalty (when `repetitionPenalty != 1`): the logit of every token the sequence has
///    seen (prompt and generated so far) becomes `x / penalty` if `x > 0`, else `x · penalty`.
/// 2. Presence and frequency penalties (OpenAI's, applied as vLLM does, after the repetition penalty):
///    `x -= presencePenalty · (count > 0) + frequencyPenalty · count`, where `count` is how many times
///    the token was generated so far in this sequence (every token sampled since the sequence's step
///    at position 0: its prompt does not count).
/// 3. Greedy (`temperature == 0`): the largest logit wins, the lowest id on ties. Done.
/// 4. Top-k (`0 < topK < vocab`): keep the tokens whose logit is `>=` the k-th largest (ties kept).
/// 5. Temperature: each kept token weighs `w = exp((x - max) / temperature)` (`max` of the kept
///    logits; the same as softmax(x / T), and finite for any T > 0).
/// 6. Top-p (`topP < 1`): keep token `v` when the weight of the kept tokens with a strictly larger
///    logit is `< topP · Σ w` (the largest is always kept). For distinct logits this is
///    transformers' `TopPLogitsWarper`; tied logits are kept or dropped together.
/// 7. Draw: `u = uniform(seed, position)` in `[0, 1)` where `position` is the position the new token
///    will take; the token is the first kept id (in vocabulary order) whose running sum of `w`
///    exceeds `u · Σ w`.
/// Because `u` depends only on the seed and the position, a sequence samples the same tokens
/// whether it runs alone or in a batch.
///
/// Log-probabilities (when `logprobs` is set) are those of the model's own distribution: the
/// log-softmax of the raw logits row, before any penalty, temperature or filter (vLLM's default
/// `raw_logprobs`, and what OpenAI's API reports). Reported: the sampled token's, and the `logprobs`
/// largest ones (largest first, the lowest id on ties).
public struct SamplingParameters: Sendable, Equatable {
    /// 0 = greedy.
    public var temperature: Float
    /// 0 = no top-k filter.
    public var topK: Int
    /// 1 = no top-p (nucleus) filter.
    public var topP: Float
    /// 1 = no penalty.
    public var repetitionPenalty: Float
    /// Subtracted once from the logit of every token generated so far (0 = off; OpenAI: -2...2).
    public var presencePenalty: Float
    /// Subtracted per time a token was generated so far (0 = off; OpenAI: -2...2).
    public var frequencyPenalty: Float
    public var seed: UInt64
    /// How many of the most likely tokens' log-probabilities to report besides the sampled one's
    /// (0...`maxLogprobs`); nil: none, not even the sampled token's.
    public var logprobs: Int?

    /// The most top log-probabilities a step reports per sequence (OpenAI's limit for completions).
    public static let maxLogprobs = 5

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, repetitionPenalty: Float = 1, presencePenalty: Float = 0,
                frequencyPenalty: Float = 0, seed: UInt64 = 0, logprobs: Int? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.seed = seed
        self.logprobs = logprobs
    }

    /// The largest logit, no penalty.
    public static let greedy = SamplingParameters(temperature: 0)

    public var isGreedy: Bool { temperature == 0 }

    /// Throws unless every parameter is in range.
    public func validate() throws(FlintError) {
        guard temperature.isFinite, temperature >= 0 else {
            throw .invalidInput("temperature must be >= 0 (0 = greedy), got \(temperature)")
        }
        guard topK >= 0, topK <= Int(Int32.max) else { throw .invalidInput("top-k must be >= 0 (0 = off), got \(topK)") }
        guard topP > 0, topP <= 1 else { throw .invalidInput("top-p must be in (0, 1] (1 = off), got \(topP)") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw .invalidInput("repetition penalty must be > 0 (1 = off), got \(repetitionPenalty)")
        }
        guard presencePenalty.isFinite else { throw .invalidInput("presence penalty must be finite, got \(presencePenalty)") }
        guard frequencyPenalty.isFinite else { throw .invalidInput("frequency penalty must be finite, got \(frequencyPenalty)") }
        if let logprobs, !(0...Self.maxLogprobs).contains(logprobs) {
            throw .invalidInput("logprobs must be in 0...\(Self.maxLogprobs), got \(logprobs)")
        }
    }

    /// The draw's uniform number in `[0, 1)` for a token at `position`: 24 bits of
    /// SplitMix64(seed ⊕ SplitMix64(position)), exact in f32 (sampling.cu computes the same bits).
    public static func uniform(seed: UInt64, position: Int32) -> Float {
        let bits = splitMix64(seed ^ splitMix64(UInt64(UInt32(bitPattern: position))))
        return Float(bits >> 40) * (1 / 16_777_216)
    }

    /// One SplitMix64 output for state `x` (Steele, Lea & Flood 2014).
    public static func splitMix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}


/// The raw log-softmax of one logits row (`SamplingParameters`, "Log-probabilities"): the `chosen`
/// token's log-probability and the `top` most likely tokens (largest first, the lowest id on ties).
/// The CPU backend's sampler and host-side scoring (`PromptScorer`) share it.
public enum RawLogprobs {
    public static func of(logits: UnsafePointer<Float>, vocabularySize vocab: Int, chosen: Int32,
                          top: Int) -> (chosen: Float, top: [(id: Int32, logprob: Float)]) {
        var maxLogit = -Float.infinity
        for v in 0..<vocab { maxLogit = max(maxLogit, logits[v]) }
        var sum: Float = 0
        for v in 0..<vocab { sum += expf(logits[v] - maxLogit) }
        let logSum = maxLogit + logf(sum)
        // Partial selection: `top` is at most a handful.
        var best: [(id: Int32, logprob: Float)] = []
        for v in 0..<vocab where top > 0 {
            let x = logits[v]
            guard best.count < top || x > best[best.count - 1].logprob else { continue }
            var i = best.count
            while i > 0, x > best[i - 1].logprob { i -= 1 }
            best.insert((Int32(v), x), at: i)
            if best.count > top { best.removeLast() }
        }
        return (logits[Int(chosen)] - logSum, best.map { ($0.id, $0.logprob - logSum) })
    }
}
