/// GPT-2's byte-level pre-tokenizer (Hugging Face `pre_tokenizers::ByteLevel`).
///
/// With `useRegex` the text is split the way GPT-2's pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// splits it, by a hand-written scanner that reproduces the regex's leftmost-alternative and
/// backtracking behaviour. Every scalar belongs to exactly one of four classes (letter `L*`,
/// number `N*`, white space = Unicode `White_Space`, other), so every position starts a match and
/// the words tile the text.
///
/// The mapping of bytes to the byte-level alphabet that HF does at this stage is left to
/// `BytePairEncoding`, which works on the UTF-8 bytes of each word directly.
public struct ByteLevelPreTokenizer: PreTokenizer {
    /// Prepend a space to text that does not start with one, so that the first word is
    /// tokenized like any other (" Hello" rather than "Hello").
    public var addPrefixSpace: Bool
    /// Split with GPT-2's pattern; without it the whole text is one word.
    public var useRegex: Bool

    public init(addPrefixSpace: Bool = true, useRegex: Bool = true) {
        self.addPrefixSpace = addPrefixSpace
        self.useRegex = useRegex
    }

    public func preTokenize(_ text: inout NormalizedText, into words: inout [Range<Int>]) {
        if text.isEmpty { return }
        if addPrefixSpace && text.scalars[0] != " " {
            // HF's NormalizedString.prepend aligns the new scalar with the first one.
            text.scalars.insert(" ", at: 0)
            text.origins.insert(text.origins[0], at: 0)
        }
        if useRegex {
            text.scalars.withUnsafeBufferPointer { Self.split($0, into: &words) }
        } else {
            words.append(0..<text.count)
        }
    }

    // MARK: - The GPT-2 pattern

    /// Appends the ranges GPT-2's pattern matches in `s` (they tile it).
    static func split(_ s: UnsafeBufferPointer<Unicode.Scalar>, into words: inout [Range<Int>]) {
        ScalarClass.ascii.withUnsafeBufferPointer { ascii in split(s, ascii, into: &words) }
    }

    private static func split(
        _ s: UnsafeBufferPointer<Unicode.Scalar>, _ ascii: UnsafeBufferPointer<ScalarClass>,
        into words: inout [Range<Int>]
    ) {
        @inline(__always) func classOf(_ c: Unicode.Scalar) -> ScalarClass {
            c.value < 0x80 ? ascii[Int(c.value)] : ScalarClass.nonASCII(c)
        }
        let n = s.count
        var i = 0
        while i < n {
            let start = i
            let c = s[i]
            let cls = classOf(c)
            // 's 't 're 've 'm 'll 'd (case-sensitive)
            if c == "'" && i + 1 < n {
                let a = s[i + 1].value
                if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 {  // s t m d
                    i += 2
                    words.append(start..<i)
                    continue
                }
                if i + 2 < n {
                    let b = s[i + 2].value
                    if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) {  // re ve ll
                        i += 3
                        words.append(start..<i)
                        continue
                    }
                }
            }
            // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": one optional U+0020 before a run.
            var runClass = cls
            var runStart = i
            if c == " " && i + 1 < n {
                let next = classOf(s[i + 1])
                if next != .space {
                    runClass = next
                    runStart = i + 1
                }
            }
            if runClass != .space {
                i = runStart + 1
                while i < n && classOf(s[i]) == runClass { i += 1 }
                words.append(start..<i)
                continue
            }
            // "\s+(?!\S)": a run of white space; when a non-space follows, the greedy run backs
            // off by one scalar (the last one then starts the next match, as in " word").
            // "\s+": a lone white space before a non-space.
            var j = i + 1
            while j < n && classOf(s[j]) == .space { j += 1 }
            if j == n {
                i = n
            } else if j - i >= 2 {
                i = j - 1
            } else {
                i = j
            }
            words.append(start..<i)
        }
    }
}

/// The four classes GPT-2's pattern distinguishes.
enum ScalarClass: UInt8 {
    case other = 0
    case letter = 1
    case number = 2
    case space = 3

    @inline(__always)
    static func nonASCII(_ s: Unicode.Scalar) -> ScalarClass {
        s.value < 0x10000 ? bmp[Int(s.value)] : classify(s)
    }

    static func classify(_ s: Unicode.Scalar) -> ScalarClass {
        let p = s.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    static let ascii: [ScalarClass] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

    /// Basic Multilingual Plane, built on first use of a non-ASCII scalar (a few milliseconds).
    static let bmp: [ScalarClass] = {
        var table = [ScalarClass](repeating: .other, count: 0x10000)
        for v in 0..<0x10000 {
            if let s = Unicode.Scalar(UInt32(v)) { table[v] = classify(s) }
        }
        return table
    }()
}
