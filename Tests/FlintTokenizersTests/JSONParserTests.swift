import FlintJSON
import Testing

@testable import FlintTokenizers
@Suite("JSON reader")
struct JSONParserTests {
    @Test func parsesNestedValuesInOrder() throws {
        let v = try JSONParser.parse(#"{"b": [1, 2.5, -3e2, true, null], "a": {"x": "y"}}"#)
        let members = try #require(v.object)
        #expect(members.map(\.key) == ["b", "a"])
        #expect(v["b"] == .array([.number(1), .number(2.5), .number(-300), .bool(true), .null]))
        #expect(v["a"]?["x"]?.string == "y")
    }

    @Test func keepsCanonicallyEquivalentKeysApart() throws {
        // "é" precomposed and "e" + combining acute are equal as Swift Strings but distinct tokens.
        let v = try JSONParser.parse("{\"\u{E9}\": 1, \"e\u{301}\": 2}")
        let members = try #require(v.object)
        #expect(members.count == 2)
        #expect(v["e\u{301}"]?.int == 2)
        #expect(v["\u{E9}"]?.int == 1)
        var table = ByteStringTable()
        for m in members { table.insert(m.key, value: Int32(m.value.int!)) }
        #expect(table.count == 2)
        #expect(table.lookup("e\u{301}") == 2)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let v = try JSONParser.parse(#"["a\"b\\c\/d\n\t\u00e9\ud83d\ude00\u0000"]"#)
        #expect(v.array?.first?.string == "a\"b\\c/d\n\té😀\u{0}")
    }

    @Test(arguments: [
        ("", "truncated JSON"), ("{\"a\": 1", "truncated JSON"), ("[1, 2", "truncated JSON"), ("{\"a\" 1}", "expected :"),
        ("[1 2]", "expected , or ]"), ("{\"a\": tru}", "expected true"), ("\"abc", "unterminated string"),
        ("[1] x", "unexpected data"), ("\"\\x\"", "bad escape"),
    ])
    func reportsWhereItBroke(_ text: String, _ fragment: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("\(text) parsed but should not")
        } catch {
            #expect(error.reason.contains(fragment), "\(error.reason) for \(text)")
        }
    }

    @Test func refusesInvalidUTF8InStrings() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func serializesWithEscapes() {
        let v = JSONValue.object([("t", .string("a\u{1}\"\n é")), ("n", .array([.number(3), .number(-1)]))])
        #expect(v.serialized == #"{"t": "a\u0001\"\n é", "n": [3, -1]}"#)
    }

    @Test func deepNestingIsRefusedNotCrashing() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(deep) }
    }
}
