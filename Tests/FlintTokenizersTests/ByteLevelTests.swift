import FlintJSON
import FlintTestSupport
import Testing

@testable import FlintTokenizers
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: - Helpers

private func preTokenize(_ s: String, prefix: Bool = false) -> [String] {
    let scalars = Array(s.unicodeScalars)
    var text = NormalizedText(scalars, range: 0..<scalars.count)
    var words: [Range<Int>] = []
    ByteLevelPreTokenizer(addPrefixSpace: prefix, useRegex: true).preTokenize(&text, into: &words)
    return words.map { text.slice($0).string }
}

/// Pre-tokenizes `s` (no prefix space) and runs `model` on every word: ids and normalized spans.
private func encode(_ model: BytePairEncoding, _ s: String, prefix: Bool = false) -> (ids: [Int32], spans: [TokenSpan]) {
    let scalars = Array(s.unicodeScalars)
    var text = NormalizedText(scalars, range: 0..<scalars.count)
    var words: [Range<Int>] = []
    ByteLevelPreTokenizer(addPrefixSpace: prefix, useRegex: true).preTokenize(&text, into: &words)
    var tokens: [ModelToken] = []
    var scratch = ModelScratch()
    for w in words { model.tokenize(text, word: w, into: &tokens, scratch: &scratch) }
    return (tokens.map(\.id), tokens.map { text.originalSpan(Int($0.start)..<Int($0.end)) })
}

/// A vocabulary holding the 256 single-byte tokens with id = byte value, plus `extra`
/// tokens numbered from 256.
private func tinyModel(extra: [String], merges: [(String, String)]) throws -> BytePairEncoding {
    var vocab: [(String, Int32)] = (0..<256).map { (String(ByteLevelAlphabet.scalar(for: UInt8($0))), Int32($0)) }
    for (i, t) in extra.enumerated() { vocab.append((t, Int32(256 + i))) }
    return try BytePairEncoding(vocab: vocab, merges: merges, path: "tiny")
}

private func spans(_ pairs: [(Int, Int)]) -> [TokenSpan] { pairs.map { TokenSpan(start: $0.0, end: $0.1) } }

// MARK: - Alphabet

@Suite("ByteLevel alphabet")
struct ByteLevelAlphabetTests {
    @Test func roundTripsAllBytes() {
        var seen = Set<UInt32>()
        for b in 0...255 {
            let s = ByteLevelAlphabet.scalar(for: UInt8(b))
            #expect(ByteLevelAlphabet.byte(for: s) == UInt8(b))
            seen.insert(s.value)
        }
        #expect(seen.count == 256)
        #expect(ByteLevelAlphabet.scalar(for: 0x20) == "Ġ")
        #expect(ByteLevelAlphabet.scalar(for: 0x0A) == "Ċ")
        #expect(ByteLevelAlphabet.scalar(for: 0x41) == "A")
        #expect(ByteLevelAlphabet.scalar(for: 0xAD) == "\u{143}")
        #expect(ByteLevelAlphabet.byte(for: "\u{144}") == nil)
        #expect(ByteLevelAlphabet.byte(for: " ") == nil)
        #expect(ByteLevelAlphabet.encode(Array("é".utf8)) == "Ã©")
        #expect(ByteLevelAlphabet.decode("ĠHello") == Array(" Hello".utf8))
    }
}

// MARK: - Pre-tokenizer

@Suite("ByteLevel pre-tokenizer")
struct ByteLevelPreTokenizerTests {
    // Expected values checked against HF: ByteLevel(add_prefix_space=False).pre_tokenize_str(s).
    @Test func splitsLikeGPT2() {
        #expect(preTokenize("Hello world") == ["Hello", " world"])
        #expect(preTokenize("  leading") == [" ", " leading"])
        #expect(preTokenize("a  b") == ["a", " ", " b"])
        #expect(preTokenize("tab\tX") == ["tab", "\t", "X"])
        #expect(preTokenize("don't I'M") == ["don", "'t", " I", "'", "M"])
        #expect(preTokenize("123abc") == ["123", "abc"])
        #expect(preTokenize("trailing   ") == ["trailing", "   "])
        #expect(preTokenize("emoji 😀😀") == ["emoji", " 😀😀"])
        #expect(preTokenize("\n\n x") == ["\n\n", " x"])
        #expect(preTokenize("we'll they're I've 'sup") == ["we", "'ll", " they", "'re", " I", "'ve", " '", "sup"])
        #expect(preTokenize("?'s") == ["?'", "s"])
        #expect(preTokenize("x\u{A0}\u{A0}y") == ["x", "\u{A0}", "\u{A0}", "y"])
        #expect(preTokenize("x\u{1C}\u{1C}y") == ["x", "\u{1C}\u{1C}", "y"])  // not White_Space
        #expect(preTokenize("ⅣⅣa") == ["ⅣⅣ", "a"])  // Nl is a number
        #expect(preTokenize("é\u{301}x") == ["é", "\u{301}", "x"])  // Mn is "other"
        #expect(preTokenize("a\u{0B} b") == ["a", "\u{0B}", " b"])
        #expect(preTokenize(" ") == [" "])
        #expect(preTokenize("") == [])
    }

