// The accuracy contract of a reduced precision (DESIGN.md, "Precision"), measured against an f32
// reference backend: sentence embeddings by cosine similarity per text, decoders by teacher-forced
// next-token agreement and perplexity. `flint check --device cpu --dtype bf16|int8` and the tests use
// these same measurements; the thresholds are `PrecisionAccuracy.Contract`.
import FlintCore
import FlintModels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum PrecisionAccuracy {
    /// What a precision must keep against f32.
    public struct Contract: Sendable {
        /// Smallest cosine of a sentence embedding with its f32 one, for every text.
        public var minCosine: Double
        /// Smallest share of positions whose greedy next token equals f32's (teacher-forced).
        public var minAgreement: Double
        /// Largest |perplexity / f32 perplexity - 1| on the same text.
        public var maxPerplexityChange: Double

        /// bf16: cosine >= 0.9995, agreement >= 99%; int8: cosine >= 0.999, agreement >= 97%;
        /// perplexity within 1% for both. nil for dtypes without a contract here.
        public static func of(_ dtype: DType) -> Contract? {
            switch dtype {
            case .bf16: return Contract(minCosine: 0.9995, minAgreement: 0.99, maxPerplexityChange: 0.01)
            case .i8: return Contract(minCosine: 0.999, minAgreement: 0.97, maxPerplexityChange: 0.01)
            default: return nil
            }
        }
    }

    /// Cosine similarity in double.
    public static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        return dot / max((na * nb).squareRoot(), 1e-30)
    }

    /// Per text, the cosine of the candidate backend's sentence embedding with the reference's
    /// (a sentence-transformers folder such as all-MiniLM-L6-v2).
    public static func embeddingCosines(folder: String, texts: [String], reference: any Backend,
                                        candidate: any Backend) throws(FlintError) -> [Double] {
        let want = try EncoderPipeline(folder: folder, backend: reference, outputs: [.sentenceEmbedding]).embed(texts).embeddings
        let got = try EncoderPipeline(folder: folder, backend: candidate, outputs: [.sentenceEmbedding]).embed(texts).embeddings
        return zip(want, got).map { cosine($0, $1) }
    }

    /// A decoder's teacher-forced comparison on one text.
    public struct DecoderComparison: Sendable {
        /// Positions compared (tokens - 1).
        public var positions: Int
        /// Share of positions whose argmax next token is the reference's.
        public var agreement: Double
        public var referencePerplexity: Double
        public var candidatePerplexity: Double
        /// Over the positions where the picks differ, the largest (reference max logit - reference logit
        /// of the candidate's pick) / max |reference logit|: how close to a tie the flips were (0 if none).
        public var largestFlipGap: Double
        /// candidate / reference - 1.
        public var perplexityChange: Double { candidatePerplexity / referencePerplexity - 1 }
    }

    /// Runs `tokens` as one prefill on both backends (every position's logits) and compares the
    /// greedy next token at each position and the perplexity of the text itself.
    public static func teacherForced(model: GPT2, weights: any WeightSource, tokens: [Int32], reference: any Backend,
                                     candidate: any Backend) throws(FlintError) -> DecoderComparison {
        guard tokens.count >= 2 else { throw .invalidInput("teacher forcing needs at least 2 tokens") }
        let plan = try model.plan(outputs: [.logits], maxTokens: tokens.count, maxSequences: 1, maxContext: tokens.count)
        let batch = TokenBatch(sequences: [tokens])
        let key = GPT2.Output.logits.rawValue
        guard let want = try reference.prepare(plan, weights: weights).run(batch)[key],
              let got = try candidate.prepare(plan, weights: weights).run(batch)[key]
        else { throw .invalidInput("the GPT-2 plan returned no logits") }
        let vocab = want.shape[1]
        var agree = 0, nllWant = 0.0, nllGot = 0.0, flipGap = 0.0
        for i in 0..<(tokens.count - 1) {
            let w = want.data[(i * vocab)..<((i + 1) * vocab)], g = got.data[(i * vocab)..<((i + 1) * vocab)]
            let (best, pick) = (argmax(w), argmax(g))
            if best == pick {
                agree += 1
            } else {
                let scale = Double(w.reduce(Float(0)) { max($0, abs($1)) })
                flipGap = max(flipGap, Double(w[w.startIndex + best] - w[w.startIndex + pick]) / max(scale, 1e-30))
            }
            nllWant += negativeLogLikelihood(w, of: Int(tokens[i + 1]))
            nllGot += negativeLogLikelihood(g, of: Int(tokens[i + 1]))
        }
        let n = Double(tokens.count - 1)
        return DecoderComparison(positions: tokens.count - 1, agreement: Double(agree) / n,
                                 referencePerplexity: exp(nllWant / n), candidatePerplexity: exp(nllGot / n), largestFlipGap: flipGap)
    }

    /// A fixed pseudo-random text of `count` token ids below `vocabularySize` (seeded: the same
    /// every run), for models with random weights where no real text means more.
    public static func fixedText(count: Int, vocabularySize: Int, seed: UInt64 = 42) -> [Int32] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int32((state >> 33) % UInt64(vocabularySize))
        }
    }

    static func argmax(_ x: ArraySlice<Float>) -> Int {
        var best = x.startIndex
        for i in x.indices where x[i] > x[best] { best = i }
        return best - x.startIndex
    }

    /// -log softmax(logits)[token], in double.
    static func negativeLogLikelihood(_ logits: ArraySlice<Float>, of token: Int) -> Double {
        let mx = Double(logits.max() ?? 0)
        var sum = 0.0
        for v in logits { sum += exp(Double(v) - mx) }
        return -(Double(logits[logits.startIndex + token]) - mx - log(sum))
    }
}

