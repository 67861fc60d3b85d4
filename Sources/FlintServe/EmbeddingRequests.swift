import FlintCore
import FlintModels
import FlintTokenizers

extension EmbeddingScheduler {
    /// Width of the model's sentence embeddings.
    public var dimension: Int { pipeline.model.config.hiddenSize }

    /// Tokenizes texts (ids are taken as given) and cuts inputs to the model's length limit; with
    /// `truncate` false an input over the limit is a 400 that names the limit.
    func encode(_ inputs: [TextOrTokens], truncate: Bool, field: String) throws(ServeError) -> [EncoderPipeline.Encoded] {
        var out: [EncoderPipeline.Encoded] = []
        out.reserveCapacity(inputs.count)
        for (i, input) in inputs.enumerated() {
            var encoded: EncoderPipeline.Encoded
            switch input {
            case let .text(text):
                do { encoded = try pipeline.encodeIds(text) } catch { throw .invalid("\(field)[\(i)]: \(error)", param: field) }
            case let .tokens(ids):
                let kept = Array(ids.prefix(pipeline.maxLength))
                encoded = EncoderPipeline.Encoded(ids: kept, typeIds: [Int32](repeating: 0, count: kept.count),
                                               truncated: kept.count < ids.count)
            }
            if encoded.truncated && !truncate {
                throw .invalid("\(field)[\(i)] is longer than the model's limit of \(pipeline.maxLength) tokens "
                    + "(set truncate: true to cut it)",
                               param: field)
            }
            out.append(encoded)
        }
        return out
    }
}

extension EncoderPipeline {
    /// `encode(_:pair:)`'s ids, type ids and `truncated`, through the tokenizer's ids-only path and in one
    /// tokenization: the request path builds no offsets, and an input over the limit is not tokenized twice.
    ///
    /// Truncating to the limit cuts exactly the inputs whose whole encoding is over it, as `encode`'s second
    /// pass does; a template that repeats an input can stay over the limit uncut, which `encode` also reports
    /// as truncated. A limit below the special-token count leaves nothing to cut to: `encode`'s two passes.
    func encodeIds(_ text: String, pair: String? = nil) throws(FlintError) -> Encoded {
        do {
            var result: TokenIds
            if maxLength >= tokenizer.specialTokenCount(isPair: pair != nil) {
                result = try tokenizer.encodeIds(text, pair: pair, truncation: Truncation(maxLength: maxLength))
                result.truncated = result.truncated || result.count > maxLength
            } else {
                result = try tokenizer.encodeIds(text, pair: pair)
                if result.count > maxLength {
                    result = try tokenizer.encodeIds(text, pair: pair, truncation: Truncation(maxLength: maxLength))
                    result.truncated = true
                }
            }
            // As `encoded(_:)`: models with fewer than two token types get type 0 everywhere.
            let types = model.config.typeVocabSize > 1 ? result.typeIds : [Int32](repeating: 0, count: result.count)
            return Encoded(ids: result.ids, typeIds: types, truncated: result.truncated)
        } catch {
            throw .invalidInput("tokenizer: \(error)")
        }
    }
}

enum Vectors {
    /// `v` scaled to unit L2 norm (a zero vector stays zero).
    static func normalized(_ v: [Float]) -> [Float] {
        var sum: Double = 0
        for x in v { sum += Double(x) * Double(x) }
        guard sum > 0 else { return v }
        let scale = Float(1 / sum.squareRoot())
        return v.map { $0 * scale }
    }
}
