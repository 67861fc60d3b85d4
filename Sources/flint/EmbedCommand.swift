import ArgumentParser
import FlintCore
import FlintJSON
import FlintModels

/// `flint embed`: sentence embeddings from a BERT / sentence-transformers folder.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentence embeddings from a BERT or sentence-transformers model folder.",
        discussion: """
            Pooling and normalization come from the folder (modules.json, 1_Pooling/config.json, \
            Normalize); a plain BERT folder gets mean pooling. Inputs longer than max_seq_length \
            (sentence_bert_config.json) or max_position_embeddings are truncated, and the output says so.
            Without --json: one line per input, a JSON array of floats. --jsonl reads lines {"text": ...}.
            """
    )

    @Option(name: .long, help: "Model folder (config.json, model.safetensors, tokenizer files).")
    var model: String

    @OptionGroup var options: DeviceOptions



    @Option(name: .long, help: "Truncate inputs to this many tokens (at most the model's limit).")
    var maxLength: Int?

    @Option(name: .long, help: "JSON Lines file of inputs {\"text\": ...}.")
    var jsonl: String?

    @Flag(name: .long, help: "Print {\"model\", \"dim\", \"embeddings\", \"truncated\"} as one JSON object.")
    var json = false


    @Argument(help: "Texts to embed.")
    var texts: [String] = []

    func validate() throws {
        if jsonl == nil && texts.isEmpty { throw ValidationError("give TEXT... or --jsonl FILE") }
        if jsonl != nil && !texts.isEmpty { throw ValidationError("give either TEXT... or --jsonl FILE, not both") }
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be >= 2") }
    }

    func run() throws {
        var inputs = texts
        if let jsonl {
            inputs = try Console.readJSONLines(jsonl).map { line, value in
                guard let t = value["text"]?.string else { throw CommandError("\(jsonl):\(line): expected {\"text\": ...}") }
                return t
            }
            if inputs.isEmpty { throw CommandError("\(jsonl): no inputs") }
        }
        let backend = try options.backend()
        let pipeline = try EncoderPipeline(folder: model, backend: backend, outputs: [.sentenceEmbedding], maxLength: maxLength,
                                           weightProgress: Console.weightProgress())
        let (embeddings, truncated) = try pipeline.embed(inputs)
        let truncatedIndices = truncated.indices.filter { truncated[$0] }
        if json {
            let doc = JSONValue.object([
                ("model", .string(model)), ("dim", .number(Double(embeddings.first?.count ?? 0))),
                ("embeddings", .array(embeddings.map { JSONValue($0) })),
                ("truncated", .array(truncatedIndices.map { .number(Double($0)) })), ("max_length", .number(Double(pipeline.maxLength))),
            ])
            print(doc.serialized)
        } else {
            for e in embeddings { print(JSONValue(e).serialized) }
        }
        for i in truncatedIndices {
            Console.progress("note: input \(i) was truncated to \(pipeline.maxLength) tokens")
        }
    }
}
