@_spi(_Unicode) import Swift

/// Character classes and per-scalar mappings used by the BERT normalizer and pre-tokenizer,
/// defined exactly as Hugging Face `tokenizers` defines them (see the comments per class).
///
/// The Basic Multilingual Plane is precomputed once into flat tables (a flags byte and a
/// "simple" mapping per scalar), so the hot loops do array loads instead of Unicode property
/// queries; scalars above the BMP are rare and are answered from the properties directly.
enum UnicodeClasses {
    struct Flags: OptionSet {
        let rawValue: UInt8
        /// Rust `char::is_whitespace` (Unicode White_Space), which BERT also applies to \t \n \r.
        static let whitespace = Flags(rawValue: 1)
        /// BERT's "control": general category Cc, Cf or Co (not Cn), except \t \n \r.
        static let control = Flags(rawValue: 2)
        /// BERT's punctuation: ASCII punctuation or general category P*.
        static let punctuation = Flags(rawValue: 4)
        // These three and `nonspacingMark` come from HF's own (older) Unicode tables, recorded in
        // UnicodeTables.swift by scripts/gen_unicode_fixture.py; Swift's newer ones differ on a few
        // hundred code points (U+2E43...U+2E5D are punctuation only since Unicode 11, for example).
        /// The CJK ideograph blocks BERT pads with spaces.
        static let chinese = Flags(rawValue: 8)
        /// General category Mn (removed when stripping accents).
        static let nonspacingMark = Flags(rawValue: 16)
        /// Has a canonical decomposition (NFD changes it).
        static let decomposes = Flags(rawValue: 32)
        /// Lowercasing changes it.
        static let changesWhenLowercased = Flags(rawValue: 64)
    }

    /// Flags for every BMP scalar (surrogates get none).
    static let bmpFlags: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 0x10000)
        for v in 0..<0x10000 {
            guard let s = Unicode.Scalar(UInt32(v)) else { continue }
            table[v] = computeFlags(s).rawValue
        }
        return table
    }()

    static func computeFlags(_ s: Unicode.Scalar) -> Flags {
        var f: Flags = []
        let v = s.value
        let p = s.properties
        if contains(hfWhitespaceRanges, v) { f.insert(.whitespace) }
        if contains(hfControlRanges, v) { f.insert(.control) }
        if contains(hfPunctuationRanges, v) { f.insert(.punctuation) }
        if isChinese(v) { f.insert(.chinese) }
        if contains(hfNonspacingRanges, v) { f.insert(.nonspacingMark) }
        if contains(hfDecomposingRanges, v) { f.insert(.decomposes) }
        let lower = p.lowercaseMapping.unicodeScalars
        if lower.count != 1 || lower.first! != s { f.insert(.changesWhenLowercased) }
        return f
    }

    /// Whether `v` lies in one of the sorted, disjoint `ranges` (binary search).
    static func contains(_ ranges: [ClosedRange<UInt32>], _ v: UInt32) -> Bool {
        var (lo, hi) = (0, ranges.count)
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < v { lo = mid + 1 } else { hi = mid }
        }
        return lo < ranges.count && ranges[lo].contains(v)
    }

    @inline(__always)
    static func flags(_ s: Unicode.Scalar) -> Flags {
        let v = s.value
        if v < 0x10000 { return Flags(rawValue: bmpFlags.withUnsafeBufferPointer { $0[Int(v)] }) }
        return computeFlags(s)
    }

    static func isChinese(_ v: UInt32) -> Bool {
        switch v {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }

    @inline(__always)
    static func isHangulSyllable(_ v: UInt32) -> Bool { v >= 0xAC00 && v <= 0xD7A3 }

    /// Appends the canonical decomposition (NFD) of `s` to `out`. Hangul syllables are split
    /// arithmetically (Unicode 3.12); everything else goes through the stdlib's NFD.
    static func appendDecomposition(of s: Unicode.Scalar, to out: inout [Unicode.Scalar]) {
        let v = s.value
        if isHangulSyllable(v) {
            let index = v - 0xAC00
            out.append(Unicode.Scalar(0x1100 + index / 588)!)
            out.append(Unicode.Scalar(0x1161 + (index % 588) / 28)!)
            let t = index % 28
            if t != 0 { out.append(Unicode.Scalar(0x11A7 + t)!) }
            return
        }
        out.append(contentsOf: String(s)._nfd)
    }

    /// Appends the full lowercase mapping of `s` (Rust's `char::to_lowercase`: context-free,
    /// so final sigma stays σ and İ becomes "i\u{307}").
    @inline(__always)
    static func appendLowercase(of s: Unicode.Scalar, flags: Flags, to out: inout [Unicode.Scalar], origin: Int32, origins: inout [Int32]) {
        if !flags.contains(.changesWhenLowercased) {
            out.append(s)
            origins.append(origin)
            return
        }
        for l in s.properties.lowercaseMapping.unicodeScalars {
            out.append(l)
            origins.append(origin)
        }
    }
}
