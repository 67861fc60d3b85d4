import FlintBackendChecks
import FlintCPU
import FlintCUDA
import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintModels

/// `flint check --device ...`: every op case of FlintBackendChecks (each step kind at odd sizes, in
/// f32/f16/bf16), then whole models on a CUDA backend against the CPU backend — every
/// tiny BERT fixture (all heads, a sharded and f16/bf16 checkpoints) in f32, f16 and bf16, every
/// tiny GPT-2 (prefill and decode through the KV cache, and greedy generation on the device), and
/// all-MiniLM-L6-v2 when its folder is present (fp16 embeddings must reach cosine ≥ 0.9999).
struct ParityCheck {
    struct Row {
        var name: String
        var dtype: DType
        var output: String
        var maxError: Float
        var tolerance: Float
        var ok: Bool { maxError <= tolerance }
    }

    static let tinyModels =
        [
            "tiny-bert-model", "tiny-bert-mlm", "tiny-bert-seqcls", "tiny-bert-tokcls", "tiny-bert-qa", "tiny-bert-sharded",
            "tiny-bert-fp16", "tiny-bert-bf16",
        ].map { "bert/" + $0 }
        + ["distilbert", "roberta", "xlm-roberta"].flatMap { family in ["seqcls", "qa"].map { "encoders/tiny-\(family)-\($0)" } }

    let makeBackend: (DType) throws -> any Backend
    let fixtures: String
    let cpu = CPUBackend()

    /// The op cases, each in every dtype it applies to.
    func opRows(progress: (String) -> Void) throws -> [Row] {
        var rows: [Row] = []
        for dtype in [DType.f32, .f16, .bf16] {
            progress("checking the ops in \(dtype)...")
            let backend = try makeBackend(dtype)
            for c in OpChecks.cases() where c.dtypes.contains(dtype) {
                let err = try c.maxError(on: backend, reference: cpu)
                rows.append(
                    Row(
                        name: "op", dtype: dtype, output: c.name + (c.comparison == .exact ? " (ids differing)" : ""), maxError: err,
                        tolerance: c.comparison == .exact ? 0 : OpChecks.tolerance(dtype)))
            }
        }
        return rows
    }

    func run(progress: (String) -> Void) throws -> [Row] {
        var rows: [Row] = []
        let ids: [[Int32]] = [[2, 17, 45, 9, 3], [2, 8, 8, 71, 30, 12, 55, 3, 60, 61, 62, 63, 64, 65, 66, 67, 68, 3], [2, 3]]
        for name in Self.tinyModels {
            let folder = fixtures + "/" + name
            guard access(folder + "/config.json", R_OK) == 0 else { continue }
            let loaded = try ModelFolder.encoder(folder)
            // The second input is a pair where the model has two token types (not RoBERTa's one, DistilBERT's none).
            let second: Int32 = loaded.config.typeVocabSize > 1 ? 1 : 0
            let batch = TokenBatch(sequences: ids, typeIds: [[0, 0, 0, 0, 0], [0, 0, 0] + [Int32](repeating: second, count: 15), [0, 0]])
            let checkpoint = loaded.weights
            let plan = try loaded.plan(outputs: Set(loaded.model.availableOutputs + [.sentenceEmbedding]), maxTokens: 64, maxSequences: 8,
                                       normalize: true)
            let reference = try cpu.prepare(plan, weights: checkpoint).run(batch)
            for dtype in [DType.f32, .f16, .bf16] {
                progress("checking \(name) in \(dtype)...")
                let got = try makeBackend(dtype).prepare(plan, weights: checkpoint).run(batch)
                for (output, want) in reference.sorted(by: { $0.key < $1.key }) {
                    let err = got[output].map { maxRelativeError($0.data, want.data) } ?? .infinity
                    rows.append(Row(name: name, dtype: dtype, output: output, maxError: err, tolerance: ModelChecks.tolerance(dtype)))
                }
            }
        }
        return rows
    }

    static let tinyGPT2 = ["tiny-gpt2", "tiny-gpt2-hd40", "tiny-gpt2-hd128", "tiny-gpt2-fp16", "tiny-gpt2-bf16"]

