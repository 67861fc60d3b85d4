import FlintJSON
import Testing

/// A tiny random GPT-2 of `Tests/Fixtures/gpt2` with what Hugging Face transformers computed for it
/// (`scripts/gen_gpt2_fixtures.py`): per prompt, every token's logits (or the last hidden state of
/// a bare GPT2Model) with each prompt run alone, and transformers' 64-token greedy continuation.
public struct GPT2Fixture: Sendable {
    public let name: String
    public let folder: String
    public let prompts: [[Int32]]
    /// Per prompt, `[length, vocab]` row-major (language models).
    public let logits: [[Float]]?
    /// Per prompt, `[length, n_embd]` row-major (GPT2Model).
    public let lastHiddenState: [[Float]]?
    /// Per prompt, the ids transformers' greedy `generate` appended (language models).
    public let greedy: [[Int32]]?

    /// The fixtures with an LM head, in f32, f16 and bf16 checkpoints and three head dims.
    public static let languageModels = ["tiny-gpt2", "tiny-gpt2-hd40", "tiny-gpt2-hd128", "tiny-gpt2-fp16", "tiny-gpt2-bf16"]

    public init(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        self.name = name
        folder = TestPaths.fixture("gpt2/" + name)
        let expected = try JSONParser.parse(try #require(TestPaths.read(folder + "/expected.json"), "missing fixture \(folder)",
                                                         sourceLocation: sourceLocation))
        func ids(_ v: JSONValue?) -> [[Int32]]? { v?.array?.map { $0.array!.map { Int32($0.int!) } } }
        func rows(_ v: JSONValue?) -> [[Float]]? { v?.array?.map { $0.array!.flatMap { $0.floats! } } }
        prompts = try #require(ids(expected["prompts"]), "\(name): no prompts", sourceLocation: sourceLocation)
        logits = rows(expected["logits"])
        lastHiddenState = rows(expected["last_hidden_state"])
        greedy = ids(expected["greedy"])
    }
}
