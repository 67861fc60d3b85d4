import FlintJSON
import FlintModels
import Hummingbird

/// The KServe v2 / Triton HTTP protocol (JSON tensors, or binary ones: `KServeBinary`) for encoders: `TEXT` (BYTES, `[n]`) or
/// `input_ids` (INT64, `[B, S]`, optional `attention_mask`) in, `EMBEDDING` (FP32, `[n, dim]`) out.
extension FlintServer {
    func addKServeRoutes(to router: Router<ServeContext>) {
        router.get("/v2") { _, _ in
            Response.json(.object([("name", .string("flint")), ("version", .string(Self.version)),
                                   ("extensions", .array([.string("binary_tensor_data")]))]))
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
        let body = try await RequestJSON.collect(request, limit: options.maxBodyBytes)
        let (json, binary) = try KServeBinary.split(body, headerField: request.headers[KServeBinary.headerLength])
        let parsed = try KServeInferRequest(try RequestJSON.parse(Array(json)), binary: binary, scheduler: model)
        let normalize = model.pipeline.sentenceConfig?.normalize == true
        let embeddings = try await model.run(parsed.encoded, name: name).map { normalize ? Vectors.normalized($0) : $0 }
        var out: [(String, JSONOut)] = [("model_name", .string(name)), ("model_version", .string("1"))]
        if let id = parsed.id { out.append(("id", .string(id))) }
        var tensor: [(String, JSONOut)] = [("name", .string("EMBEDDING")), ("datatype", .string("FP32")),
                                           ("shape", .array([.int(embeddings.count), .int(model.dimension)]))]
        let data = embeddings.flatMap { $0 }
        guard parsed.binaryOutput else {
            out.append(("outputs", .array([.object(tensor + [("data", .floats(data))])])))
            return .json(.object(out))
        }
        tensor.append(("parameters", .object([("binary_data_size", .int(4 * data.count))])))
        out.append(("outputs", .array([.object(tensor)])))
        return KServeBinary.response(header: .object(out), data: data)
    }
}

/// A parsed KServe v2 infer request: `TEXT` or `input_ids` (+ `attention_mask`), as JSON tensors or
/// binary data (`KServeBinary`), tokenized and cut to the model's limit.
struct KServeInferRequest {
    var encoded: [EncoderPipeline.Encoded]
    /// The request's `id`, echoed in the response.
    var id: String?
    /// `EMBEDDING` is asked for as binary data (its `binary_data`, or the request's `binary_data_output`).
    var binaryOutput = false

    /// `binary`: the body's bytes after the JSON header, for the inputs that give a `binary_data_size`.
    init(_ body: RequestJSON, binary: ArraySlice<UInt8> = [], scheduler model: EmbeddingScheduler) throws(ServeError) {
        guard let inputs = body.value["inputs"]?.array else { throw .badField("inputs", "expected an array of tensors") }
        var tensors: [String: (shape: [Int], data: [JSONValue])] = [:]
        var rest = binary
        for (i, t) in inputs.enumerated() {
            guard let n = t["name"]?.string else { throw .badField("inputs[\(i)].name", "expected a string") }
            guard let shape = t["shape"]?.array?.compactMap(\.int), shape.count == t["shape"]?.array?.count, shape.allSatisfy({ $0 >= 0 })
            else { throw .badField("inputs[\(i)].shape", "expected an array of non-negative integers") }
            let flat: [JSONValue]
            if let size = t["parameters"]?["binary_data_size"] {
                guard let size = size.int, size >= 0, size <= rest.count else {
                    throw .badField("inputs[\(i)].parameters.binary_data_size",
                                    "expected an integer in 0...\(rest.count) (the binary data left after the JSON header)")
                }
                guard let type = t["datatype"]?.string else { throw .badField("inputs[\(i)].datatype", "expected a string") }
                flat = try KServeBinary.elements(rest.prefix(size), datatype: type, input: n)
                rest = rest.dropFirst(size)
            } else {
                guard let data = t["data"]?.array else { throw .badField("inputs[\(i)].data", "expected an array (JSON tensor data)") }
                flat = Self.flatten(data)
            }
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
        guard rest.isEmpty else {
            throw .invalid("\(rest.count) bytes of binary data follow the inputs' binary_data_size "
                + "(is Inference-Header-Content-Length right?)")
        }
        binaryOutput = try Self.binaryOutput(body)
        encoded = try model.encode(items, truncate: true, field: "inputs")
        id = body.value["id"]?.string
    }

    /// Whether `EMBEDDING` goes back as binary data; an `outputs` entry must name `EMBEDDING`.
    static func binaryOutput(_ body: RequestJSON) throws(ServeError) -> Bool {
        var binary = false
        if let all = body.value["parameters"]?["binary_data_output"], !all.isNull {
            guard let b = all.bool else { throw .badField("parameters.binary_data_output", "expected a boolean") }
            binary = b
        }
        guard let outputs = body.value["outputs"], !outputs.isNull else { return binary }
        guard let list = outputs.array else { throw .badField("outputs", "expected an array of requested outputs") }
        for (i, o) in list.enumerated() {
            guard o["name"]?.string == "EMBEDDING" else {
                let got = o["name"]?.serialized ?? "no name"
                throw .invalid("outputs[\(i)]: this model has one output, EMBEDDING, got \(got)", param: "outputs")
            }
            if let b = o["parameters"]?["binary_data"], !b.isNull {
                guard let b = b.bool else { throw .badField("outputs[\(i)].parameters.binary_data", "expected a boolean") }
                binary = b
            }
        }
        return binary
    }

    /// Nested JSON arrays in row-major order (Triton accepts tensors nested or flat).
    static func flatten(_ values: [JSONValue]) -> [JSONValue] {
        values.flatMap { $0.array.map(flatten) ?? [$0] }
    }
}
