import FlintJSON
import FlintTestSupport
import Testing

/// `flint classify`, `rerank` and `tag` end to end: the printed JSON against the pipelines'
/// outputs in Tests/Fixtures/tasks/expected.json (the library is checked case by case in
/// TaskParityTests), and the refusals.
@Suite("flint classify, rerank, tag")
struct TaskCLITests {
    static func folder(_ name: String) -> String { TestPaths.fixture("tasks/" + name) }

    static func expected(_ section: String) throws -> [JSONValue] {
        let bytes = try #require(TestPaths.read(TestPaths.fixture("tasks/expected.json")))
        return try #require(try JSONParser.parse(bytes)[section]?.array)
    }

    /// Every line of stdout as JSON.
    static func lines(_ arguments: [String]) throws -> [JSONValue]? {
        guard let r = try HostileCLITests.flint(arguments) else { return nil }
        #expect(r.status == 0, "flint \(arguments.joined(separator: " ")): \(r.stderr.prefix(500))")
        return try r.stdout.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
    }

    /// Same keys in the same order, strings and integers equal, other numbers within 1e-4.
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && same($0.value, $1.value) }
        case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case let (.number(x), .number(y)): return abs(x - y) <= 1e-4
        default: return a == b
        }
    }

    @Test func classify() throws {
        let cases = try Self.expected("classify").filter { $0["model"]?.string == "tiny-seqcls" && $0["pair"]?.isNull != false }
        for topK in [nil, 2] as [Int?] {
            let chosen = cases.filter { $0["top_k"]?.int == topK }
            #expect(chosen.count >= 5)
            let args = ["classify", "--model", Self.folder("tiny-seqcls"), "--device", "cpu"] + (topK.map { ["--top-k", "\($0)"] } ?? [])
            guard let out = try Self.lines(args + chosen.map { $0["text"]!.string! }) else { return }
            #expect(out.count == chosen.count)
            for (mine, c) in zip(out, chosen) { #expect(Self.same(mine, c["result"]!), "\(mine.serialized) vs \(c["result"]!.serialized)") }
        }
    }

    @Test func classifyPairsFromJSONLines() throws {
        let cases = try Self.expected("classify").filter { $0["model"]?.string == "tiny-multilabel" && $0["pair"]?.string != nil
            && $0["top_k"]?.int == 10 }
        #expect(!cases.isEmpty)
        let file = TestPaths.temporaryFolder() + "/pairs.jsonl"
        TestPaths.write(cases.map { JSONValue.object([("text", $0["text"]!), ("pair", $0["pair"]!)]).serialized + "\n" }.joined(), to: file)
        let args = ["classify", "--model", Self.folder("tiny-multilabel"), "--jsonl", file, "--top-k", "10"]
        guard let out = try Self.lines(args) else { return }
        #expect(out.count == cases.count)
        for (mine, c) in zip(out, cases) { #expect(Self.same(mine, c["result"]!), "\(mine.serialized) vs \(c["result"]!.serialized)") }
    }

    @Test func rerank() throws {
        let c = try #require(try Self.expected("rerank").first)
        let args = ["rerank", "--model", Self.folder("tiny-crossencoder"), "--query", c["query"]!.string!]
            + c["texts"]!.array!.map { $0.string! }
        guard let out = try Self.lines(args) else { return }
        #expect(out.count == 1)
        #expect(out.first.map { Self.same($0, c["result"]!) } == true, "\(out.first?.serialized ?? "") vs \(c["result"]!.serialized)")
    }

    @Test(arguments: ["none", "average"])
    func tag(_ aggregation: String) throws {
        let cases = try Self.expected("tag").filter { $0["aggregation"]?.string == aggregation }
        let args = ["tag", "--model", Self.folder("tiny-ner"), "--aggregation", aggregation, "--threads", "1"]
        guard let out = try Self.lines(args + cases.map { $0["text"]!.string! }) else { return }
        #expect(out.count == cases.count)
        for (mine, c) in zip(out, cases) { #expect(Self.same(mine, c["result"]!), "\(mine.serialized) vs \(c["result"]!.serialized)") }
    }

    @Test func refusals() throws {
        try HostileCLITests.expectRefusal(["tag", "--model", Self.folder("tiny-seqcls"), "x"],
                                          ["needs a BertForTokenClassification checkpoint"])
        try HostileCLITests.expectRefusal(["rerank", "--model", Self.folder("tiny-seqcls"), "--query", "q", "x"],
                                          ["a reranker has one label", "has 4"])
        try HostileCLITests.expectRefusal(["tag", "--model", Self.folder("tiny-ner"), "--aggregation", "mean", "x"],
                                          ["--aggregation must be none, simple, first, average, max"], status: 64)
        try HostileCLITests.expectRefusal(["classify", "--model", Self.folder("tiny-seqcls")], ["give TEXT... or --jsonl FILE"], status: 64)
        try HostileCLITests.expectRefusal(["classify", "--model", Self.folder("tiny-seqcls"), "--top-k", "0", "x"],
                                          ["--top-k must be >= 1"], status: 64)
        let file = TestPaths.temporaryFolder() + "/bad.jsonl"
        TestPaths.write("{\"text\": \"a\", \"pair\": \"b\"}\n", to: file)
        try HostileCLITests.expectRefusal(["tag", "--model", Self.folder("tiny-ner"), "--jsonl", file], [file + ":1", "takes no \"pair\""])
    }
}
