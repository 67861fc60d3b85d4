import FlintCore
import FlintCPU
import FlintModels
import FlintTestSupport
import FlintTokenizers
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `EncoderPipeline.encode` tokenizes ids only, in one pass with truncation; it must give exactly what the plain
/// two-pass rule gives (the full `Encoding`, and when that is over the limit a second encoding cut to it): ids, type
/// ids, `truncated`, refusals.
@Suite("Encoder input tokenization (one pass, ids only)")
struct EncodeTruncationTests {
    static let backend = CPUBackend(threads: 2)
    static let words = "the quick brown fox jumps over a lazy dog while seven bright stars shine above quiet hills"
    static let texts: [String] = [
        "", "hello", " Hello  world, again!", "naïve café — 東京 🚀 <mask> [MASK] </s>", words,
        Array(repeating: words, count: 20).joined(separator: " "),  // ~360 tokens: over every limit below
    ]

    /// A folder with `fixture`'s config and weights and the assets' `tokenizer` (nil without assets).
    static func folder(_ fixture: String, tokenizer: String) -> String? {
        guard let tokenizerPath = TestPaths.asset(tokenizer) else { return nil }
        let folder = TestPaths.temporaryFolder()
        for file in ["config.json", "model.safetensors"] { symlink(TestPaths.fixture(fixture) + "/" + file, folder + "/" + file) }
        symlink(tokenizerPath, folder + "/tokenizer.json")
        return folder
    }

    /// The reference: full encodings with offsets, tokenized again with truncation when over the limit.
    static func twoPass(_ pipeline: EncoderPipeline, _ text: String, pair: String?) throws(FlintError) -> EncoderPipeline.Encoded {
        do {
            let full = try pipeline.tokenizer.encode(text, pair: pair)
            if full.count <= pipeline.maxLength { return pipeline.encoded(full) }
            let limit = Truncation(maxLength: pipeline.maxLength)
            var cut = pipeline.encoded(try pipeline.tokenizer.encode(text, pair: pair, truncation: limit))
            cut.truncated = true
            return cut
        } catch {
            throw .invalidInput("tokenizer: \(error)")
        }
    }

    static func same(_ pipeline: EncoderPipeline, _ text: String, pair: String?, _ what: String) {
        let context = "\(what): text of \(text.count) characters" + (pair.map { ", pair of \($0.count)" } ?? "")
        let want = Result { () throws(FlintError) in try twoPass(pipeline, text, pair: pair) }
        let got = Result { () throws(FlintError) in try pipeline.encode(text, pair: pair) }
        switch (want, got) {
        case let (.success(w), .success(g)):
            #expect(g.ids == w.ids, "ids: \(context)")
            #expect(g.typeIds == w.typeIds, "type ids: \(context)")
            #expect(g.truncated == w.truncated, "truncated: \(context)")
        case let (.failure(w), .failure(g)):
            #expect("\(g)" == "\(w)", "refusal: \(context)")
        default:
            Issue.record("one path refuses, the other does not (\(want), \(got)): \(context)")
        }
    }

    static func check(_ pipeline: EncoderPipeline, _ what: String) throws {
        var truncated = 0
        for text in texts {
            same(pipeline, text, pair: nil, what)
            for pair in texts.prefix(3) + texts.suffix(1) { same(pipeline, text, pair: pair, what) }
            if try pipeline.encode(text).truncated { truncated += 1 }
        }
        #expect(truncated >= 1, "\(what): no text reached the limit of \(pipeline.maxLength)")
    }

    @Test func miniLMWordPiece() throws {
        guard let folder = TestPaths.asset("all-MiniLM-L6-v2") else {
            print("skipped: \(TestPaths.missingAssetsReason)")
            return
        }
        let pipeline = try EncoderPipeline(folder: folder, backend: Self.backend, outputs: [.sentenceEmbedding])
        #expect(pipeline.model.config.typeVocabSize > 1)
        try Self.check(pipeline, "MiniLM")
        // A limit that even short pairs exceed.
        try Self.check(try EncoderPipeline(folder: folder, backend: Self.backend, outputs: [.sentenceEmbedding], maxLength: 5),
                       "MiniLM, limit 5")
    }

    @Test func robertaByteLevelBPE() throws {
        guard let folder = Self.folder("encoders/tiny-roberta-model", tokenizer: "roberta-bpe/tokenizer.json") else {
            print("skipped: \(TestPaths.missingAssetsReason)")
            return
        }
        let pipeline = try EncoderPipeline(folder: folder, backend: Self.backend, outputs: [.sentenceEmbedding])
        #expect(pipeline.model.config.typeVocabSize == 1, "type ids must be zeroed, as encode does")
        try Self.check(pipeline, "tiny RoBERTa + RoBERTa's BPE")
        // Below a pair's 4 special tokens: truncation has nothing to cut to, both paths refuse alike.
        try Self.check(try EncoderPipeline(folder: folder, backend: Self.backend, outputs: [.sentenceEmbedding], maxLength: 3),
                       "tiny RoBERTa, limit 3")
    }

    @Test func xlmRobertaUnigram() throws {
        guard let folder = Self.folder("encoders/tiny-xlm-roberta-model", tokenizer: "xlmr-unigram/tokenizer.json") else {
            print("skipped: \(TestPaths.missingAssetsReason)")
            return
        }
        try Self.check(try EncoderPipeline(folder: folder, backend: Self.backend, outputs: [.sentenceEmbedding]),
                       "tiny XLM-R + XLM-R's Unigram")
    }
}
