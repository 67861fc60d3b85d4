import FlintJSON
import FlintTestSupport
import Testing

@testable import FlintTokenizers

/// The XLM-R components on their own: a tiny SentencePiece model whose charsmap has six rules
/// (Fuzz/corpus/tokenizer-json/unigram, from scripts/make_xlmr_tokenizer.py fuzz-seed), and the
/// files Flint must refuse. The full parity checks are in HuggingFaceParityTests (xlmr_*.json).
@Suite("Unigram, Metaspace, Precompiled")
struct UnigramTests {
    static let seed = TestPaths.repositoryRoot + "/Fuzz/corpus/tokenizer-json/unigram"

    /// Expected values printed by HF tokenizers 0.23.3 (`Tokenizer.from_file(seed).encode(text)`).
    @Test(arguments: [
        ("\u{FB01}ne café \u{FF21}\u{FF22}\u{2122} e\u{301} \u{1E} x",
         [0, 4, 7, 12, 8, 13, 7, 24, 4, 20, 25, 22, 21, 4, 24, 4, 3, 2] as [Int32],
         [(0, 0), (0, 1), (0, 1), (0, 1), (1, 3), (3, 6), (6, 7), (7, 8), (8, 9), (9, 10), (10, 11), (11, 12), (11, 12), (12, 13),
          (13, 14), (17, 18), (18, 19), (0, 0)],
         "fine café A\u{FF22}TM é <unk>"),
        // A removed first scalar shifts every later origin by one (HF's Precompiled quirk).
        ("\u{1E}the  mat\u{3000}sat", [0, 14, 4, 18, 10, 4, 19, 10, 2],
         [(0, 0), (0, 3), (4, 5), (5, 6), (6, 8), (8, 9), (9, 10), (10, 12), (0, 0)],
         "the mat sat"),
        ("", [0, 2], [(0, 0), (0, 0)], ""),
    ])
    func matchesHuggingFaceOnTheSeed(_ text: String, _ ids: [Int32], _ offsets: [(Int, Int)], _ decoded: String) throws {
        let tokenizer = try Tokenizer.load(Self.seed)
        let e = try tokenizer.encode(text)
        #expect(e.ids == ids)
        #expect(e.offsets == offsets.map { TokenSpan(start: $0.0, end: $0.1) })
        // decode keeps special tokens that are not added tokens: <unk> is a model piece here.
        #expect(tokenizer.decode(e.ids).unicodeScalars.elementsEqual(decoded.unicodeScalars))
    }

    /// The seed with one section replaced, written to a temporary file.
    func seedWith(_ key: String, _ value: JSONValue) throws -> String {
        let bytes = try #require(TestPaths.read(Self.seed))
        var members = try #require(try JSONParser.parse(bytes).object)
        let i = try #require(members.firstIndex { $0.key == key })
        members[i].value = value
        let path = TestPaths.temporaryFolder() + "/tokenizer.json"
        TestPaths.write(JSONValue.object(members).serialized, to: path)
        return path
    }

    func refusal(_ key: String, _ json: String) throws -> TokenizerError? {
        let path = try seedWith(key, try JSONParser.parse(Array(json.utf8)))
        do {
            _ = try Tokenizer.load(path)
            return nil
        } catch {
            return error
        }
    }

    @Test func unsupportedRegexIsRefusedByName() throws {
        let error = try refusal("normalizer", #"{"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}"#)
        #expect(error == .unsupportedComponent(path: error.map(\.path) ?? "", component: "normalizer",
                                               type: #"Replace with the regular expression "\s+""#))
        // A pattern that can match the empty string is refused too (HF would insert at every position).
        #expect(try refusal("normalizer", #"{"type": "Replace", "pattern": {"Regex": "a*"}, "content": "b"}"#) != nil)
        #expect(try refusal("normalizer", #"{"type": "NFKC"}"#)?.description.contains("\"NFKC\"") == true)
    }

    @Test func malformedPartsAreRefused() throws {
        let charsmap = try refusal("normalizer", #"{"type": "Precompiled", "precompiled_charsmap": "not base64!"}"#)
        #expect(charsmap?.description.contains("precompiled_charsmap is not valid base64") == true)
        let short = try refusal("normalizer", #"{"type": "Precompiled", "precompiled_charsmap": "/////w=="}"#)
        #expect(short?.description.contains("announces") == true)
        let prefix = try refusal("pre_tokenizer", #"{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false}"#)
        #expect(prefix?.description.contains("add_prefix_space does not match declared prepend_scheme") == true)
        let noUnknown = try refusal("model", #"{"type": "Unigram", "unk_id": null, "vocab": [["a", -1.0]]}"#)
        #expect(noUnknown?.description.contains("unk_id is null") == true)
        let outside = try refusal("model", #"{"type": "Unigram", "unk_id": 5, "vocab": [["a", -1.0]]}"#)
        #expect(outside?.description.contains("outside the vocabulary") == true)
        let badPiece = try refusal("model", #"{"type": "Unigram", "unk_id": 0, "vocab": [["a"]]}"#)
        #expect(badPiece?.description.contains("model.vocab[0] must be [piece, score]") == true)
    }

    @Test func replacePatterns() {
        func run(_ n: ReplaceNormalizer, _ s: String) -> (String, [Int32]) {
            var t = NormalizedText(Array(s.unicodeScalars), range: 0..<s.unicodeScalars.count)
            n.normalize(&t)
            return (t.string, t.origins)
        }
        let spaces = ReplaceNormalizer(regex: " {2,}", content: "\u{2581}")!
        // HF aligns the replacement with the last scalar of the match.
        #expect(run(spaces, "a  b c   d") == ("a\u{2581}b c\u{2581}d", [0, 2, 3, 4, 5, 8, 9]))
        #expect(run(ReplaceNormalizer(literal: "``", content: "\"")!, "```x``") == ("\"`x\"", [1, 2, 3, 5]))
        #expect(run(ReplaceNormalizer(regex: "a\\.c", content: "")!, "a.cabca.c!") == ("abc!", [3, 4, 5, 9]))
        #expect(run(ReplaceNormalizer(regex: "b{2,3}", content: "-")!, "abbbbbab") == ("a--ab", [0, 3, 5, 6, 7]))
        #expect(ReplaceNormalizer(regex: "(a|b)", content: "") == nil)
        #expect(ReplaceNormalizer(regex: "x{2,1}", content: "") == nil)
        // Only one repeated scalar: several quantifiers could backtrack for ever on hostile text.
        #expect(ReplaceNormalizer(regex: "a+a+b", content: "") == nil)
        #expect(ReplaceNormalizer(literal: String(repeating: "a", count: 257), content: "") == nil)
    }
}

extension TokenizerError {
    var path: String {
        switch self {
        case let .unreadableFile(path, _), let .malformedFile(path, _), let .unsupportedComponent(path, _, _): return path
        case .invalidInput, .truncation: return ""
        }
    }
}
