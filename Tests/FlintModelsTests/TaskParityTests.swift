import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintModels
import FlintTestSupport
import Testing

/// `flint classify`, `rerank` and `tag` against transformers 5.23's `text-classification` and
/// `token-classification` pipelines on seeded tiny random BERTs (Tests/Fixtures/tasks, written by
/// scripts/gen_task_fixtures.py): labels, words and offsets exact, scores within 1e-4.
@Suite("Task pipelines parity")
struct TaskParityTests {
    static let backend = CPUBackend(threads: 2)
    static let tolerance = 1e-4

    static func expected(_ section: String) throws -> [JSONValue] {
        let bytes = try #require(TestPaths.read(TestPaths.fixture("tasks/expected.json")))
        return try #require(try JSONParser.parse(bytes)[section]?.array)
    }

    static func open(_ name: String, _ head: EncoderHead) throws -> TaskModel {
        try TaskModel.open(TestPaths.fixture("tasks/" + name), head: head, backend: backend)
    }

    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= Self.tolerance }

    @Test(arguments: ["tiny-seqcls", "tiny-multilabel", "tiny-crossencoder"])
    func classification(_ name: String) throws {
        let model = try Self.open(name, .sequenceClassification)
        #expect(model.scoreFunction == (name == "tiny-seqcls" ? .softmax : .sigmoid))
        let cases = try Self.expected("classify").filter { $0["model"]?.string == name }
        #expect(cases.count >= 20)
        let scores = try model.classify(cases.map { ($0["text"]!.string!, $0["pair"]?.string) })
        for (c, s) in zip(cases, scores) {
            let context = "\(name) \(c["text"]!.serialized) top_k \(c["top_k"]!.serialized)"
            let result = c["result"]!
            if let k = c["top_k"]?.int {
                let mine = LabelScore.ranked(s, labels: model.labels, topK: k)
                let theirs = result.array!
                #expect(mine.map(\.label) == theirs.map { $0["label"]!.string! }, "\(context)")
                for (m, t) in zip(mine, theirs) {
                    #expect(close(m.score, t["score"]!.number!), "\(context): \(m.score) vs \(t["score"]!.number!)")
                }
            } else {
                let best = try #require(LabelScore.best(s, labels: model.labels))
                #expect(best.label == result["label"]!.string!, "\(context)")
                #expect(close(best.score, result["score"]!.number!), "\(context): \(best.score) vs \(result["score"]!.number!)")
            }
        }
    }

    @Test func reranking() throws {
        let model = try Self.open("tiny-crossencoder", .sequenceClassification)
        let cases = try Self.expected("rerank")
        #expect(!cases.isEmpty)
        for c in cases {
            let ranked = try model.rerank(query: c["query"]!.string!, texts: c["texts"]!.array!.map { $0.string! })
            let theirs = c["result"]!.array!
            #expect(ranked.map(\.index) == theirs.map { $0["index"]!.int! })
            for (m, t) in zip(ranked, theirs) { #expect(close(m.score, t["score"]!.number!)) }
        }
        // A model with several labels is not a cross-encoder.
        let several = try Self.open("tiny-seqcls", .sequenceClassification)
        #expect(throws: FlintError.self) { _ = try several.rerank(query: "q", texts: ["a"]) }
    }

    @Test(arguments: Aggregation.allCases)
    func tagging(_ aggregation: Aggregation) throws {
        let model = try Self.open("tiny-ner", .tokenClassification)
        let cases = try Self.expected("tag").filter { $0["aggregation"]?.string == aggregation.rawValue }
        #expect(cases.count >= 4)
        let results = try model.tag(cases.map { $0["text"]!.string! }, aggregation: aggregation)
        for (c, mine) in zip(cases, results) {
            let theirs = c["result"]!.array!
            let context = "\(aggregation) \(c["text"]!.serialized)"
            let key = aggregation == .none ? "entity" : "entity_group"
            #expect(mine.map(\.label) == theirs.map { $0[key]!.string! }, "\(context)")
            #expect(mine.map(\.word) == theirs.map { $0["word"]!.string! }, "\(context)")
            #expect(mine.map(\.start) == theirs.map { $0["start"]!.int! }, "\(context)")
            #expect(mine.map(\.end) == theirs.map { $0["end"]!.int! }, "\(context)")
            #expect(mine.map(\.index) == theirs.map { $0["index"]?.int }, "\(context)")
            for (m, t) in zip(mine, theirs) { #expect(close(m.score, t["score"]!.number!), "\(context): \(m.word)") }
        }
    }

    @Test func wrongHeadIsRefusedByName() {
        do {
            _ = try Self.open("tiny-seqcls", .tokenClassification)
            Issue.record("a sequence-classification folder opened for tagging")
        } catch {
            #expect("\(error)".contains("needs a BertForTokenClassification checkpoint, the folder holds BertForSequenceClassification"))
        }
    }
}

extension JSONValue {
    var number: Double? {
        if case let .number(d) = self { return d }
        return nil
    }
}
