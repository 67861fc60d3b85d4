import FlintJSON
import FlintTestSupport
import Testing

@testable import FlintTokenizers
/// `encodeIds` against `encode` (whose parity with Hugging Face the parity suite checks) on every case of the parity fixtures: WordPiece,
/// byte-level BPE (GPT-2, RoBERTa), Unigram (XLM-R), truncation with every strategy, direction and stride,
/// pairs, refusals, and the template that repeats an input.
@Suite("Ids-only encoding")
struct IdsOnlyEncodingTests {
    static let templateRepeat = HuggingFaceParityTests.Fixture(
        file: "template_repeat_truncation.json", tokenizer: "template_repeat_tokenizer.json") { try Tokenizer.load($0) }
    static let fixtures = HuggingFaceParityTests.fixtures + [templateRepeat]

    struct Tally {
        var cases = 0, pairs = 0, cut = 0, refused = 0
    }

    @Test(arguments: fixtures)
    func idsPathEqualsFullPath(_ fixture: HuggingFaceParityTests.Fixture) throws {
        let asset = fixture.file == Self.templateRepeat.file ? TemplateRepeatTests.tokenizerPath : TestPaths.asset(fixture.tokenizer)
        guard let path = asset else {
            print("skipped \(fixture.testDescription): \(TestPaths.missingAssetsReason)")
            return
        }
        let tokenizer = try fixture.load(path)
        let document = try #require(TestPaths.read(TestPaths.fixture("tokenizers/" + fixture.file)))
        let cases = try #require(try JSONParser.parse(document)["cases"]?.array)
        #expect(cases.count >= 40, "fixture \(fixture.file) holds too few cases")
        var tally = Tally()
        var failures = 0
        for (n, c) in cases.enumerated() where failures < 8 {
            for special in [true, false] where !compare(c, index: n, addSpecialTokens: special, tokenizer, fixture, &tally) {
                failures += 1
            }
        }
        #expect(tally.cases == 2 * cases.count)
        if fixture.file.contains("truncation") {
            // The comparison must have covered what the ids path could get wrong.
            #expect(tally.pairs > 0 && tally.cut > 0 && tally.refused > 0,
                    "\(fixture.file): \(tally.pairs) pairs, \(tally.cut) truncated, \(tally.refused) refused")
        }
    }

    /// Returns false (after recording an issue) when the two paths differ on the case.
    func compare(_ c: JSONValue, index: Int, addSpecialTokens: Bool, _ tokenizer: Tokenizer,
                 _ fixture: HuggingFaceParityTests.Fixture, _ tally: inout Tally) -> Bool
    {
        let text = c["text"]!.string!
        let pair = c["pair"]?.string
        let truncation = HuggingFaceParityTests.truncation(of: c)
        let context = "\(fixture.file) case \(index) (special tokens \(addSpecialTokens)): text \(JSONValue.string(text).serialized)"
            + (pair.map { " pair \(JSONValue.string($0).serialized)" } ?? "") + (truncation.map { " \($0)" } ?? "")
        tally.cases += 1
        if pair != nil { tally.pairs += 1 }
        let full = Result { () throws(TokenizerError) in
            try tokenizer.encode(text, pair: pair, addSpecialTokens: addSpecialTokens, truncation: truncation)
        }
        let lean = Result { () throws(TokenizerError) in
            try tokenizer.encodeIds(text, pair: pair, addSpecialTokens: addSpecialTokens, truncation: truncation)
        }
        switch (full, lean) {
        case let (.failure(a), .failure(b)):
            tally.refused += 1
            guard "\(a)" == "\(b)" else {
                Issue.record("the paths refuse differently: \(a) / \(b): \(context)")
                return false
            }
            return true
        case let (.success(e), .success(ids)):
            var ok = Expect.sameSequence(ids.ids, e.ids, "ids", context: context)
            ok = ok && Expect.sameSequence(ids.typeIds, e.typeIds, "type ids", context: context)
            if ok, ids.truncated != !e.overflowing.isEmpty {
                Issue.record("truncated is \(ids.truncated) but the encoding has \(e.overflowing.count) overflowing windows: \(context)")
                ok = false
            }
            if ids.truncated { tally.cut += 1 }
            return ok
        case let (.failure(a), .success(ids)):
            Issue.record("encode refuses (\(a)) but encodeIds gives \(ids.ids): \(context)")
            return false
        case let (.success(e), .failure(b)):
            Issue.record("encodeIds refuses (\(b)) but encode gives \(e.ids): \(context)")
            return false
        }
    }

    @Test func idsPathSkipsTheDetail() throws {
        guard let path = TestPaths.asset("roberta-bpe/tokenizer.json") else {
            print("skipped: \(TestPaths.missingAssetsReason)")
            return
        }
        // RoBERTa trims byte-level offsets with each token's string; the ids path must build none of it.
        let tokenizer = try Tokenizer.load(path)
        var scratch = ModelScratch()
        let lean = try tokenizer.encode(" Hello  world, again", pair: "and more", addSpecialTokens: true,
                                        truncation: Truncation(maxLength: 10, stride: 1), detailed: false, scratch: &scratch)
        let full = try tokenizer.encode(" Hello  world, again", pair: "and more", truncation: Truncation(maxLength: 10, stride: 1))
        #expect(lean.ids == full.ids && lean.typeIds == full.typeIds && lean.count == 10)
        #expect(lean.offsets.isEmpty && lean.specialTokensMask.isEmpty && lean.sequenceIds.isEmpty && lean.wordIds.isEmpty)
        #expect(lean.overflowing.count == full.overflowing.count && !full.overflowing.isEmpty)
        #expect(zip(lean.overflowing, full.overflowing).allSatisfy { $0.ids == $1.ids && $0.typeIds == $1.typeIds && $0.offsets.isEmpty })
    }
}

