import FlintJSON
import FlintModels
import FlintTokenizers

/// The task an encoder route runs, and what it needs from the model.
enum EncoderTask {
    /// TEI's `POST /predict`: any sequence classifier.
    case classify
    /// TEI's `POST /rerank`: a cross-encoder (a sequence classifier with one label).
    case rerank
    /// `POST /v1/answer`: a question-answering (span) head.
    case answer

    var route: String {
        switch self {
        case .classify: return "/predict"
        case .rerank: return "/rerank"
        case .answer: return "/v1/answer"
        }
    }

    var output: Encoder.Output {
        switch self {
        case .classify, .rerank: return .logits
        case .answer: return .spanLogits
        }
    }

    /// What the route needs, for messages.
    var needs: String {
        switch self {
        case .classify: return "a *ForSequenceClassification model"
        case .rerank: return "a cross-encoder (*ForSequenceClassification with one label)"
        case .answer: return "a *ForQuestionAnswering model"
        }
    }

    /// Whether `scheduler`'s model can serve the task: the head, and the head's output in its plan.
    func accepts(_ scheduler: EmbeddingScheduler) -> Bool {
        let model = scheduler.pipeline.model
        guard ModelFolder.taskOutput(for: model.head) == output,
              scheduler.pipeline.prepared.plan.outputs.contains(where: { $0.name == output.rawValue })
        else { return false }
        return self != .rerank || model.config.numLabels == 1
    }
}

extension ServedModels {
    /// The encoder called `name` if it can serve `task`, else 404 saying what it is; without a
    /// name, the first served model that can.
    func encoder(_ name: String?, for task: EncoderTask) throws(ServeError) -> (name: String, scheduler: EmbeddingScheduler) {
        guard let name else {
            for e in entries { if case let .encoder(s) = e.model, task.accepts(s) { return (e.name, s) } }
            throw ServeError(status: .notFound, message: "no model served here can answer \(task.route): it needs \(task.needs) "
                                 + "(served: \(names.joined(separator: ", ")))",
                             type: "not_found_error", param: "model", code: "model_not_supported")
        }
        let what: String
        switch model(name) {
        case nil: throw .unknownModel(name, known: names)
        case let .encoder(s)?:
            if task.accepts(s) { return (name, s) }
            let config = s.pipeline.model.config
            what = config.family.classPrefix + config.head.rawValue
                + (config.head == .sequenceClassification ? " with \(config.numLabels) labels" : "")
        case .decoder?: what = "GPT-2 decoder"
        }
        throw ServeError(status: .notFound,
                         message: "model \"\(name)\" cannot serve \(task.route): it is a \(what), the route needs \(task.needs)",
                         type: "not_found_error", param: "model", code: "model_not_supported")
    }
}

extension ServeError {
    /// More inputs in one request than `/info`'s `max_client_batch_size` (413, as TEI).
    static func batchTooLarge(_ count: Int, limit: Int, param: String) -> ServeError {
        ServeError(status: .contentTooLarge, message: "batch size \(count) > maximum allowed batch size \(limit) (--max-batch-requests)",
                   type: "invalid_request_error", param: param, code: "batch_too_large")
    }
}

extension EmbeddingScheduler {
    /// Tokenizes texts and text pairs (HF's longest-first truncation for pairs) to the model's
    /// limit; with `truncate` false an input over the limit is a 400 that names the limit.
    func encode(pairs: [(text: String, pair: String?)], truncate: Bool, field: String) throws(ServeError) -> [EncoderPipeline.Encoded] {
        var out: [EncoderPipeline.Encoded] = []
        out.reserveCapacity(pairs.count)
        for (i, input) in pairs.enumerated() {
            let encoded: EncoderPipeline.Encoded
            do {
                encoded = try pipeline.encode(input.text, pair: input.pair)
            } catch {
                throw .invalid("\(field)[\(i)]: \(error)", param: field)
            }
            if encoded.truncated && !truncate {
                throw .invalid("\(field)[\(i)] is longer than the model's limit of \(pipeline.maxLength) tokens "
                    + "(set truncate: true to cut it)", param: field)
            }
            out.append(encoded)
        }
        return out
    }
}

/// A parsed TEI `POST /predict` request: `inputs` is a string, a pair `[a, b]`, or a batch of
/// those as arrays (`[[a], [a, b], ...]`), as TEI reads it.
struct PredictRequest {
    var model: String
    var scheduler: EmbeddingScheduler
    var encoded: [EncoderPipeline.Encoded]
    /// Whether `inputs` was a batch (the response is then a list per input).
    var batch: Bool
    /// `raw_scores`: the logits, not softmax/sigmoid.
    var rawScores: Bool

    init(_ body: RequestJSON, models: ServedModels, maxClientBatch: Int) throws(ServeError) {
        (model, scheduler) = try models.encoder(try body.string("model"), for: .classify)
        let inputs: [(text: String, pair: String?)]
        (inputs, batch) = try Self.sequences(body.value["inputs"])
        guard inputs.count <= maxClientBatch else { throw .batchTooLarge(inputs.count, limit: maxClientBatch, param: "inputs") }
        rawScores = try body.bool("raw_scores") ?? false
        encoded = try scheduler.encode(pairs: inputs, truncate: try body.bool("truncate") ?? false, field: "inputs")
    }

