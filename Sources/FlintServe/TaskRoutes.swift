import FlintJSON
import FlintModels
import Hummingbird

/// The task routes over the encoder schedulers: TEI's `POST /predict` (sequence classification)
/// and `POST /rerank` (cross-encoders), and Flint's `POST /v1/answer` (extractive question
/// answering). Each runs the model's head output through the same batching queue as embeddings;
/// the scores are computed as `flint classify`, `flint rerank` and `flint answer` compute them.
extension FlintServer {
    func addTaskRoutes(to router: Router<ServeContext>) {
        router.post("/predict") { request, _ in
            await Self.answer(.tei) { () async throws(ServeError) in try await self.teiPredict(request) }
        }
        router.post("/rerank") { request, _ in
            await Self.answer(.tei) { () async throws(ServeError) in try await self.teiRerank(request) }
        }
        router.post("/v1/answer") { request, _ in
            await Self.answer(.openAI) { () async throws(ServeError) in try await self.questionAnswer(request) }
        }
    }

    /// `POST /predict`: per input, every label with its score, best first (`[{score, label}]`; a
    /// batch input gets one such list per input). Scores as the `text-classification` pipeline
    /// (softmax; sigmoid for one label or `problem_type` multi-label; raw logits for regression),
    /// or the logits with `raw_scores`.
    func teiPredict(_ request: Request) async throws(ServeError) -> Response {
        let parsed = try PredictRequest(try await RequestJSON.read(request, limit: options.maxBodyBytes), models: models,
                                        maxClientBatch: options.limits.maxBatchRequests)
        let logits = try await parsed.scheduler.run(parsed.encoded, name: parsed.model, output: .logits)
        let config = parsed.scheduler.pipeline.model.config
        let function: ScoreFunction = parsed.rawScores ? .none : .forModel(problemType: config.problemType, numLabels: config.numLabels)
        let labels = (0..<config.numLabels).map(config.label)
        let predictions: [JSONOut] = logits.map { row in
            .array(LabelScore.ranked(function.apply(row), labels: labels, topK: nil).map {
                .object([("score", .double($0.score)), ("label", .string($0.label))])
            })
        }
        return .json(parsed.batch ? .array(predictions) : predictions[0])
    }

    /// `POST /rerank`: `[{index, text?, score}]` best first (equal scores in input order); the
    /// score is the sigmoid of the cross-encoder's logit, or the logit with `raw_scores`.
    func teiRerank(_ request: Request) async throws(ServeError) -> Response {
        let parsed = try RerankRequest(try await RequestJSON.read(request, limit: options.maxBodyBytes), models: models,
                                       maxClientBatch: options.limits.maxBatchRequests)
        let logits = try await parsed.scheduler.run(parsed.encoded, name: parsed.model, output: .logits)
        let scores = logits.map { parsed.rawScores ? Double($0[0]) : ScoreFunction.sigmoid(Double($0[0])) }
        let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return .json(.array(order.map { i in
            var fields: [(String, JSONOut)] = [("index", .int(i))]
            if parsed.returnText { fields.append(("text", .string(parsed.texts[i]))) }
            fields.append(("score", .double(scores[i])))
            return .object(fields)
        }))
    }

    /// `POST /v1/answer`: `{answer, score, start, end}` (character offsets in Unicode code points),
    /// or with `top_k` > 1 an array of those, best first, as `flint answer`.
    func questionAnswer(_ request: Request) async throws(ServeError) -> Response {
        let parsed = try AnswerRequest(try await RequestJSON.read(request, limit: options.maxBodyBytes), models: models)
        let spans = try await parsed.scheduler.run(parsed.encoded, name: parsed.model, output: .spanLogits)
        let answers = QuestionAnswering.decode(windows: parsed.windows, spanLogits: spans, context: parsed.context, options: parsed.options)
        let json: [JSONOut] = answers.map {
            .object([("answer", .string($0.text)), ("score", .double($0.score)), ("start", .int($0.start)), ("end", .int($0.end))])
        }
        // As the pipeline: one answer alone, else the list (empty when no span qualifies at all).
        return .json(parsed.options.topK == 1 && json.count == 1 ? json[0] : .array(json))
    }

    /// `/info`'s `model_type` for an encoder, as TEI names it: `{"classifier": {id2label, label2id}}`,
    /// `{"reranker": ...}` for one label, else `{"embedding": {"pooling"}}`; a question-answering
    /// model (not a TEI type) is `{"question_answering": {"max_seq_len"}}`.
    static func teiModelType(_ scheduler: EmbeddingScheduler) -> JSONOut {
        let pipeline = scheduler.pipeline
        let config = pipeline.model.config
        if EncoderTask.classify.accepts(scheduler) {
            let labels = (0..<config.numLabels).map(config.label)
            var seen: Set<String> = []
            let label2id: [(String, JSONOut)] = labels.enumerated().compactMap { seen.insert($1).inserted ? ($1, .int($0)) : nil }
            let classifier = JSONOut.object([("id2label", .object(labels.enumerated().map { (String($0), .string($1)) })),
                                             ("label2id", .object(label2id))])
            return .object([(config.numLabels == 1 ? "reranker" : "classifier", classifier)])
        }
        if EncoderTask.answer.accepts(scheduler) {
            return .object([("question_answering", .object([("max_seq_len", .int(AnswerRequest.windowLimits(pipeline).default))]))])
        }
        return .object([("embedding", .object([("pooling", .string(pipeline.sentenceConfig?.pooling.rawValue ?? "mean"))]))])
    }
}