    @Test func prefixSpace() {
        #expect(preTokenize("Hello", prefix: true) == [" Hello"])
        #expect(preTokenize(" Hello", prefix: true) == [" Hello"])
        #expect(preTokenize("\tHello", prefix: true) == [" ", "\t", "Hello"])
        #expect(preTokenize("", prefix: true) == [])
        // The added space maps to the first scalar of the original text.
        var text = NormalizedText(Array("ab".unicodeScalars), range: 0..<2)
        var words: [Range<Int>] = []
        ByteLevelPreTokenizer(addPrefixSpace: true, useRegex: true).preTokenize(&text, into: &words)
        #expect(text.origins == [0, 0, 1])
        #expect(words == [0..<3])
        #expect(text.originalSpan(0..<3) == TokenSpan(start: 0, end: 2))
    }

    @Test func withoutRegexTheWholeTextIsOneWord() {
        var text = NormalizedText(Array("a b  c".unicodeScalars), range: 0..<6)
        var words: [Range<Int>] = []
        ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: false).preTokenize(&text, into: &words)
        #expect(words == [0..<6])
    }
}

// MARK: - BPE model

@Suite("Byte-level BPE")
struct BytePairEncodingTests {
    @Test func mergesLowestRankFirst() throws {
        // ranks: 0 a+b, 1 b+c, 2 ab+c, 3 Ġ+a, 4 a+a
        let model = try tinyModel(
            extra: ["ab", "bc", "abc", "Ġa", "aa"],
            merges: [("a", "b"), ("b", "c"), ("ab", "c"), ("Ġ", "a"), ("a", "a")])
        #expect(encode(model, "abc").ids == [258])
        #expect(encode(model, "bcab").ids == [257, 256])
        #expect(encode(model, "aaa").ids == [260, 97])  // leftmost first among equal ranks
        #expect(encode(model, "aaaaa").ids == [260, 260, 97])
        #expect(encode(model, "x abc").ids == [120, 32, 258])  // a+b (rank 0) before Ġ+a (rank 3)
        #expect(encode(model, " ac").ids == [259, 99])
        #expect(encode(model, "ab abc").spans == spans([(0, 2), (2, 3), (3, 6)]))
        #expect(model.vocabularySize == 261)
        #expect(model.id(forToken: "abc") == 258)
        #expect(model.token(forId: 259) == "Ġa")
        #expect(model.token(forId: 32) == "Ġ")
        #expect(model.token(forId: 9999) == nil)
    }
}

extension BytePairEncodingTests {
    @Test func multiByteScalarsReportWholeScalars() throws {
        let model = try tinyModel(extra: ["Ã©", "xÃ"], merges: [("Ã", "©"), ("x", "Ã")])
        // "é" is C3 A9 = "Ã©"
        #expect(encode(model, "é").ids == [256])
        #expect(encode(model, "é").spans == spans([(0, 1)]))
        // "xé": x+Ã (rank 1) cannot happen first because Ã+© has rank 0.
        #expect(encode(model, "xé").ids == [120, 256])
        #expect(encode(model, "xé").spans == spans([(0, 1), (1, 2)]))
        // 😀 = F0 9F 98 80: no merges, four tokens that each report the whole scalar.
        #expect(encode(model, "a😀b").ids == [97, 0xF0, 0x9F, 0x98, 0x80, 98])
        #expect(encode(model, "a😀b").spans == spans([(0, 1), (1, 2), (1, 2), (1, 2), (1, 2), (2, 3)]))
        // Token covering x and the first byte of é: spans both scalars.
        let partial = try tinyModel(extra: ["xÃ"], merges: [("x", "Ã")])
        #expect(encode(partial, "xé").ids == [256, 0xA9])
        #expect(encode(partial, "xé").spans == spans([(0, 2), (1, 2)]))
    }

