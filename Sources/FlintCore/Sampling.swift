/// How a `.sample` plan step picks a sequence's next token from its logits row.
///
/// The procedure (every backend implements exactly this; the CPU backend's `Sampler` is the plain
/// reference, Kernels/sampling.cu the CUDA one), equivalent to transformers' order of logits
/// processors (repetition penalty, temperature, top-k, top-p):
/// 1. Repetition penalty (when `repetitionPenalty != 1`): the logit of every token the sequence has
///    seen (prompt and generated so far) becomes `x / penalty` if `x > 0`, else `x · penalty`.
/// 2. Greedy (`temperature == 0`): the largest logit wins, the lowest id on ties. Done.
/// 3. Top-k (`0 < topK < vocab`): keep the tokens whose logit is `>=` the k-th largest (ties kept).
/// 4. Temperature: each kept token weighs `w = exp((x - max) / temperature)` (`max` of the kept
///    logits; the same as softmax(x / T), and finite for any T > 0).
/// 5. Top-p (`topP < 1`): keep token `v` when the weight of the kept tokens with a strictly larger
///    logit is `< topP · Σ w` (the largest is always kept). For distinct logits this is
///    transformers' `TopPLogitsWarper`; tied logits are kept or dropped together.
/// 6. Draw: `u = uniform(seed, position)` in `[0, 1)` where `position` is the position the new token
///    will take; the token is the first kept id (in vocabulary order) whose running sum of `w`
///    exceeds `u · Σ w`.
/// Because `u` depends only on the seed and the position, a sequence samples the same tokens
/// whether it runs alone or in a batch.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 = greedy.
    public var temperature: Float
    /// 0 = no top-k filter.
    public var topK: Int
    /// 1 = no top-p (nucleus) filter.
    public var topP: Float
    /// 1 = no penalty.
    public var repetitionPenalty: Float
    public var seed: UInt64

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, repetitionPenalty: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    /// The largest logit, no penalty.
    public static let greedy = SamplingParameters(temperature: 0)

    public var isGreedy: Bool { temperature == 0 }

    /// Throws unless every parameter is in range.
    public func validate() throws(FlintError) {
        guard temperature.isFinite, temperature >= 0 else { throw .invalidInput("temperature must be >= 0 (0 = greedy), got \(temperature)") }
        guard topK >= 0, topK <= Int(Int32.max) else { throw .invalidInput("top-k must be >= 0 (0 = off), got \(topK)") }
        guard topP > 0, topP <= 1 else { throw .invalidInput("top-p must be in (0, 1] (1 = off), got \(topP)") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw .invalidInput("repetition penalty must be > 0 (1 = off), got \(repetitionPenalty)")
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
