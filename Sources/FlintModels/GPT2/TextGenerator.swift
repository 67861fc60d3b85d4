import FlintCheckpoint
import FlintCore
import FlintTokenizers

/// Text in, text out: GPT-2 generation with streaming and stop strings on top of `TokenGenerator`.
///
/// Streaming emits text as soon as it is final: never half of a UTF-8 character (a byte-level BPE
/// token can end inside one) and never a tail that might still grow into a stop string. A stop
/// string ends the completion and is not part of its text (as OpenAI's `stop`); the ids keep every
/// generated token. Text is decoded without special tokens (`<|endoftext|>`).
public final class TextGenerator: @unchecked Sendable {
    public let tokenizer: Tokenizer
    public let generator: TokenGenerator

    /// One prompt's result.
    public struct Completion: Sendable, Equatable {
        public var text: String
        public var ids: [Int32]
        public var promptTokens: Int
        public var finishReason: FinishReason
        public var timeToFirstTokenMs: Double
        public var msPerToken: Double
    }

    public init(tokenizer: Tokenizer, generator: TokenGenerator) {
        self.tokenizer = tokenizer
        self.generator = generator
    }

    /// Token ids of a prompt; an empty prompt becomes `[bos]` (as transformers' generate does).
    public static func encode(_ prompt: String, tokenizer: Tokenizer, bosTokenId: Int?) throws(FlintError) -> [Int32] {
        let ids: [Int32]
        do {
            ids = try tokenizer.encode(prompt).ids
        } catch {
            throw .invalidInput("tokenizer: \(error)")
        }
        if ids.isEmpty {
            guard let bosTokenId else { throw .invalidInput("the prompt is empty and the model has no bos_token_id to start from") }
            return [Int32(bosTokenId)]
        }
        return ids
    }

    /// Completions for `prompts` (token ids, see `encode`), in input order. `onText(prompt, text)`
    /// receives each prompt's completion text piece by piece as it becomes final.
    public func generate(prompts: [[Int32]], parameters: GenerationParameters,
                         onText: (Int, String) -> Void = { _, _ in }) throws(FlintError) -> [Completion]
    {
        var streams = [TextStream](repeating: TextStream(stopStrings: parameters.stopStrings), count: prompts.count)
        let tokens = try generator.generate(prompts: prompts, parameters: parameters) { i, id in
            let (text, stopped) = streams[i].append(id, tokenizer: tokenizer)
            if let text { onText(i, text) }
            return !stopped
        }
        return tokens.enumerated().map { i, t in
            let (rest, text) = streams[i].finish(tokenizer: tokenizer)
            if let rest { onText(i, rest) }
            return Completion(text: text, ids: t.ids, promptTokens: t.promptTokens,
                              finishReason: t.finishReason, timeToFirstTokenMs: t.timeToFirstTokenMs, msPerToken: t.msPerToken)
        }
    }

    /// Where the earliest stop string starts in `text` (searching from `from`), if any.
    static func firstStop(in text: [Unicode.Scalar], stops: [[Unicode.Scalar]], from: Int) -> Int? {
        guard !stops.isEmpty else { return nil }
        for start in from..<max(from, text.count) {
            for stop in stops where start + stop.count <= text.count && text[start..<(start + stop.count)].elementsEqual(stop) {
                return start
            }
        }
        return nil
    }

    /// How much of `text` cannot change any more: not a trailing U+FFFD (the first bytes of a
    /// character whose last bytes are still to come) and not a tail that begins a stop string.
    static func finalPrefixLength(_ text: [Unicode.Scalar], stops: [[Unicode.Scalar]]) -> Int {
        var n = text.count
        while n > 0, text[n - 1] == "\u{FFFD}" { n -= 1 }
        var hold = 0
        for stop in stops {
            for k in stride(from: min(stop.count - 1, n), to: hold, by: -1) where text[(n - k)..<n].elementsEqual(stop[0..<k]) {
                hold = k
                break
            }
        }
        return n - hold
    }
}

/// One completion's text as its tokens arrive: hands out only text that is final (no half UTF-8
/// character, no tail that may grow into a stop string) and notices the first stop string. The
/// pieces joined equal the completion's whole text (invalid bytes as U+FFFD).
public struct TextStream: Sendable {
    public private(set) var ids: [Int32] = []
    let stops: [[Unicode.Scalar]]
    let longestStop: Int
    /// Scalars of the completion already handed out.
    var emitted = 0
    /// Set when a stop string ended the completion: the text before it.
    var finalText: [Unicode.Scalar]?

    public init(stopStrings: [String]) {
        stops = stopStrings.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
        longestStop = stops.map(\.count).max() ?? 0
    }

    /// Whether a stop string has ended the completion.
    public var stopped: Bool { finalText != nil }

    /// Adds a generated token. Returns the text that became final (nil: none yet) and whether a
    /// stop string now ends the completion.
    public mutating func append(_ id: Int32, tokenizer: Tokenizer) -> (text: String?, stopped: Bool) {
        ids.append(id)
        let text = Array(tokenizer.decode(ids, skipSpecialTokens: true).unicodeScalars)
        if let cut = TextGenerator.firstStop(in: text, stops: stops, from: max(0, emitted - longestStop)) {
            finalText = Array(text[..<cut])
            return (nil, true)
        }
        let safe = TextGenerator.finalPrefixLength(text, stops: stops)
        guard safe > emitted else { return (nil, false) }
        defer { emitted = safe }
        return (String(String.UnicodeScalarView(text[emitted..<safe])), false)
    }

    /// Ends the completion: the text not handed out yet (nil: none) and the whole text.
    public mutating func finish(tokenizer: Tokenizer) -> (rest: String?, text: String) {
        let text = finalText ?? Array(tokenizer.decode(ids, skipSpecialTokens: true).unicodeScalars)
        let rest = text.count > emitted ? String(String.UnicodeScalarView(text[emitted...])) : nil
        emitted = text.count
        return (rest, String(String.UnicodeScalarView(text)))
    }
}
