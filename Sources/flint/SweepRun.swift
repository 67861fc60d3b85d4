import ArgumentParser
import FlintCPU
import FlintCore
import FlintJSON
import FlintModels

/// `flint bench --sweep`: an encoder's latency over batch × sequence, the knee per sequence
/// length, and the plot, JSON and CSV; `--compare` puts the peers' sweeps beside it.
extension ModelBench {
    static let sweepBatches = "1,2,4,8,16,32,64"
    static let sweepSeqs = "16,32,64,128,256"

    var isSweep: Bool { sweep || compare != nil || load != nil }

    func runSweep() throws {
        let compared = try compare.map { ($0, try Sweep.load($0)) }
        func peers(of model: String) throws -> [Sweep] {
            guard let c = compared else { return [] }
            let (path, all) = c
            let mine = all.filter { $0.model == model && $0.engine != "flint" }
            guard !mine.isEmpty else {
                throw CommandError("\(path) has no peer sweeps of model \(model) (it has: "
                    + Set(all.map { "\($0.engine) \($0.model)" }).sorted().joined(separator: ", ") + ")")
            }
            return mine
        }
        let flint: Sweep
        if let load {
            // A file of several sweeps (scripts/peers) holds Flint's per model: take --model's.
            let loaded = try Sweep.load(load).filter { $0.engine == "flint" }
            guard let first = loaded.count == 1 ? loaded.first : loaded.first(where: { $0.model == model }) else {
                throw CommandError("\(load) holds no sweep with \"engine\": \"flint\"" + (loaded.isEmpty ? "" : " of model \(model)"))
            }
            flint = first
        } else {
            // The grid: as given, else the peers' points, else the default.
            let others = try peers(of: model)
            let batches = try batch.map { try parseList($0, "--batch") }
                ?? (others.isEmpty ? try parseList(Self.sweepBatches, "--batch") : Array(Set(others.flatMap(\.batches))).sorted())
            let seqs = try seq.map { try parseList($0, "--seq") }
                ?? (others.isEmpty ? try parseList(Self.sweepSeqs, "--seq") : Array(Set(others.flatMap(\.seqs))).sorted())
            flint = try measureSweep(batches: batches, seqs: seqs)
        }
        let peers = try peers(of: flint.model)
        print(flint.summary())
        if !peers.isEmpty { print("\n" + flint.comparison(peers)) }
        if let json { try Console.writeFile(json, flint.json.serialized + "\n") }
        if let csv {
            try Console.writeFile(csv, ([Sweep.csvHeader] + flint.csvRows + peers.flatMap(\.csvRows)).joined(separator: "\n") + "\n")
        }
        if let plot { try Console.writeFile(plot, SweepPlot(flint: flint, peers: peers).svg()) }
    }

    /// Times every grid point (batch-major within each sequence length, smallest first) on one plan
    /// prepared for the largest, with `Timing.measure`'s warm-up and iteration protocol.
    func measureSweep(batches: [Int], seqs: [Int]) throws -> Sweep {
        guard try ModelFolder.kind(of: model) == .encoder else {
            throw ValidationError("--sweep times encoders (bert-base, minilm-l6, encoder folders); for GPT-2 use flint bench --model gpt2")
        }
        let m = try ModelFolder.encoder(model)
        let backend = try options.backend()
        guard let longest = seqs.max(), longest <= m.config.maxSequenceLength, let widest = batches.max() else {
            throw ValidationError("--seq exceeds the model's \(m.config.maxSequenceLength) positions (max_position_embeddings)")
        }
        let (tokens, overflow) = widest.multipliedReportingOverflow(by: longest)
        guard !overflow, tokens <= 1 << 24 else { throw ValidationError("--batch × --seq is too large (at most 16M tokens)") }
        let ceilingDType = backend is CPUBackend ? (options.dtype == "auto" ? "f32" : options.dtype) : backend.dtype.description
        let ceilings = try MachineCeilings.forBackend(backend, refresh: false, effort: .quick, dtype: ceilingDType, save: false)
        // The CPU keeps f32 weights unless it packs them (bf16, int8); CUDA stores them in the activation dtype.
        let cpuWeights: DType = options.dtype == "bf16" ? .bf16 : options.dtype == "int8" ? .i8 : .f32
        let weightDType = backend is CPUBackend ? cpuWeights : backend.dtype
        Console.progress("preparing \(m.path) on \(backend.deviceDescription) for \(widest) x \(longest) tokens...")
        let output = Self.timedOutput(m.model.head)
        let plan = try m.plan(outputs: [output], maxTokens: tokens, maxSequences: widest)
        let prepared = try backend.prepare(plan, weights: Console.loading(m.weights, plan))
        print("sweep: model \(m.path), output \(output.rawValue), device \(backend.deviceDescription), dtype \(backend.dtype); "
              + "\(Timing.warmUps) warm-ups (at most \(Int(Timing.warmUpSeconds)) s), then up to \(iters) timed runs "
              + "(at most \(Table.fmt(maxSeconds ?? Self.sweepSeconds, 0)) s) per point; p50")
        print(Table.row(["seq", "batch", "p50 ms", "p95 ms", "tokens/s", "iters", "FLOP floor", "byte floor"]))
        var rng = SplitMix64(seed: 42)
        var points: [Sweep.Point] = []
        let grid = seqs.flatMap { s in batches.map { (batch: $0, seq: s) } }
        let progress = ProgressLine(total: grid.count, weights: grid.map { Double($0.batch * $0.seq) })
        let weightBytes = Double(plan.weightBytes(weightDType))
        let loadAtStart = MachineCeilings.loadAverage()
        let partial = Sweep(engine: "flint", model: model, device: backend.deviceDescription, dtype: backend.dtype.description,
                            machine: MachineCeilings.cpuModelName(), date: MachineCeilings.utcNow(),
                            gemmGFLOPs: ceilings?.gflops(ceilingDType), copyGBs: ceilings?.copyGBs, points: [])
        for (index, g) in grid.enumerated() {
            let input = TokenBatch(
                sequences: (0..<g.batch).map { _ in (0..<g.seq).map { _ in Int32(rng.next() % UInt64(m.config.vocabSize)) } })
            progress.update(done: index, "batch \(g.batch) x seq \(g.seq)")
            let st = try Timing.measure(iterations: iters, maxSeconds: maxSeconds ?? Self.sweepSeconds) { _ = try prepared.run(input) }
            let p = Sweep.Point(batch: g.batch, seq: g.seq, p50Ms: st.p50, avgMs: st.avg, p95Ms: st.p95, iters: st.count,
                                flops: plan.flops(lengths: Array(repeating: g.seq, count: g.batch)), bytes: weightBytes)
            points.append(p)
            progress.finish(index: index, "batch \(g.batch) x seq \(g.seq): \(Table.fmt(st.p50, 2)) ms")
            func floor(_ v: Double?) -> String { v.map { Table.fmt($0, 2) } ?? "-" }
            print(Table.row([String(g.seq), String(g.batch), Table.fmt(st.p50, 2), Table.fmt(st.p95, 2), Table.fmt(p.tokensPerSecond, 0),
                             String(st.count), floor(partial.flopsFloorMs(p)), floor(partial.bytesFloorMs(p))]))
        }
        progress.close()
        var sweep = partial
        sweep.points = points
        sweep.machine += MachineCeilings.loadNote(start: loadAtStart, end: MachineCeilings.loadAverage())
        return sweep
    }

    /// A sweep point's timed runs stop after this many seconds unless --max-seconds says otherwise.
    static let sweepSeconds = 5.0
}
