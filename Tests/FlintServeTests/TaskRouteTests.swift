import FlintJSON
import FlintModels
@testable import FlintServe
import FlintTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// TEI's `/predict` and `/rerank` and Flint's `/v1/answer` on the tiny task fixtures: each route
/// answers what `flint classify`, `flint rerank` and `flint answer` compute (`TaskModel`,
/// `QuestionAnswering` on their own plans) within 1e-5 and what the HF pipelines gave (the
/// fixtures' expected.json, 1e-4), the same in a batch as alone, and refuses bad requests by field.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct TaskRouteTests {
    static let texts = ["This movie was great!", "what a terrible, terrible movie", "unbelievable", "Zyx qwv.", "a"]

    /// A fixture folder as `flint serve` opens it.
    static func served(_ fixture: String, limits: BatchLimits = Harness.limits) throws -> EmbeddingScheduler {
        EmbeddingScheduler(pipeline: try ModelFolder.openServedEncoder(TestPaths.fixture(fixture), backend: Harness.backend,
                                                                        maxBatchTokens: limits.maxBatchTokens,
                                                                        maxSequences: limits.maxBatchRequests),
                           limits: limits)
    }

    /// A classifier (4 labels, softmax), a multi-label classifier (sigmoid), a cross-encoder, a
    /// question answerer and a token tagger, each with its own plan.
    static func server(_ options: ServeOptions = ServeOptions(limits: Harness.limits)) throws -> FlintServer {
        let models = try ServedModels([
            ("cls", .encoder(try served("tasks/tiny-seqcls"))), ("multi", .encoder(try served("tasks/tiny-multilabel"))),
            ("rank", .encoder(try served("tasks/tiny-crossencoder"))), ("qa", .encoder(try served("qa/tiny-bert-qa"))),
            ("ner", .encoder(try served("tasks/tiny-ner"))),
        ])
        return FlintServer(models: models, options: options)
    }

    static func classifier(_ fixture: String) throws -> TaskModel {
        try TaskModel.open(TestPaths.fixture("tasks/" + fixture), head: .sequenceClassification, backend: Harness.backend)
    }

    static func expected(_ file: String, _ section: String) throws -> [JSONValue] {
        let bytes = try #require(TestPaths.read(TestPaths.fixture(file)))
        return try #require(try JSONParser.parse(bytes)[section]?.array)
    }

    static func json(_ strings: [String]) -> String { JSONValue.array(strings.map { .string($0) }).serialized }

    /// A `/predict` list: labels best first with scores that match `reference` (label order) within 1e-5.
    static func expectPredictions(_ list: JSONValue?, _ reference: [Double], labels: [String], _ what: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        guard let items = list?.array else {
            Issue.record("\(what): not a list: \(list?.serialized ?? "nil")", sourceLocation: sourceLocation)
            return
        }
        #expect(items.count == labels.count, "\(what): \(items.count) labels", sourceLocation: sourceLocation)
        let scores = items.compactMap { $0["score"]?.number }
        #expect(scores == scores.sorted(by: >), "\(what): not best first", sourceLocation: sourceLocation)
        for item in items {
            guard let label = item["label"]?.string, let i = labels.firstIndex(of: label), let score = item["score"]?.number else {
                Issue.record("\(what): bad item \(item.serialized)", sourceLocation: sourceLocation)
                continue
            }
            #expect(abs(score - reference[i]) <= 1e-5, "\(what) \(label): \(score) vs \(reference[i])", sourceLocation: sourceLocation)
        }
    }

    @Test func predictMatchesClassifyAndThePipeline() async throws {
        let server = try Self.server()
        for (name, fixture) in [("cls", "tiny-seqcls"), ("multi", "tiny-multilabel")] {
            let task = try Self.classifier(fixture)
            let reference = try task.classify(Self.texts.map { ($0, nil) } + [("good", "bad")])
            let hf = try Self.expected("tasks/expected.json", "classify").filter {
                $0["model"]?.string == fixture && $0["top_k"]?.int == 10 && $0["pair"]?.isNull != false
            }
            #expect(hf.count >= 5)
            try await Harness.test(server) { client in
                for (i, text) in Self.texts.enumerated() {
                    let r = try await client.post("/predict", #"{"model": "\#(name)", "inputs": \#(Self.json([text]))}"#)
                    #expect(r.status == .ok, "\(r.text)")
                    Self.expectPredictions(r.json, reference[i], labels: task.labels, "\(name) \(text)")
                    // The same input as a bare string.
                    let bare = try await client.post("/predict", #"{"model": "\#(name)", "inputs": "\#(text)"}"#)
                    #expect(bare.json == r.json, "a string is a one-string array")
                    if let c = hf.first(where: { $0["text"]?.string == text }), let want = c["result"]?.array {
                        for (mine, theirs) in zip(r.json.array ?? [], want) {
                            #expect(mine["label"] == theirs["label"], "\(name) \(text): HF's order")
                            #expect(abs((mine["score"]?.number ?? 9) - (theirs["score"]?.number ?? 0)) <= 1e-4, "\(name) \(text) vs HF")
                        }
                    }
                }
                // A pair is one input: [text, pair].
                let pair = try await client.post("/predict", #"{"model": "\#(name)", "inputs": ["good", "bad"]}"#)
                Self.expectPredictions(pair.json, reference[Self.texts.count], labels: task.labels, "\(name) pair")
            }
        }
    }

    @Test func predictBatchEqualsSingleAndRawScores() async throws {
        let server = try Self.server()
        let task = try Self.classifier("tiny-seqcls")
        let inputs: [(String, String?)] = [(Self.texts[0], nil), ("good", "bad"), (Self.texts[1], nil)]
        let reference = try task.classify(inputs)
        try await Harness.test(server) { client in
            let batch = try await client.post("/predict", #"{"inputs": [["\#(Self.texts[0])"], ["good", "bad"], ["\#(Self.texts[1])"]]}"#)
            #expect(batch.status == .ok, "\(batch.text)")
            let lists = try #require(batch.json.array)
            #expect(lists.count == 3)
            for (i, list) in lists.enumerated() {
                Self.expectPredictions(list, reference[i], labels: task.labels, "batch[\(i)]")
                let strings = [inputs[i].0] + (inputs[i].1.map { [$0] } ?? [])
                let single = try await client.post("/predict", #"{"inputs": \#(Self.json(strings))}"#)
                #expect(same(single.json, list), "batch[\(i)] vs alone: \(single.text) vs \(list.serialized)")
            }
            // raw_scores: the logits, whose softmax is the score.
            let raw = try await client.post("/predict", #"{"inputs": [["\#(Self.texts[0])"], ["good", "bad"]], "raw_scores": true}"#)
            for (i, list) in try #require(raw.json.array).enumerated() {
                let items = try #require(list.array)
                let logits = task.labels.map { l in items.first { $0["label"]?.string == l }?["score"]?.number ?? .nan }
                let soft = ScoreFunction.softmax(logits.map { Float($0) })
                for (a, b) in zip(soft, reference[i]) { #expect(abs(a - b) <= 1e-5, "softmax(raw_scores) vs scores") }
                #expect(logits.contains { $0 < 0 || $0 > 1 } || logits.reduce(0, +) != 1, "raw scores are not probabilities")
            }
        }
    }

    @Test func concurrentRequestsBatchAndAgree() async throws {
        let cls = try Self.served("tasks/tiny-seqcls")
        let qa = try Self.served("qa/tiny-bert-qa")
        let server = FlintServer(models: try ServedModels([("cls", .encoder(cls)), ("qa", .encoder(qa))]),
                                 options: ServeOptions(limits: Harness.limits))
        let question = #""question": "Who built the bridge?", "context": "The old stone bridge was built by King Harald in the year 1120.""#
        try await Harness.test(server) { client in
            let alone = try await Self.texts.asyncMap { try await client.post("/predict", #"{"inputs": "\#($0)"}"#).json }
            let answerAlone = try await client.post("/v1/answer", "{\(question), \"top_k\": 3}").json
            cls.setPaused(true)
            qa.setPaused(true)
            let together = try await withThrowingTaskGroup(of: (Int, JSONValue).self) { group in
                for (i, text) in Self.texts.enumerated() {
                    group.addTask { (i, try await client.post("/predict", #"{"inputs": "\#(text)"}"#).json) }
                }
                for i in 0..<3 { group.addTask { (100 + i, try await client.post("/v1/answer", "{\(question), \"top_k\": 3}").json) } }
                #expect(await eventually { cls.queueDepth == Self.texts.count && qa.queueDepth == 3 })
                cls.setPaused(false)
                qa.setPaused(false)
                var out: [Int: JSONValue] = [:]
                for try await (i, json) in group { out[i] = json }
                return out
            }
            #expect(cls.batchStats.largest == Self.texts.count, "the queued requests ran as one batch")
            #expect(qa.batchStats.largest == 3)
            for i in Self.texts.indices {
                #expect(same(together[i] ?? .null, alone[i]), "\(Self.texts[i]): batched vs alone")
            }
            for i in 0..<3 { #expect(same(together[100 + i] ?? .null, answerAlone), "answer batched vs alone") }
        }
    }

    @Test func rerankMatchesRerankCommand() async throws {
        let server = try Self.server()
        let hf = try #require(try Self.expected("tasks/expected.json", "rerank").first)
        let query = try #require(hf["query"]?.string)
        let texts = try #require(hf["texts"]?.array).compactMap { $0.string }
        let reference = try Self.classifier("tiny-crossencoder").rerank(query: query, texts: texts)
        try await Harness.test(server) { client in
            let r = try await client.post("/rerank", #"{"query": "\#(query)", "texts": \#(Self.json(texts))}"#)
            #expect(r.status == .ok, "\(r.text)")
            let ranks = try #require(r.json.array)
            #expect(ranks.map { $0["index"]?.int } == reference.map(\.index))
            for (mine, want) in zip(ranks, reference) { #expect(abs((mine["score"]?.number ?? 9) - want.score) <= 1e-5) }
            #expect(ranks.allSatisfy { $0["text"] == nil }, "no text unless return_text")
            for (mine, theirs) in zip(ranks, hf["result"]?.array ?? []) {
                #expect(mine["index"] == theirs["index"])
                #expect(abs((mine["score"]?.number ?? 9) - (theirs["score"]?.number ?? 0)) <= 1e-4, "vs sentence-transformers")
            }
            let withText = try await client.post(
                "/rerank", #"{"query": "\#(query)", "texts": \#(Self.json(texts)), "return_text": true, "raw_scores": true}"#)
            for (item, want) in zip(try #require(withText.json.array), reference) {
                #expect(item["index"]?.int == want.index)
                #expect(item["text"]?.string == texts[want.index])
                let logit = try #require(item["score"]?.number)
                #expect(abs(ScoreFunction.sigmoid(logit) - want.score) <= 1e-5, "sigmoid(raw score) is the score")
            }
            // Each text alone scores as in the batch.
            let one = try await client.post("/rerank", #"{"model": "rank", "query": "\#(query)", "texts": ["\#(texts[2])"]}"#)
            let score = try #require(one.json.array?.first?["score"]?.number)
            #expect(abs(score - (reference.first { $0.index == 2 }?.score ?? 9)) <= 1e-5)
        }
    }

    @Test func answerMatchesAnswerCommandAndThePipeline() async throws {
        let server = try Self.server()
        let pipeline = try EncoderPipeline(folder: TestPaths.fixture("qa/tiny-bert-qa"), backend: Harness.backend, outputs: [.spanLogits])
        let cases = try Self.expected("qa/expected.json", "cases").filter { $0["model"]?.string == "qa/tiny-bert-qa" }
        #expect(cases.count >= 6)
        try await Harness.test(server) { client in
            for c in cases {
                let o = try #require(c["options"])
                let options = QuestionAnswering.Options(
                    maxSeqLen: try #require(o["max_seq_len"]?.int), docStride: o["doc_stride"]?.int,
                    maxAnswerLen: try #require(o["max_answer_len"]?.int), topK: try #require(o["top_k"]?.int),
                    handleImpossibleAnswer: o["handle_impossible_answer"]?.bool == true)
                let qa = try QuestionAnswering(pipeline: pipeline, options: options)
                let items = try #require(c["items"]?.array)
                let reference = try qa.answer(items.map { ($0["question"]!.string!, $0["context"]!.string!) })
                for (item, want) in zip(items, reference) {
                    let body = JSONValue.object([("question", item["question"]!), ("context", item["context"]!)] + o.object!).serialized
                    let r = try await client.post("/v1/answer", body)
                    #expect(r.status == .ok, "\(r.text)")
                    let got = options.topK == 1 ? [r.json] : (r.json.array ?? [])
                    #expect(got.count == want.count, "\(body)")
                    for (g, w) in zip(got, want) {
                        #expect(g["answer"]?.string == w.text && g["start"]?.int == w.start && g["end"]?.int == w.end,
                                "\(g.serialized) vs \(w)")
                        #expect(abs((g["score"]?.number ?? 9) - w.score) <= 1e-5)
                    }
                    for (g, theirs) in zip(got, item["answers"]?.array ?? []) {
                        #expect(g["answer"] == theirs["answer"] && g["start"] == theirs["start"],
                                "vs HF: \(g.serialized) \(theirs.serialized)")
                        #expect(abs((g["score"]?.number ?? 9) - (theirs["score"]?.number ?? 0)) <= 1e-4)
                    }
                }
            }
        }
    }

    @Test func infoNamesTheModelType() async throws {
        let server = try Self.server()
        try await Harness.test(server) { client in
            let info = try await client.get("/info").json
            let classifier = try #require(info["model_type"]?["classifier"])
            #expect(classifier["id2label"]?["0"]?.string == "negative")
            #expect(classifier["label2id"]?["mixed"]?.int == 3)
            #expect(info["max_input_length"]?.int == 64)
        }
        let rerankFirst = FlintServer(models: try ServedModels([("rank", .encoder(try Self.served("tasks/tiny-crossencoder")))]),
                                      options: ServeOptions(limits: Harness.limits))
        try await Harness.test(rerankFirst) { client in
            let info = try await client.get("/info").json
            #expect(info["model_type"]?["reranker"]?["id2label"]?.object?.count == 1)
        }
        let nerFirst = FlintServer(models: try ServedModels([("ner", .encoder(try Self.served("tasks/tiny-ner")))]),
                                   options: ServeOptions(limits: Harness.limits))
        try await Harness.test(nerFirst) { client in
            let info = try await client.get("/info").json
            #expect(info["model_type"]?["embedding"]?["pooling"]?.string == "mean")
            let r = try await client.post("/predict", #"{"inputs": "x"}"#)
            #expect(r.status == .notFound)
            #expect(r.json["error"]?.string?.contains("no model served here can answer /predict") == true, "\(r.text)")
        }
    }

    @Test func refusals() async throws {
        let small = BatchLimits(maxBatchTokens: 4096, maxBatchRequests: 4, maxQueue: 64)
        let server = try Self.server(ServeOptions(limits: small, maxBodyBytes: 4096))
        let long = Array(repeating: "word", count: 100).joined(separator: " ")
        try await Harness.test(server) { client in
            func expectTEI(_ path: String, _ body: String, _ status: HTTPResponse.Status, _ fragment: String,
                           sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let r = try await client.post(path, body)
                #expect(r.status == status, "\(path) \(body): \(r.status) \(r.text)", sourceLocation: sourceLocation)
                #expect(r.json["error"]?.string?.contains(fragment) == true, "\(path) \(body): \(r.text)", sourceLocation: sourceLocation)
                #expect(r.json["error_type"]?.string != nil, sourceLocation: sourceLocation)
            }
            // The model lacks the head: 404 saying what it is.
            try await expectTEI("/predict", #"{"model": "qa", "inputs": "x"}"#, .notFound, "BertForQuestionAnswering")
            try await expectTEI("/predict", #"{"model": "ner", "inputs": "x"}"#, .notFound, "BertForTokenClassification")
            try await expectTEI("/rerank", #"{"model": "cls", "query": "q", "texts": ["x"]}"#, .notFound, "with 4 labels")
            try await expectTEI("/predict", #"{"model": "nope", "inputs": "x"}"#, .notFound, "not served here")
            // Malformed inputs: 422 naming the field (TEI), 400 for values.
            try await expectTEI("/predict", #"{}"#, .unprocessableContent, "inputs")
            try await expectTEI("/predict", #"{"inputs": ["a", "b", "c"]}"#, .unprocessableContent, "inputs")
            try await expectTEI("/predict", #"{"inputs": [["a"], ["a", "b", "c"]]}"#, .unprocessableContent, "inputs[1]")
            try await expectTEI("/predict", #"{"inputs": [["a"], "b"]}"#, .unprocessableContent, "inputs[1]")
            try await expectTEI("/predict", #"{"inputs": 5}"#, .unprocessableContent, "inputs")
            try await expectTEI("/predict", #"{"inputs": [[]]}"#, .unprocessableContent, "inputs[0]")
            try await expectTEI("/predict", #"{"inputs": "x", "raw_scores": "yes"}"#, .unprocessableContent, "raw_scores")
            try await expectTEI("/rerank", #"{"texts": ["x"]}"#, .unprocessableContent, "query")
            try await expectTEI("/rerank", #"{"query": "q", "texts": "x"}"#, .unprocessableContent, "texts")
            try await expectTEI("/rerank", #"{"query": "q", "texts": [1]}"#, .unprocessableContent, "texts[0]")
            try await expectTEI("/rerank", #"{"query": "q", "texts": []}"#, .badRequest, "texts cannot be empty")
            // Too long without truncate: 400 naming the limit; with it, an answer.
            try await expectTEI("/predict", #"{"inputs": "\#(long)"}"#, .badRequest, "limit of 64 tokens")
            try await expectTEI("/rerank", #"{"query": "q", "texts": ["x", "\#(long)"]}"#, .badRequest, "texts[1]")
            let cut = try await client.post("/predict", #"{"inputs": "\#(long)", "truncate": true}"#)
            #expect(cut.status == .ok, "\(cut.text)")
            let cutPair = try await client.post("/rerank", #"{"query": "q", "texts": ["\#(long)"], "truncate": true}"#)
            #expect(cutPair.status == .ok, "\(cutPair.text)")
            // More inputs than max_client_batch_size (--max-batch-requests): 413.
            try await expectTEI("/predict", #"{"inputs": [["a"], ["b"], ["c"], ["d"], ["e"]]}"#, .contentTooLarge,
                                "batch size 5 > maximum allowed batch size 4")
            try await expectTEI("/rerank", #"{"query": "q", "texts": ["a", "b", "c", "d", "e"]}"#, .contentTooLarge, "batch size 5")
            try await expectTEI("/predict", #"{"inputs": "\#(String(repeating: "x ", count: 3000))"}"#, .contentTooLarge, "4096 bytes")

            // /v1/answer answers errors in OpenAI's shape, naming the field.
            func expectOpenAI(_ body: String, _ status: HTTPResponse.Status, param: String,
                              sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let r = try await client.post("/v1/answer", body)
                #expect(r.status == status, "\(body): \(r.status) \(r.text)", sourceLocation: sourceLocation)
                #expect(r.openAIError?.param == param, "\(body): \(r.text)", sourceLocation: sourceLocation)
            }
            let qc = #""question": "Who?", "context": "Flint is a city.""#
            try await expectOpenAI(#"{"model": "cls", \#(qc)}"#, .notFound, param: "model")
            try await expectOpenAI(#"{"context": "c"}"#, .badRequest, param: "question")
            try await expectOpenAI(#"{"question": "q"}"#, .badRequest, param: "context")
            try await expectOpenAI(#"{"question": "", "context": "c"}"#, .badRequest, param: "question")
            try await expectOpenAI(#"{"question": 3, "context": "c"}"#, .badRequest, param: "question")
            try await expectOpenAI(#"{\#(qc), "top_k": 0}"#, .badRequest, param: "top_k")
            try await expectOpenAI(#"{\#(qc), "max_answer_len": 0}"#, .badRequest, param: "max_answer_len")
            try await expectOpenAI(#"{\#(qc), "max_seq_len": 65}"#, .badRequest, param: "max_seq_len")
            try await expectOpenAI(#"{\#(qc), "max_seq_len": 40, "doc_stride": 41}"#, .badRequest, param: "doc_stride")
            try await expectOpenAI(#"{\#(qc), "handle_impossible_answer": 1}"#, .badRequest, param: "handle_impossible_answer")
            // A question that leaves no room for the context in a window.
            try await expectOpenAI(#"{"question": "\#(long)", "context": "c", "max_seq_len": 16}"#, .badRequest, param: "context")
            let ok = try await client.post("/v1/answer", #"{\#(qc)}"#)
            #expect(ok.status == .ok, "\(ok.text)")
            #expect(ok.json["answer"]?.string != nil && ok.json["start"]?.int != nil)
        }
    }
}

/// Same keys in the same order, strings and integers equal, other numbers within `tolerance`.
func same(_ a: JSONValue, _ b: JSONValue, tolerance: Double = 1e-5) -> Bool {
    switch (a, b) {
    case let (.object(x), .object(y)):
        return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && same($0.value, $1.value, tolerance: tolerance) }
    case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1, tolerance: tolerance) }
    case let (.number(x), .number(y)): return abs(x - y) <= tolerance
    default: return a == b
    }
}

extension JSONValue {
    fileprivate var number: Double? {
        if case let .number(d) = self { return d }
        return nil
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}
