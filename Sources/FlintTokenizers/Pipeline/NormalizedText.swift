/// Text on its way through normalization, remembering where every scalar came from.
///
/// Hugging Face's `NormalizedString` keeps an alignment range per byte. Every transform Flint
/// implements (clean-up, CJK padding, NFD, accent filtering, lowercasing, prefix space) maps each
/// output scalar to exactly one input scalar, so one origin index per scalar carries the same
/// information: the offsets of a token are `origins[first] ..< origins[last] + 1`, in Unicode
/// scalars (code points) of the original input, as HF's Python API reports them.
public struct NormalizedText: Sendable {
    /// The normalized scalars.
    public var scalars: [Unicode.Scalar]
    /// `origins[i]` is the index, in the original input's scalars, that `scalars[i]` came from.
    public var origins: [Int32]
    /// Where this piece of the input starts in the original text (HF's `original_shift`), which
    /// normalization does not move: Metaspace's `prepend_scheme: first` asks whether it is 0.
    public var pieceStart: Int32

    public init(scalars: [Unicode.Scalar], origins: [Int32]) {
        precondition(scalars.count == origins.count, "one origin per scalar")
        self.scalars = scalars
        self.origins = origins
        pieceStart = origins.first ?? 0
    }

    /// Wraps `original[range]` unchanged; origins are indices into `original`.
    public init(_ original: [Unicode.Scalar], range: Range<Int>) {
        scalars = Array(original[range])
        origins = range.map { Int32($0) }
        pieceStart = Int32(range.lowerBound)
    }

    public var count: Int { scalars.count }
    public var isEmpty: Bool { scalars.isEmpty }

    /// Original-text span of the normalized range `range` (which must not be empty).
    @inline(__always)
    public func originalSpan(_ range: Range<Int>) -> TokenSpan {
        TokenSpan(start: Int(origins[range.lowerBound]), end: Int(origins[range.upperBound - 1]) + 1)
    }

    /// A copy of part of this text, keeping origins.
    public func slice(_ range: Range<Int>) -> NormalizedText {
        var part = NormalizedText(scalars: Array(scalars[range]), origins: Array(origins[range]))
        if range.isEmpty { part.pieceStart = pieceStart }
        return part
    }

    /// The text as a Swift string (for debugging and tests).
    public var string: String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s)
    }
}

/// A half-open range of Unicode scalar (code point) indices into the input text.
public struct TokenSpan: Hashable, Sendable, CustomStringConvertible {
    public var start: Int
    public var end: Int
    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }
    public static let empty = TokenSpan(start: 0, end: 0)
    public var description: String { "(\(start), \(end))" }
}
