import FlintJSON
import FlintTestSupport
import Testing

@testable import FlintTokenizers
/// Broken tokenizer files must give a `TokenizerError` naming the file and the problem, never a crash.
@Suite("Malformed tokenizer files")
struct MalformedFileTests {
    let folder = TestPaths.temporaryFolder()

    /// A small valid WordPiece tokenizer.json to break in different ways.
    static let wordPieceJSON = """
        {"version": "1.0", "added_tokens": [{"id": 0, "content": "[UNK]", "special": true, "normalized": false,
          "single_word": false, "lstrip": false, "rstrip": false}],
         "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
         "pre_tokenizer": {"type": "BertPreTokenizer"},
         "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                   "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "hello": 3, "world": 4, "##s": 5}},
         "post_processor": null, "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true}}
        """

    func file(_ name: String, _ content: String) -> String {
        let path = folder + "/" + name
        TestPaths.write(content, to: path)
        return path
    }

    @Test func validBaselineLoads() throws {
        let tok = try Tokenizer.load(file("tokenizer.json", Self.wordPieceJSON))
        #expect(try tok.encode("Hello worlds").ids == [3, 4, 5])
    }

    @Test func truncatedJSON() {
        let path = file("truncated.json", String(Self.wordPieceJSON.prefix(200)))
        Expect.tokenizerError([path, "truncated JSON"]) { _ = try Tokenizer.load(path) }
    }

    @Test func emptyFile() {
        let path = file("empty.json", "")
        Expect.tokenizerError([path, "truncated JSON"]) { _ = try Tokenizer.load(path) }
    }

    @Test func notJSONAtAll() {
        let path = file("garbage.json", "vocab: [UNK]\n")
        Expect.tokenizerError([path, "invalid JSON at byte 0"]) { _ = try Tokenizer.load(path) }
    }

    @Test func missingFile() {
        Expect.tokenizerError([folder + "/nope.json", "no such file"]) { _ = try Tokenizer.load(folder + "/nope.json") }
    }

    @Test func folderWithoutTokenizerFiles() {
        let empty = TestPaths.temporaryFolder()
        Expect.tokenizerError([empty, "no tokenizer files"]) { _ = try Tokenizer.load(empty) }
    }

