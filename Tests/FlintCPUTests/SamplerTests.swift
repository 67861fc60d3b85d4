import FlintCPU
import FlintCore
import Testing

/// The reference sampler (`SamplingParameters` documents the procedure): each rule on small
/// hand-made logits, and the draw's distribution against softmax.
@Suite("Sampler")
struct SamplerTests {
    static func pick(_ logits: [Float], _ p: SamplingParameters, seen: [Int32] = [], position: Int32 = 0) -> Int32 {
        var bits = [UInt32](repeating: 0, count: Sampler.words(vocabularySize: logits.count))
        bits.withUnsafeMutableBufferPointer { Sampler.markSeen($0.baseAddress!, words: $0.count, ids: seen[...], reset: true) }
        return logits.withUnsafeBufferPointer { l in
            bits.withUnsafeBufferPointer {
                Sampler.sample(
                    logits: l.baseAddress!, vocabularySize: logits.count, seen: $0.baseAddress!, parameters: p, position: position)
            }
        }
    }

    static func frequencies(_ logits: [Float], _ p: SamplingParameters, draws: Int = 20000) -> [Double] {
        var counts = [Double](repeating: 0, count: logits.count)
        for position in 0..<draws { counts[Int(pick(logits, p, position: Int32(position)))] += 1 }
        return counts.map { $0 / Double(draws) }
    }

    @Test func greedyTakesTheLowestIdOfTheLargestLogit() {
        #expect(Self.pick([0.1, 2, -1, 2], .greedy) == 1)
        #expect(Self.pick([-3, -2, -5], .greedy) == 1)
    }

    @Test func repetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() {
        // 2 / 1.5 = 1.33 < 1.5: the seen token loses its lead.
        #expect(Self.pick([2, 1.5, 0], SamplingParameters(temperature: 0, repetitionPenalty: 1.5), seen: [0]) == 1)
        // -1 · 3 = -3 < -2: a seen negative logit gets worse, not better.
        #expect(Self.pick([-1, -2], SamplingParameters(temperature: 0, repetitionPenalty: 3), seen: [0]) == 1)
        #expect(Self.pick([2, 1.5, 0], SamplingParameters(temperature: 0, repetitionPenalty: 1.5), seen: [2]) == 0)
    }

    /// OpenAI's penalties: `x -= presence · (count > 0) + frequency · count`, on generated counts only.
    @Test func presenceAndFrequencyPenaltiesSubtractFromGeneratedTokens() {
        func pick(_ logits: [Float], _ p: SamplingParameters, counts: [Int32]) -> Int32 {
            let bits = [UInt32](repeating: 0, count: Sampler.words(vocabularySize: logits.count))
            return logits.withUnsafeBufferPointer { l in
                bits.withUnsafeBufferPointer { b in
                    counts.withUnsafeBufferPointer {
                        Sampler.sample(logits: l.baseAddress!, vocabularySize: logits.count, seen: b.baseAddress!, counts: $0.baseAddress!,
                                       parameters: p, position: 0)
                    }
                }
            }
        }
        // 3 - 1.5 = 1.5 < 2: token 0 (generated once) loses to token 1.
        #expect(pick([3, 2, 0], SamplingParameters(temperature: 0, presencePenalty: 1.5), counts: [1, 0, 0]) == 1)
        // Presence counts once: 3 - 0.9 = 2.1 > 2, however often token 0 came.
        #expect(pick([3, 2, 0], SamplingParameters(temperature: 0, presencePenalty: 0.9), counts: [7, 0, 0]) == 0)
        // Frequency scales with the count: 3 - 0.4 · 2 = 2.2 > 2, 3 - 0.4 · 3 = 1.8 < 2.
        #expect(pick([3, 2, 0], SamplingParameters(temperature: 0, frequencyPenalty: 0.4), counts: [2, 0, 0]) == 0)
        #expect(pick([3, 2, 0], SamplingParameters(temperature: 0, frequencyPenalty: 0.4), counts: [3, 0, 0]) == 1)
        // Negative values encourage repeats: 2 + 1.5 > 3.
        #expect(pick([3, 2, 0], SamplingParameters(temperature: 0, presencePenalty: -1.5), counts: [0, 1, 0]) == 1)
        // Tokens never generated are untouched.
        #expect(pick([3, 2, 0], SamplingParameters(temperature: 0, presencePenalty: 2, frequencyPenalty: 2), counts: [0, 0, 5]) == 0)
    }

