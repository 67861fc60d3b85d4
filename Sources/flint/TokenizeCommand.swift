import FlintJSON
import ArgumentParser
import FlintTokenizers
/// `flint tokenize`: show how a tokenizer splits text, or tokenize a JSON Lines file.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize text with a Hugging Face tokenizer (tokenizer.json, vocab.txt, GPT-2 files, or a model folder).",
        discussion: """
            No padding is applied, and truncation only with --max-length (a tokenizer.json's own \
            padding and truncation sections are ignored). Offsets are Unicode code point indices.
            --jsonl FILE reads lines {"text": ...} or {"text": ..., "pair": ...} and writes one line \
            {"ids": [...], "type_ids": [...], "offsets": [[start, end], ...]} per input, in order.
            """
    )

    @Option(name: .long, help: "Tokenizer file or model folder.")
    var tokenizer: String

    @Option(name: .long, help: "Truncate to this many tokens, special tokens included.")
    var maxLength: Int?

    @Option(name: .long, help: "With --max-length: overlap of the overflowing windows.")
    var stride: Int = 0

    @Option(name: .long, help: "With --max-length: longest_first, only_first or only_second.")
    var truncation: String = "longest_first"

    @Option(name: .long, help: "Second text of a pair (sentence-pair models, QA).")
    var pair: String?

    @Flag(name: .long, help: "Do not add [CLS]/[SEP] or other template tokens.")
    var noSpecialTokens = false

    @Option(name: .long, help: "JSON Lines file of inputs.")
    var jsonl: String?

    @Flag(name: .long, help: "Print the single result as JSON.")
    var json = false

    @Argument(help: "Text to tokenize.")
    var text: [String] = []

    func validate() throws {
        if jsonl == nil && text.isEmpty { throw ValidationError("give TEXT to tokenize or --jsonl FILE") }
        if jsonl != nil && !text.isEmpty { throw ValidationError("give either TEXT or --jsonl FILE, not both") }
        if let maxLength, maxLength < 0 { throw ValidationError("--max-length must be >= 0") }
        if stride < 0 { throw ValidationError("--stride must be >= 0") }
        if Truncation.Strategy(rawValue: truncation) == nil {
            throw ValidationError("--truncation must be one of \(Truncation.Strategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let tok = try Tokenizer.load(tokenizer)
        let trunc = maxLength.map { Truncation(maxLength: $0, strategy: Truncation.Strategy(rawValue: truncation)!, stride: stride) }
        if let jsonl {
            let lines = try Console.readJSONLines(jsonl)
            var texts: [String] = []
            var pairs: [String?] = []
            for (line, value) in lines {
                guard let t = value["text"]?.string else {
                    throw CommandError("\(jsonl):\(line): expected an object with a string \"text\"")
                }
                texts.append(t)
                if let p = value["pair"], !p.isNull {
                    guard let ps = p.string else { throw CommandError("\(jsonl):\(line): \"pair\" must be a string") }
                    pairs.append(ps)
                } else {
                    pairs.append(nil)
                }
            }
            for e in try tok.encodeBatch(texts, pairs: pairs, addSpecialTokens: !noSpecialTokens, truncation: trunc) {
                print(Self.jsonLine(e))
            }
            return
        }
        let e = try tok.encode(text.joined(separator: " "), pair: pair, addSpecialTokens: !noSpecialTokens, truncation: trunc)
        if json {
            print(Self.jsonLine(e, tokens: tok))
            return
        }
        printTable(e, tok)
        for (i, o) in e.overflowing.enumerated() {
            print("\noverflowing window \(i + 1):")
            printTable(o, tok)
        }
    }

    static func jsonLine(_ e: Encoding, tokens tok: Tokenizer? = nil) -> String {
        var members: [(key: String, value: JSONValue)] = [
            ("ids", JSONValue(e.ids)), ("type_ids", JSONValue(e.typeIds)), ("offsets", JSONValue(e.offsets)),
        ]
        if let tok { members.append(("tokens", .array(e.ids.map { .string(tok.token(forId: $0) ?? "") }))) }
        if !e.overflowing.isEmpty {
            members.append(("overflowing", .array(e.overflowing.map { o in
                .object([("ids", JSONValue(o.ids)), ("type_ids", JSONValue(o.typeIds)), ("offsets", JSONValue(o.offsets))])
            })))
        }
        return JSONValue.object(members).serialized
    }

    func printTable(_ e: Encoding, _ tok: Tokenizer) {
        print("\(e.count) tokens")
        print(pad("#", 5) + pad("id", 8) + pad("type", 6) + pad("offsets", 14) + "token")
        for i in 0..<e.count {
            let token = tok.token(forId: e.ids[i]) ?? "?"
            print(pad("\(i)", 5) + pad("\(e.ids[i])", 8) + pad("\(e.typeIds[i])", 6) + pad("\(e.offsets[i])", 14)
                  + JSONValue.string(token).serialized)
        }
    }

    func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}
