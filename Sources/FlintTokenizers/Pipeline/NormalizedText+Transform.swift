/// Hugging Face's general rewrite of a normalized string, `NormalizedString::transform`, which the
/// Precompiled and Lowercase normalizers use. Reproducing it step for step matters: its alignment
/// rules decide the offsets, including the odd ones (a scalar removed at the very start is never
/// consumed, so every later scalar takes its predecessor's origin; HF's Precompiled depends on it).
extension NormalizedText {
    /// One output scalar and how it relates to the input, as HF's `(char, isize)` pairs:
    /// `change` 0 replaces the next input scalar, 1 is inserted (it takes the origin of the input
    /// scalar before it), `-n` replaces the next input scalar and drops the `n` after it.
    public struct Change: Sendable, Equatable {
        public var scalar: Unicode.Scalar
        public var change: Int
        public init(_ scalar: Unicode.Scalar, _ change: Int) {
            self.scalar = scalar
            self.change = change
        }
    }

    /// Replaces the whole text by `changes`, after dropping the first `initialOffset` input scalars.
    ///
    /// HF works per byte and copies a byte's alignment; every byte of a scalar carries the same
    /// alignment, so per-scalar origins give the same offsets. Where HF would index past the end
    /// (a change list that consumes more scalars than exist, which panics in Rust), the last
    /// origin is reused instead of trapping.
    public mutating func transform(_ changes: [Change], initialOffset: Int) {
        guard !scalars.isEmpty else {
            scalars = changes.map(\.scalar)
            origins = Array(repeating: pieceStart, count: changes.count)
            return
        }
        let last = scalars.count - 1
        var newScalars: [Unicode.Scalar] = []
        var newOrigins: [Int32] = []
        newScalars.reserveCapacity(changes.count)
        newOrigins.reserveCapacity(changes.count)
        var offset = min(initialOffset, scalars.count)
        for c in changes {
            let origin: Int32
            if c.change > 0 {
                // HF aligns a scalar inserted before any input with (0, 0), an empty span at the
                // piece's start; none of Flint's normalizers emits one, the piece start stands in.
                origin = offset < 1 ? pieceStart : origins[offset - 1]
            } else {
                origin = origins[min(offset, last)]
                offset = min(offset + 1, scalars.count)
                if c.change < 0 { offset = min(offset - c.change, scalars.count) }
            }
            newScalars.append(c.scalar)
            newOrigins.append(origin)
        }
        scalars = newScalars
        origins = newOrigins
    }
}
