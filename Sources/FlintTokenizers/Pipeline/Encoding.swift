/// The result of tokenizing one input (a text, or a text pair), as in Hugging Face `Encoding`.
///
/// All arrays have one entry per token. Offsets are Unicode scalar (code point) indices into the
/// input text the token came from (the first or the second text of a pair); special tokens added
/// by post-processing have offsets `(0, 0)`.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int32] = []
    /// 0 for the first sequence, 1 for the second (BERT's token type / segment ids).
    public var typeIds: [Int32] = []
    public var offsets: [TokenSpan] = []
    /// 1 where post-processing added a special token (`[CLS]`, `[SEP]`), else 0.
    public var specialTokensMask: [UInt8] = []
    /// Which input a token came from: 0 first text, 1 second text, nil for added special tokens.
    public var sequenceIds: [Int8] = []
    /// The pre-tokenized word each token came from, counted per input text (HF's `word_ids`;
    /// an added token is a word of its own); -1 for special tokens added by post-processing.
    public var wordIds: [Int32] = []
    /// Further windows when truncation with `stride` split the input (SQuAD-style doc stride).
    public var overflowing: [Encoding] = []
    /// False in `Tokenizer.encodeIds`: only `ids` and `typeIds` are kept (the other per-token arrays
    /// stay empty and byte-level offset trimming is skipped); the pipeline is otherwise the same code.
    var detailed = true

    public init() {}

    init(detailed: Bool) {
        self.detailed = detailed
    }

    public var count: Int { ids.count }

    mutating func reserve(_ n: Int) {
        ids.reserveCapacity(n)
        typeIds.reserveCapacity(n)
        guard detailed else { return }
        offsets.reserveCapacity(n)
        specialTokensMask.reserveCapacity(n)
        sequenceIds.reserveCapacity(n)
        wordIds.reserveCapacity(n)
    }

    mutating func append(id: Int32, typeId: Int32, span: TokenSpan, special: Bool, sequence: Int8, word: Int32 = -1) {
        ids.append(id)
        typeIds.append(typeId)
        guard detailed else { return }
        offsets.append(span)
        specialTokensMask.append(special ? 1 : 0)
        sequenceIds.append(sequence)
        wordIds.append(word)
    }

    func slice(_ range: Range<Int>) -> Encoding {
        var e = Encoding(detailed: detailed)
        e.ids = Array(ids[range])
        e.typeIds = Array(typeIds[range])
        guard detailed else { return e }
        e.offsets = Array(offsets[range])
        e.specialTokensMask = Array(specialTokensMask[range])
        e.sequenceIds = Array(sequenceIds[range])
        e.wordIds = Array(wordIds[range])
        return e
    }

    /// Appends `other` after `self`, combining overflowing windows exactly as HF's
    /// `Encoding::merge_with` does (every window of one side with every window of the other).
    mutating func merge(with other: Encoding) {
        var combined: [Encoding] = []
        for mine in overflowing {
            var m = mine
            m.merge(with: other.withoutOverflow)
            combined.append(m)
            for theirs in other.overflowing {
                var m2 = mine
                m2.merge(with: theirs)
                combined.append(m2)
            }
        }
        for theirs in other.overflowing {
            var m = self.withoutOverflow
            m.overflowing = []
            m.merge(with: theirs)
            combined.append(m)
        }
        ids += other.ids
        typeIds += other.typeIds
        offsets += other.offsets
        specialTokensMask += other.specialTokensMask
        sequenceIds += other.sequenceIds
        wordIds += other.wordIds
        overflowing = combined
    }

    /// The overflowing windows `merge` leaves when `self` has `mine` and `other` has `theirs`:
    /// each of mine with the other's main encoding and with each of theirs, then each of theirs alone.
    /// Saturates at `Int.max` (a hostile template can repeat an input many times).
    static func mergedWindows(_ mine: Int, _ theirs: Int) -> Int {
        let (product, overflow) = mine.multipliedReportingOverflow(by: theirs + 1)
        let (sum, overflow2) = product.addingReportingOverflow(theirs)
        return overflow || overflow2 ? .max : sum
    }

    var withoutOverflow: Encoding {
        var e = self
        e.overflowing = []
        return e
    }
}
