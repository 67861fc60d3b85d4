import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintTokenizers

/// A classification model folder ready for `flint classify`, `flint rerank` and `flint tag` (and
/// later the server's `/predict` and `/rerank`): the encoder with its head's logits, the label
/// names and the pipeline's score function. Task logic (scores, ranking, entity aggregation) lives
/// in `ScoreFunction`, `LabelScore` and `TokenTagger`; this type only runs the model.
public final class TaskModel: Sendable {
    public let pipeline: BertPipeline
    /// `id2label`, in class order (`LABEL_<i>` where the config names none).
    public let labels: [String]
    /// `config.json`'s `problem_type`, if any.
    public let problemType: String?
    public let architecture: BertArchitecture

    init(pipeline: BertPipeline, labels: [String], problemType: String?) {
        self.pipeline = pipeline
        self.labels = labels
        self.problemType = problemType
        architecture = pipeline.model.architecture
    }

    /// The score function the `text-classification` pipeline would pick for this model.
    public var scoreFunction: ScoreFunction { .forModel(problemType: problemType, numLabels: labels.count) }

    /// Opens a sequence- or token-classification folder; `head` says which the caller needs, so
    /// that a folder with the other head (or none) is refused by name.
    ///
    /// The one place a task command opens a folder; when `ModelFolder` loads every family, this
    /// becomes a call to it.
    public static func open(_ folder: String, head: BertArchitecture, backend: any Backend,
                            maxBatchTokens: Int = 8192) throws(FlintError) -> TaskModel
    {
        let configPath = folder + "/config.json"
        let config = try BertConfig.load(path: configPath)
        guard config.architecture == head else {
            throw .unsupportedModel(path: configPath, reason: "this command needs a \(head.rawValue) checkpoint, "
                + "the folder holds \(config.architecture.rawValue)")
        }
        let pipeline = try BertPipeline(folder: folder, backend: backend, outputs: [.logits], maxBatchTokens: maxBatchTokens)
        return TaskModel(pipeline: pipeline, labels: (0..<config.numLabels).map(config.label), problemType: try problemType(configPath))
    }

    static func problemType(_ configPath: String) throws(FlintError) -> String? {
        let bytes: [UInt8]
        do {
            bytes = try BoundedFile.contents(configPath, limit: 256 << 20)
        } catch {
            throw .unreadable(path: configPath, reason: error.reason)
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw .badConfig(path: configPath, reason: "invalid JSON at byte \(error.offset): \(error.reason)")
        }
        guard let v = json["problem_type"], !v.isNull else { return nil }
        guard let s = v.string else { throw .badConfig(path: configPath, reason: "problem_type is \(v.typeName), expected a string") }
        return s
    }

    /// Scores of every label for each input (text, or text + pair), in label order.
    public func classify(_ inputs: [(text: String, pair: String?)]) throws(FlintError) -> [[Double]] {
        try requireHead(.sequenceClassification)
        var encoded: [BertPipeline.Encoded] = []
        for input in inputs { encoded.append(try pipeline.encode(input.text, pair: input.pair)) }
        let logits = try pipeline.run(encoded)[Bert.Output.logits.rawValue] ?? []
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
        var encoded: [BertPipeline.Encoded] = []
        for t in texts { encoded.append(try pipeline.encode(query, pair: t)) }
        let logits = try pipeline.run(encoded)[Bert.Output.logits.rawValue] ?? []
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
        let encoded = encodings.map { BertPipeline.Encoded(ids: $0.ids, typeIds: $0.typeIds, truncated: false) }
        let logits = try pipeline.run(encoded)[Bert.Output.logits.rawValue] ?? []
        let tagger = TokenTagger(labels: labels, tokenizer: pipeline.tokenizer)
        return texts.indices.map {
            tagger.entities(text: texts[$0], encoding: encodings[$0], logits: logits[$0].data, aggregation: aggregation)
        }
    }

    private func requireHead(_ head: BertArchitecture) throws(FlintError) {
        guard architecture == head else {
            throw .unsupportedModel(path: pipeline.folder + "/config.json",
                                    reason: "needs a \(head.rawValue) checkpoint, not \(architecture.rawValue)")
        }
    }
}
