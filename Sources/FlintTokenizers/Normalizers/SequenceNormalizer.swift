/// Hugging Face's `Sequence` normalizer: each normalizer in turn.
public struct SequenceNormalizer: Normalizer {
    public var normalizers: [any Normalizer]

    public init(_ normalizers: [any Normalizer]) {
        self.normalizers = normalizers
    }

    public func normalize(_ text: inout NormalizedText) {
        for n in normalizers { n.normalize(&text) }
    }
}