    @Test func scanAndHeapAgree() throws {
        let model = try tinyModel(
            extra: ["ab", "bc", "abc", "Ġa", "aa", "aaaa", "ca"],
            merges: [("a", "b"), ("b", "c"), ("ab", "c"), ("Ġ", "a"), ("a", "a"), ("aa", "aa"), ("c", "a")])
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let n = Int.random(in: 1...120, using: &rng)
            let bytes = (0..<n).map { _ in Array("abc ".utf8).randomElement(using: &rng)! }
            let scan = model.mergeBytes(bytes, forceHeap: false).map { [$0.id, $0.end] }
            let heap = model.mergeBytes(bytes, forceHeap: true).map { [$0.id, $0.end] }
            #expect(scan == heap, "\(bytes)")
        }
    }

    @Test func rejectsBrokenVocabularies() throws {
        var vocab: [(String, Int32)] = (0..<256).map { (String(ByteLevelAlphabet.scalar(for: UInt8($0))), Int32($0)) }
        #expect(throws: TokenizerError.malformedFile(path: "p", reason: "merge 1 (\"a q\"): token \"aq\" is not in the vocabulary")) {
            try BytePairEncoding(vocab: vocab, merges: [("a", "q")], path: "p")
        }
        #expect(throws: TokenizerError.malformedFile(path: "p", reason: "merge 1 (\"a zz\"): token \"zz\" is not in the vocabulary")) {
            try BytePairEncoding(vocab: vocab, merges: [("a", "zz")], path: "p")
        }
        vocab.remove(at: 10)
        #expect(throws: TokenizerError.self) { try BytePairEncoding(vocab: vocab, merges: [], path: "p") }
    }

    @Test func cacheIsConsistentAcrossThreads() async throws {
        let model = try tinyModel(
            extra: ["ab", "bc", "abc", "Ġa", "aa"],
            merges: [("a", "b"), ("b", "c"), ("ab", "c"), ("Ġ", "a"), ("a", "a")])
        let text = String(repeating: "abc bcab aaa x abc abcabc ", count: 50)
        let expected = encode(model, text)
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { encode(model, text) == expected }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 })
    }
}

// MARK: - Loading

@Suite("GPT-2 files")
struct GPT2FilesTests {
    private func write(_ vocab: String, _ merges: String) -> (String, String) {
        let dir = TestPaths.temporaryFolder()
        TestPaths.write(vocab, to: dir + "/vocab.json")
        TestPaths.write(merges, to: dir + "/merges.txt")
        return (dir + "/vocab.json", dir + "/merges.txt")
    }

    private func byteVocabJSON(extra: [String]) -> String {
        var members: [String] = []
        for b in 0..<256 {
            let s = String(ByteLevelAlphabet.scalar(for: UInt8(b)))
            let escaped = s == "\"" ? "\\\"" : s == "\\" ? "\\\\" : s
            members.append("\"\(escaped)\": \(b)")
        }
        for (i, t) in extra.enumerated() { members.append("\"\(t)\": \(256 + i)") }
        return "{" + members.joined(separator: ", ") + "}"
    }

    @Test func loadsVocabAndMerges() throws {
        let (v, m) = write(byteVocabJSON(extra: ["ab", "Ġab"]), "#version: 0.2\r\na b\r\n\nĠ ab\n")
        let model = try BytePairEncoding.load(vocabPath: v, mergesPath: m)
        #expect(encode(model, "ab ab").ids == [256, 257])
    }

