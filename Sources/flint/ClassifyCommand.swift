import ArgumentParser
import FlintCheckpoint
import FlintJSON
import FlintModels

/// `flint classify`: the `text-classification` pipeline on a sequence-classification folder.
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify texts (or text pairs) with a sequence-classification model folder.",
        discussion: """
            As transformers' text-classification pipeline: softmax over the labels, or sigmoid when \
            config.json's problem_type is multi_label_classification or there is one label (raw logits \
            for regression); labels from id2label. One output line per input: {"label", "score"}, or \
            with --top-k N a JSON array of the N best, best first. --jsonl reads lines {"text"} or \
            {"text", "pair"}.
            """
    )

    @Option(name: .long, help: "Model folder (config.json with BertForSequenceClassification, weights, tokenizer).")
    var model: String

    @OptionGroup var options: DeviceOptions

    @Option(name: .long, help: "Print the N best labels (a JSON array per input) instead of the best one.")
    var topK: Int?

    @Option(name: .long, help: "JSON Lines file of inputs {\"text\": ...} or {\"text\": ..., \"pair\": ...}.")
    var jsonl: String?

    @Argument(help: "Texts to classify.")
    var texts: [String] = []

    func validate() throws {
        try TaskInputs.validate(texts: texts, jsonl: jsonl)
        if let topK, topK < 1 { throw ValidationError("--top-k must be >= 1") }
    }

    func run() throws {
        let inputs = try TaskInputs.read(texts: texts, jsonl: jsonl, pairs: true)
        let task = try TaskModel.open(model, head: .sequenceClassification, backend: try options.backend(),
                                      weightProgress: Console.weightProgress())
        for scores in try task.classify(inputs) {
            if let topK {
                let ranked = LabelScore.ranked(scores, labels: task.labels, topK: topK)
                print(JSONValue.array(ranked.map(Self.json)).serialized)
            } else if let best = LabelScore.best(scores, labels: task.labels) {
                print(Self.json(best).serialized)
            }
        }
    }

    static func json(_ s: LabelScore) -> JSONValue { .object([("label", .string(s.label)), ("score", .number(s.score))]) }
}
