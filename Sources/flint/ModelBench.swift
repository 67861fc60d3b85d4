import ArgumentParser
import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintModels

/// `flint bench` (default): encoder latency over batch × sequence, TensorRT-style: avg, p50, p95,
/// p99 ms, sequences/s, tokens/s, and the GEMM throughput reached. A GPT-2 model gets the decoder
/// tables instead (`DecoderBench`: prefill per prompt length, decode per batch size).
struct ModelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Latency tables (default: built-in BERT-base, seeded random weights, best device).",
        discussion: """
            Encoders (bert-base, bert-base-qa, bert-large, minilm-l6, encoder folders): one row per --seq x --batch \
            (defaults 128 and 1,8), timing the head's output: start/end logits for question answering (SQuAD's shape is \
            --model bert-base-qa --seq 384), class logits for classification, else the last hidden state. \
            Decoders (gpt2, gpt2-medium, gpt2-large, gpt2-xl, GPT-2 folders): prefill rows per --seq (default 128,512,1024, \
            batch 1) and decode rows per --batch (default 1,8,32: ms per step, one new token per sequence, after a \
            --prompt-tokens prompt); GPT-2 rows stop after --max-seconds (default 30) of timed runs. \
            --sweep: encoder latency over the --batch x --seq grid (default 1,2,4,8,16,32,64 x 16,32,64,128,256; every point \
            stops after --max-seconds, default 5), the knee per sequence length (the smallest batch whose p50 exceeds 1.5x \
            the smallest batch's, or whose FLOP floor exceeds 50% of its latency), --plot SVG (latency and throughput vs \
            batch, log-log, floor lines from `flint bench ceilings`, knee marked), --json and --csv. --compare PEERS.json \
            (from scripts/peers) sweeps the peers' grid and prints Flint beside each peer with the ratio, their curves on \
            the plot; --load FILE takes a saved Flint sweep instead of measuring.
            """
    )

    @Option(name: .long, help: "bert-base, bert-base-qa, bert-large, minilm-l6, gpt2, gpt2-medium, gpt2-large, gpt2-xl, or a folder.")
    var model = "bert-base"

    @OptionGroup var options: DeviceOptions

    @Option(name: .long, help: "Comma-separated batch sizes (default: 1,8; GPT-2 decode: 1,8,32).")
    var batch: String?

    @Option(name: .long, help: "Comma-separated sequence lengths (default: 128; GPT-2 prefill: 128,512,1024).")
    var seq: String?

    @Option(name: .long, help: "GPT-2 decode rows: prompt tokens per sequence before the timed steps.")
    var promptTokens = 16

    @Option(name: .long, help: "Timed iterations per row (after 10 warm-ups).")
    var iters = 100

    @Option(name: .long, help: "Stop a row early after this many seconds of timed runs (0 = never; default: 0, GPT-2: 30).")
    var maxSeconds: Double?

    @Option(name: .long, help: "Also write the table (--sweep: the sweep) as JSON to this file.")
    var json: String?

    @Flag(name: .long, help: "Latency over the --batch x --seq grid with the knee per sequence length (encoders).")
    var sweep = false

    @Option(name: .long, help: "--sweep: write the plot (SVG) to this file.")
    var plot: String?

    @Option(name: .long, help: "--sweep: write the points (with the peers') as CSV to this file.")
    var csv: String?

    @Option(name: .long, help: "Sweep the grid of this peers file (scripts/peers) and print Flint beside each peer.")
    var compare: String?

    @Option(name: .long, help: "--sweep: take Flint's sweep from this JSON file (a --json of an earlier sweep) instead of measuring.")
    var load: String?

    func parseList(_ s: String, _ flag: String) throws -> [Int] {
        let v = s.split(separator: ",").map { Int($0.filter { $0 != " " }) }
        guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("\(flag) must be positive integers separated by commas")
        }
        return v.map { $0! }
    }

    func validate() throws {
        if let batch { _ = try parseList(batch, "--batch") }
        if let seq { _ = try parseList(seq, "--seq") }
        if iters < 1 { throw ValidationError("--iters must be >= 1") }
        if promptTokens < 1 { throw ValidationError("--prompt-tokens must be >= 1") }
        if !isSweep, plot != nil || csv != nil { throw ValidationError("--plot and --csv go with --sweep") }
    }

    func run() throws {
        if isSweep { return try runSweep() }
        if try ModelFolder.kind(of: model) == .decoder {
            let decoder = try ModelFolder.decoder(model, tokenizerFallback: Assets.gpt2Tokenizer)
            // The default prompt lengths that fit the model's context (a given --seq is checked as given).
            let lengths = try seq.map { try parseList($0, "--seq") } ?? [128, 512, 1024].filter { $0 <= decoder.config.nPositions }
            let bench = DecoderBench(model: decoder, backend: try options.backend(),
                                     prefillLengths: lengths.isEmpty ? [decoder.config.nPositions] : lengths,
                                     decodeBatches: try parseList(batch ?? "1,8,32", "--batch"), promptTokens: promptTokens,
                                     iterations: iters, maxSeconds: maxSeconds ?? 30)
            let doc = try bench.run()
            if let json { try Console.writeFile(json, doc.serialized + "\n") }
            return
        }
        let batches = try parseList(batch ?? "1,8", "--batch")
        let seqs = try parseList(seq ?? "128", "--seq")
        let m = try ModelFolder.encoder(model)
        let backend = try options.backend()
        guard let longest = seqs.max(), longest <= m.config.maxSequenceLength else {
            throw ValidationError("--seq exceeds the model's \(m.config.maxSequenceLength) positions (max_position_embeddings)")
        }
        let maxBatch = batches.max()!
        let (tokens, overflow) = maxBatch.multipliedReportingOverflow(by: longest)
        if overflow { throw ValidationError("--batch × --seq is too large") }
        Console.progress("preparing \(m.path) on \(backend.deviceDescription) for \(maxBatch) x \(longest) tokens...")
        let output = Self.timedOutput(m.model.head)
        let plan = try m.plan(outputs: [output], maxTokens: tokens, maxSequences: maxBatch)
        let prepared = try backend.prepare(plan, weights: Console.loading(m.weights, plan))
        let c = m.config
        print("model \(m.path) (\(c.numHiddenLayers) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads) heads, "
              + "\(c.family.classPrefix)\(m.model.head.rawValue)), output \(output.rawValue), device \(backend.deviceDescription), "
              + "dtype \(backend.dtype), arena \(FlintError.format(bytes: prepared.arenaBytes))")
        let device = try DeviceReport.make(for: backend)
        let header = ["seq", "batch", "avg ms", "p50 ms", "p95 ms", "p99 ms", "seqs/s", "tokens/s", "GFLOP/s", "iters"]
        print(Table.row(header + (device == nil ? [] : DeviceReport.header)))
        var rows: [JSONValue] = []
        var rng = SplitMix64(seed: 42)
        for s in seqs {
            for b in batches {
                // Random ids in the vocabulary, [CLS]-like first token, full-length sequences.
                let sequences = (0..<b).map { _ in (0..<s).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
                let input = TokenBatch(sequences: sequences)
                Console.progress("  warming up batch \(b) x seq \(s)...")
                var log = ProfileLog(prepared)
                let st = try Timing.measure(iterations: iters, maxSeconds: maxSeconds ?? 0) {
                    _ = try prepared.run(input)
                    log.record()
                }
                let flops = plan.flops(lengths: Array(repeating: s, count: b))
                let extra = device?.row(log.last(st.count), bytes: Double(plan.weightBytes(backend.dtype)), flops: flops)
                let cells = [String(s), String(b), Table.fmt(st.avg), Table.fmt(st.p50), Table.fmt(st.p95), Table.fmt(st.p99),
                             Table.fmt(Double(b) / st.avg * 1000), Table.fmt(Double(b * s) / st.avg * 1000, 0),
                             Table.fmt(flops / st.p50 / 1e6, 1), String(st.count)]
                print(Table.row(cells + (extra?.cells ?? [])))
                rows.append(
                    st.json(
                        [
                            ("batch", Double(b)), ("seq", Double(s)), ("seqs_per_s", Double(b) / st.avg * 1000),
                            ("tokens_per_s", Double(b * s) / st.avg * 1000), ("gflops", flops / st.p50 / 1e6),
                        ] + (extra?.json ?? [])))
            }
        }
        if let json {
            let doc = JSONValue.object([("model", .string(m.path)), ("output", .string(output.rawValue)),
                                        ("device", .string(backend.deviceDescription)),
                                        ("dtype", .string(backend.dtype.description)), ("rows", .array(rows))])
            try Console.writeFile(json, doc.serialized + "\n")
        }
    }
}

