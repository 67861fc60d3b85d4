import FlintCore
import FlintJSON
import FlintModels

/// `flint bench --model gpt2...`: decoder latency, as llama.cpp's and TensorRT-LLM's benchmarks
/// report it: prefill (one prompt of `seq` tokens through the KV cache, up to its next token) and
/// decode (every sequence of a batch advances one token per step; ids are chosen on the backend,
/// greedy) after a short prompt.
struct DecoderBench {
    let model: ModelFolder.LoadedDecoder
    let backend: any Backend
    let prefillLengths: [Int]
    let decodeBatches: [Int]
    let promptTokens: Int
    let iterations: Int
    let maxSeconds: Double

    func run() throws -> JSONValue {
        let c = model.config
        let gpt2 = model.model
        guard let longest = prefillLengths.max(), longest <= c.nPositions else {
            throw CommandError("--seq exceeds the model's n_positions (\(c.nPositions))")
        }
        guard promptTokens + 2 <= c.nPositions else {
            throw CommandError("--prompt-tokens leaves no room to decode within n_positions (\(c.nPositions))")
        }
        // Per layer: c_attn, attn.c_proj, c_fc, mlp.c_proj (weights and biases) and two LayerNorms; then wte, wpe, ln_f.
        let perLayer = 4 * c.nEmbd * c.nEmbd + 2 * c.nEmbd * c.nInner + 9 * c.nEmbd + c.nInner
        let parameters = c.nLayer * perLayer + (c.vocabSize + c.nPositions) * c.nEmbd + 2 * c.nEmbd
        print(
            "model \(model.path) (\(c.nLayer) layers, n_embd \(c.nEmbd), \(c.nHead) heads, \(Table.fmt(Double(parameters) / 1e6, 0))M parameters), "
                + "device \(backend.deviceDescription), dtype \(backend.dtype)")
        let device = try DeviceReport.make(for: backend)
        var rng = SplitMix64(seed: 7)
        func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }

        // Prefill: one slot, context = the longest prompt.
        var prefillRows: [JSONValue] = []
        do {
            Console.progress("preparing the prefill plan (1 x \(longest) tokens)...")
            let plan = try gpt2.plan(
                outputs: [.nextToken], maxTokens: longest, maxSequences: 1, maxContext: longest, configPath: model.configPath)
            let prepared = try backend.prepare(plan, weights: Console.loading(model.weights, plan))
            print("prefill: one prompt through the KV cache up to its next token; arena \(FlintError.format(bytes: prepared.arenaBytes))")
            print(Table.row(["seq", "batch", "avg ms", "p50 ms", "p95 ms", "p99 ms", "tokens/s", "GFLOP/s", "iters"]
                + (device == nil ? [] : DeviceReport.header)))
            for s in prefillLengths {
                let batch = TokenBatch(sequences: [tokens(s)])
                Console.progress("  warming up prefill seq \(s)...")
                var log = ProfileLog(prepared)
                let st = try Timing.measure(iterations: iterations, maxSeconds: maxSeconds) {
                    _ = try prepared.run(batch)
                    log.record()
                }
                let flops = plan.flops(lengths: [s])
                let extra = device?.row(log.last(st.count), bytes: Double(plan.weightBytes(backend.dtype)), flops: flops)
                print(Table.row([String(s), "1", Table.fmt(st.avg), Table.fmt(st.p50), Table.fmt(st.p95), Table.fmt(st.p99),
                                 Table.fmt(Double(s) / st.avg * 1000, 0), Table.fmt(flops / st.p50 / 1e6, 1), String(st.count)]
                    + (extra?.cells ?? [])))
                prefillRows.append(st.json([("batch", 1), ("seq", Double(s)), ("tokens_per_s", Double(s) / st.avg * 1000),
                                            ("gflops", flops / st.p50 / 1e6)] + (extra?.json ?? [])))
            }
        }

        // Decode: `batch` slots, each prefilled with `promptTokens`, then one token per step.
        var decodeRows: [JSONValue] = []
        let maxBatch = decodeBatches.max()!
        guard !maxBatch.multipliedReportingOverflow(by: promptTokens).overflow else {
            throw CommandError("--batch × --prompt-tokens is too large")
        }
        let context = min(c.nPositions, promptTokens + min(iterations, c.nPositions) + Timing.warmUps + 1)
        Console.progress("preparing the decode plan (\(maxBatch) sequences, context \(context))...")
        let plan = try gpt2.plan(outputs: [.nextToken], maxTokens: maxBatch * promptTokens, maxSequences: maxBatch, maxContext: context,
                                 configPath: model.configPath)
        let prepared = try backend.prepare(plan, weights: Console.loading(model.weights, plan))
        let weightBytes = plan.weightBytes(backend.dtype)
        print("decode: after a \(promptTokens)-token prompt, one token per sequence per step (greedy, ids chosen on the backend); "
            + "arena + KV cache \(FlintError.format(bytes: prepared.arenaBytes))")
        print(Table.row(["batch", "context", "avg ms", "p50 ms", "p95 ms", "p99 ms", "tokens/s", "weight GB/s", "iters"]
            + (device == nil ? [] : DeviceReport.header)))
        for b in decodeBatches {
            var next: [Int32] = []
            var position = 0
            func prefill() throws {
                let out = try prepared.run(TokenBatch(sequences: (0..<b).map { _ in tokens(promptTokens) }))
                next = out[GPT2.Output.nextToken.rawValue]!.data.map { Int32($0) }
                position = promptTokens
            }
            try prefill()
            Console.progress("  warming up decode batch \(b)...")
            var log = ProfileLog(prepared)
            let st = try Timing.measure(
                iterations: iterations, maxSeconds: maxSeconds,
                untimed: {
                    if position >= context { try prefill() }  // the context is full: start over
                }
            ) {
                let out = try prepared.run(
                    TokenBatch(sequences: next.map { [$0] }, positionOffsets: [Int32](repeating: Int32(position), count: b)))
                log.record()
                next = out[GPT2.Output.nextToken.rawValue]!.data.map { Int32($0) }
                position += 1
            }
            let bandwidth = Double(weightBytes) / st.p50 / 1e6
            // A step's FLOPs: every weight once per sequence (attention over a short context is small).
            let extra = device?.row(
                log.last(st.count), bytes: Double(weightBytes), flops: 2 * Double(weightBytes / backend.dtype.byteSize) * Double(b))
            print(
                Table.row(
                    [
                        String(b), "\(promptTokens)+", Table.fmt(st.avg), Table.fmt(st.p50), Table.fmt(st.p95), Table.fmt(st.p99),
                        Table.fmt(Double(b) / st.avg * 1000, 1), Table.fmt(bandwidth, 1), String(st.count),
                    ] + (extra?.cells ?? [])))
            decodeRows.append(
                st.json(
                    [
                        ("batch", Double(b)), ("prompt", Double(promptTokens)), ("ms_per_token", st.avg),
                        ("tokens_per_s", Double(b) / st.avg * 1000), ("weight_gb_per_s", bandwidth),
                    ] + (extra?.json ?? [])))
        }
        return .object([
            ("model", .string(model.path)), ("device", .string(backend.deviceDescription)), ("dtype", .string(backend.dtype.description)),
            ("prefill", .array(prefillRows)), ("decode", .array(decodeRows)),
        ])
    }
}
