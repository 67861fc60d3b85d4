import FlintJSON
import FlintModels
import Hummingbird

extension FlintServer {
    /// `GET /v1/models`.
    func listModels() -> Response {
        .json(.object([("object", .string("list")), ("data", .array(models.entries.map { e in
            .object([("id", .string(e.name)), ("object", .string("model")), ("created", .int(created)), ("owned_by", .string("flint"))])
        }))]))
    }

    /// `POST /v1/embeddings`: OpenAI's request and response, `encoding_format` float or base64
    /// (little-endian f32), `dimensions` (truncate, then renormalize).
    func embeddings(_ request: Request) async throws(ServeError) -> Response {
        let parsed = try EmbeddingsRequest(try await RequestJSON.read(request, limit: options.maxBodyBytes), models: models)
        let (name, model, encoded) = (parsed.model, parsed.scheduler, parsed.encoded)
        let embeddings = try await model.run(encoded, name: name)
        let data: [JSONOut] = embeddings.enumerated().map { i, raw in
            var v = model.pipeline.sentenceConfig?.normalize == true ? Vectors.normalized(raw) : raw
            if let dimensions = parsed.dimensions { v = Vectors.normalized(Array(v.prefix(dimensions))) }
            return .object([("object", .string("embedding")), ("index", .int(i)),
                            ("embedding", parsed.base64 ? .string(Base64.encode(littleEndian: v)) : .floats(v))])
        }
        let tokens = encoded.reduce(0) { $0 + $1.ids.count }
        return .json(.object([("object", .string("list")), ("data", .array(data)), ("model", .string(name)),
                              ("usage", .object([("prompt_tokens", .int(tokens)), ("total_tokens", .int(tokens))]))]))
    }
}

/// A parsed `POST /v1/embeddings` request: its inputs tokenized and cut to the model's limit.
struct EmbeddingsRequest {
    var model: String
    var scheduler: EmbeddingScheduler
    var encoded: [EncoderPipeline.Encoded]
    /// `encoding_format: "base64"` (else float).
    var base64: Bool
    var dimensions: Int?

    init(_ body: RequestJSON, models: ServedModels) throws(ServeError) {
        (model, scheduler) = try models.encoder(try body.string("model"), route: "/v1/embeddings")
        let inputs = try TextOrTokens.parse(body.value["input"], field: "input", vocabSize: scheduler.pipeline.model.config.vocabSize)
        let format = try body.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else {
            throw .invalid("encoding_format must be \"float\" or \"base64\", got \"\(format)\"", param: "encoding_format")
        }
        base64 = format == "base64"
        dimensions = try body.int("dimensions", in: 1...scheduler.dimension)
        encoded = try scheduler.encode(inputs, truncate: true, field: "input")
    }
}

extension EmbeddingScheduler {
    /// `forward` (by default: sentence embeddings), with the scheduler's errors as `ServeError`s
    /// naming the model as served.
    func run(_ encoded: [FlintModels.EncoderPipeline.Encoded], name: String,
             output: Encoder.Output = .sentenceEmbedding) async throws(ServeError) -> [[Float]] {
        do {
            return try await forward(encoded, output: output)
        } catch let error as ServeError {
            throw error.code == "queue_full" ? .queueFull(model: name, limit: limits.maxQueue) : error
        } catch {
            throw .internalError("\(error)")
        }
    }
}