    /// GPT-2: logits of a prefill of three prompts and of three decode steps (slots out of order),
    /// error relative to the largest |logit| (logits are compared with each other, so their scale
    /// is what matters); then in f32 and f16, 32 greedy tokens per prompt chosen on the device,
    /// which must equal the CPU's up to near-ties (ModelChecks.compareGreedy: reported in the row,
    /// not failures); bf16's 8-bit mantissa flips too many near-ties within 32 tokens to compare.
    func gpt2Rows(fixtures: String, progress: (String) -> Void) throws -> [Row] {
        var rows: [Row] = []
        for name in Self.tinyGPT2 {
            let folder = fixtures + "/" + name
            guard access(folder + "/config.json", R_OK) == 0 else { continue }
            let loaded = try ModelFolder.decoder(folder, tokenizerFallback: nil)
            let (model, checkpoint) = (loaded.model, loaded.weights)
            let prompts: [[Int32]] = [[5, 17, 3, 99, 42], [7, 7, 7, 1, 2, 3, 4, 5, 6, 8, 9], [100, 31, 2]]
            let batches = ModelChecks.prefillAndDecode(prompts: prompts)
            let plan = try model.plan(outputs: [.logits, .nextTokenLogits], maxTokens: 32, maxSequences: 4, maxContext: 24)
            let generation = try model.plan(outputs: [.nextToken], maxTokens: 32, maxSequences: 4, maxContext: 48)
            let parameters = GenerationParameters(maxNewTokens: 32, ignoreEOS: true)
            let cpuPlan = try cpu.prepare(plan, weights: checkpoint)
            let reference = try batches.map { b throws(FlintError) in try cpuPlan.run(b) }
            let greedy = try TokenGenerator(prepared: try cpu.prepare(generation, weights: checkpoint), eosTokenIds: [])
                .generate(prompts: prompts, parameters: parameters)
            // Prefills prompt + agreed tokens at divergences only (prompts <= 11 tokens + 32 generated).
            let tieLogits = try model.plan(outputs: [.nextTokenLogits], maxTokens: 48, maxSequences: 1, maxContext: 48)
            let cpuLogits = Lazy { () throws(FlintError) in try cpu.prepare(tieLogits, weights: checkpoint) }
            for dtype in [DType.f32, .f16, .bf16] {
                progress("checking \(name) in \(dtype)...")
                let backend = try makeBackend(dtype)
                let device = try backend.prepare(plan, weights: checkpoint)
                var err: Float = 0
                for (b, want) in zip(batches, reference) {
                    let got = try device.run(b)
                    for (key, w) in want { err = max(err, got[key].map { scaledError($0.data, w.data) } ?? .infinity) }
                }
                rows.append(Row(name: name, dtype: dtype, output: "logits (prefill + 3 decode steps), error / max |logit|", maxError: err,
                                tolerance: ModelChecks.tolerance(dtype)))
                guard dtype != .bf16 else { continue }
                let tokens = try TokenGenerator(prepared: try backend.prepare(generation, weights: checkpoint), eosTokenIds: [])
                    .generate(prompts: prompts, parameters: parameters)
                let comparison = try ModelChecks.compareGreedy(device: tokens.map(\.ids), cpu: greedy.map(\.ids), prompts: prompts,
                                                               margin: ModelChecks.nearTieMargin(dtype)) { (context) throws(FlintError) in
                    try ModelChecks.nextTokenLogits(of: try cpuLogits.value(), after: context)
                }
                let note = comparison.nearTies.isEmpty ? "" : "; " + comparison.nearTieNote
                rows.append(Row(name: name, dtype: dtype, output: "prompts whose 32 greedy tokens differ from the CPU's beyond a near-tie"
                                    + note, maxError: Float(comparison.failures.count), tolerance: 0))
            }
        }
        return rows
    }

    static let miniLMTexts = [
        "Hello world", "A man is eating a piece of bread.", "The quick brown fox jumps over the lazy dog, again and again.",
    ]

    /// MiniLM sentence embeddings in `dtype` against CPU fp32: the smallest cosine similarity and
    /// the largest absolute difference.
    func miniLM(folder: String, dtype: DType) throws -> (minCosine: Float, maxError: Float) {
        let cpuEmbeddings = try EncoderPipeline(folder: folder, backend: cpu, outputs: [.sentenceEmbedding]).embed(Self.miniLMTexts)
            .embeddings
        let gpuEmbeddings = try EncoderPipeline(folder: folder, backend: makeBackend(dtype), outputs: [.sentenceEmbedding])
            .embed(Self.miniLMTexts).embeddings
        let cosines = zip(cpuEmbeddings, gpuEmbeddings).map { a, b in
            let dot = zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            let na = a.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot(),
                nb = b.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            return Float(dot / max(na * nb, 1e-30))
        }
        let err = zip(cpuEmbeddings, gpuEmbeddings).map { maxRelativeError($0.1, $0.0) }.max() ?? .infinity
        return (cosines.min() ?? 0, err)
    }
}

/// A value made on first use (the CPU logits plan of the near-tie check: only at divergences).
final class Lazy<Value> {
    private let make: () throws(FlintError) -> Value
    private var made: Value?
    init(_ make: @escaping () throws(FlintError) -> Value) { self.make = make }
    func value() throws(FlintError) -> Value {
        if let made { return made }
        let v = try make()
        made = v
        return v
    }
}

#if canImport(Glibc)
import Glibc
#endif
