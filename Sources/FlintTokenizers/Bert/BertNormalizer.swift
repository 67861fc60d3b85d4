/// BERT's normalizer, as Hugging Face `tokenizers`' `BertNormalizer`:
/// 1. clean text: drop U+0000, U+FFFD and control characters (Cc/Cf/Co), turn whitespace into " ";
/// 2. put spaces around CJK ideographs;
/// 3. strip accents: NFD, then drop nonspacing marks (Mn);
/// 4. lowercase.
/// `stripAccents == nil` means "strip when lowercasing" (the original BERT rule).
///
/// HF runs the four steps as four passes over the string. Each step maps one scalar to zero or more
/// scalars independently of its neighbours, so one pass applying all four per scalar gives the
/// same text and the same alignments. (One difference: NFD's canonical reordering of adjacent
/// combining marks is not applied; it can only matter for spacing marks with a non-zero combining
/// class, because nonspacing marks are dropped right after.)
public struct BertNormalizer: Normalizer {
    public var cleanText: Bool
    public var handleChineseChars: Bool
    public var stripAccents: Bool?
    public var lowercase: Bool

    public init(cleanText: Bool = true, handleChineseChars: Bool = true, stripAccents: Bool? = nil, lowercase: Bool = true) {
        self.cleanText = cleanText
        self.handleChineseChars = handleChineseChars
        self.stripAccents = stripAccents
        self.lowercase = lowercase
    }

    public func normalize(_ text: inout NormalizedText) {
        let strip = stripAccents ?? lowercase
        var out: [Unicode.Scalar] = []
        var origins: [Int32] = []
        out.reserveCapacity(text.count + text.count / 8)
        origins.reserveCapacity(text.count + text.count / 8)
        var decomposed: [Unicode.Scalar] = []
        let space: Unicode.Scalar = " "

        for i in 0..<text.count {
            var s = text.scalars[i]
            let origin = text.origins[i]
            let v = s.value
            if v < 0x80 {
                // ASCII: controls and whitespace as in the tables, lowercase by arithmetic.
                if cleanText {
                    if v == 9 || v == 10 || v == 13 || v == 32 {
                        s = space
                    } else if v < 32 || v == 0x7F {
                        continue
                    }
                }
                if lowercase, v >= 65, v <= 90 { s = Unicode.Scalar(v + 32)! }
                out.append(s)
                origins.append(origin)
                continue
            }
            var f = UnicodeClasses.flags(s)
            if cleanText {
                if v == 0xFFFD || f.contains(.control) { continue }
                if f.contains(.whitespace) {
                    out.append(space)
                    origins.append(origin)
                    continue
                }
            }
            let padded = handleChineseChars && f.contains(.chinese)
            if padded {
                out.append(space)
                origins.append(origin)
            }
            if strip, f.contains(.decomposes) {
                decomposed.removeAll(keepingCapacity: true)
                UnicodeClasses.appendDecomposition(of: s, to: &decomposed)
                for d in decomposed {
                    let df = UnicodeClasses.flags(d)
                    if df.contains(.nonspacingMark) { continue }
                    if lowercase {
                        UnicodeClasses.appendLowercase(of: d, flags: df, to: &out, origin: origin, origins: &origins)
                    } else {
                        out.append(d)
                        origins.append(origin)
                    }
                }
            } else if strip && f.contains(.nonspacingMark) {
                // dropped
            } else if lowercase {
                UnicodeClasses.appendLowercase(of: s, flags: f, to: &out, origin: origin, origins: &origins)
            } else {
                out.append(s)
                origins.append(origin)
            }
            if padded {
                out.append(space)
                origins.append(origin)
            }
            f = []
        }
        text.scalars = out
        text.origins = origins
    }
}
