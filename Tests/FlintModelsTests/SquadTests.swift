import FlintCPU
import FlintCore
import FlintJSON
import FlintModels
import FlintTestSupport
import Testing

/// `Squad.metrics` against the official evaluate-v1.1.py / evaluate-v2.0.py logic (re-implemented in
/// `scripts/gen_squad_fixtures.py`) on SQuAD-format files made for the test: hand-made predictions
/// (normalization, partial overlaps, empty and impossible answers), and the predictions of the
/// question answerer itself, which must equal transformers 4.57's pipeline's and score the same.
@Suite("SQuAD evaluation")
struct SquadTests {
    static func load(_ name: String) throws -> JSONValue {
        try JSONParser.parse(try #require(TestPaths.read(TestPaths.fixture("squad/" + name)), "missing fixture squad/\(name)"))
    }

    static func expectMetrics(_ got: [(key: String, value: Double)], _ want: JSONValue, _ label: String) throws {
        let wanted = try #require(want.object)
        #expect(got.map(\.key) == wanted.map(\.key), "\(label): metric names")
        for (key, value) in got {
            guard case let .number(w)? = want[key] else { Issue.record("\(label): \(key) missing"); continue }
            #expect(abs(value - w) <= 1e-9, "\(label) \(key): \(value) vs official \(w)")
        }
    }

    @Test(arguments: ["v1.1", "v2.0"])
    func metricsMatchTheOfficialScript(_ version: String) throws {
        let squad = try Squad(json: try Self.load("squad-\(version).json"), path: "squad-\(version).json")
        #expect(squad.isVersion2 == (version == "v2.0"))
        #expect(squad.questions.contains { $0.answers.count >= 2 }, "several answers per question")
        let predictions = try #require(try Self.load("predictions-\(version).json").object)
        let byId = Dictionary(uniqueKeysWithValues: predictions.map { ($0.key, $0.value.string!) })
        try Self.expectMetrics(squad.metrics(byId), try #require(try Self.load("expected.json")[version]), version)
    }

    @Test func normalizationIsTheOfficialOne() {
        #expect(Squad.normalize("The  King, HARALD!") == "king harald")
        #expect(Squad.normalize("an apple a day") == "apple day")
        #expect(Squad.normalize("theatre and Anna") == "theatre and anna", "articles only as whole words")
        #expect(Squad.normalize("Ærøskøbing, «beside»") == "ærøskøbing «beside»", "only ASCII punctuation is removed")
    }

    @Test(arguments: ["v1.1", "v2.0"])
    func answererPredictionsScoreAsThePipelines(_ version: String) throws {
        let expected = try #require(try Self.load("expected.json")["pipeline"])
        let squad = try Squad(json: try Self.load("squad-\(version).json"), path: "squad-\(version).json")
        let pipeline = try EncoderPipeline(
            folder: TestPaths.fixture(try #require(expected["model"]?.string)), backend: CPUBackend(threads: 2),
            outputs: [.spanLogits], maxBatchTokens: 512, maxSequences: 16)
        let qa = try QuestionAnswering(
            pipeline: pipeline,
            options: .init(
                maxSeqLen: expected["max_seq_len"]!.int!, docStride: expected["doc_stride"]!.int!,
                handleImpossibleAnswer: squad.isVersion2))
        var predictions: [String: String] = [:]
        for (q, answers) in zip(squad.questions, try qa.answer(squad.questions.map { ($0.question, $0.context) })) {
            predictions[q.id] = answers[0].text
        }
        let want = try #require(expected[version])
        #expect(
            predictions == Dictionary(uniqueKeysWithValues: try #require(want["predictions"]?.object).map { ($0.key, $0.value.string!) }))
        try Self.expectMetrics(squad.metrics(predictions), try #require(want["metrics"]), "pipeline \(version)")
    }

    @Test func badFilesAreRefusedByName() {
        for (text, mention) in [
            (#"{"data": 3}"#, "expected {\"version\""), (#"{"data": [{"paragraphs": [{"context": "x"}]}]}"#, "qas"),
            (
                #"{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "a", "question": "q", "answers": []},"#
                    + #"{"id": "a", "question": "q", "answers": []}]}]}]}"#, "appears twice"
            ),
        ] {
            do {
                _ = try Squad(json: try JSONParser.parse(Array(text.utf8)), path: "bad.json")
                Issue.record("\(text) was accepted")
            } catch let e as FlintError {
                #expect(e.description.contains("bad.json") && e.description.contains(mention), "\(e)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }
}
