/// When Metaspace puts its replacement character in front of a piece of text (HF's `PrependScheme`).
public enum PrependScheme: String, Sendable {
    /// Always, unless the text already starts with it.
    case always
    /// Only for the piece at the very start of the input (not after an added token).
    case first
    case never
}

/// SentencePiece's word marking as Hugging Face's `Metaspace` pre-tokenizer: every " " becomes
/// `replacement` ("▁"), one is prepended as `prependScheme` says, and with `split` each word
/// starts at a replacement character (HF's split on it, merged with the next piece).
public struct MetaspacePreTokenizer: PreTokenizer {
    public var replacement: Unicode.Scalar
    public var prependScheme: PrependScheme
    public var split: Bool

    public init(replacement: Unicode.Scalar = "\u{2581}", prependScheme: PrependScheme = .always, split: Bool = true) {
        self.replacement = replacement
        self.prependScheme = prependScheme
        self.split = split
    }

    public func preTokenize(_ text: inout NormalizedText, into words: inout [Range<Int>]) {
        guard !text.isEmpty else { return }
        // A one-scalar replacement keeps each scalar's origin.
        for i in 0..<text.count where text.scalars[i] == " " { text.scalars[i] = replacement }
        let prepend = switch prependScheme {
        case .always: true
        case .first: text.pieceStart == 0
        case .never: false
        }
        if prepend && text.scalars[0] != replacement {
            // HF's NormalizedString.prepend aligns the new scalar with the first one.
            text.scalars.insert(replacement, at: 0)
            text.origins.insert(text.origins[0], at: 0)
        }
        guard split else {
            words.append(0..<text.count)
            return
        }
        var start = 0
        for i in 1..<text.count where text.scalars[i] == replacement {
            words.append(start..<i)
            start = i
        }
        words.append(start..<text.count)
    }
}
