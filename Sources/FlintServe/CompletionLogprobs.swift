import FlintModels
import FlintTokenizers

/// A choice's `logprobs` in OpenAI's legacy completions layout, built a token at a time:
/// `{"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob, ...}, ...],
/// "text_offset": [...]}`. Each token is its own decoded text (a lone byte of a longer UTF-8
/// character decodes to U+FFFD, as Hugging Face's decode of that id); `text_offset` counts Unicode
/// scalars (Python's `len`) from the start of the choice's text. `top_logprobs` holds the requested
/// most likely tokens and always the sampled one (so up to `logprobs + 1` entries, as OpenAI says);
/// when two ids decode to the same text the more likely one's value is kept. With `echo`, the prompt's
/// tokens come first (the first one with null `token_logprobs` and `top_logprobs`: nothing precedes
/// it), and offsets count from the start of the echoed prompt.
/// The values are the model's own distribution (`SamplingParameters`, "Log-probabilities").
struct CompletionLogprobs {
    private(set) var tokens: [String] = []
    private(set) var tokenLogprobs: [Float?] = []
    private(set) var topLogprobs: [[(String, Float)]?] = []
    private(set) var textOffsets: [Int] = []
    /// Where the next token's text starts.
    private(set) var nextOffset: Int

    init(startOffset: Int = 0) { nextOffset = startOffset }

    var isEmpty: Bool { tokens.isEmpty }

    /// A token; one without a logprob (a prompt's first) gets null entries.
    mutating func append(_ token: TokenGenerator.Sampled, tokenizer: Tokenizer) {
        let text = tokenizer.decode([token.id], skipSpecialTokens: false)
        tokens.append(text)
        textOffsets.append(nextOffset)
        nextOffset += text.unicodeScalars.count
        guard let logprob = token.logprob else {
            tokenLogprobs.append(nil)
            topLogprobs.append(nil)
            return
        }
        tokenLogprobs.append(logprob)
        var top: [(String, Float)] = []
        for t in token.top {
            let key = tokenizer.decode([t.id], skipSpecialTokens: false)
            if !top.contains(where: { $0.0 == key }) { top.append((key, t.logprob)) }
        }
        if !top.contains(where: { $0.0 == text }) { top.append((text, logprob)) }
        topLogprobs.append(top)
    }

    /// The prompt's tokens (`PromptScorer.score`), from offset 0; the completion's tokens then count
    /// from the end of the echoed `promptText`.
    mutating func appendPrompt(_ prompt: [TokenGenerator.Sampled], promptText: String, tokenizer: Tokenizer) {
        nextOffset = 0
        for token in prompt { append(token, tokenizer: tokenizer) }
        nextOffset = promptText.unicodeScalars.count
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
            ("token_logprobs", .array(tokenLogprobs.map { $0.map(JSONOut.float) ?? .null })),
            ("top_logprobs", .array(topLogprobs.map { $0.map { .object($0.map { ($0.0, .float($0.1)) }) } ?? .null })),
            ("text_offset", .array(textOffsets.map(JSONOut.int))),
        ])
    }
}