    /// The raw log-softmax: the chosen token's and the top ones (largest first, lowest id on ties).
    @Test func logprobsAreTheRawLogSoftmax() {
        let logits: [Float] = [1, 3, 3, -2, 0.5]
        let r = logits.withUnsafeBufferPointer { Sampler.logprobs(logits: $0.baseAddress!, vocabularySize: 5, chosen: 3, top: 3) }
        let logSum = log(logits.reduce(0.0) { $0 + exp(Double($1)) })
        #expect(abs(Double(r.chosen) - (-2 - logSum)) < 1e-6)
        #expect(r.top.map(\.id) == [1, 2, 0])
        #expect(zip(r.top, [3.0, 3.0, 1.0]).allSatisfy { abs(Double($0.logprob) - ($1 - logSum)) < 1e-6 })
        let none = logits.withUnsafeBufferPointer { Sampler.logprobs(logits: $0.baseAddress!, vocabularySize: 5, chosen: 0, top: 0) }
        #expect(none.top.isEmpty)
    }

    /// A temperature near 0 is nearly greedy, never NaN (weights are exp((x - max) / T)).
    @Test func tinyTemperaturesPickTheLargestLogit() {
        for t: Float in [1e-38, 1e-20, 1e-6] {
            for position in 0..<20 {
                #expect(Self.pick([1, 5, 2, 0.5], SamplingParameters(temperature: t, seed: 3), position: Int32(position)) == 1)
            }
        }
    }

    @Test func drawsFollowTheSoftmax() {
        let logits: [Float] = [1, 0, -1, 2]
        let e = logits.map { Double(_exp($0)) }, z = e.reduce(0, +)
        for (f, want) in zip(Self.frequencies(logits, SamplingParameters(seed: 1)), e.map { $0 / z }) {
            #expect(abs(f - want) < 0.015, "frequency \(f) vs softmax \(want)")
        }
        // Temperature 0.5 sharpens: p ∝ exp(2x).
        let sharp = logits.map { Double(_exp(2 * $0)) }, zs = sharp.reduce(0, +)
        for (f, want) in zip(Self.frequencies(logits, SamplingParameters(temperature: 0.5, seed: 2)), sharp.map { $0 / zs }) {
            #expect(abs(f - want) < 0.015, "frequency \(f) vs softmax(2x) \(want)")
        }
    }

    @Test func topKAndTopPKeepTheRightTokens() {
        let logits: [Float] = [0.5, 3, 1, 2.5, -1]
        let topTwo = Self.frequencies(logits, SamplingParameters(topK: 2, seed: 3), draws: 2000)
        #expect(Set(topTwo.indices.filter { topTwo[$0] > 0 }) == [1, 3])
        for position in 0..<200 { #expect(Self.pick(logits, SamplingParameters(topK: 1, seed: 9), position: Int32(position)) == 1) }
        // probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.8 keeps the first two (mass above the third is 0.8).
        let probs: [Float] = [0.5, 0.3, 0.15, 0.05].map { _log($0) }
        let f = Self.frequencies(probs, SamplingParameters(topP: 0.8, seed: 4), draws: 5000)
        #expect(f[2] == 0 && f[3] == 0 && abs(f[0] - 0.625) < 0.03, "top-p frequencies \(f)")
        for position in 0..<100 { #expect(Self.pick(probs, SamplingParameters(topP: 0.01, seed: 5), position: Int32(position)) == 0) }
    }

    @Test func drawsAreReproducibleAndDependOnSeedAndPosition() {
        let logits = (0..<50).map { Float($0 % 7) * 0.3 }
        let p = SamplingParameters(temperature: 1, seed: 42)
        let a = (0..<64).map { Self.pick(logits, p, position: Int32($0)) }
        #expect(a == (0..<64).map { Self.pick(logits, p, position: Int32($0)) })
        #expect(a != (0..<64).map { Self.pick(logits, SamplingParameters(temperature: 1, seed: 43), position: Int32($0)) })
        #expect(Set(a).count > 5)
        let u = (0..<1000).map { SamplingParameters.uniform(seed: 1, position: Int32($0)) }
        #expect(u.allSatisfy { $0 >= 0 && $0 < 1 } && Set(u).count > 990)
    }

    @Test func parametersOutOfRangeAreRefused() {
        for bad in [SamplingParameters(temperature: -1), SamplingParameters(temperature: .nan), SamplingParameters(topK: -1),
                    SamplingParameters(topP: 0), SamplingParameters(topP: 1.5), SamplingParameters(repetitionPenalty: 0)] {
            #expect(throws: FlintError.self) { try bad.validate() }
        }
        #expect(throws: Never.self) { try SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1).validate() }
    }
}

#if canImport(Glibc)
import Glibc
private func _exp(_ x: Float) -> Float { Glibc.expf(x) }
private func _log(_ x: Float) -> Float { Glibc.logf(x) }
#elseif canImport(Darwin)
import Darwin
private func _exp(_ x: Float) -> Float { Darwin.expf(x) }
private func _log(_ x: Float) -> Float { Darwin.logf(x) }
#endif