    static let shapes = "a string, a pair of strings [string, string] or a batch [[string], [string, string], ...]"

    /// TEI's `PredictInput`: (the sequences, whether it was a batch).
    static func sequences(_ value: JSONValue?) throws(ServeError) -> ([(text: String, pair: String?)], Bool) {
        guard let value, !value.isNull else { throw .badField("inputs", "is required: \(shapes)") }
        if let s = value.string { return ([(s, nil)], false) }
        guard let items = value.array, !items.isEmpty else { throw .badField("inputs", "expected \(shapes), got \(value.typeName)") }
        if items[0].string != nil {
            return ([try sequence(items, field: "inputs")], false)
        }
        var out: [(text: String, pair: String?)] = []
        for (i, item) in items.enumerated() {
            guard let parts = item.array else { throw .badField("inputs[\(i)]", "expected [string] or [string, string] in a batch") }
            out.append(try sequence(parts, field: "inputs[\(i)]"))
        }
        return (out, true)
    }

    /// `[text]` or `[text, pair]`.
    private static func sequence(_ parts: [JSONValue], field: String) throws(ServeError) -> (text: String, pair: String?) {
        guard (1...2).contains(parts.count) else { throw .badField(field, "expected 1 or 2 strings, got \(parts.count) items") }
        var strings: [String] = []
        for (i, p) in parts.enumerated() {
            guard let s = p.string else { throw .badField("\(field)[\(i)]", "expected a string, got \(p.typeName)") }
            strings.append(s)
        }
        return (strings[0], strings.count == 2 ? strings[1] : nil)
    }
}

/// A parsed TEI `POST /rerank` request: each (query, text) pair encoded.
struct RerankRequest {
    var model: String
    var scheduler: EmbeddingScheduler
    var texts: [String]
    var encoded: [EncoderPipeline.Encoded]
    /// `raw_scores`: the logit, not its sigmoid.
    var rawScores: Bool
    /// `return_text`: echo each text beside its score.
    var returnText: Bool

    init(_ body: RequestJSON, models: ServedModels, maxClientBatch: Int) throws(ServeError) {
        (model, scheduler) = try models.encoder(try body.string("model"), for: .rerank)
        guard let query = try body.string("query") else { throw .badField("query", "is required") }
        guard let value = body.value["texts"], !value.isNull else { throw .badField("texts", "is required") }
        guard value.array != nil, let texts = try body.strings("texts") else { throw .badField("texts", "expected an array of strings") }
        guard !texts.isEmpty else { throw .invalid("texts cannot be empty", param: "texts") }
        guard texts.count <= maxClientBatch else { throw .batchTooLarge(texts.count, limit: maxClientBatch, param: "texts") }
        self.texts = texts
        rawScores = try body.bool("raw_scores") ?? false
        returnText = try body.bool("return_text") ?? false
        encoded = try scheduler.encode(pairs: texts.map { (query, $0) }, truncate: try body.bool("truncate") ?? false, field: "texts")
    }
}

/// A parsed `POST /v1/answer` request: the question and context cut into windows, with the
/// `question-answering` pipeline's options (same names and defaults).
struct AnswerRequest {
    var model: String
    var scheduler: EmbeddingScheduler
    var context: String
    var options: QuestionAnswering.Options
    var windows: [Encoding]
    var encoded: [EncoderPipeline.Encoded]

    init(_ body: RequestJSON, models: ServedModels) throws(ServeError) {
        (model, scheduler) = try models.encoder(try body.string("model"), for: .answer)
        guard let question = try body.string("question") else { throw .badField("question", "is required") }
        guard let context = try body.string("context") else { throw .badField("context", "is required") }
        guard !question.isEmpty else { throw .invalid("question is empty", param: "question") }
        guard !context.isEmpty else { throw .invalid("context is empty", param: "context") }
        self.context = context
        let pipeline = scheduler.pipeline
        let limits = Self.windowLimits(pipeline)
        let maxSeqLen = try body.int("max_seq_len", in: 3...limits.longest) ?? limits.default
        options = QuestionAnswering.Options(
            maxSeqLen: maxSeqLen, docStride: try body.int("doc_stride", in: 0...maxSeqLen),
            maxAnswerLen: try body.int("max_answer_len", in: 1...4096) ?? 15, topK: try body.int("top_k", in: 1...1000) ?? 1,
            handleImpossibleAnswer: try body.bool("handle_impossible_answer") ?? false)
        do {
            let qa = try QuestionAnswering(pipeline: pipeline, options: options)
            windows = try qa.windows(question: question, context: context)
        } catch {
            throw .invalid("\(error)", param: "context")
        }
        encoded = windows.map(pipeline.encoded)
    }

    /// `max_seq_len`'s default (the pipeline's 384, or less) and largest value: a window is one
    /// sequence of the plan, so at most the model's positions and the plan's tokens.
    static func windowLimits(_ pipeline: EncoderPipeline) -> (default: Int, longest: Int) {
        let longest = max(3, min(pipeline.model.config.maxSequenceLength, pipeline.prepared.plan.maxTokens))
        return (min(384, longest), longest)
    }
}
