import FlintTokenizers

/// How `flint tag` merges token predictions into entities: transformers' `AggregationStrategy`.
public enum Aggregation: String, Sendable, CaseIterable {
    /// One entity per token (labels as the model names them, "B-PER").
    case none
    /// Adjacent tokens with the same entity type grouped ("PER").
    case simple
    /// Words first (the first token's label wins), then grouped.
    case first
    /// Words first (the label of the averaged scores), then grouped.
    case average
    /// Words first (the label of the token with the highest score), then grouped.
    case max
}

/// An entity as the `token-classification` pipeline reports it. `start`/`end` are character
/// (code point) offsets into the input; `index` (token position) only for `.none`.
public struct TaggedEntity: Sendable, Equatable {
    /// "B-PER" for `.none` (`entity`), "PER" otherwise (`entity_group`).
    public var label: String
    public var grouped: Bool
    public var score: Double
    public var word: String
    public var start: Int
    public var end: Int
    public var index: Int?
}

/// transformers 5.23's `TokenClassificationPipeline.postprocess` (gather, aggregate, group, drop
/// "O"), step for step, on one input's tokens.
public struct TokenTagger: Sendable {
    public let labels: [String]
    public let tokenizer: Tokenizer
    /// Labels left out of the result (the pipeline's default `ignore_labels`).
    public var ignoredLabels: Set<String> = ["O"]

    public init(labels: [String], tokenizer: Tokenizer) {
        self.labels = labels
        self.tokenizer = tokenizer
    }

    /// One token's view before aggregation (the pipeline's "pre-entity").
    struct Token {
        var word: String
        var scores: [Double]
        var start: Int
        var end: Int
        var index: Int
        var isSubword: Bool
    }

    /// `logits` `[tokens, labels]` (row-major, one row per token of `encoding`) -> entities.
    public func entities(text: String, encoding: Encoding, logits: [Float], aggregation: Aggregation) -> [TaggedEntity] {
        let tokens = gather(text: text, encoding: encoding, logits: logits)
        var entities: [TaggedEntity]
        switch aggregation {
        case .none, .simple:
            entities = tokens.map { t in
                let best = argmax(t.scores)
                return TaggedEntity(label: labels[best], grouped: false, score: t.scores[best], word: t.word, start: t.start, end: t.end,
                                    index: t.index)
            }
        case .first, .average, .max:
            entities = words(tokens).map { aggregateWord($0, aggregation) }
        }
        if aggregation != .none { entities = group(entities) }
        return entities.filter { !ignoredLabels.contains($0.label) }
    }

    func gather(text: String, encoding: Encoding, logits: [Float]) -> [Token] {
        let sentence = Array(text.unicodeScalars)
        let width = labels.count
        // WordPiece knows its word pieces; other models fall back on the pipeline's space heuristic.
        let wordPiece = (tokenizer.model as? WordPiece).map { !$0.continuingSubwordPrefix.isEmpty } ?? false
        let unknown: Int32? = if let wp = tokenizer.model as? WordPiece {
            tokenizer.id(forToken: wp.unknownToken)
        } else if let unigram = tokenizer.model as? Unigram {
            unigram.unknownId
        } else {
            nil
        }
        var out: [Token] = []
        for i in 0..<encoding.count where encoding.specialTokensMask[i] == 0 {
            let scores = ScoreFunction.softmax(logits[(i * width)..<((i + 1) * width)])
            var word = tokenizer.token(forId: encoding.ids[i]) ?? ""
            let span = encoding.offsets[i]
            let start = Swift.min(span.start, sentence.count), end = Swift.min(Swift.max(span.end, start), sentence.count)
            let reference = Self.string(sentence[start..<end])
            var isSubword: Bool
            if wordPiece {
                isSubword = word.unicodeScalars.count != end - start
            } else {
                isSubword = start > 0 && !(sentence[start - 1] == " " || (start < sentence.count && sentence[start] == " "))
            }
            if encoding.ids[i] == unknown {
                word = reference
                isSubword = false
            }
            out.append(Token(word: word, scores: scores, start: span.start, end: span.end, index: i, isSubword: isSubword))
        }
        return out
    }

    /// Tokens grouped into words: a token that is not a sub-word starts a new word.
    func words(_ tokens: [Token]) -> [[Token]] {
        var groups: [[Token]] = []
        for t in tokens {
            if groups.isEmpty || !t.isSubword {
                groups.append([t])
            } else {
                groups[groups.count - 1].append(t)
            }
        }
        return groups
    }

    func aggregateWord(_ word: [Token], _ aggregation: Aggregation) -> TaggedEntity {
        let scores: [Double]
        switch aggregation {
        case .average:
            scores = (0..<labels.count).map { j in word.map { $0.scores[j] }.reduce(0, +) / Double(word.count) }
        case .max:
            // The token whose best score is highest (the first of equals, as Python's max).
            var pick = word[0]
            for t in word.dropFirst() where t.scores.max()! > pick.scores.max()! { pick = t }
            scores = pick.scores
        default:
            scores = word[0].scores
        }
        let best = argmax(scores)
        return TaggedEntity(label: labels[best], grouped: false, score: scores[best], word: decode(word.map(\.word)),
                            start: word[0].start, end: word[word.count - 1].end, index: nil)
    }

    /// Adjacent entities of one type merge unless the next one begins ("B-"); the group takes
    /// the type without its prefix, the mean score and the decoded words.
    func group(_ entities: [TaggedEntity]) -> [TaggedEntity] {
        func tag(_ name: String) -> (begins: Bool, type: String) {
            if name.hasPrefix("B-") { return (true, String(name.dropFirst(2))) }
            if name.hasPrefix("I-") { return (false, String(name.dropFirst(2))) }
            return (false, name)
        }
        var groups: [TaggedEntity] = []
        var pending: [TaggedEntity] = []
        func flush() {
            guard let first = pending.first else { return }
            let parts = first.label.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            let type = parts.last.map(String.init) ?? first.label
            groups.append(TaggedEntity(label: type, grouped: true, score: pending.map(\.score).reduce(0, +) / Double(pending.count),
                                       word: decode(pending.map(\.word)), start: first.start, end: pending[pending.count - 1].end,
                                       index: nil))
        }
        for e in entities {
            if let last = pending.last {
                let (begins, type) = tag(e.label)
                if type == tag(last.label).type && !begins {
                    pending.append(e)
                    continue
                }
                flush()
                pending = [e]
            } else {
                pending = [e]
            }
        }
        flush()
        return groups
    }

    /// `convert_tokens_to_string`: the tokenizer's decoder, else tokens joined by spaces.
    func decode(_ tokens: [String]) -> String {
        tokenizer.decoder?.decode(tokens) ?? tokens.joined(separator: " ")
    }

    func argmax(_ v: [Double]) -> Int {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }

    static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
