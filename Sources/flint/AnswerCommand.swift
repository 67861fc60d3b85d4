import ArgumentParser
import FlintCore
import FlintJSON
import FlintModels

/// `flint answer`: extractive question answering, as transformers 4.57's question-answering pipeline.
struct Answer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extractive question answering with a *ForQuestionAnswering model folder.",
        discussion: """
            As transformers 4.57's question-answering pipeline: the context is split into windows of \
            --max-seq-len tokens overlapping by --doc-stride tokens, each answer is the best span of at most \
            --max-answer-len tokens widened to whole words, with character offsets (Unicode code points) into \
            the context. One line per question: {"answer", "score", "start", "end"}; with --top-k N > 1 a JSON \
            array of those, best first. --handle-impossible-answer adds SQuAD 2.0's no-answer ("answer": "", \
            start = end = 0). --jsonl reads lines {"question": ..., "context": ...}.
            """
    )

    @Option(name: .long, help: "Model folder (config.json with a *ForQuestionAnswering architecture, model.safetensors, tokenizer).")
    var model: String

    @Option(name: .long, help: "The question (with --context).")
    var question: String?

    @Option(name: .long, help: "The text that holds the answer (with --question).")
    var context: String?

    @Option(name: .long, help: "JSON Lines file of {\"question\": ..., \"context\": ...}.")
    var jsonl: String?

    @OptionGroup var qa: AnswerOptions

    @OptionGroup var options: DeviceOptions

    func validate() throws {
        let single = question != nil || context != nil
        if single == (jsonl != nil) { throw ValidationError("give --question Q --context C, or --jsonl FILE") }
        if single, question == nil || context == nil { throw ValidationError("--question and --context go together") }
        try qa.validate()
    }

    func run() throws {
        var items: [(question: String, context: String)] = []
        if let question, let context { items = [(question, context)] }
        if let jsonl {
            items = try Console.readJSONLines(jsonl).map { line, value in
                guard let q = value["question"]?.string, let c = value["context"]?.string else {
                    throw CommandError("\(jsonl):\(line): expected {\"question\": ..., \"context\": ...}")
                }
                return (q, c)
            }
            if items.isEmpty { throw CommandError("\(jsonl): no questions") }
        }
        let answerer = try qa.open(model, backend: try options.backend())
        // Questions in groups, so that a large file streams its answers.
        var i = 0
        while i < items.count {
            let group = Array(items[i..<min(items.count, i + 64)])
            for answers in try answerer.answer(group) {
                print(qa.topK > 1 ? JSONValue.array(answers.map(Self.json)).serialized : Self.json(answers[0]).serialized)
            }
            i += group.count
        }
    }

    static func json(_ a: QuestionAnswering.Answer) -> JSONValue {
        .object([
            ("answer", .string(a.text)), ("score", .number(a.score)), ("start", .number(Double(a.start))), ("end", .number(Double(a.end))),
        ])
    }
}

/// The question-answering options of `answer` and `eval squad`.
struct AnswerOptions: ParsableArguments {
    @Option(name: .long, help: "Tokens per window, special tokens included (default 384, at most the model's positions).")
    var maxSeqLen: Int?

    @Option(name: .long, help: "Overlap in tokens between windows of a long context (default min(max-seq-len / 2, 128)).")
    var docStride: Int?

    @Option(name: .long, help: "The longest answer, in tokens.")
    var maxAnswerLen = 15

    @Option(name: .long, help: "Answers per question.")
    var topK = 1

    @Flag(name: .long, help: "Allow the no-answer (SQuAD 2.0): \"answer\": \"\" when it scores best.")
    var handleImpossibleAnswer = false

    func validate() throws {
        if let maxSeqLen, maxSeqLen < 3 { throw ValidationError("--max-seq-len must be at least 3") }
        if let docStride, docStride < 0 { throw ValidationError("--doc-stride must be >= 0") }
        if let docStride, docStride > (maxSeqLen ?? 384) { throw ValidationError("--doc-stride is larger than --max-seq-len") }
        if maxAnswerLen < 1 { throw ValidationError("--max-answer-len must be >= 1") }
        if topK < 1 { throw ValidationError("--top-k must be >= 1") }
    }

    /// The model folder as a question answerer; the default window is 384 tokens or the model's positions.
    func open(_ folder: String, backend: any Backend, handleImpossible: Bool? = nil) throws -> QuestionAnswering {
        let pipeline = try EncoderPipeline(folder: folder, backend: backend, outputs: [.spanLogits], maxSequences: 64,
                                           weightProgress: Console.weightProgress())
        let length = maxSeqLen ?? min(384, pipeline.model.config.maxSequenceLength)
        return try QuestionAnswering(
            pipeline: pipeline,
            options: .init(
                maxSeqLen: length, docStride: docStride, maxAnswerLen: maxAnswerLen,
                topK: topK, handleImpossibleAnswer: handleImpossible ?? handleImpossibleAnswer))
    }
}
