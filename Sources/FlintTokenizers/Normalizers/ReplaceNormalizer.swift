/// Hugging Face's `Replace` normalizer: every leftmost, non-overlapping match of `pattern` becomes
/// `content`. As in HF, every scalar of `content` takes the origin of the last scalar it replaces
/// (HF removes the match, then inserts after it).
///
/// Patterns: a literal string (at most 256 scalars), or a regular expression from the subset real
/// tokenizer files use: a literal (`\` escapes allowed), or one scalar repeated, as XLM-RoBERTa's
/// `" {2,}"` (`+`, `{n}`, `{n,}` or `{n,m}`, matched greedily as Oniguruma does). Both match in
/// linear time whatever the text. Anything else, and any pattern that could match the empty
/// string, is refused by name when the file is loaded.
public struct ReplaceNormalizer: Normalizer {
    struct Atom: Sendable, Equatable {
        var scalar: Unicode.Scalar
        var min: Int
        var max: Int  // Int.max: unbounded
    }

    let atoms: [Atom]
    public let content: [Unicode.Scalar]

    static let maxLiteral = 256

    /// A literal pattern (nil when empty or longer than 256 scalars).
    public init?(literal: String, content: String) {
        atoms = literal.unicodeScalars.map { Atom(scalar: $0, min: 1, max: 1) }
        guard !atoms.isEmpty, atoms.count <= Self.maxLiteral else { return nil }
        self.content = Array(content.unicodeScalars)
    }

    /// A regular-expression pattern; nil when it is outside the supported subset or can match "".
    public init?(regex: String, content: String) {
        guard let atoms = Self.parse(Array(regex.unicodeScalars)) else { return nil }
        let literal = atoms.allSatisfy { $0.min == 1 && $0.max == 1 } && atoms.count <= Self.maxLiteral
        guard literal || (atoms.count == 1 && atoms[0].min > 0) else { return nil }
        self.atoms = atoms
        self.content = Array(content.unicodeScalars)
    }

    static func parse(_ p: [Unicode.Scalar]) -> [Atom]? {
        let special: Set<Unicode.Scalar> = ["(", ")", "[", "]", "|", ".", "^", "$", "?", "*", "+", "{", "}", "\\"]
        var atoms: [Atom] = []
        var i = 0
        func isDigit(_ s: Unicode.Scalar) -> Bool { s.value >= 48 && s.value <= 57 }
        func number() -> Int? {
            var v = 0, digits = 0
            while i < p.count, isDigit(p[i]), v <= 100_000 {
                v = v * 10 + Int(p[i].value - 48)
                digits += 1
                i += 1
            }
            return digits > 0 ? v : nil
        }
        while i < p.count {
            var s = p[i]
            if s == "\\" {
                // Only escaped punctuation is a literal; \s, \d, \b... are classes or anchors.
                guard i + 1 < p.count, p[i + 1].isASCII, !p[i + 1].properties.isAlphabetic, !isDigit(p[i + 1]) else { return nil }
                s = p[i + 1]
                i += 2
            } else if special.contains(s) {
                return nil
            } else {
                i += 1
            }
            var atom = Atom(scalar: s, min: 1, max: 1)
            if i < p.count {
                switch p[i] {
                case "?": (atom.min, atom.max) = (0, 1); i += 1
                case "*": (atom.min, atom.max) = (0, Int.max); i += 1
                case "+": (atom.min, atom.max) = (1, Int.max); i += 1
                case "{":
                    i += 1
                    guard let lo = number() else { return nil }
                    var hi = lo
                    if i < p.count, p[i] == "," {
                        i += 1
                        hi = number() ?? Int.max
                    }
                    guard i < p.count, p[i] == "}", hi >= lo else { return nil }
                    i += 1
                    (atom.min, atom.max) = (lo, hi)
                default: break
                }
                // Lazy or possessive quantifiers, or a quantified quantifier.
                if i < p.count, ["?", "*", "+", "{"].contains(p[i]) { return nil }
            }
            atoms.append(atom)
        }
        return atoms.isEmpty ? nil : atoms
    }

    /// The end of the match starting at `start`, or nil; `skip` is where the next try may start.
    private func match(_ s: [Unicode.Scalar], _ start: Int) -> (end: Int?, skip: Int) {
        if atoms.count == 1, atoms[0].max != 1 || atoms[0].min != 1 {
            // One repeated scalar: the run from `start`, greedy up to max. A run too short fails at
            // every position inside it too.
            let atom = atoms[0]
            var run = 0
            while start + run < s.count, s[start + run] == atom.scalar, run < atom.max { run += 1 }
            return run >= atom.min ? (start + run, start + run) : (nil, start + Swift.max(run, 1))
        }
        guard start + atoms.count <= s.count else { return (nil, s.count) }
        for k in 0..<atoms.count where s[start + k] != atoms[k].scalar { return (nil, start + 1) }
        return (start + atoms.count, start + atoms.count)
    }

    public func normalize(_ text: inout NormalizedText) {
        var scalars: [Unicode.Scalar] = []
        var origins: [Int32] = []
        var copied = 0, i = 0, changed = false
        let first = atoms[0].scalar
        while i < text.count {
            if text.scalars[i] != first {
                i += 1
                continue
            }
            let (matched, skip) = match(text.scalars, i)
            guard let end = matched else {
                i = skip
                continue
            }
            if !changed {
                scalars.reserveCapacity(text.count)
                origins.reserveCapacity(text.count)
                changed = true
            }
            scalars += text.scalars[copied..<i]
            origins += text.origins[copied..<i]
            let origin = text.origins[end - 1]
            for c in content {
                scalars.append(c)
                origins.append(origin)
            }
            copied = end
            i = end
        }
        guard changed else { return }
        scalars += text.scalars[copied...]
        origins += text.origins[copied...]
        text.scalars = scalars
        text.origins = origins
    }
}
