import FlintCPU
import FlintCheckpoint
import FlintCore
@testable import FlintModels
import FlintTestSupport
import FlintTokenizers
import Testing

/// Text-level generation: streaming that never emits half a character or the start of a stop
/// string, stop strings, empty and over-long prompts. The model is a GPT-2-vocabulary decoder with
/// tiny random layers (its text is noise, which is all these rules need); the tokenizer is GPT-2's.
@Suite("Text generation")
struct TextGenerationTests {
    static let config = GPT2Config(vocabSize: 50257, nPositions: 48, nEmbd: 16, nLayer: 1, nHead: 2)

    static func generator() throws -> TextGenerator? {
        guard let path = TestPaths.asset("gpt2-hf/tokenizer.json") else {
            print("skipped: \(TestPaths.missingAssetsReason)")
            return nil
        }
        let tokenizer = try Tokenizer.load(path)
        let model = GPT2(config: config, hasTensor: { _ in false })
        let plan = try model.plan(outputs: [.nextToken], maxTokens: 64, maxSequences: 2, maxContext: 48)
        let prepared = try CPUBackend(threads: 1).prepare(plan, weights: RandomWeights(seed: 5))
        return TextGenerator(tokenizer: tokenizer, generator: try TokenGenerator(prepared: prepared, eosTokenIds: config.eosTokenIds))
    }

    static func run(_ g: TextGenerator, _ prompts: [String], _ parameters: GenerationParameters) throws -> (
        [TextGenerator.Completion], [String]
    ) {
        var streamed = [String](repeating: "", count: prompts.count)
        let ids = try prompts.map { try TextGenerator.encode($0, tokenizer: g.tokenizer, bosTokenId: config.bosTokenId) }
        let out = try g.generate(prompts: ids, parameters: parameters) { i, piece in streamed[i] += piece }
        return (out, streamed)
    }

    @Test(arguments: [SamplingParameters.greedy, SamplingParameters(temperature: 1.2, topK: 200, seed: 9)])
    func streamedPiecesAddUpToTheText(_ sampling: SamplingParameters) throws {
        guard let g = try Self.generator() else { return }
        let (out, streamed) = try Self.run(
            g, ["Hello, world", ""], GenerationParameters(maxNewTokens: 30, sampling: sampling, ignoreEOS: true))
        for (c, s) in zip(out, streamed) {
            #expect(s == c.text && c.ids.count == 30 && c.finishReason == .length)
            #expect(c.text == g.tokenizer.decode(c.ids, skipSpecialTokens: true))
        }
        #expect(out[1].promptTokens == 1, "an empty prompt starts from <|endoftext|>")
    }

    @Test func aStopStringEndsTheCompletionAndIsLeftOut() throws {
        guard let g = try Self.generator() else { return }
        let free = try Self.run(g, ["The answer is"], GenerationParameters(maxNewTokens: 30, ignoreEOS: true)).0[0]
        let scalars = Array(free.text.unicodeScalars)
        try #require(scalars.count >= 12, "completion too short to cut: \(free.text)")
        let stop = String(String.UnicodeScalarView(scalars[6..<10]))
        let (out, streamed) = try Self.run(
            g, ["The answer is"], GenerationParameters(maxNewTokens: 30, ignoreEOS: true, stopStrings: [stop]))
        let first = TextGenerator.firstStop(in: scalars, stops: [Array(stop.unicodeScalars)], from: 0)!
        #expect(out[0].text == String(String.UnicodeScalarView(scalars[..<first])))
        #expect(out[0].finishReason == .stop && streamed[0] == out[0].text && !streamed[0].contains(stop))
        #expect(out[0].ids == Array(free.ids.prefix(out[0].ids.count)) && out[0].ids.count < 30)
    }

    @Test func heldBackTextIsIncompleteCharactersAndStopPrefixes() {
        let text = Array("abc\u{FFFD}".unicodeScalars)
        #expect(TextGenerator.finalPrefixLength(text, stops: []) == 3)
        #expect(TextGenerator.finalPrefixLength(Array("hello wo".unicodeScalars), stops: [Array("world".unicodeScalars)]) == 6)
        #expect(TextGenerator.finalPrefixLength(Array("hello w".unicodeScalars), stops: [Array("xyz".unicodeScalars)]) == 7)
        #expect(TextGenerator.firstStop(in: Array("a stop b stop".unicodeScalars), stops: [Array("stop".unicodeScalars)], from: 0) == 2)
    }

    @Test func promptsThatLeaveNoRoomAreRefused() throws {
        guard let g = try Self.generator() else { return }
        let long = [Int32](repeating: 11, count: 48)
        #expect(throws: FlintError.self) { _ = try g.generate(prompts: [long], parameters: GenerationParameters()) }
        #expect(throws: FlintError.self) { _ = try g.generate(prompts: [[]], parameters: GenerationParameters()) }
        #expect(throws: FlintError.self) { _ = try g.generate(prompts: [[1]], parameters: GenerationParameters(maxNewTokens: 0)) }
        // A prompt just short of the context generates until the context is full.
        let out = try g.generate(prompts: [Array(long.prefix(45))], parameters: GenerationParameters(maxNewTokens: 10, ignoreEOS: true))
        #expect(out[0].ids.count == 3 && out[0].finishReason == .context)
    }
}
