import FlintCPU
import FlintCore
import FlintJSON
import FlintModels
import FlintTestSupport
import Testing

/// `QuestionAnswering` against transformers 4.57's question-answering pipeline (fixtures written by
/// `scripts/gen_qa_fixtures.py`): tiny random BERT and DistilBERT QA models, contexts of one to eight
/// windows, top-k lists, max-answer-len limits and the no-answer. Texts and spans must be equal,
/// scores within 1e-4.
@Suite("Question answering parity with the transformers 4.57 pipeline")
struct QuestionAnsweringTests {
    static let backend = CPUBackend(threads: 2)

    static func expected() throws -> JSONValue {
        try JSONParser.parse(try #require(TestPaths.read(TestPaths.fixture("qa/expected.json")), "missing fixture qa/expected.json"))
    }

    @Test(arguments: ["qa/tiny-bert-qa", "qa/tiny-distilbert-qa"])
    func answersMatchThePipeline(_ model: String) throws {
        let pipeline = try EncoderPipeline(
            folder: TestPaths.fixture(model), backend: Self.backend, outputs: [.spanLogits], maxBatchTokens: 512,
            maxSequences: 16)
        var compared = 0, noAnswers = 0, multiWindow = 0
        for c in try #require(Self.expected()["cases"]?.array) where c["model"]?.string == model {
            let o = try #require(c["options"])
            let options = QuestionAnswering.Options(
                maxSeqLen: o["max_seq_len"]!.int!, docStride: o["doc_stride"]!.int!,
                maxAnswerLen: o["max_answer_len"]!.int!, topK: o["top_k"]!.int!,
                handleImpossibleAnswer: o["handle_impossible_answer"]!.bool!)
            let qa = try QuestionAnswering(pipeline: pipeline, options: options)
            let items = try #require(c["items"]?.array)
            let got = try qa.answer(items.map { ($0["question"]!.string!, $0["context"]!.string!) })
            for (item, answers) in zip(items, got) {
                let want = try #require(item["answers"]?.array)
                let label = "\(model) \(o.serialized) \(item["question"]!.string!)"
                #expect(answers.count == want.count, "\(label): \(answers.count) answers, HF \(want.count)")
                for (a, w) in zip(answers, want) {
                    #expect(
                        a.text == w["answer"]?.string && a.start == w["start"]?.int && a.end == w["end"]?.int,
                        "\(label): \(a) vs HF \(w.serialized)")
                    guard case let .number(score)? = w["score"] else { Issue.record("\(label): no score"); continue }
                    #expect(abs(a.score - score) <= 1e-4, "\(label): score \(a.score) vs HF \(score)")
                    compared += 1
                }
                if want.first?["answer"]?.string == "" { noAnswers += 1 }
                if try qa.windows(question: item["question"]!.string!, context: item["context"]!.string!).count > 1 { multiWindow += 1 }
            }
        }
        #expect(compared > 50 && multiWindow > 0, "\(compared) answers compared, \(multiWindow) multi-window items")
        if model.contains("distil") { #expect(noAnswers > 0, "the fixture has questions whose best answer is the no-answer") }
    }

    @Test func onlyQuestionAnsweringModelsAnswer() throws {
        let pipeline = try EncoderPipeline(folder: TestPaths.fixture("qa/tiny-bert-qa"), backend: Self.backend, outputs: [.spanLogits])
        #expect(throws: FlintError.self) { _ = try QuestionAnswering(pipeline: pipeline, options: .init(maxSeqLen: 65)) }
        #expect(throws: FlintError.self) { _ = try QuestionAnswering(pipeline: pipeline, options: .init(maxSeqLen: 40, docStride: 41)) }
        let qa = try QuestionAnswering(pipeline: pipeline, options: .init(maxSeqLen: 40))
        #expect(qa.options.docStride == 20, "the pipeline's default stride: min(max_seq_len / 2, 128)")
        #expect(throws: FlintError.self) { _ = try qa.answer([("", "context")]) }
    }
}
