import ArgumentParser
import FlintCPU
import FlintCore
import FlintJSON
import FlintModels

/// `flint profile`: one forward broken down per plan step (an encoder forward; for GPT-2 a prefill
/// and a decode step), with each step's FLOPs and bytes from the plan's shapes, the achieved
/// rates, and what is left of the wall time: Flint's own overhead.
struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-step profile of one forward: time, FLOPs, bytes, GFLOP/s, GB/s, bound; overhead; Chrome trace.",
        discussion: """
            Times are the host's: the CPU backend times each step on the thread that runs the forward; the CUDA backend \
            runs profiled forwards step by step without its graph, waiting after each step. --trace writes Chrome trace \
            event JSON (opens in Perfetto, ui.perfetto.dev, or chrome://tracing).
            """
    )

    @Option(name: .long, help: "bert-base, bert-large, minilm-l6, gpt2..., or a model folder.")
    var model = "bert-base"

    @OptionGroup var options: DeviceOptions

    @Option(name: .long, help: "Sequences per batch (GPT-2: prefill and decode both).")
    var batch = 1

    @Option(name: .long, help: "Tokens per sequence (GPT-2: the prompt; the decode step follows it).")
    var seq = 128

    @Option(name: .long, help: "Profiled runs per forward (the table shows medians).")
    var runs = 10

    @Option(name: .long, help: "Write a Chrome trace event JSON file (Perfetto) of every profiled run.")
    var trace: String?

    @Option(name: .long, help: "Write the profile as JSON to this file.")
    var json: String?

    func validate() throws {
        guard batch >= 1, seq >= 1 else { throw ValidationError("--batch and --seq must be >= 1") }
        guard (1...1000).contains(runs) else { throw ValidationError("--runs must be between 1 and 1000") }
        guard !batch.multipliedReportingOverflow(by: seq).overflow, batch * seq <= 1 << 24 else {
            throw ValidationError("--batch × --seq is too large (at most 16M tokens)")
        }
    }

    func run() throws {
        let backend = try options.backend()
        let elementBytes = backend.dtype.byteSize
        // The CPU keeps weights in f32; CUDA stores them in the activation dtype.
        let weightBytes = backend is CPUBackend ? 4 : elementBytes
        var rng = SplitMix64(seed: 42)
        let origin = ContinuousClock.now
        var phases: [StepProfiler.Phase] = []
        let path: String
        if try ModelFolder.kind(of: model) == .decoder {
            let decoder = try ModelFolder.decoder(model, tokenizerFallback: Assets.gpt2Tokenizer)
            let c = decoder.config
            guard seq + 1 <= c.nPositions else {
                throw ValidationError("--seq leaves no room for a decode step within n_positions (\(c.nPositions))")
            }
            path = decoder.path
            let plan = try decoder.model.plan(
                outputs: [.nextToken], maxTokens: batch * seq, maxSequences: batch, maxContext: seq + 1,
                configPath: decoder.configPath)
            let prepared = try timed(try backend.prepare(plan, weights: Console.loading(decoder.weights, plan)))
            let prompts = (0..<batch).map { _ in (0..<seq).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
            let profiler = StepProfiler(prepared: prepared, runs: runs, origin: origin)
            let prefill = TokenBatch(sequences: prompts)
            phases.append(try profiler.profile("prefill", batch: prefill, seq: seq, elementBytes: elementBytes, weightBytes: weightBytes))
            // The decode step writes the same cache row every run (position `seq`), so every run does the same work.
            let step = TokenBatch(sequences: prompts.map { [$0[0]] }, positionOffsets: [Int32](repeating: Int32(seq), count: batch))
            phases.append(try profiler.profile("decode", batch: step, seq: seq, elementBytes: elementBytes, weightBytes: weightBytes))
        } else {
            let m = try ModelFolder.encoder(model)
            guard seq <= m.config.maxSequenceLength else {
                throw ValidationError("--seq exceeds the model's \(m.config.maxSequenceLength) positions (max_position_embeddings)")
            }
            path = m.path
            let plan = try m.plan(outputs: [.lastHiddenState], maxTokens: batch * seq, maxSequences: batch)
            let prepared = try timed(try backend.prepare(plan, weights: Console.loading(m.weights, plan)))
            let input = TokenBatch(
                sequences: (0..<batch).map { _ in (0..<seq).map { _ in Int32(rng.next() % UInt64(m.config.vocabSize)) } })
            let profiler = StepProfiler(prepared: prepared, runs: runs, origin: origin)
            phases.append(try profiler.profile("forward", batch: input, seq: seq, elementBytes: elementBytes, weightBytes: weightBytes))
        }
        // Measured after the runs, so bad arguments fail before the half second this takes.
        let ceilings = try (backend as? CPUBackend).map { try MachineCeilings.measureCPU(pool: $0.pool, effort: .quick).roofline("f32") }
        print(
            "model \(path), device \(backend.deviceDescription), dtype \(backend.dtype); times are the host's, "
                + (backend is CPUBackend ? "steps timed on the forward's thread" : "steps run one by one without the CUDA graph"))
        if let ceilings {
            print(
                "ceilings (measured now): f32 GEMM \(Table.fmt(ceilings.gflops, 1)) GFLOP/s, "
                    + "memory copy \(Table.fmt(ceilings.gbps, 1)) GB/s; memory-bound below \(Table.fmt(ceilings.balance, 1)) FLOP/byte")
        } else {
            print("no ceilings for this device: % of ceiling and bound are left out")
        }
        for phase in phases { print("\n" + phase.table(ceilings)) }
        if let json {
            var doc = phases[0].json(model: path, device: backend.deviceDescription, dtype: backend.dtype.description, ceilings: ceilings)
            for extra in phases.dropFirst() {
                doc.append(
                    (
                        extra.name,
                        .object(
                            extra.json(
                                model: path, device: backend.deviceDescription, dtype: backend.dtype.description,
                                ceilings: ceilings))
                    ))
            }
            try Console.writeFile(json, JSONValue.object(doc).serialized + "\n")
        }
        if let trace {
            let events = phases.enumerated().flatMap { $0.element.traceEvents(pid: $0.offset + 1) }
            let doc = JSONValue.object([("traceEvents", .array(events)), ("displayTimeUnit", .string("ms"))])
            try Console.writeFile(trace, doc.serialized + "\n")
        }
    }

    /// The prepared plan, as one that times its steps (every backend's is).
    private func timed(_ prepared: any PreparedPlan) throws -> any StepTimedPlan {
        guard let timed = prepared as? any StepTimedPlan else { throw CommandError("this backend cannot time plan steps") }
        return timed
    }
}
