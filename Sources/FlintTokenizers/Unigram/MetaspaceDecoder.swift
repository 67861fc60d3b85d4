/// The way back from `MetaspacePreTokenizer`, as Hugging Face's `Metaspace` decoder: every
/// replacement character becomes " ", except that the first token loses all of its replacement
/// characters when the pre-tokenizer prepends one (HF drops them all, not only the first).
public struct MetaspaceDecoder: TokenDecoder {
    public var replacement: Unicode.Scalar
    public var prependScheme: PrependScheme

    public init(replacement: Unicode.Scalar = "\u{2581}", prependScheme: PrependScheme = .always) {
        self.replacement = replacement
        self.prependScheme = prependScheme
    }

    public func decode(_ tokens: [String]) -> String {
        var out = String.UnicodeScalarView()
        for (i, token) in tokens.enumerated() {
            for s in token.unicodeScalars {
                if s != replacement {
                    out.append(s)
                } else if i != 0 || prependScheme == .never {
                    out.append(" ")
                }
            }
        }
        return String(out)
    }
}
