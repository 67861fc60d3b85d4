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
        let stops = parameters.stopStrings.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
        let longestStop = stops.map(\.count).max() ?? 0
        var streams = [Stream](repeating: Stream(), count: prompts.count)
        let tokens = try generator.generate(prompts: prompts, parameters: parameters) { i, id in
            streams[i].ids.append(id)
            let text = Array(tokenizer.decode(streams[i].ids, skipSpecialTokens: true).unicodeScalars)
            if let cut = Self.firstStop(in: text, stops: stops, from: max(0, streams[i].emitted - longestStop)) {
                streams[i].finalText = Array(text[..<cut])
                return false
            }
            let safe = Self.finalPrefixLength(text, stops: stops)
            if safe > streams[i].emitted {
                onText(i, String(String.UnicodeScalarView(text[streams[i].emitted..<safe])))
                streams[i].emitted = safe
            }
            return true
        }
        return tokens.enumerated().map { i, t in
            let text = streams[i].finalText ?? Array(tokenizer.decode(t.ids, skipSpecialTokens: true).unicodeScalars)
            if text.count > streams[i].emitted { onText(i, String(String.UnicodeScalarView(text[streams[i].emitted...]))) }
            return Completion(text: String(String.UnicodeScalarView(text)), ids: t.ids, promptTokens: t.promptTokens,
                              finishReason: t.finishReason, timeToFirstTokenMs: t.timeToFirstTokenMs, msPerToken: t.msPerToken)
        }
    }

    private struct Stream {
        var ids: [Int32] = []
        /// Scalars of the completion already handed to `onText`.
        var emitted = 0
        /// Set when a stop string ended the completion: the text before it.
        var finalText: [Unicode.Scalar]?
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