    @Test func missingModelSection() {
        let path = file("nomodel.json", #"{"version": "1.0", "normalizer": null}"#)
        Expect.tokenizerError([path, "missing \"model\""]) { _ = try Tokenizer.load(path) }
    }

    @Test func missingVocabulary() {
        let json = Self.wordPieceJSON.replacingAll(
            ###""vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "hello": 3, "world": 4, "##s": 5}"###, with: #""novocab": 1"#)
        let path = file("novocab.json", json)
        Expect.tokenizerError([path, "model.vocab is missing"]) { _ = try Tokenizer.load(path) }
    }

    @Test func unknownTokenNotInVocabulary() {
        let json = Self.wordPieceJSON.replacingAll(#""unk_token": "[UNK]""#, with: #""unk_token": "<unk>""#)
        let path = file("unk.json", json)
        Expect.tokenizerError([path, "<unk>", "not in the vocabulary"]) { _ = try Tokenizer.load(path) }
    }

    @Test func nonIntegerId() {
        let json = Self.wordPieceJSON.replacingAll(#""hello": 3"#, with: #""hello": "three""#)
        let path = file("badid.json", json)
        Expect.tokenizerError([path, "hello", "expected a non-negative integer id"]) { _ = try Tokenizer.load(path) }
    }

    @Test(arguments: [
        ("normalizer", #"{"type": "BertNormalizer""#, #"{"type": "NFKC""#, "NFKC"),
        ("pre_tokenizer", #"{"type": "BertPreTokenizer"}"#, #"{"type": "Whitespace"}"#, "Whitespace"),
        ("model", #""type": "WordPiece", "unk_token""#, #""type": "WordLevel", "unk_token""#, "WordLevel"),
        ("decoder", #"{"type": "WordPiece", "prefix""#, #"{"type": "CTC", "prefix""#, "CTC"),
        ("post_processor", #""post_processor": null"#, #""post_processor": {"type": "Sequence"}"#, "Sequence"),
    ])
    func unknownComponentType(_ component: String, _ original: String, _ replacement: String, _ type: String) {
        let json = Self.wordPieceJSON.replacingAll(original, with: replacement)
        #expect(json != Self.wordPieceJSON, "the replacement must apply")
        let path = file("unknown-\(component).json", json)
        Expect.tokenizerError([path, "unsupported \(component) type \"\(type)\""]) { _ = try Tokenizer.load(path) }
    }

    @Test func componentWithoutType() {
        let json = Self.wordPieceJSON.replacingAll(#"{"type": "BertPreTokenizer"}"#, with: #"{"kind": "BertPreTokenizer"}"#)
        let path = file("notype.json", json)
        Expect.tokenizerError([path, "pre_tokenizer has no \"type\""]) { _ = try Tokenizer.load(path) }
    }

    @Test func wrongFieldType() {
        let json = Self.wordPieceJSON.replacingAll(#""lowercase": true"#, with: #""lowercase": "yes""#)
        let path = file("wrongtype.json", json)
        Expect.tokenizerError([path, "normalizer.lowercase", "expected a boolean"]) { _ = try Tokenizer.load(path) }
    }

    @Test func badMergesLine() {
        let vocab = file("vocab.json", #"{"a": 0, "b": 1, "ab": 2}"#)
        let merges = file("merges.txt", "#version: 0.2\na b\nthis line has three\n")
        Expect.tokenizerError([merges, "line 3"]) { _ = try Tokenizer.loadGPT2(vocab: vocab, merges: merges) }
    }

    @Test func mergesMissingBesideVocab() {
        let sub = TestPaths.temporaryFolder()
        TestPaths.write(#"{"a": 0}"#, to: sub + "/vocab.json")
        Expect.tokenizerError([sub + "/merges.txt", "cannot read"]) { _ = try Tokenizer.load(sub + "/vocab.json") }
    }

    @Test func vocabTxtNotUTF8() {
        let path = folder + "/vocab.txt"
        TestPaths.write(bytes: Array("[UNK]\n[CLS]\n[SEP]\n".utf8) + [0xFF, 0xFE, 0x0A], to: path)
        Expect.tokenizerError([path, "not valid UTF-8"]) { _ = try Tokenizer.load(path) }
    }

    @Test func vocabTxtWithoutSeparator() {
        let path = file("vocab.txt", "[UNK]\n[CLS]\nhello\n")
        Expect.tokenizerError([path, "[SEP]"]) { _ = try Tokenizer.load(path) }
    }

    @Test func invalidUTF8Input() throws {
        let tok = try Tokenizer.load(file("tokenizer.json", Self.wordPieceJSON))
        Expect.tokenizerError(["not valid UTF-8"]) { _ = try tok.encode(utf8: [0x68, 0x69, 0xC3]) }
        #expect(try tok.encode(utf8: Array("hello".utf8), addSpecialTokens: false).ids == [3])
    }

    @Test func strideTooLargeIsRefused() throws {
        let tok = try Tokenizer.load(file("tokenizer.json", Self.wordPieceJSON))
        Expect.tokenizerError(["stride (4) must be smaller"]) {
            _ = try tok.encode("hello world hello world hello", truncation: Truncation(maxLength: 4, stride: 4))
        }
    }
}

/// Fields HF (tokenizers 0.23.3) requires are required here too, so that a misspelled one is an
/// error rather than a silent default; unknown keys inside a component are ignored, as HF ignores them.
@Suite("Fields HF requires")
struct RequiredTokenizerFieldTests {
    let folder = TestPaths.temporaryFolder()

    func load(_ json: String) throws -> Tokenizer {
        let path = folder + "/tokenizer.json"
        TestPaths.write(json, to: path)
        return try Tokenizer.load(path)
    }

    @Test func unknownTopLevelKey() {
        let json = MalformedFileTests.wordPieceJSON.replacingAll(#""added_tokens""#, with: #""ad@ed_tokens""#)
        Expect.tokenizerError(["unknown top-level key \"ad@ed_tokens\"", "added_tokens, normalizer"]) { _ = try load(json) }
    }

    @Test(arguments: ["id", "content", "special", "normalized", "single_word", "lstrip", "rstrip"])
    func addedTokenField(_ field: String) throws {
        let json = MalformedFileTests.wordPieceJSON.replacingAll("\"\(field)\":", with: "\"\(field)x\":")
        #expect(json != MalformedFileTests.wordPieceJSON, "the replacement must apply")
        Expect.tokenizerError(["added_tokens[0].\(field) is missing"]) { _ = try load(json) }
    }

    @Test(arguments: ["clean_text", "handle_chinese_chars", "lowercase"])
    func bertNormalizerField(_ field: String) {
        let json = MalformedFileTests.wordPieceJSON.replacingAll("\"\(field)\":", with: "\"\(field)x\":")
        Expect.tokenizerError(["normalizer.\(field) is missing"]) { _ = try load(json) }
    }

    @Test func optionalAndUnknownComponentKeysLoad() throws {
        // strip_accents may be absent (HF reads null); an extra key in a component is ignored by HF.
        let json = MalformedFileTests.wordPieceJSON.replacingAll(#""strip_accents": null, "#, with: #""extra": 1, "#)
        #expect(json != MalformedFileTests.wordPieceJSON, "the replacement must apply")
        #expect(try load(json).encode("Hello worlds").ids == [3, 4, 5])
    }
}
