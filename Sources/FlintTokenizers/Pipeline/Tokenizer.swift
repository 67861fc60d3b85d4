import Dispatch

/// A Hugging Face–compatible tokenizer: added tokens -> normalizer -> pre-tokenizer -> model ->
/// post-processor, and a decoder for the way back.
///
/// Build one with `Tokenizer.load(path)` (a `tokenizer.json`, a `vocab.txt`, GPT-2's vocab and
/// merges files, or a model folder holding any of them). Encoding is thread-safe; `encodeBatch`
/// spreads a batch over cores.
public final class Tokenizer: Sendable {
    public let normalizer: (any Normalizer)?
    public let preTokenizer: (any PreTokenizer)?
    public let model: any TokenizationModel
    public let postProcessor: (any PostProcessor)?
    public let decoder: (any TokenDecoder)?
    let addedVocabulary: AddedVocabulary
    /// What was loaded, for messages ("tokenizer.json (WordPiece)").
    public let source: String

    public init(normalizer: (any Normalizer)?, preTokenizer: (any PreTokenizer)?, model: any TokenizationModel,
                postProcessor: (any PostProcessor)?, decoder: (any TokenDecoder)?, addedTokens: [AddedToken], source: String)
    {
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.addedVocabulary = AddedVocabulary(addedTokens)
        self.source = source
    }

    public var addedTokens: [AddedToken] { addedVocabulary.tokens }

    /// The id of `token`, looking at added tokens first, then the model's vocabulary.
    public func id(forToken token: String) -> Int32? {
        addedVocabulary.id(forContent: token) ?? model.id(forToken: token)
    }

    /// The vocabulary string of `id` (added tokens included).
    public func token(forId id: Int32) -> String? {
        addedVocabulary.token(forId: id)?.content ?? model.token(forId: id)
    }

    /// The most overflowing windows one encoding may have. Pairs multiply windows (each of the first
    /// input's with each of the second's, as HF), so hostile inputs or templates could otherwise ask
    /// for millions of copies; this is far past any real use (16,384 windows of 512 tokens = 8M tokens).
    public static let maxOverflowWindows = 16_384

    /// Special tokens the post-processor adds around a single input or a pair.
    public func specialTokenCount(isPair: Bool) -> Int { postProcessor?.addedTokenCount(isPair: isPair) ?? 0 }

    /// Tokenizes `text` (and `pair`, for sentence-pair models).
    /// - Parameters:
    ///   - addSpecialTokens: apply the post-processor's template (`[CLS] ... [SEP]`).
    ///   - truncation: nil = never truncate (the tokenizer file's own truncation is ignored).
    public func encode(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true,
                       truncation: Truncation? = nil) throws(TokenizerError) -> Encoding
    {
        var scratch = ModelScratch()
        return try encode(text, pair: pair, addSpecialTokens: addSpecialTokens, truncation: truncation, scratch: &scratch)
    }

