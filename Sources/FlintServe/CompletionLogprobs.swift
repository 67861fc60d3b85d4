import FlintModels
import FlintTokenizers

/// A choice's `logprobs` in OpenAI's legacy completions layout, built a token at a time:
/// `{"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob, ...}, ...],
/// "text_offset": [...]}`. Each token is its own decoded text (a lone byte of a longer UTF-8
/// character decodes to U+FFFD, as Hugging Face's decode of that id); `text_offset` counts Unicode
/// scalars (Python's `len`) from the start of the choice's text. `top_logprobs` holds the requested
/// most likely tokens and always the sampled one (so up to `logprobs + 1` entries, as OpenAI says);
/// when two ids decode to the same text the more likely one's value is kept.
/// The values are the model's own distribution (`SamplingParameters`, "Log-probabilities").
struct CompletionLogprobs {
    private(set) var tokens: [String] = []
    private(set) var tokenLogprobs: [Float] = []
    private(set) var topLogprobs: [[(String, Float)]] = []
    private(set) var textOffsets: [Int] = []
    /// Where the next token's text starts.
    private(set) var nextOffset: Int

    init(startOffset: Int = 0) { nextOffset = startOffset }

    var isEmpty: Bool { tokens.isEmpty }

    mutating func append(_ token: TokenGenerator.Sampled, tokenizer: Tokenizer) {
        let text = tokenizer.decode([token.id], skipSpecialTokens: false)
        tokens.append(text)
        tokenLogprobs.append(token.logprob ?? 0)
        var top: [(String, Float)] = []
        for t in token.top {
            let key = tokenizer.decode([t.id], skipSpecialTokens: false)
            if !top.contains(where: { $0.0 == key }) { top.append((key, t.logprob)) }
        }
        if !top.contains(where: { $0.0 == text }) { top.append((text, token.logprob ?? 0)) }
        topLogprobs.append(top)
        textOffsets.append(nextOffset)
        nextOffset += text.unicodeScalars.count
    }

    /// The tokens appended so far, leaving the offset where it is (a stream's next chunk goes on from it).
    mutating func takeChunk() -> JSONOut {
        let out = json
        (tokens, tokenLogprobs, topLogprobs, textOffsets) = ([], [], [], [])
        return out
    }

    var json: JSONOut {
        .object([
            ("tokens", .array(tokens.map(JSONOut.string))),
            ("token_logprobs", .floats(tokenLogprobs)),
            ("top_logprobs", .array(topLogprobs.map { .object($0.map { ($0.0, .float($0.1)) }) })),
            ("text_offset", .array(textOffsets.map(JSONOut.int))),
        ])
    }
}
