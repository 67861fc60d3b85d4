/// A token the tokenizer matches in the text before the model sees it (`[MASK]`,
/// `<|endoftext|>`), as in HF's `AddedToken`.
public struct AddedToken: Sendable, Equatable {
    public var id: Int32
    public var content: String
    /// Special tokens are dropped by `decode(skipSpecialTokens: true)`.
    public var special: Bool
    /// Match on the normalized text (true) or on the raw input (false).
    public var normalized: Bool
    /// Also swallow the whitespace to the left / right of the match.
    public var lstrip: Bool
    public var rstrip: Bool
    /// Only match when not glued to a letter or digit on either side.
    public var singleWord: Bool

    public init(id: Int32, content: String, special: Bool, normalized: Bool = false, lstrip: Bool = false,
                rstrip: Bool = false, singleWord: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.normalized = normalized
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
    }
}

/// The added tokens of a tokenizer and the leftmost-longest matcher that splits text around them.
struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    private let raw: Matcher
    private let normalized: Matcher
    private let byId: [Int32: AddedToken]

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        raw = Matcher(tokens.filter { !$0.normalized })
        normalized = Matcher(tokens.filter { $0.normalized })
        var map: [Int32: AddedToken] = [:]
        for t in tokens { map[t.id] = t }
        byId = map
    }

    var isEmpty: Bool { tokens.isEmpty }
    var hasRawTokens: Bool { !raw.isEmpty }
    var hasNormalizedTokens: Bool { !normalized.isEmpty }

    func token(forId id: Int32) -> AddedToken? { byId[id] }
    func id(forContent content: String) -> Int32? { tokens.first { $0.content.utf8.elementsEqual(content.utf8) }?.id }

    enum Piece {
        case text(Range<Int>)
        case added(Int32, Range<Int>)
    }

    /// Splits `scalars[range]` around added tokens that match the raw input.
    func splitRaw(_ scalars: [Unicode.Scalar], _ range: Range<Int>) -> [Piece] {
        raw.split(scalars, range)
    }

    /// Splits normalized scalars around added tokens that match after normalization.
    func splitNormalized(_ scalars: [Unicode.Scalar]) -> [Piece] {
        normalized.split(scalars, 0..<scalars.count)
    }

    /// Finds added tokens by scanning once; candidates are grouped by first scalar, longest first,
    /// which gives the leftmost-longest, non-overlapping matches of HF's Aho-Corasick automaton.
    struct Matcher: Sendable {
        private var byFirst: [UInt32: [(scalars: [Unicode.Scalar], token: AddedToken)]] = [:]
        /// Bit `v % 1024` is set when some added token starts with a scalar `v`: most scalars of a text start no
        /// token, and this test rejects them without hashing into `byFirst` (a fifth of a BERT tokenization's time).
        private var firstFilter = [UInt64](repeating: 0, count: 16)
        var isEmpty: Bool { byFirst.isEmpty }

        init(_ tokens: [AddedToken]) {
            for t in tokens {
                let s = Array(t.content.unicodeScalars)
                guard let first = s.first else { continue }
                byFirst[first.value, default: []].append((s, t))
                firstFilter[Int(first.value & 1023) >> 6] |= 1 << (first.value & 63)
            }
            for k in byFirst.keys { byFirst[k]!.sort { $0.scalars.count > $1.scalars.count } }
        }

        func split(_ text: [Unicode.Scalar], _ range: Range<Int>) -> [Piece] {
            guard !byFirst.isEmpty else { return [.text(range)] }
            var pieces: [Piece] = []
            var emitted = range.lowerBound
            var i = range.lowerBound
            while i < range.upperBound {
                let v = text[i].value
                guard firstFilter[Int(v & 1023) >> 6] & (1 << (v & 63)) != 0, let candidates = byFirst[v],
                      let hit = candidates.first(where: { c in
                          i + c.scalars.count <= range.upperBound && text[i..<(i + c.scalars.count)].elementsEqual(c.scalars)
                      })
                else {
                    i += 1
                    continue
                }
                var start = i
                var stop = i + hit.scalars.count
                let t = hit.token
                if t.singleWord {
                    let leftOK = start == range.lowerBound || !Self.isWordChar(text[start - 1])
                    let rightOK = stop == range.upperBound || !Self.isWordChar(text[stop])
                    if !leftOK || !rightOK {
                        i = stop
                        continue
                    }
                }
                if t.lstrip {
                    while start > emitted, text[start - 1].properties.isWhitespace { start -= 1 }
                }
                if t.rstrip {
                    while stop < range.upperBound, text[stop].properties.isWhitespace { stop += 1 }
                }
                if emitted < start { pieces.append(.text(emitted..<start)) }
                pieces.append(.added(t.id, start..<stop))
                emitted = stop
                i = stop
            }
            if emitted < range.upperBound || pieces.isEmpty { pieces.append(.text(emitted..<range.upperBound)) }
            return pieces
        }

        static func isWordChar(_ s: Unicode.Scalar) -> Bool {
            s.properties.isAlphabetic || s.properties.numericType != nil
        }
    }
}