    @Test func badMergesLine() throws {
        let (v, m) = write(byteVocabJSON(extra: ["ab"]), "#version: 0.2\na b\na b c\n")
        #expect(
            throws: TokenizerError.malformedFile(path: m, reason: "line 3: expected two tokens separated by one space, found \"a b c\"")
        ) {
            try GPT2Files.loadVocabAndMerges(vocabPath: v, mergesPath: m)
        }
        let (v2, m2) = write(byteVocabJSON(extra: ["ab"]), "a b\nab\n")
        #expect(throws: TokenizerError.malformedFile(path: m2, reason: "line 2: expected two tokens separated by one space, found \"ab\""))
        {
            try GPT2Files.loadVocabAndMerges(vocabPath: v2, mergesPath: m2)
        }
    }

    @Test func badVocabularies() throws {
        let (v, m) = write("[1, 2]", "")
        #expect(throws: TokenizerError.malformedFile(path: v, reason: "vocabulary must be a JSON object (token -> id), found an array")) {
            try GPT2Files.loadVocabAndMerges(vocabPath: v, mergesPath: m)
        }
        let (v2, m2) = write("{\"a\": 1.5}", "")
        #expect(
            throws: TokenizerError.malformedFile(
                path: v2, reason: "vocabulary entry \"a\": id must be a non-negative integer below 2^31, found 1.5")
        ) {
            try GPT2Files.loadVocabAndMerges(vocabPath: v2, mergesPath: m2)
        }
        let missing = TestPaths.temporaryFolder() + "/nope.json"
        #expect {
            try GPT2Files.loadVocabAndMerges(vocabPath: missing, mergesPath: m)
        } throws: { error in
            if case .unreadableFile(let path, _) = error as? TokenizerError { return path == missing }
            return false
        }
    }

    @Test func tokenizerJSONModel() throws {
        func model(_ extra: String, merges: String = "[\"a b\"]") throws -> JSONValue {
            try JSONParser.parse("{\"type\": \"BPE\", \(extra) \"vocab\": \(byteVocabJSON(extra: ["ab"])), \"merges\": \(merges)}")
        }
        let legacy = try BytePairEncoding.fromTokenizerJSON(
            model: model(
                "\"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false,"
            ), path: "t.json")
        #expect(encode(legacy, "ab").ids == [256])
        let pairs = try BytePairEncoding.fromTokenizerJSON(model: model("", merges: "[[\"a\", \"b\"]]"), path: "t.json")
        #expect(encode(pairs, "ab").ids == [256])

        let refused: [(String, String)] = [
            ("\"dropout\": 0.1,", "BPE with dropout 0.1"),
            ("\"unk_token\": \"<unk>\", \"byte_fallback\": true,", "BPE with unk_token \"<unk>\" and byte_fallback"),
            ("\"continuing_subword_prefix\": \"##\",", "BPE with continuing_subword_prefix \"##\""),
            ("\"end_of_word_suffix\": \"</w>\",", "BPE with end_of_word_suffix \"</w>\""),
            ("\"ignore_merges\": true,", "BPE with ignore_merges"),
        ]
        for (option, type) in refused {
            #expect(throws: TokenizerError.unsupportedComponent(path: "t.json", component: "model", type: type)) {
                try BytePairEncoding.fromTokenizerJSON(model: model(option), path: "t.json")
            }
        }
        #expect(
            throws: TokenizerError.malformedFile(
                path: "t.json", reason: "model.merges[0]: expected two tokens separated by one space, found \"a b c\"")
        ) {
            try BytePairEncoding.fromTokenizerJSON(model: model("", merges: "[\"a b c\"]"), path: "t.json")
        }
        #expect(throws: TokenizerError.unsupportedComponent(path: "t.json", component: "model", type: "Unigram")) {
            try BytePairEncoding.fromTokenizerJSON(model: JSONParser.parse("{\"type\": \"Unigram\"}"), path: "t.json")
        }
    }
}

// MARK: - Decoder

