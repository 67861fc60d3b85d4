/// Hugging Face's `Strip` normalizer: drops leading and/or trailing white space (Unicode
/// `White_Space`, Rust's `char::is_whitespace`). The scalars kept keep their origins.
public struct StripNormalizer: Normalizer {
    public var left: Bool
    public var right: Bool

    public init(left: Bool, right: Bool) {
        self.left = left
        self.right = right
    }

    public func normalize(_ text: inout NormalizedText) {
        var start = 0, end = text.count
        if left { while start < end, text.scalars[start].properties.isWhitespace { start += 1 } }
        if right { while end > start, text.scalars[end - 1].properties.isWhitespace { end -= 1 } }
        guard start > 0 || end < text.count else { return }
        text.scalars = Array(text.scalars[start..<end])
        text.origins = Array(text.origins[start..<end])
    }
}