extension ModelBench {
    /// What a row times: the task's own output, the way the task runs it (a masked-LM's vocabulary
    /// logits are no task of Flint's, so that head times the encoder alone).
    static func timedOutput(_ head: EncoderHead) -> Encoder.Output {
        switch head {
        case .questionAnswering: .spanLogits
        case .sequenceClassification, .tokenClassification: .logits
        case .model, .maskedLM: .lastHiddenState
        }
    }
}

/// `flint bench gemm`: the CPU GEMM's GFLOP/s at transformer shapes.
struct GEMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "CPU GEMM throughput (GFLOP/s) at transformer shapes, per weight precision.",
        discussion: """
            One column per --dtypes entry, measured shape by shape (the precisions alternate, so load from other \
            processes hits them alike): f32; bf16 (bf16 weights, f32 accumulation); int8 (int8 weights per output \
            channel, activations quantized per row at run time, s32 accumulation: encoders); int8-wo (int8 weights, \
            f32 activations: decoders' weight-only GEMV); int8-g64 (int8 weights with a scale per 64 k per output \
            channel: encoders' QKV and FFN; int16 activations below 128 rows on AVX2, else widened to f32 per tile); \
            int8-s8s8, int8-u8s7, int8-u7s8, int8-u7s7 (int8 in that scheme, whatever the CPU's default: see `Int8Scheme`). \
            FLOPs are 2·M·N·K for every precision.
            """)

    @Option(name: .long, help: "Comma-separated MxNxK shapes.")
    var shapes = "128x768x768,128x3072x768,128x768x3072,1024x768x768,1024x1024x1024,1x768x768,1x50257x768"

    @Option(name: .long, help: "Comma-separated precisions: f32, bf16, int8, int8-wo, int8-g64, int8-s8s8|u8s7|u7s8|u7s7.")
    var dtypes = "f32,bf16,int8,int8-wo,int8-g64"

    @Option(name: .long, help: "CPU threads (default: all cores).")
    var threads: Int?

    static let formats: [String: (PackedWeight.Format, Int8Scheme?)] = {
        var f: [String: (PackedWeight.Format, Int8Scheme?)] = ["f32": (.f32, nil), "bf16": (.bf16, nil), "int8": (.int8Dynamic, nil),
                                                              "int8-wo": (.int8WeightOnly, nil), "int8-g64": (.int8Grouped, nil)]
        for s in Int8Scheme.allCases { f["int8-\(s)"] = (.int8Dynamic, s) }
        return f
    }()

    func validate() throws {
        try DeviceOptions.validate(threads: threads)
        for d in dtypes.split(separator: ",") where Self.formats[String(d)] == nil {
            throw ValidationError("--dtypes takes f32, bf16, int8, int8-wo, int8-g64 and int8-s8s8|u8s7|u7s8|u7s7, not \(d)")
        }
    }

    func run() throws {
        let pool = ThreadPool(threads: threads)
        let names = dtypes.split(separator: ",").map(String.init)
        let machine = "cpu gemm (\(CPUFeatures.isaName), int8 kernel \(CPUFeatures.int8KernelName), \(pool.threadCount) threads)"
        print(machine + ", C[M,N] = A[M,K]·W[N,K]ᵀ, best of several runs, GFLOP/s")
        print(Table.row(["M", "N", "K"] + names))
        for shape in shapes.split(separator: ",") {
            let d = shape.split(separator: "x").compactMap { Int($0) }
            guard d.count == 3, d.allSatisfy({ $0 > 0 }) else { throw ValidationError("bad shape \(shape): use MxNxK") }
            let flopsPerRun = 2.0 * Double(d[0] * d[1] * d[2])
            let iterations = max(3, Int(2e9 / flopsPerRun))
            let rates = try names.map { name in
                let (format, scheme) = Self.formats[name]!
                return try CPUKernels.benchmarkGEMM(m: d[0], n: d[1], k: d[2], iterations: iterations, pool: pool, format: format,
                                                scheme: scheme)
            }
            print(Table.row([String(d[0]), String(d[1]), String(d[2])] + rates.map { Table.fmt($0, 1) }))
        }
    }
}

