import FlintJSON
import FlintTestSupport
import Testing

@testable import FlintTokenizers
/// BERT normalizer, pre-tokenizer and WordPiece on a hand-made vocabulary, where the right
/// answer can be worked out by hand (the HF parity suite covers the real vocabulary).
@Suite("BERT WordPiece")
struct BertTokenizerTests {
    static let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "able", "hello",
                        "world", "!", ",", "cafe", "a", "##a", "中", "e", "##s"]

    func tokenizer(lowercase: Bool = true, strip: Bool? = nil) throws -> Tokenizer {
        let entries = Self.vocab.enumerated().map { ($1, Int32($0)) }
        let model = try WordPiece(vocabulary: entries, path: "test")
        return Tokenizer(normalizer: BertNormalizer(stripAccents: strip, lowercase: lowercase), preTokenizer: BertPreTokenizer(),
                         model: model, postProcessor: TemplateProcessing.bert(cls: 2, sep: 3), decoder: WordPieceDecoder(),
                         addedTokens: [2, 3, 4].map { AddedToken(id: Int32($0), content: Self.vocab[$0], special: true) }, source: "test")
    }

    func tokens(_ t: Tokenizer, _ e: Encoding) -> [String] { e.ids.map { t.token(forId: $0)! } }

    @Test func greedyLongestMatchFirst() throws {
        let t = try tokenizer()
        let e = try t.encode("unaffable", addSpecialTokens: false)
        #expect(tokens(t, e) == ["un", "##aff", "##able"])
        #expect(e.offsets == [TokenSpan(start: 0, end: 2), TokenSpan(start: 2, end: 5), TokenSpan(start: 5, end: 9)])
    }

    @Test func unmatchedPieceMakesTheWholeWordUnknown() throws {
        let t = try tokenizer()
        let e = try t.encode("unaffablex hello", addSpecialTokens: false)
        #expect(tokens(t, e) == ["[UNK]", "hello"])
        #expect(e.offsets[0] == TokenSpan(start: 0, end: 10))
    }

    @Test func overlongWordIsUnknown() throws {
        let t = try tokenizer()
        let word = String(repeating: "a", count: 101)
        #expect(tokens(t, try t.encode(word, addSpecialTokens: false)) == ["[UNK]"])
        #expect(try t.encode(String(repeating: "a", count: 100), addSpecialTokens: false).count == 100)
    }

    @Test func accentsStrippedWithOffsetsIntoTheOriginal() throws {
        let t = try tokenizer()
        // "Café" precomposed and "cafe\u{301}" decomposed both normalize to "cafe"; the dropped
        // combining mark does not widen the span (HF gives (5, 9) too).
        let e = try t.encode("Café cafe\u{301}!", addSpecialTokens: false)
        #expect(tokens(t, e) == ["cafe", "cafe", "!"])
        #expect(e.offsets == [TokenSpan(start: 0, end: 4), TokenSpan(start: 5, end: 9), TokenSpan(start: 10, end: 11)])
    }

    @Test func noLowercaseKeepsAccentsUnlessAsked() throws {
        let cased = try tokenizer(lowercase: false)
        #expect(tokens(cased, try cased.encode("Hello é", addSpecialTokens: false)) == ["[UNK]", "[UNK]"])
        let stripped = try tokenizer(lowercase: false, strip: true)
        #expect(tokens(stripped, try stripped.encode("é", addSpecialTokens: false)) == ["e"])
    }

    @Test func cjkIsSplitPerCharacterAndControlsDropped() throws {
        let t = try tokenizer()
        let e = try t.encode("a中\u{0}\u{200B}a", addSpecialTokens: false)
        #expect(tokens(t, e) == ["a", "中", "a"])
        // Removed characters belong to no token: the last "a" spans only itself (as in HF).
        #expect(e.offsets == [TokenSpan(start: 0, end: 1), TokenSpan(start: 1, end: 2), TokenSpan(start: 4, end: 5)])
    }

    @Test func punctuationIsolatedAndSpecialTokensMatchedRaw() throws {
        let t = try tokenizer()
        let e = try t.encode("hello,[MASK] world!", pair: "hello")
        #expect(tokens(t, e) == ["[CLS]", "hello", ",", "[MASK]", "world", "!", "[SEP]", "hello", "[SEP]"])
        #expect(e.typeIds == [0, 0, 0, 0, 0, 0, 0, 1, 1])
        #expect(e.specialTokensMask == [1, 0, 0, 0, 0, 0, 1, 0, 1])
        #expect(e.offsets[3] == TokenSpan(start: 6, end: 12))
        #expect(e.offsets[7] == TokenSpan(start: 0, end: 5))
        // Lowercase "[mask]" is not the special token.
        #expect(tokens(t, try t.encode("[mask]", addSpecialTokens: false)) == ["[UNK]", "[UNK]", "[UNK]"])
    }

    @Test func decodeGluesContinuationsAndCleansUp() throws {
        let t = try tokenizer()
        let e = try t.encode("unaffable, hello world!")
        #expect(t.decode(e.ids) == "unaffable, hello world!")
        #expect(t.decode(e.ids, skipSpecialTokens: false) == "[CLS] unaffable, hello world! [SEP]")
    }

    @Test func truncationWithStrideGivesOverlappingWindows() throws {
        let t = try tokenizer()
        let e = try t.encode("a a a a a a a", truncation: Truncation(maxLength: 5, stride: 1))
        // 3 tokens per window after [CLS]/[SEP], windows step by 2 (overlap 1): 7 tokens -> 3 windows.
        #expect(e.ids == [2, 15, 15, 15, 3])
        #expect(e.overflowing.map(\.count) == [5, 5])
        #expect(e.overflowing.last?.offsets.dropFirst().first == TokenSpan(start: 8, end: 9))
    }
}

/// Byte-level BPE properties on the real GPT-2 vocabulary and the committed corpus.
@Suite("GPT-2 byte-level BPE on the corpus")
struct GPT2CorpusTests {
    static func corpus() throws -> [String] {
        let bytes = try #require(TestPaths.read(TestPaths.fixture("tokenizers/corpus.jsonl")))
        return try bytes.split(separator: UInt8(ascii: "\n")).flatMap { line -> [String] in
            let v = try JSONParser.parse(Array(line))
            return [v["text"]?.string, v["pair"]?.string].compactMap { $0 }
        }
    }

    @Test func decodeOfEncodeIsTheInput() throws {
        guard let path = TestPaths.asset("gpt2/encoder.json") else {
            print("skipped decodeOfEncodeIsTheInput: \(TestPaths.missingAssetsReason)")
            return
        }
        let t = try Tokenizer.load(path)
        let texts = try Self.corpus()
        #expect(texts.count > 150)
        let decoder = ByteLevelDecoder()
        for text in texts {
            let e = try t.encode(text)
            let bytes = decoder.decodeBytes(t.decodableTokens(e.ids, skipSpecialTokens: false))
            #expect(bytes == Array(text.utf8), "round trip of \(JSONValue.string(text).serialized)")
        }
    }

    @Test func parallelBatchEqualsOneByOne() throws {
        for relative in ["gpt2/encoder.json", "all-MiniLM-L6-v2/tokenizer.json"] {
            guard let path = TestPaths.asset(relative) else {
                print("skipped parallelBatchEqualsOneByOne: \(TestPaths.missingAssetsReason)")
                return
            }
            let t = try Tokenizer.load(path)
            let texts = try Self.corpus()
            let batch = try t.encodeBatch(texts, threads: 4)
            let single = try texts.map { try t.encode($0) }
            #expect(batch == single, "\(relative)")
        }
    }
}
