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
        if let json {
            let doc = JSONValue.object([
                ("texts", .number(Double(texts.count))), ("bytes", .number(Double(bytes))), ("results", .array(results)),
            ])
            try Console.writeFile(json, doc.serialized + "\n")
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