/// Warm-ups, then timed runs: latency samples in milliseconds.
enum Timing {
    static let warmUps = 10
    /// Warm-ups stop early after this long (a slow model on a CPU).
    static let warmUpSeconds = 5.0

    /// Runs `body` `warmUps` times (or for `warmUpSeconds`), then up to `iterations` timed times,
    /// stopping early once `maxSeconds` (> 0) of timed runs have passed; `untimed` runs before
    /// each run, outside the clock.
    static func measure(iterations: Int, maxSeconds: Double, untimed: () throws -> Void = {}, _ body: () throws -> Void) throws -> Stats {
        let warmStart = ContinuousClock.now
        for _ in 0..<warmUps {
            try untimed()
            try body()
            if (ContinuousClock.now - warmStart).milliseconds > warmUpSeconds * 1000 { break }
        }
        var times: [Double] = []
        let started = ContinuousClock.now
        for _ in 0..<iterations {
            try untimed()
            let t0 = ContinuousClock.now
            try body()
            times.append((ContinuousClock.now - t0).milliseconds)
            if maxSeconds > 0, (ContinuousClock.now - started).milliseconds > maxSeconds * 1000 { break }
        }
        return Stats(times)
    }
}

/// Latency statistics over samples in milliseconds.
struct Stats {
    let avg, p50, p95, p99: Double
    let count: Int

    /// A JSON row: `fields`, then avg/p50/p95/p99 ms and the number of timed runs.
    func json(_ fields: [(String, Double)]) -> JSONValue {
        .object(fields.map { ($0.0, .number($0.1)) } + [("avg_ms", .number(avg)), ("p50_ms", .number(p50)), ("p95_ms", .number(p95)),
                                                         ("p99_ms", .number(p99)), ("iters", .number(Double(count)))])
    }

    init(_ samples: [Double]) {
        count = samples.count
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
