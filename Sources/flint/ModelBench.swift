import ArgumentParser
import FlintCPU
import FlintCore
import FlintJSON
import FlintModels

/// `flint bench` (default): encoder latency over batch × sequence, TensorRT-style: avg, p50, p95,
/// p99 ms, sequences/s, tokens/s, and the GEMM throughput reached.
struct ModelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Encoder latency table (default: built-in BERT-base, seeded random weights, best device)."
    )

    @Option(name: .long, help: "bert-base, bert-large, minilm-l6, or a model folder.")
    var model = "bert-base"

    @Option(name: .long, help: "auto, cpu or cuda.")
    var device = "auto"

    @Option(name: .long, help: "auto (f16 on a GPU, f32 on the CPU), f32, f16 or bf16.")
    var dtype = "auto"

    @Option(name: .long, help: "Comma-separated batch sizes.")
    var batch = "1,8"

    @Option(name: .long, help: "Comma-separated sequence lengths (tokens per sequence).")
    var seq = "128"

    @Option(name: .long, help: "Timed iterations per row (after 10 warm-ups).")
    var iters = 100

    @Option(name: .long, help: "Stop a row early after this many seconds of timed runs (0 = never).")
    var maxSeconds: Double = 0

    @Option(name: .long, help: "CPU threads (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Also write the table as JSON to this file.")
    var json: String?

    func parseList(_ s: String, _ flag: String) throws -> [Int] {
        let v = s.split(separator: ",").map { Int($0.filter { $0 != " " }) }
        guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) > 0 }) else { throw ValidationError("\(flag) must be positive integers separated by commas") }
        return v.map { $0! }
    }

    func validate() throws {
        _ = try parseList(batch, "--batch")
        _ = try parseList(seq, "--seq")
        if iters < 1 { throw ValidationError("--iters must be >= 1") }
    }

    func run() throws {
        let batches = try parseList(batch, "--batch")
        let seqs = try parseList(seq, "--seq")
        let m = try BenchModel.resolve(model)
        let backend = try Devices.backend(device, threads: threads, dtype: dtype)
        let bert = Bert(config: m.config, hasTensor: m.hasTensor)
        guard let longest = seqs.max(), longest <= m.config.maxPositionEmbeddings else {
            throw ValidationError("--seq exceeds the model's max_position_embeddings (\(m.config.maxPositionEmbeddings))")
        }
        let maxBatch = batches.max()!
        let (tokens, overflow) = maxBatch.multipliedReportingOverflow(by: longest)
        if overflow { throw ValidationError("--batch × --seq is too large") }
        Console.progress("preparing \(m.name) on \(backend.deviceDescription) for \(maxBatch) x \(longest) tokens...")
        let plan = try bert.plan(outputs: [.lastHiddenState], maxTokens: tokens, maxSequences: maxBatch)
        let prepared = try backend.prepare(plan, weights: m.weights)
        let c = m.config
        print("model \(m.name) (\(c.numHiddenLayers) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads) heads), device \(backend.deviceDescription), dtype \(backend.dtype), arena \(FlintError.format(bytes: prepared.arenaBytes))")
        let header = ["seq", "batch", "avg ms", "p50 ms", "p95 ms", "p99 ms", "seqs/s", "tokens/s", "GFLOP/s", "iters"]
        print(Table.row(header))
        var rows: [JSONValue] = []
        var rng = SplitMix64(seed: 42)
        for s in seqs {
            for b in batches {
                // Random ids in the vocabulary, [CLS]-like first token, full-length sequences.
                let sequences = (0..<b).map { _ in (0..<s).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
                let input = TokenBatch(sequences: sequences)
                Console.progress("  warming up batch \(b) x seq \(s)...")
                for _ in 0..<10 { _ = try prepared.run(input) }
                var times: [Double] = []
                let started = ContinuousClock.now
                for _ in 0..<iters {
                    let t0 = ContinuousClock.now
                    _ = try prepared.run(input)
                    times.append((ContinuousClock.now - t0).milliseconds)
                    if maxSeconds > 0, (ContinuousClock.now - started).milliseconds > maxSeconds * 1000 { break }
                }
                let st = Stats(times)
                let flops = plan.flops(lengths: Array(repeating: s, count: b))
                let cells = [String(s), String(b), Table.fmt(st.avg), Table.fmt(st.p50), Table.fmt(st.p95), Table.fmt(st.p99),
                             Table.fmt(Double(b) / st.avg * 1000), Table.fmt(Double(b * s) / st.avg * 1000, 0),
                             Table.fmt(flops / st.p50 / 1e6, 1), String(times.count)]
                print(Table.row(cells))
                rows.append(.object([
                    ("batch", .number(Double(b))), ("seq", .number(Double(s))), ("avg_ms", .number(st.avg)), ("p50_ms", .number(st.p50)),
                    ("p95_ms", .number(st.p95)), ("p99_ms", .number(st.p99)), ("seqs_per_s", .number(Double(b) / st.avg * 1000)),
                    ("tokens_per_s", .number(Double(b * s) / st.avg * 1000)), ("gflops", .number(flops / st.p50 / 1e6)),
                    ("iters", .number(Double(times.count))),
                ]))
            }
        }
        if let json {
            let doc = JSONValue.object([("model", .string(m.name)), ("device", .string(backend.deviceDescription)),
                                        ("dtype", .string(backend.dtype.description)), ("rows", .array(rows))])
            try Console.writeFile(json, doc.serialized + "\n")
        }
    }
}

