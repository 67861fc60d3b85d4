import FlintJSON
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
        let body = try await RequestJSON.read(request, limit: options.maxBodyBytes)
        let (name, model) = try models.encoder(try body.string("model"), route: "/v1/embeddings")
        let inputs = try TextOrTokens.parse(body.value["input"], field: "input", vocabSize: model.pipeline.model.config.vocabSize)
        let format = try body.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else {
            throw .invalid("encoding_format must be \"float\" or \"base64\", got \"\(format)\"", param: "encoding_format")
        }
        let dimensions = try body.int("dimensions", in: 1...model.dimension)
        let encoded = try model.encode(inputs, truncate: true, field: "input")
        let embeddings = try await model.run(encoded, name: name)
        let data: [JSONOut] = embeddings.enumerated().map { i, raw in
            var v = model.pipeline.sentenceConfig?.normalize == true ? Vectors.normalized(raw) : raw
            if let dimensions { v = Vectors.normalized(Array(v.prefix(dimensions))) }
            return .object([("object", .string("embedding")), ("index", .int(i)),
                            ("embedding", format == "base64" ? .string(Base64.encode(littleEndian: v)) : .floats(v))])
        }
        let tokens = encoded.reduce(0) { $0 + $1.ids.count }
        return .json(.object([("object", .string("list")), ("data", .array(data)), ("model", .string(name)),
                              ("usage", .object([("prompt_tokens", .int(tokens)), ("total_tokens", .int(tokens))]))]))
    }
}

extension EmbeddingScheduler {
    /// `embed`, with the scheduler's errors as `ServeError`s naming the model as served.
    func run(_ encoded: [FlintModels.EncoderPipeline.Encoded], name: String) async throws(ServeError) -> [[Float]] {
        do {
            return try await embed(encoded)
        } catch let error as ServeError {
            throw error.code == "queue_full" ? .queueFull(model: name, limit: limits.maxQueue) : error
        } catch {
            throw .internalError("\(error)")
        }
    }
}

import FlintModels
