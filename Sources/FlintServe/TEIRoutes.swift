import FlintJSON
import FlintModels
import FlintTokenizers
import Hummingbird

/// Hugging Face text-embeddings-inference's routes, for the first encoder served (or `model`).
extension FlintServer {
    /// `POST /embed`: `inputs` (string or array), `normalize` (default true), `truncate`
    /// (default false, as TEI: an input over the limit is then a 400 naming the limit).
    func teiEmbed(_ request: Request) async throws(ServeError) -> Response {
        let parsed = try TEIEmbedRequest(try await RequestJSON.read(request, limit: options.maxBodyBytes), models: models)
        let embeddings = try await parsed.scheduler.run(parsed.encoded, name: parsed.model)
        return .json(.array(embeddings.map { .floats(parsed.normalize ? Vectors.normalized($0) : $0) }))
    }

    /// `POST /tokenize`: per input, its tokens `{id, text, special, start, stop}` (UTF-8 byte offsets).
    func teiTokenize(_ request: Request) async throws(ServeError) -> Response {
        let parsed = try TEITokenization(try await RequestJSON.read(request, limit: options.maxBodyBytes), models: models)
        return .json(.array(parsed.tokens.map { tokens in
            .array(tokens.map { t in
                .object([("id", .int(Int(t.id))), ("text", .string(t.text)), ("special", .bool(t.special)),
                         ("start", t.special ? .null : .int(t.start)), ("stop", t.special ? .null : .int(t.stop))])
            })
        }))
    }

    /// `GET /info`: the first encoder's description, as TEI's (`model_type` by its head: `teiModelType`).
    func teiInfo() throws(ServeError) -> Response {
        let (name, model) = try models.encoder(nil, route: "/info")
        return .json(.object([
            ("model_id", .string(name)), ("model_sha", .null), ("model_dtype", .string(dtypeName)),
            ("model_type", Self.teiModelType(model)),
            ("max_concurrent_requests", .int(options.limits.maxQueue)), ("max_input_length", .int(model.pipeline.maxLength)),
            ("max_batch_tokens", .int(options.limits.maxBatchTokens)), ("max_batch_requests", .int(options.limits.maxBatchRequests)),
            ("max_client_batch_size", .int(options.limits.maxBatchRequests)), ("tokenization_workers", .int(1)),
            ("version", .string(FlintServer.version)),
        ]))
    }
}


/// A parsed TEI `POST /embed` request.
struct TEIEmbedRequest {
    var model: String
    var scheduler: EmbeddingScheduler
    var encoded: [EncoderPipeline.Encoded]
    var normalize: Bool

    init(_ body: RequestJSON, models: ServedModels) throws(ServeError) {
        (model, scheduler) = try models.encoder(try body.string("model"), route: "/embed")
        guard let texts = try body.strings("inputs") else { throw .badField("inputs", "is required") }
        guard !texts.isEmpty else { throw .invalid("inputs is an empty array", param: "inputs") }
        normalize = try body.bool("normalize") ?? true
        let truncate = try body.bool("truncate") ?? false
        if let direction = try body.string("truncation_direction"), direction.lowercased() != "right" {
            throw .invalid("truncation_direction \"\(direction)\" is not supported (only Right)", param: "truncation_direction")
        }
        encoded = try scheduler.encode(texts.map { .text($0) }, truncate: truncate, field: "inputs")
    }
}

/// A TEI `POST /tokenize` request, tokenized: per input its tokens with UTF-8 byte offsets.
struct TEITokenization {
    struct Token: Equatable {
        var id: Int32
        var text: String
        var special: Bool
        /// UTF-8 byte offsets into the input (meaningless for special tokens).
        var start: Int
        var stop: Int
    }

    var texts: [String]
    var tokens: [[Token]]

    init(_ body: RequestJSON, models: ServedModels) throws(ServeError) {
        let (_, model) = try models.encoder(try body.string("model"), route: "/tokenize")
        guard let texts = try body.strings("inputs") else { throw .badField("inputs", "is required") }
        let addSpecial = try body.bool("add_special_tokens") ?? true
        self.texts = texts
        tokens = []
        for (i, text) in texts.enumerated() {
            let encoding: FlintTokenizers.Encoding
            do { encoding = try model.pipeline.tokenizer.encode(text, addSpecialTokens: addSpecial) } catch {
                throw .invalid("inputs[\(i)]: \(error)", param: "inputs")
            }
            // Scalar offsets -> UTF-8 byte offsets.
            let scalars = Array(text.unicodeScalars)
            var byteAt = [0]
            for u in scalars { byteAt.append(byteAt.last! + String(u).utf8.count) }
            tokens.append(encoding.ids.indices.map { t in
                let special = encoding.specialTokensMask[t] != 0
                let span = encoding.offsets[t]
                let piece = special ? (model.pipeline.tokenizer.token(forId: encoding.ids[t]) ?? "")
                    : String(String.UnicodeScalarView(scalars[span.start..<span.end]))
                return Token(id: encoding.ids[t], text: piece, special: special, start: byteAt[span.start], stop: byteAt[span.end])
            })
        }
    }
}
