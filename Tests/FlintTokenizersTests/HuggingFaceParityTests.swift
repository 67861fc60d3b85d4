import FlintJSON
import FlintTestSupport
import Testing

@testable import FlintTokenizers
/// Compares Flint's tokenizers with Hugging Face `tokenizers` 0.23.3 on the committed fixtures
/// (`scripts/gen_tokenizer_fixtures.py`): ids, type ids, offsets, special-token masks, tokens,
/// overflowing windows and decoded text, case by case.
@Suite("Hugging Face parity")
struct HuggingFaceParityTests {
    struct Fixture: CustomTestStringConvertible, Sendable {
        let file: String
        let tokenizer: String
        /// Builds the tokenizer from the assets folder.
        let load: @Sendable (String) throws -> Tokenizer
        var testDescription: String { "\(file) <- \(tokenizer)" }
    }

    static let fixtures: [Fixture] = [
        Fixture(file: "minilm_tokenizer_json.json", tokenizer: "all-MiniLM-L6-v2/tokenizer.json") { try Tokenizer.load($0) },
        Fixture(file: "minilm_vocab_txt.json", tokenizer: "all-MiniLM-L6-v2/vocab.txt") { try Tokenizer.load($0) },
        Fixture(file: "minilm_vocab_txt.json", tokenizer: "all-MiniLM-L6-v2") { _ in
            // A folder prefers tokenizer.json; this checks the same folder gives the same result.
            try Tokenizer.load(TestPaths.assets + "/all-MiniLM-L6-v2")
        },
        Fixture(file: "bert_cased_vocab_txt.json", tokenizer: "all-MiniLM-L6-v2/vocab.txt") {
            try Tokenizer.loadWordPieceVocab($0, lowercase: false, stripAccents: .some(false))
        },
        Fixture(file: "bert_strip_no_lower.json", tokenizer: "all-MiniLM-L6-v2/vocab.txt") {
            try Tokenizer.loadWordPieceVocab($0, lowercase: false, stripAccents: .some(true))
        },
        Fixture(file: "gpt2_vocab_files.json", tokenizer: "gpt2/encoder.json") { try Tokenizer.load($0) },
        Fixture(file: "gpt2_vocab_files.json", tokenizer: "gpt2-hf/merges.txt") { try Tokenizer.load($0) },
        Fixture(file: "gpt2_tokenizer_json.json", tokenizer: "gpt2-hf/tokenizer.json") { try Tokenizer.load($0) },
        Fixture(file: "minilm_truncation.json", tokenizer: "all-MiniLM-L6-v2/tokenizer.json") { try Tokenizer.load($0) },
        Fixture(file: "gpt2_truncation.json", tokenizer: "gpt2-hf/tokenizer.json") { try Tokenizer.load($0) },
        Fixture(file: "roberta_tokenizer_json.json", tokenizer: "roberta-bpe/tokenizer.json") { try Tokenizer.load($0) },
        Fixture(file: "roberta_truncation.json", tokenizer: "roberta-bpe/tokenizer.json") { try Tokenizer.load($0) },
        Fixture(file: "xlmr_tokenizer_json.json", tokenizer: "xlmr-unigram/tokenizer.json") { try Tokenizer.load($0) },
        Fixture(file: "xlmr_truncation.json", tokenizer: "xlmr-unigram/tokenizer.json") { try Tokenizer.load($0) },
        Fixture(file: "xlmr_variant.json", tokenizer: "xlmr-unigram/tokenizer.json") {
            try Tokenizer.load(try variant($0, overrides: "xlmr_variant_overrides.json"))
        },
        Fixture(file: "xlmr_byte_fallback.json", tokenizer: "xlmr-unigram/tokenizer.json") {
            try Tokenizer.load(try variant($0, overrides: "xlmr_byte_fallback_overrides.json"))
        },
    ]

