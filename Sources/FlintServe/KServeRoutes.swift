import FlintJSON
import FlintModels
import Hummingbird

/// The KServe v2 / Triton HTTP protocol (JSON tensors) for encoders: `TEXT` (BYTES, `[n]`) or
/// `input_ids` (INT64, `[B, S]`, optional `attention_mask`) in, `EMBEDDING` (FP32, `[n, dim]`) out.
extension FlintServer {
    func addKServeRoutes(to router: Router<ServeContext>) {
        router.get("/v2") { _, _ in
            Response.json(.object([("name", .string("flint")), ("version", .string(Self.version)), ("extensions", .array([]))]))
        }
        for prefix in ["/v2/models/:name", "/v2/models/:name/versions/:version"] {
            router.get(RouterPath(prefix)) { _, context in
                await Self.answer(.kserve) { () async throws(ServeError) in try self.kserveMetadata(context.parameters.get("name") ?? "") }
            }
            router.get(RouterPath(prefix + "/ready")) { _, context in
                await Self.answer(.kserve) { () async throws(ServeError) in
                    _ = try self.kserveModel(context.parameters.get("name") ?? "")
                    return self.readiness()
                }
            }
            router.post(RouterPath(prefix + "/infer")) { request, context in
                await Self.answer(.kserve) { () async throws(ServeError) in
                    try await self.kserveInfer(request, name: context.parameters.get("name") ?? "")
                }
            }
        }
    }

    func kserveModel(_ name: String) throws(ServeError) -> EmbeddingScheduler {
        guard let model = models.model(name) else { throw .unknownModel(name, known: models.names) }
        guard case let .encoder(scheduler) = model else {
            throw .wrongModelKind(name, route: "KServe v2 inference", needs: "an encoder (BERT) model; GPT-2 is served on /v1/completions")
        }
        return scheduler
    }

    func kserveMetadata(_ name: String) throws(ServeError) -> Response {
        let model = try kserveModel(name)
        func tensor(_ n: String, _ type: String, _ shape: [Int]) -> JSONOut {
            .object([("name", .string(n)), ("datatype", .string(type)), ("shape", .array(shape.map { .int($0) }))])
        }
        return .json(.object([
            ("name", .string(name)), ("versions", .array([.string("1")])), ("platform", .string("flint")),
            ("inputs", .array([tensor("TEXT", "BYTES", [-1]), tensor("input_ids", "INT64", [-1, -1]),
                               tensor("attention_mask", "INT64", [-1, -1])])),
            ("outputs", .array([tensor("EMBEDDING", "FP32", [-1, model.dimension])])),
        ]))
    }

    func kserveInfer(_ request: Request, name: String) async throws(ServeError) -> Response {
        let model = try kserveModel(name)
        if request.headers.contains(where: { $0.name.canonicalName == "inference-header-content-length" }) {
            throw .invalid("binary tensor data is not supported: send JSON tensors (tritonclient: binary_data=False)")
        }
        let parsed = try KServeInferRequest(try await RequestJSON.read(request, limit: options.maxBodyBytes), scheduler: model)
        let encoded = parsed.encoded
        let normalize = model.pipeline.sentenceConfig?.normalize == true
        let embeddings = try await model.run(encoded, name: name).map { normalize ? Vectors.normalized($0) : $0 }
        var out: [(String, JSONOut)] = [("model_name", .string(name)), ("model_version", .string("1"))]
        if let id = parsed.id { out.append(("id", .string(id))) }
        out.append(("outputs", .array([.object([
            ("name", .string("EMBEDDING")), ("datatype", .string("FP32")),
            ("shape", .array([.int(embeddings.count), .int(model.dimension)])),
            ("data", .floats(embeddings.flatMap { $0 })),
        ])])))
        return .json(.object(out))
    }
}

/// A parsed KServe v2 infer request (JSON tensors): `TEXT` or `input_ids` (+ `attention_mask`),
/// tokenized and cut to the model's limit.
struct KServeInferRequest {
    var encoded: [EncoderPipeline.Encoded]
    /// The request's `id`, echoed in the response.
    var id: String?

    init(_ body: RequestJSON, scheduler model: EmbeddingScheduler) throws(ServeError) {
        guard let inputs = body.value["inputs"]?.array else { throw .badField("inputs", "expected an array of tensors") }
        var tensors: [String: (shape: [Int], data: [JSONValue])] = [:]
        for (i, t) in inputs.enumerated() {
            guard let n = t["name"]?.string else { throw .badField("inputs[\(i)].name", "expected a string") }
            guard let shape = t["shape"]?.array?.compactMap(\.int), shape.count == t["shape"]?.array?.count, shape.allSatisfy({ $0 >= 0 })
            else { throw .badField("inputs[\(i)].shape", "expected an array of non-negative integers") }
            guard let data = t["data"]?.array else { throw .badField("inputs[\(i)].data", "expected an array (JSON tensor data)") }
            let flat = Self.flatten(data)
            var elements = 1
            for d in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                elements = overflow ? Int.max : product
            }
            guard flat.count == elements else {
                throw .invalid("inputs[\(i)] (\(n)): shape \(shape) does not match its \(flat.count) values", param: n)
            }
            tensors[n] = (shape, flat)
        }
        var items: [TextOrTokens] = []
        if let text = tensors["TEXT"] {
            for (i, v) in text.data.enumerated() {
                guard let s = v.string else { throw .badField("TEXT[\(i)]", "expected a string (BYTES)") }
                items.append(.text(s))
            }
        } else if let ids = tensors["input_ids"] {
            guard ids.shape.count == 2 else { throw .invalid("input_ids must have shape [B, S], got \(ids.shape)", param: "input_ids") }
            let (rows, columns) = (ids.shape[0], ids.shape[1])
            let mask = tensors["attention_mask"]
            if let mask, mask.shape != ids.shape {
                throw .invalid("attention_mask has shape \(mask.shape), input_ids \(ids.shape)", param: "attention_mask")
            }
            let vocab = model.pipeline.model.config.vocabSize
            for r in 0..<rows {
                var row: [Int32] = []
                for c in 0..<columns where mask.map({ $0.data[r * columns + c].int != 0 }) ?? true {
                    guard let id = ids.data[r * columns + c].int, id >= 0, id < vocab else {
                        throw .invalid("input_ids[\(r)][\(c)] is not a token id in 0..<\(vocab)", param: "input_ids")
                    }
                    row.append(Int32(id))
                }
                guard !row.isEmpty else { throw .invalid("input_ids row \(r) has no tokens", param: "input_ids") }
                items.append(.tokens(row))
            }
        } else {
            throw .invalid("expected an input named TEXT (BYTES, [n]) or input_ids (INT64, [B, S])", param: "inputs")
        }
        guard !items.isEmpty else { throw .invalid("the input has no rows", param: "inputs") }
        encoded = try model.encode(items, truncate: true, field: "inputs")
        id = body.value["id"]?.string
    }

    /// Nested JSON arrays in row-major order (Triton accepts tensors nested or flat).
    static func flatten(_ values: [JSONValue]) -> [JSONValue] {
        values.flatMap { $0.array.map(flatten) ?? [$0] }
    }
}
