/// Hugging Face's `Lowercase` normalizer: Rust's `char::to_lowercase` per scalar (full,
/// context-free mappings: "İ" becomes "i̇"); scalars a mapping adds share the origin of the
/// scalar they came from.
public struct LowercaseNormalizer: Normalizer {
    public init() {}

    public func normalize(_ text: inout NormalizedText) {
        var changes: [NormalizedText.Change] = []
        changes.reserveCapacity(text.count)
        for s in text.scalars {
            if s.isASCII {
                let v = s.value
                changes.append(.init(v >= 65 && v <= 90 ? Unicode.Scalar(v + 32)! : s, 0))
                continue
            }
            for (i, l) in s.properties.lowercaseMapping.unicodeScalars.enumerated() {
                changes.append(.init(l, i == 0 ? 0 : 1))
            }
        }
        text.transform(changes, initialOffset: 0)
    }
}