    /// Tokenizes raw bytes, refusing invalid UTF-8 with a typed error instead of guessing.
    public func encode(utf8 bytes: [UInt8], addSpecialTokens: Bool = true, truncation: Truncation? = nil) throws(TokenizerError) -> Encoding
    {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalidInput("text is not valid UTF-8")
        }
        return try encode(text, addSpecialTokens: addSpecialTokens, truncation: truncation)
    }

    /// - Parameter detailed: false keeps ids and type ids only (`encodeIds`); everything else runs the same.
    func encode(_ text: String, pair: String?, addSpecialTokens: Bool, truncation: Truncation?, detailed: Bool = true,
                scratch: inout ModelScratch) throws(TokenizerError) -> Encoding
    {
        var first = encodeSequence(text, typeId: 0, sequence: 0, detailed: detailed, scratch: &scratch)
        var second = pair.map { encodeSequence($0, typeId: 1, sequence: 1, detailed: detailed, scratch: &scratch) }
        if let truncation {
            let added = addSpecialTokens ? specialTokenCount(isPair: pair != nil) : 0
            guard truncation.maxLength >= added else {
                throw .truncation("max length \(truncation.maxLength) leaves no room for the \(added) special tokens")
            }
            try Truncation.apply(truncation.maxLength - added, truncation, &first, &second)
        }
        let processor = postProcessor ?? ConcatenatingProcessor()
        let windows = processor.overflowWindows(first: first.overflowing.count, second: second?.overflowing.count)
        guard windows <= Self.maxOverflowWindows else {
            throw .truncation("""
                these inputs would make \(windows == .max ? "over \(Int.max)" : "\(windows)") overflowing windows \
                (the limit is \(Self.maxOverflowWindows)): raise the truncation's max length or stride, shorten the \
                inputs, or use a post-processor template that names each input once
                """)
        }
        return processor.process(first, second, addSpecialTokens: addSpecialTokens) { id, span, sequence in
            // HF's Token.value of an added token that strips whitespace is the text it matched.
            guard let added = self.addedVocabulary.token(forId: id), added.lstrip || added.rstrip,
                let source = sequence == 0 ? text : pair
            else { return self.model.token(forId: id) ?? self.addedVocabulary.token(forId: id)?.content }
            let scalars = source.unicodeScalars
            guard span.start >= 0, span.end <= scalars.count, span.start < span.end else { return added.content }
            let from = scalars.index(scalars.startIndex, offsetBy: span.start), to = scalars.index(from, offsetBy: span.end - span.start)
            return String(scalars[from..<to])
        }
    }

    /// Tokenizes many inputs on `threads` threads (default: all cores); results in input order.
    public func encodeBatch(_ texts: [String], pairs: [String?]? = nil, addSpecialTokens: Bool = true,
                            truncation: Truncation? = nil, threads: Int? = nil) throws(TokenizerError) -> [Encoding]
    {
        precondition(pairs == nil || pairs!.count == texts.count, "one pair per text")
        let workers = max(1, min(threads ?? Self.coreCount, texts.count))
        if workers == 1 {
            var scratch = ModelScratch()
            var out: [Encoding] = []
            out.reserveCapacity(texts.count)
            for i in texts.indices {
                out.append(
                    try encode(
                        texts[i], pair: pairs?[i] ?? nil, addSpecialTokens: addSpecialTokens, truncation: truncation, scratch: &scratch))
            }
            return out
        }
        let results = ResultSlots(count: texts.count)
        let chunk = (texts.count + workers * 8 - 1) / (workers * 8)
        let chunks = (texts.count + chunk - 1) / chunk
        let next = AtomicCounter()
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            var scratch = ModelScratch()
            while true {
                let c = next.increment()
                if c >= chunks { break }
                for i in (c * chunk)..<min(texts.count, (c + 1) * chunk) {
                    results.set(
                        i,
                        Result { () throws(TokenizerError) -> Encoding in
                            try self.encode(
                                texts[i], pair: pairs?[i] ?? nil, addSpecialTokens: addSpecialTokens, truncation: truncation,
                                scratch: &scratch)
                        })
                }
            }
        }
        return try results.collect()
    }

    /// Tokens of one text before post-processing, with offsets into `text`.
    func encodeSequence(_ text: String, typeId: Int32, sequence: Int8, detailed: Bool = true,
                        scratch: inout ModelScratch) -> Encoding
    {
        let original = Array(text.unicodeScalars)
        var encoding = Encoding(detailed: detailed)
        encoding.reserve(original.count / 3 + 4)
        var tokens: [ModelToken] = []
        var words: [Range<Int>] = []
        var word: Int32 = 0
        for piece in addedVocabulary.splitRaw(original, 0..<original.count) {
            switch piece {
            case let .added(id, range):
                encoding.append(id: id, typeId: typeId, span: TokenSpan(start: range.lowerBound, end: range.upperBound),
                                special: false, sequence: sequence, word: word)
                word += 1
            case let .text(range):
                var normalized = NormalizedText(original, range: range)
                normalizer?.normalize(&normalized)
                guard addedVocabulary.hasNormalizedTokens else {
                    appendModelTokens(&normalized, typeId, sequence, &encoding, &tokens, &words, &word, &scratch)
                    continue
                }
                for sub in addedVocabulary.splitNormalized(normalized.scalars) {
                    switch sub {
                    case let .added(id, r):
                        encoding.append(id: id, typeId: typeId, span: normalized.originalSpan(r), special: false, sequence: sequence,
                                        word: word)
                        word += 1
                    case let .text(r):
                        var part = normalized.slice(r)
                        appendModelTokens(&part, typeId, sequence, &encoding, &tokens, &words, &word, &scratch)
                    }
                }
            }
        }
        return encoding
    }

    private func appendModelTokens(_ text: inout NormalizedText, _ typeId: Int32, _ sequence: Int8, _ encoding: inout Encoding,
                                   _ tokens: inout [ModelToken], _ words: inout [Range<Int>], _ word: inout Int32,
                                   _ scratch: inout ModelScratch)
    {
        guard !text.isEmpty else { return }
        words.removeAll(keepingCapacity: true)
        if let preTokenizer {
            preTokenizer.preTokenize(&text, into: &words)
        } else {
            words.append(0..<text.count)
        }
        for w in words where !w.isEmpty {
            tokens.removeAll(keepingCapacity: true)
            model.tokenize(text, word: w, into: &tokens, scratch: &scratch)
            if encoding.detailed {
                for t in tokens {
                    encoding.append(id: t.id, typeId: typeId, span: text.originalSpan(Int(t.start)..<Int(t.end)), special: false,
                                    sequence: sequence, word: word)
                }
            } else {
                for t in tokens { encoding.append(id: t.id, typeId: typeId, span: .empty, special: false, sequence: sequence) }
            }
            word += 1
        }
    }

    /// Turns ids back into text. Unknown ids are skipped, like HF.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = true) -> String {
        let tokens = decodableTokens(ids, skipSpecialTokens: skipSpecialTokens)
        if let decoder { return decoder.decode(tokens) }
        return tokens.joined(separator: " ")
    }

    /// The vocabulary strings `decode` passes to the decoder.
    public func decodableTokens(_ ids: [Int32], skipSpecialTokens: Bool) -> [String] {
        ids.compactMap { id -> String? in
            if let added = addedVocabulary.token(forId: id) {
                return skipSpecialTokens && added.special ? nil : added.content
            }
            return model.token(forId: id)
        }
    }

    static var coreCount: Int { activeProcessorCount() }
}

/// One slot per input, written by exactly one worker; read after all workers finished.
private final class ResultSlots: @unchecked Sendable {
    private var slots: [Result<Encoding, TokenizerError>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<Encoding, TokenizerError>) { slots[i] = r }
    func collect() throws(TokenizerError) -> [Encoding] {
        var out: [Encoding] = []
        out.reserveCapacity(slots.count)
        for s in slots { out.append(try s!.get()) }
        return out
    }
}
