import FlintCheckpoint
import FlintCore
import FlintTokenizers

/// A classification model folder ready for `flint classify`, `flint rerank` and `flint tag` (and
/// later the server's `/predict` and `/rerank`): the encoder with its head's logits, the label
/// names and the pipeline's score function. Task logic (scores, ranking, entity aggregation) lives
/// in `ScoreFunction`, `LabelScore` and `TokenTagger`; this type only runs the model.
public final class TaskModel: Sendable {
    public let pipeline: EncoderPipeline
    /// `id2label`, in class order (`LABEL_<i>` where the config names none).
    public let labels: [String]
    /// `config.json`'s `problem_type`, if any.
    public let problemType: String?
    public let head: EncoderHead

    init(pipeline: EncoderPipeline, labels: [String], problemType: String?) {
        self.pipeline = pipeline
        self.labels = labels
        self.problemType = problemType
        head = pipeline.model.head
    }

    /// The score function the `text-classification` pipeline would pick for this model.
    public var scoreFunction: ScoreFunction { .forModel(problemType: problemType, numLabels: labels.count) }

    /// Opens a sequence- or token-classification folder of any encoder family through
    /// `ModelFolder`; `head` says which the caller needs, so that a folder with the other head (or
    /// none) is refused by name.
    public static func open(_ folder: String, head: EncoderHead, backend: any Backend,
                            maxBatchTokens: Int = 8192, weightProgress: ProgressReport? = nil) throws(FlintError) -> TaskModel
    {
        let pipeline = try EncoderPipeline(folder: folder, backend: backend, outputs: [.logits], maxBatchTokens: maxBatchTokens,
                                           weightProgress: weightProgress)
        let config = pipeline.model.config
        guard config.head == head else {
            throw .unsupportedModel(path: FileSystem.join(folder, "config.json"),
                                    reason: "this command needs a \(config.family.classPrefix + head.rawValue) checkpoint, "
                                        + "the folder holds \(config.family.classPrefix + config.head.rawValue)")
        }
        return TaskModel(pipeline: pipeline, labels: (0..<config.numLabels).map(config.label), problemType: config.problemType)
    }

    /// Scores of every label for each input (text, or text + pair), in label order.
    public func classify(_ inputs: [(text: String, pair: String?)]) throws(FlintError) -> [[Double]] {
        try requireHead(.sequenceClassification)
        var encoded: [EncoderPipeline.Encoded] = []
        for input in inputs { encoded.append(try pipeline.encode(input.text, pair: input.pair)) }
        let logits = try pipeline.run(encoded)[Encoder.Output.logits.rawValue] ?? []
        let function = scoreFunction
        return logits.map { function.apply($0.data) }
    }

    /// A cross-encoder's ranking of `texts` against `query`: the sigmoid of the one logit of each
    /// (query, text) pair, as TEI's `/rerank` and sentence-transformers' `CrossEncoder` report it,
    /// best first (equal scores keep input order).
    public func rerank(query: String, texts: [String]) throws(FlintError) -> [(index: Int, score: Double)] {
        guard labels.count == 1 else {
            throw .unsupportedModel(path: pipeline.folder + "/config.json",
                                    reason: "a reranker has one label (a cross-encoder); this model has \(labels.count)")
        }
        try requireHead(.sequenceClassification)
        var encoded: [EncoderPipeline.Encoded] = []
        for t in texts { encoded.append(try pipeline.encode(query, pair: t)) }
        let logits = try pipeline.run(encoded)[Encoder.Output.logits.rawValue] ?? []
        let scores = logits.map { ScoreFunction.sigmoid(Double($0.data[0])) }
        return scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.map { ($0, scores[$0]) }
    }

    /// Entities of each text, as the `token-classification` pipeline gives them.
    public func tag(_ texts: [String], aggregation: Aggregation) throws(FlintError) -> [[TaggedEntity]] {
        try requireHead(.tokenClassification)
        var encodings: [Encoding] = []
        for t in texts {
            do {
                let full = try pipeline.tokenizer.encode(t)
                encodings.append(full.count <= pipeline.maxLength ? full
                    : try pipeline.tokenizer.encode(t, truncation: Truncation(maxLength: pipeline.maxLength)))
            } catch {
                throw .invalidInput("tokenizer: \(error)")
            }
        }
        let encoded = encodings.map(pipeline.encoded)
        let logits = try pipeline.run(encoded)[Encoder.Output.logits.rawValue] ?? []
        let tagger = TokenTagger(labels: labels, tokenizer: pipeline.tokenizer)
        return texts.indices.map {
            tagger.entities(text: texts[$0], encoding: encodings[$0], logits: logits[$0].data, aggregation: aggregation)
        }
    }

    private func requireHead(_ needed: EncoderHead) throws(FlintError) {
        guard head == needed else {
            let prefix = pipeline.model.config.family.classPrefix
            throw .unsupportedModel(path: pipeline.folder + "/config.json",
                                    reason: "needs a \(prefix + needed.rawValue) checkpoint, not \(prefix + head.rawValue)")
        }
    }
}
