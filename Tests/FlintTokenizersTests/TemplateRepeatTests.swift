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

    /// Each repeat multiplies the overflowing windows (HF: 35 windows for A named twice, 215 for three
    /// times, 1295 for four, on a 16-token text at max length 4): the predicted count must equal what
    /// `process` builds, and a count past the limit is refused before anything is built.
    @Test func overflowWindowsArePredictedAndBounded() throws {
        let tokenizer = try Tokenizer.load(Self.tokenizerPath)
        let template = try #require(tokenizer.postProcessor as? TemplateProcessing)
        func windows(_ count: Int) -> Encoding {
            var e = Encoding()
            e.append(id: 9, typeId: 0, span: .empty, special: false, sequence: 0)
            e.overflowing = Array(repeating: e, count: count)
            return e
        }
        for (a, b) in [(0, 0), (3, 0), (0, 2), (3, 2), (5, 4)] {
            let built = template.process(windows(a), windows(b), addSpecialTokens: true) { _, _, _ in nil }
            #expect(template.overflowWindows(first: a, second: b) == built.overflowing.count, "\(a) and \(b) windows")
            let plain = ConcatenatingProcessor().process(windows(a), windows(b), addSpecialTokens: true) { _, _, _ in nil }
            #expect(ConcatenatingProcessor().overflowWindows(first: a, second: b) == plain.overflowing.count)
        }

        var repeated = template
        repeated.pair = Array(repeating: TemplateProcessing.Piece.sequence(0, typeId: 0), count: 12) + [.sequence(1, typeId: 1)]
        #expect(repeated.overflowWindows(first: 4, second: 4) > Tokenizer.maxOverflowWindows)
        let hostile = Tokenizer(normalizer: tokenizer.normalizer, preTokenizer: tokenizer.preTokenizer, model: tokenizer.model,
                                postProcessor: repeated, decoder: tokenizer.decoder, addedTokens: tokenizer.addedTokens,
                                source: "repeated template")
        Expect.tokenizerError(["overflowing windows", "limit is \(Tokenizer.maxOverflowWindows)"]) {
            _ = try hostile.encode(String(repeating: "a b ", count: 8), pair: "b a b a", truncation: Truncation(maxLength: 4))
        }
    }
}