@Suite("ByteLevel decoder")
struct ByteLevelDecoderTests {
    @Test func roundTripsArbitraryBytes() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var tokens: [String] = []
            var i = 0
            while i < bytes.count {
                let j = min(bytes.count, i + Int.random(in: 1...5, using: &rng))
                tokens.append(ByteLevelAlphabet.encode(bytes[i..<j]))
                i = j
            }
            #expect(ByteLevelDecoder().decodeBytes(tokens) == bytes)
            #expect(ByteLevelDecoder().decode(tokens) == String(decoding: bytes, as: UTF8.self))
        }
    }

    @Test func lossyLikeHF() {
        // Expected from HF: decoders.ByteLevel().decode([token]) for each byte sequence.
        let cases: [([UInt8], [UInt32])] = [
            ([0xF0, 0x9F, 0x98, 0x61], [0xFFFD, 0x61]),
            ([0xE0, 0x80, 0x80], [0xFFFD, 0xFFFD, 0xFFFD]),
            ([0xED, 0xA0, 0x80], [0xFFFD, 0xFFFD, 0xFFFD]),
            ([0xC0, 0xAF], [0xFFFD, 0xFFFD]),
            ([0xF4, 0x90, 0x80, 0x80], [0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD]),
            ([0xFF, 0xFE, 0x41], [0xFFFD, 0xFFFD, 0x41]),
            ([0xE2, 0x82], [0xFFFD]),
            ([0xF0, 0x9F, 0x98, 0x80], [0x1F600]),
        ]
        for (bytes, scalars) in cases {
            let decoded = ByteLevelDecoder().decode([ByteLevelAlphabet.encode(bytes)])
            #expect(decoded.unicodeScalars.map(\.value) == scalars, "\(bytes)")
        }
    }

    @Test func tokensOutsideTheAlphabetPassThroughWhole() {
        // HF: decoders.ByteLevel().decode(["Ġ日", "Ġa"]) == "Ġ日 a"
        #expect(ByteLevelDecoder().decode(["Ġ日", "Ġa"]) == "Ġ日 a")
        #expect(ByteLevelDecoder().decode(["Hello", "Ġworld", "<|endoftext|>"]) == "Hello world<|endoftext|>")
    }
}

// MARK: - Real GPT-2 files

@Suite("GPT-2 vocabulary")
struct GPT2VocabularyTests {
    /// OpenAI's GPT-2 files, from `scripts/fetch-assets`.
    static func load() throws -> BytePairEncoding? {
        guard let encoder = TestPaths.asset("gpt2/encoder.json"), let bpe = TestPaths.asset("gpt2/vocab.bpe") else {
            print("skipping GPT-2 vocabulary tests: \(TestPaths.missingAssetsReason)")
            return nil
        }
        return try BytePairEncoding.load(vocabPath: encoder, mergesPath: bpe)
    }

    // Expected ids/offsets from HF tokenizers 0.23.3:
    // .cache/venv/bin/python -c 'from tokenizers import ByteLevelBPETokenizer as T; t=T(".cache/assets/gpt2/encoder.json",".cache/assets/gpt2/vocab.bpe"); e=t.encode("..."); print(e.ids, e.offsets)'
    @Test func matchesHF() throws {
        guard let model = try Self.load() else { return }
        #expect(model.vocabularySize == 50257)
        #expect(model.id(forToken: "<|endoftext|>") == 50256)
        #expect(model.token(forId: 995) == "Ġworld")
        #expect(encode(model, "Hello world! Ġ<|endoftext|>").ids == [15496, 995, 0, 34754, 254, 27, 91, 437, 1659, 5239, 91, 29])
        #expect(
            encode(model, " The quick brown fox jumps over the lazy dog.").ids
                == [383, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13])
        let mixed = encode(model, "emoji 😀😀 héllo wörld 日本語のテキスト")
        #expect(
            mixed.ids == [
                368, 31370, 30325, 222, 47249, 222, 289, 2634, 18798, 266, 30570, 335, 10545, 245, 98, 17312, 105,
                45739, 252, 5641, 24336, 25084, 43302,
            ])
        #expect(
            mixed.spans
                == spans([
                    (0, 2), (2, 5), (5, 7), (6, 7), (7, 8), (7, 8), (8, 10), (10, 11), (11, 14), (14, 16),
                    (16, 18), (18, 20), (20, 22), (21, 22), (21, 22), (22, 23), (22, 23), (23, 24), (23, 24),
                    (24, 25), (25, 26), (26, 27), (27, 29),
                ]))
        #expect(
            encode(model, "   spaces\t\ttabs\n\nnewlines  ").ids == [220, 220, 9029, 197, 197, 8658, 82, 198, 198, 3605, 6615, 220, 220])
        #expect(encode(model, "don't I'M 12345 3.14").ids == [9099, 470, 314, 6, 44, 17031, 2231, 513, 13, 1415])
        // Twice, so the second run is answered by the word cache.
        #expect(encode(model, "Hello world").ids == [15496, 995])
        #expect(encode(model, "Hello world").ids == [15496, 995])
    }
}
