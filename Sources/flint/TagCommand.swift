import ArgumentParser
import FlintCheckpoint
import FlintJSON
import FlintModels

/// `flint tag`: the `token-classification` (NER) pipeline on a token-classification folder.
struct Tag: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tag entities in texts with a token-classification model folder.",
        discussion: """
            As transformers' token-classification pipeline: one output line per input, a JSON array of \
            entities {"entity", "score", "index", "word", "start", "end"} (--aggregation none: one per \
            token, word = the token) or {"entity_group", "score", "word", "start", "end"} (simple, \
            first, average, max: grouped, word = the decoded span). start/end are character (code \
            point) offsets; "O" is left out. --jsonl reads lines {"text"}.
            """
    )

    @Option(name: .long, help: "Model folder (BertForTokenClassification).")
    var model: String

    @OptionGroup var options: DeviceOptions

    @Option(name: .long, help: "none, simple, first, average or max (default none, as the pipeline).")
    var aggregation = "none"

    @Option(name: .long, help: "JSON Lines file of texts {\"text\": ...}.")
    var jsonl: String?

    @Argument(help: "Texts to tag.")
    var texts: [String] = []

    func validate() throws {
        try TaskInputs.validate(texts: texts, jsonl: jsonl)
        if Aggregation(rawValue: aggregation) == nil {
            throw ValidationError("--aggregation must be " + Aggregation.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    func run() throws {
        let inputs = try TaskInputs.read(texts: texts, jsonl: jsonl, pairs: false).map(\.text)
        let task = try TaskModel.open(model, head: .tokenClassification, backend: try options.backend(),
                                      weightProgress: Console.weightProgress())
        for entities in try task.tag(inputs, aggregation: Aggregation(rawValue: aggregation)!) {
            print(JSONValue.array(entities.map(Self.json)).serialized)
        }
    }

    static func json(_ e: TaggedEntity) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            (e.grouped ? "entity_group" : "entity", .string(e.label)), ("score", .number(e.score)),
        ]
        if let index = e.index { members.append(("index", .number(Double(index)))) }
        members += [("word", .string(e.word)), ("start", .number(Double(e.start))), ("end", .number(Double(e.end)))]
        return .object(members)
    }
}
