import FlintJSON
import ArgumentParser
import FlintTokenizers

/// `flint bench tokenizer`: texts/s and MB/s on a ~1 MB mixed corpus, single-threaded and on all
/// cores, for each tokenizer given (default: MiniLM's WordPiece and GPT-2's byte-level BPE from
/// the fetched assets). `scripts/tokenizer-peers` runs Hugging Face `tokenizers` on the same corpus.
struct TokenizerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Tokenizer throughput on a built-in ~1 MB mixed corpus (or --corpus FILE)."
    )

    @Option(name: .long, help: "Tokenizer file or model folder (repeatable). Default: the fetched MiniLM and GPT-2 tokenizers.")
    var tokenizer: [String] = []

    @Option(name: .long, help: "JSON Lines corpus {\"text\": ...}; default: the built-in corpus.")
    var corpus: String?

    @Option(name: .long, help: "Write the built-in corpus to this JSON Lines file and exit.")
    var writeCorpus: String?

    @Option(name: .long, help: "Approximate size of the built-in corpus in bytes.")
    var corpusBytes: Int = 1_000_000

    @Option(name: .long, help: "Timed runs per mode (the best is reported).")
    var runs: Int = 3

    @Option(name: .long, help: "Threads for the parallel mode (default: all cores).")
    var threads: Int?

    @Flag(name: .long, help: """
        Also time one encode call per text against encodeIds (ids only), as a server makes them: \
        --runs interleaved rounds, medians.
        """)
    var compareIds = false

    @Option(name: .long, help: "Also write the results as JSON to this file.")
    var json: String?

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be >= 1") }
        if corpusBytes < 1000 { throw ValidationError("--corpus-bytes must be >= 1000") }
        try DeviceOptions.validate(threads: threads)
    }

    func run() throws {
        let texts: [String]
        if let corpus {
            texts = try Console.readJSONLines(corpus).map { line, value in
                guard let t = value["text"]?.string else { throw CommandError("\(corpus):\(line): expected {\"text\": ...}") }
                return t
            }
        } else {
            texts = BenchCorpus.make(bytes: corpusBytes)
        }
        if let writeCorpus {
            try Console.writeFile(writeCorpus, texts.map { JSONValue.object([("text", .string($0))]).serialized + "\n" }.joined())
            Console.progress("wrote \(texts.count) texts to \(writeCorpus)")
            return
        }
        var paths = tokenizer
        if paths.isEmpty {
            paths = ["\(Assets.folder)/all-MiniLM-L6-v2/tokenizer.json", "\(Assets.folder)/gpt2/encoder.json"]
            guard paths.allSatisfy({ access($0, R_OK) == 0 }) else {
                throw CommandError("""
                    the default tokenizers are not in \(Assets.folder) (run scripts/fetch-assets, \
                    or set FLINT_ASSETS, or pass --tokenizer PATH)
                    """)
            }
        }
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        let cores = threads ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        print("tokenizer benchmark: \(texts.count) texts, \(String(format1: Double(bytes) / 1e6)) MB, best of \(runs) runs")
        print(row(["tokenizer", "mode", "threads", "texts/s", "MB/s", "tokens/s", "tokens"]))
        var results: [JSONValue] = []
        for path in paths {
            let tok = try Tokenizer.load(path)
            Console.progress("warming up \(path)...")
            _ = try tok.encodeBatch(texts, threads: 1)
            for (mode, n) in [("single", 1), ("parallel", cores)] {
                var best = Double.infinity
                var tokens = 0
                for _ in 0..<runs {
                    let start = ContinuousClock.now
                    let out = try tok.encodeBatch(texts, threads: n)
                    let d = ContinuousClock.now - start
                    best = min(best, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
                    tokens = out.reduce(0) { $0 + $1.count }
                }
                let name = shortName(path)
                print(row([name, mode, "\(n)", String(format1: Double(texts.count) / best), String(format1: Double(bytes) / best / 1e6),
                           String(format1: Double(tokens) / best), "\(tokens)"]))
                results.append(.object([
                    ("tokenizer", .string(path)), ("mode", .string(mode)), ("threads", .number(Double(n))),
                    ("seconds", .number(best)), ("texts_per_s", .number(Double(texts.count) / best)),
                    ("mb_per_s", .number(Double(bytes) / best / 1e6)), ("tokens_per_s", .number(Double(tokens) / best)),
                    ("tokens", .number(Double(tokens))),
                ]))
            }
        }
        if compareIds {
            for path in paths {
                results += try comparePerCall(try Tokenizer.load(path), path: path, texts: texts, bytes: bytes)
            }
        }
        if let json {
            let doc = JSONValue.object([
                ("texts", .number(Double(texts.count))), ("bytes", .number(Double(bytes))), ("results", .array(results)),
            ])
            try Console.writeFile(json, doc.serialized + "\n")
        }
    }

    /// `encode` and `encodeIds`, one call per text, alternating every round; median texts/s of each.
    func comparePerCall(_ tok: Tokenizer, path: String, texts: [String], bytes: Int) throws -> [JSONValue] {
        var seconds: [[Double]] = [[], []]
        var tokens = [0, 0]
        for round in 0...runs {  // round 0 warms up
            for mode in 0..<2 {
                var n = 0
                let start = ContinuousClock.now
                for t in texts { n += mode == 0 ? try tok.encode(t).count : try tok.encodeIds(t).count }
                let d = ContinuousClock.now - start
                if round > 0 { seconds[mode].append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18) }
                tokens[mode] = n
            }
        }
        guard tokens[0] == tokens[1] else { throw CommandError("encode gave \(tokens[0]) tokens, encodeIds \(tokens[1])") }
        return ["per-call full", "per-call ids"].enumerated().map { mode, name in
            let sorted = seconds[mode].sorted()
            let median = sorted[sorted.count / 2]
            let perText = String(format1: median / Double(texts.count) * 1e6)
            print(row([shortName(path), name, "1", String(format1: Double(texts.count) / median),
                       String(format1: Double(bytes) / median / 1e6), String(format1: Double(tokens[mode]) / median), "\(tokens[mode])"])
                  + "  median of \(runs), \(perText) us/text")
            return .object([
                ("tokenizer", .string(path)), ("mode", .string(name)), ("threads", .number(1)),
                ("seconds", .number(median)), ("rounds", .array(seconds[mode].map { .number($0) })),
                ("texts_per_s", .number(Double(texts.count) / median)),
                ("tokens", .number(Double(tokens[mode]))),
            ])
        }
    }

    func shortName(_ path: String) -> String {
        let parts = path.split(separator: "/")
        return parts.suffix(2).joined(separator: "/")
    }

    func row(_ cells: [String]) -> String {
        let widths = [34, 10, 8, 12, 9, 13, 10]
        return zip(cells, widths).map { c, w in c.count >= w ? c + " " : c + String(repeating: " ", count: w - c.count) }.joined()
    }
}

extension String {
    /// One decimal place, without Foundation.
    init(format1 value: Double) {
        let scaled = (value * 10).rounded()
        self = "\(Int(scaled) / 10).\(abs(Int(scaled) % 10))"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
