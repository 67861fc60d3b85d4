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
                do { encoded = try pipeline.encode(text) } catch { throw .invalid("\(field)[\(i)]: \(error)", param: field) }
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
