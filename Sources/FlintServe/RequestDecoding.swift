import FlintModels

/// The routes whose request bodies the server decodes, by path.
public enum ServeRoute: String, CaseIterable, Sendable {
    case embeddings = "/v1/embeddings"
    case completions = "/v1/completions"
    case teiEmbed = "/embed"
    case teiTokenize = "/tokenize"
    case kserveInfer = "/v2/models/{name}/infer"

    /// The error shape the route answers in.
    public var style: APIStyle {
        switch self {
        case .embeddings, .completions: return .openAI
        case .teiEmbed, .teiTokenize: return .tei
        case .kserveInfer: return .kserve
        }
    }
}

/// What a request body decodes to before anything runs: what the model would be asked to do.
/// The same code the handlers run produces it (FlintFuzz's `serve` target checks its promises).
public struct DecodedRequest: Sendable {
    /// The model as served.
    public var model: String
    /// Per input the token ids the model runs: embedding inputs after truncation, completion
    /// prompts; empty for `/tokenize`.
    public var inputs: [[Int32]]
    /// Encoders: whether each input was cut to the limit.
    public var truncated: [Bool]
    /// The longest an input may be: the encoder's length limit, or the decoder's context less one.
    public var maxInputTokens: Int
    /// The model's vocabulary size (every id is below it).
    public var vocabSize: Int
    /// Completions: the sequences that would be queued (one per prompt and choice).
    public var sequences: [CompletionScheduler.Sequence]
    /// `/tokenize`: per text, its length in UTF-8 bytes and its tokens' (id, special, start, stop).
    public var tokenized: [(utf8Count: Int, tokens: [(id: Int32, special: Bool, start: Int, stop: Int)])]
}

extension FlintServer {
    /// Decodes `body` as `route`'s handler does (KServe: for the model named `model`), stopping
    /// before any queue or model is touched. Throws the `ServeError` the route would answer.
    public func decode(_ route: ServeRoute, body bytes: [UInt8], model: String = "") throws(ServeError) -> DecodedRequest {
        let body = try RequestJSON.parse(bytes)
        func encoder(_ name: String, _ scheduler: EmbeddingScheduler, _ encoded: [EncoderPipeline.Encoded]) -> DecodedRequest {
            DecodedRequest(model: name, inputs: encoded.map(\.ids), truncated: encoded.map(\.truncated),
                           maxInputTokens: scheduler.pipeline.maxLength, vocabSize: scheduler.pipeline.model.config.vocabSize,
                           sequences: [], tokenized: [])
        }
        switch route {
        case .embeddings:
            let r = try EmbeddingsRequest(body, models: models)
            return encoder(r.model, r.scheduler, r.encoded)
        case .teiEmbed:
            let r = try TEIEmbedRequest(body, models: models)
            return encoder(r.model, r.scheduler, r.encoded)
        case .kserveInfer:
            let scheduler = try kserveModel(model)
            return encoder(model, scheduler, try KServeInferRequest(body, scheduler: scheduler).encoded)
        case .teiTokenize:
            let r = try TEITokenization(body, models: models)
            let (name, scheduler) = try models.encoder(try body.string("model"), route: "/tokenize")
            var out = encoder(name, scheduler, [])
            out.tokenized = zip(r.texts, r.tokens).map { text, tokens in
                (text.utf8.count, tokens.map { ($0.id, $0.special, $0.start, $0.stop) })
            }
            return out
        case .completions:
            let r = try CompletionRequest(body, models: models)
            return DecodedRequest(model: r.model, inputs: r.prompts.map(\.ids), truncated: [], maxInputTokens: r.scheduler.maxContext - 1,
                                  vocabSize: r.scheduler.decoder.config.vocabSize, sequences: r.sequences, tokenized: [])
        }
    }
}
