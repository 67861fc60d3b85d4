import FlintJSON
import FlintTestSupport
import Testing

@testable import FlintTokenizers
/// A TemplateProcessing pair template that names sequence A twice (`[CLS] $A [CLS] $A [SEP] $B [SEP]`),
/// found by the tokenizer-json fuzz target: truncation budgets A once and the template repeats it, so
/// the encoding is longer than the maximum length. HF (tokenizers 0.23.3) does exactly this; Flint
/// must give HF's ids, windows and refusals (scripts/gen_template_repeat_fixture.py).
@Suite("Template that repeats a sequence")
struct TemplateRepeatTests {
    static let tokenizerPath = TestPaths.fixture("tokenizers/template_repeat_tokenizer.json")

    @Test func matchesHuggingFace() throws {
        let tokenizer = try Tokenizer.load(Self.tokenizerPath)
        let document = try #require(TestPaths.read(TestPaths.fixture("tokenizers/template_repeat_truncation.json")))
        let cases = try #require(try JSONParser.parse(document)["cases"]?.array)
        #expect(cases.count >= 100, "the fixture holds too few cases")
        // The fixture must hold the finding itself: HF answers longer than the limit.
        let longer = cases.filter { c in
            guard c["error"]?.bool != true, let max = c["truncation"]?["max_length"]?.int else { return false }
            return (c["ids"]?.array?.count ?? 0) > max
        }
        #expect(longer.count >= 20, "only \(longer.count) HF answers exceed max_length")
        let parity = HuggingFaceParityTests()
        let fixture = HuggingFaceParityTests.Fixture(file: "template_repeat_truncation.json", tokenizer: "template_repeat_tokenizer.json") {
            try Tokenizer.load($0)
        }
        var failures = 0
        for (n, c) in cases.enumerated() where failures < 8 {
            if !parity.check(c, index: n, tokenizer: tokenizer, fixture: fixture) { failures += 1 }
        }
    }

    @Test func templateReportsTheRepeat() throws {
        let tokenizer = try Tokenizer.load(Self.tokenizerPath)
        let template = try #require(tokenizer.postProcessor as? TemplateProcessing)
        #expect(template.repeatsSequence(isPair: true))
        #expect(!template.repeatsSequence(isPair: false))
        #expect(!TemplateProcessing.bert(cls: 2, sep: 3).repeatsSequence(isPair: true))
    }

    /// The fuzz input itself misspells fields HF requires ("ad@ed_tokens", "hanled_chinese_chars"):
    /// HF refuses it, and so does Flint now, naming the first bad key.
    @Test func fuzzInputIsRefused() throws {
        let path = TestPaths.repositoryRoot + "/Fuzz/corpus/tokenizer-json/template-repeat-misspelled"
        Expect.tokenizerError([path, "unknown top-level key \"ad@ed_tokens\"", "added_tokens"]) { _ = try Tokenizer.load(path) }
    }
}
