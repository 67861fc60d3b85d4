import ArgumentParser
import FlintCheckpoint
import FlintJSON
import FlintModels

/// `flint rerank`: a cross-encoder (one-logit sequence classifier) scores each text against a query.
struct Rerank: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rank texts against a query with a cross-encoder model folder.",
        discussion: """
            Each (query, text) pair runs through the model; the score is the sigmoid of its one logit, \
            as TEI's /rerank and sentence-transformers' CrossEncoder report it. Prints one JSON array \
            of {"index", "score"}, best first (index: the text's position in the input). --jsonl reads \
            lines {"text"}.
            """
    )

    @Option(name: .long, help: "Model folder (BertForSequenceClassification with one label).")
    var model: String

    @OptionGroup var options: DeviceOptions

    @Option(name: .long, help: "The query the texts are ranked against.")
    var query: String

    @Option(name: .long, help: "JSON Lines file of texts {\"text\": ...}.")
    var jsonl: String?

    @Argument(help: "Texts to rank.")
    var texts: [String] = []

    func validate() throws { try TaskInputs.validate(texts: texts, jsonl: jsonl) }

    func run() throws {
        let inputs = try TaskInputs.read(texts: texts, jsonl: jsonl, pairs: false).map(\.text)
        let task = try TaskModel.open(model, head: .sequenceClassification, backend: try options.backend(),
                                      weightProgress: Console.weightProgress())
        let ranked = try task.rerank(query: query, texts: inputs)
        print(JSONValue.array(ranked.map { .object([("index", .number(Double($0.index))), ("score", .number($0.score))]) }).serialized)
    }
}