/// `flint bench gemm`: the CPU GEMM's GFLOP/s at transformer shapes.
struct GEMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm", abstract: "CPU GEMM throughput (GFLOP/s) at transformer shapes.")

    @Option(name: .long, help: "Comma-separated MxNxK shapes.")
    var shapes = "128x768x768,128x3072x768,128x768x3072,1024x768x768,1024x1024x1024,1x768x768"

    @Option(name: .long, help: "CPU threads (default: all cores).")
    var threads: Int?

    func run() throws {
        let pool = ThreadPool(threads: threads)
        print("cpu gemm (\(CPUFeatures.isaName), \(pool.threadCount) threads), C[M,N] = A[M,K]·W[N,K]ᵀ, best of several runs")
        print(Table.row(["M", "N", "K", "GFLOP/s"]))
        for shape in shapes.split(separator: ",") {
            let d = shape.split(separator: "x").compactMap { Int($0) }
            guard d.count == 3, d.allSatisfy({ $0 > 0 }) else { throw ValidationError("bad shape \(shape): use MxNxK") }
            let flopsPerRun = 2.0 * Double(d[0] * d[1] * d[2])
            let iterations = max(3, Int(2e9 / flopsPerRun))
            let g = CPUKernels.benchmarkGEMM(m: d[0], n: d[1], k: d[2], iterations: iterations, pool: pool)
            print(Table.row([String(d[0]), String(d[1]), String(d[2]), Table.fmt(g, 1)]))
        }
    }
}

/// Latency statistics over samples in milliseconds.
struct Stats {
    let avg, p50, p95, p99: Double
    init(_ samples: [Double]) {
        let s = samples.sorted()
        avg = s.reduce(0, +) / Double(s.count)
        func pct(_ p: Double) -> Double {
            // Linear interpolation between closest ranks (numpy's default).
            let x = p * Double(s.count - 1)
            let lo = Int(x)
            let hi = min(lo + 1, s.count - 1)
            return s[lo] + (s[hi] - s[lo]) * (x - Double(lo))
        }
        p50 = pct(0.5)
        p95 = pct(0.95)
        p99 = pct(0.99)
    }
}

enum Table {
    static func row(_ cells: [String]) -> String {
        cells.map { $0.count >= 10 ? $0 + " " : $0 + String(repeating: " ", count: 10 - $0.count) }.joined()
    }

    static func fmt(_ v: Double, _ decimals: Int = 2) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let r = (v * scale).rounded() / scale
        if decimals == 0 { return String(Int(r)) }
        let whole = Int(r)
        var frac = String(Int(((r - Double(whole)) * scale).rounded()))
        while frac.count < decimals { frac = "0" + frac }
        return "\(whole).\(frac)"
    }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) * 1e-15 }
}
