import FlintJSON
import FlintTestSupport
import Testing

@testable import FlintTokenizers

/// Every code point through Flint's BERT normalizer and pre-tokenizer, against how Hugging Face
/// `tokenizers` classes it (Tests/Fixtures/tokenizers/unicode_classes.json, made by
/// scripts/gen_unicode_fixture.py): HF uses Rust's Unicode tables, older than Swift's, so a class
/// taken from Swift's own properties would differ on a few code points.
@Suite("Unicode classes as Hugging Face tokenizers has them")
struct UnicodeClassParityTests {
    struct Fixture {
        var classes: [String: [ClosedRange<UInt32>]]
        var folded: [UInt32: String]

        func contains(_ name: String, _ v: UInt32) -> Bool { UnicodeClasses.contains(classes[name] ?? [], v) }
    }

    static func fixture() throws -> Fixture {
        let bytes = try #require(TestPaths.read(TestPaths.fixture("tokenizers/unicode_classes.json")))
        let doc = try JSONParser.parse(bytes)
        var classes: [String: [ClosedRange<UInt32>]] = [:]
        for name in ["whitespace", "punctuation", "control", "chinese"] {
            let pairs = try #require(doc["classes"]?[name]?.array, "class \(name)")
            classes[name] = pairs.map { UInt32($0.array![0].int!)...UInt32($0.array![1].int!) }
        }
        var folded: [UInt32: String] = [:]
        for entry in try #require(doc["folded"]?.array) { folded[UInt32(entry.array![0].int!)] = entry.array![1].string! }
        return Fixture(classes: classes, folded: folded)
    }

    static var codePoints: [Unicode.Scalar] { (0..<0x110000).compactMap { Unicode.Scalar(UInt32($0)) } }

    static func normalize(_ text: [Unicode.Scalar], _ normalizer: BertNormalizer) -> String {
        var n = NormalizedText(text, range: 0..<text.count)
        normalizer.normalize(&n)
        var s = String.UnicodeScalarView()
        s.append(contentsOf: n.scalars)
        return String(s)
    }

    /// "a", c, "b" through the pre-tokenizer and the cleaning normalizer, as the script asked HF.
    @Test func whitespacePunctuationControlAndChineseMatch() throws {
        let hf = try Self.fixture()
        let clean = BertNormalizer(cleanText: true, handleChineseChars: true, stripAccents: false, lowercase: false)
        var mismatches: [String] = []
        for c in Self.codePoints {
            let v = c.value
            let text: [Unicode.Scalar] = ["a", c, "b"]
            var n = NormalizedText(text, range: 0..<3)
            var words: [Range<Int>] = []
            BertPreTokenizer().preTokenize(&n, into: &words)
            let isWhitespace = words == [0..<1, 2..<3], isPunctuation = words == [0..<1, 1..<2, 2..<3]
            let cleaned = Self.normalize(text, clean)
            let isControl = cleaned == "ab"
            let isChinese = cleaned == "a \(Character(c)) b"
            let classes = [("whitespace", isWhitespace), ("punctuation", isPunctuation), ("control", isControl), ("chinese", isChinese)]
            for (name, flint) in classes where flint != hf.contains(name, v) {
                mismatches.append("U+\(String(v, radix: 16, uppercase: true)) \(name): flint \(flint), HF \(!flint)")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) code points differ: \(mismatches.prefix(20))")
    }

    /// Lowercasing and accent stripping of every code point alone.
    @Test func lowercaseAndAccentStrippingMatch() throws {
        let hf = try Self.fixture()
        let fold = BertNormalizer(cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: true)
        var mismatches: [String] = []
        for c in Self.codePoints {
            let want = hf.folded[c.value] ?? String(Character(c))
            let got = Self.normalize([c], fold)
            if got != want {
                func hex(_ text: String) -> [String] { text.unicodeScalars.map { String($0.value, radix: 16) } }
                mismatches.append("U+\(String(c.value, radix: 16, uppercase: true)): flint \(hex(got)), HF \(hex(want))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) code points differ: \(mismatches.prefix(20))")
    }
}