    /// Writes `path` with the generator's overrides applied (replaced sections, the asset's charsmap
    /// put back, byte pieces appended) to a temporary file and returns its path.
    static func variant(_ path: String, overrides file: String) throws -> String {
        let base = try JSONParser.parse(try #require(TestPaths.read(path)))
        let changes = try JSONParser.parse(try #require(TestPaths.read(TestPaths.fixture("tokenizers/" + file))))
        let charsmapHolder = base["normalizer"]?["normalizers"]?.array?.first
        let charsmap = try #require(charsmapHolder?["precompiled_charsmap"]?.string)
        var members = try #require(base.object)
        for (key, value) in try #require(changes["sections"]?.object) {
            let i = try #require(members.firstIndex { $0.key == key })
            members[i].value = value
        }
        if case let .number(score) = changes["byte_piece_score"] {
            let m = try #require(members.firstIndex { $0.key == "model" })
            var model = try #require(members[m].value.object)
            let v = try #require(model.firstIndex { $0.key == "vocab" })
            let pieces = (0..<256).map { b in JSONValue.array([.string(Unigram.bytePiece(UInt8(b))), .number(score)]) }
            model[v].value = .array(try #require(model[v].value.array) + pieces)
            model.append((key: "byte_fallback", value: .bool(true)))
            model.removeAll { $0.key == "byte_fallback" && $0.value == .bool(false) }
            members[m].value = .object(model)
        }
        let text = JSONValue.object(members).serialized.replacing("@charsmap@", with: charsmap)
        let out = TestPaths.temporaryFolder() + "/tokenizer.json"
        TestPaths.write(text, to: out)
        return out
    }

    @Test(arguments: fixtures)
    func matchesHuggingFace(_ fixture: Fixture) throws {
        guard let path = TestPaths.asset(fixture.tokenizer) else {
            print("skipped \(fixture.testDescription): \(TestPaths.missingAssetsReason)")
            return
        }
        let tokenizer = try fixture.load(path)
        let document = try #require(TestPaths.read(TestPaths.fixture("tokenizers/" + fixture.file)))
        let cases = try #require(try JSONParser.parse(document)["cases"]?.array)
        #expect(cases.count >= 40, "fixture \(fixture.file) holds too few cases")
        var failures = 0
        for (n, c) in cases.enumerated() where failures < 8 {
            if !check(c, index: n, tokenizer: tokenizer, fixture: fixture) { failures += 1 }
        }
    }

    /// A fixture case's `truncation` (nil when absent or null), as the generator wrote it.
    static func truncation(of c: JSONValue) -> Truncation? {
        c["truncation"].flatMap { t -> Truncation? in
            guard !t.isNull else { return nil }
            return Truncation(maxLength: t["max_length"]!.int!, strategy: Truncation.Strategy(rawValue: t["strategy"]!.string!)!,
                              stride: t["stride"]!.int!, direction: Truncation.Direction(rawValue: t["direction"]!.string!)!)
        }
    }

    /// Returns false (after recording issues) when the case does not match.
    func check(_ c: JSONValue, index: Int, tokenizer: Tokenizer, fixture: Fixture) -> Bool {
        let text = c["text"]!.string!
        let pair = c["pair"]?.string
        let truncation = HuggingFaceParityTests.truncation(of: c)
        let context = "\(fixture.file) case \(index): text \(JSONValue.string(text).serialized)"
            + (pair.map { " pair \(JSONValue.string($0).serialized)" } ?? "") + (truncation.map { " \($0)" } ?? "")
        let specials = tokenizer.specialTokenCount(isPair: pair != nil)

        let result: Result<Encoding, TokenizerError> = Result { () throws(TokenizerError) in
            try tokenizer.encode(text, pair: pair, truncation: truncation)
        }
        if c["error"]?.bool == true {
            if case let .success(e) = result {
                Issue.record("HF refuses this input (\(c["error_message"]?.string ?? "")) but Flint gave \(e.ids): \(context)")
                return false
            }
            return true
        }
        if let truncation, truncation.maxLength < specials {
            // HF's unsigned arithmetic wraps here and silently skips truncation; Flint refuses instead.
            if case .success = result {
                Issue.record("max_length below the special-token count must be refused: \(context)")
                return false
            }
            return true
        }
        let encoding: Encoding
        switch result {
        case let .success(e): encoding = e
        case let .failure(error):
            Issue.record("Flint threw \(error) where HF succeeded: \(context)")
            return false
        }
        return compare(encoding, c, context: context, tokenizer: tokenizer)
    }

    func compare(_ e: Encoding, _ c: JSONValue, context: String, tokenizer: Tokenizer) -> Bool {
        func ints(_ key: String, _ v: JSONValue) -> [Int32] { v[key]!.array!.map { Int32($0.int!) } }
        func spans(_ v: JSONValue) -> [TokenSpan] {
            v["offsets"]!.array!.map { TokenSpan(start: $0.array![0].int!, end: $0.array![1].int!) }
        }
        var ok = Expect.sameSequence(e.ids, ints("ids", c), "ids", context: context)
        ok = ok && Expect.sameSequence(e.typeIds, ints("type_ids", c), "type ids", context: context)
        ok = ok && Expect.sameSequence(e.offsets, spans(c), "offsets", context: context)
        ok =
            ok
            && Expect.sameSequence(
                e.specialTokensMask.map(Int32.init), ints("special_tokens_mask", c), "special token masks", context: context)
        if ok, let tokens = c["tokens"]?.array {
            // HF's token string of an added token that strips whitespace (RoBERTa's <mask>) holds the
            // whitespace it matched; Flint's tokens are vocabulary strings (the offsets above agree).
            // HF's token string of an unknown run is the text it covers; Flint's is the unknown piece.
            let unknown = (tokenizer.model as? Unigram)?.unknownId
            let expected = zip(e.ids, tokens).map { id, t in
                if id == unknown { return tokenizer.token(forId: id)! }
                let added = tokenizer.addedVocabulary.token(forId: id)
                return added.map { $0.lstrip || $0.rstrip } == true ? added!.content : t.string!
            }
            ok = Expect.sameSequence(e.ids.map { tokenizer.token(forId: $0) ?? "<none>" }, expected, "tokens", context: context)
            ok = ok && zip(e.ids, tokens).allSatisfy { id, t in
                tokenizer.addedVocabulary.token(forId: id).map { t.string!.trimmingWhitespace == $0.content } ?? true
            }
        }
        let overflowing = c["overflowing"]?.array ?? []
        if ok, e.overflowing.count != overflowing.count {
            Issue.record("\(e.overflowing.count) overflowing windows, HF has \(overflowing.count): \(context)")
            ok = false
        }
        if ok {
            for (k, (mine, theirs)) in zip(e.overflowing, overflowing).enumerated() where ok {
                ok = Expect.sameSequence(mine.ids, ints("ids", theirs), "overflow \(k) ids", context: context)
                    && Expect.sameSequence(mine.typeIds, ints("type_ids", theirs), "overflow \(k) type ids", context: context)
                    && Expect.sameSequence(mine.offsets, spans(theirs), "overflow \(k) offsets", context: context)
            }
        }
        if ok, let decoded = c["decoded"]?.string {
            let mine = tokenizer.decode(e.ids)
            if !mine.unicodeScalars.elementsEqual(decoded.unicodeScalars) {
                Issue.record("decode gives \(JSONValue.string(mine).serialized), HF \(JSONValue.string(decoded).serialized): \(context)")
                ok = false
            }
        }
        if ok, let decoded = c["decoded_with_special"]?.string {
            let mine = tokenizer.decode(e.ids, skipSpecialTokens: false)
            if !mine.unicodeScalars.elementsEqual(decoded.unicodeScalars) {
                Issue.record(
                    "decode(keep specials) gives \(JSONValue.string(mine).serialized), HF \(JSONValue.string(decoded).serialized): \(context)"
                )
                ok = false
            }
        }
        return ok
    }
}

extension String {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        let start = scalars.firstIndex { !$0.properties.isWhitespace } ?? scalars.endIndex
        let end = scalars.lastIndex { !$0.properties.isWhitespace }.map { scalars.index(after: $0) } ?? start
        return start < end ? String(scalars[start..<end]) : ""
    }
}
