import ArgumentParser
import FlintBackendChecks
import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintModels
#if canImport(Glibc)
import Glibc
#endif

/// `flint check --device cpu --dtype bf16|int8`: the precision's accuracy contract against the CPU's
/// f32 plans (PrecisionAccuracy.Contract): all-MiniLM-L6-v2 embeddings of the fixture texts
/// (cosine per text), GPT-2 teacher-forced next tokens and perplexity on the tiny fixtures and on
/// the 124M GPT-2 shape with seeded random weights.
extension Check {
    struct PrecisionRow {
        var model: String
        var measure: String
        var value: Double
        var bound: Double
        /// true: value must be >= bound; false: |value| <= bound.
        var atLeast: Bool
        var ok: Bool { atLeast ? value >= bound : abs(value) <= bound }
    }

    func checkCPUPrecision() throws {
        guard device == "cpu" else {
            throw ValidationError("--dtype is checked on --device cpu (the CUDA checks cover f32, f16 and bf16 themselves)")
        }
        guard let dtype, let precision = CPUPrecision(rawValue: dtype), precision != .f32,
              let contract = PrecisionAccuracy.Contract.of(precision.dtype)
        else { throw ValidationError("--device cpu checks --dtype bf16 or int8") }
        let reference = CPUBackend(), candidate = CPUBackend(precision: precision)
        var rows: [PrecisionRow] = []
        if access(minilm + "/model.safetensors", R_OK) == 0 {
            Console.progress("checking all-MiniLM-L6-v2 embeddings in \(precision)...")
            let fixture = fixtures + "/bert/minilm_expected.json"
            let texts = (try? JSONParser.parse(BoundedFile.contents(fixture, limit: 1 << 24)))?["texts"]?.array?.compactMap(\.string)
                ?? ParityCheck.miniLMTexts
            let cosines = try PrecisionAccuracy.embeddingCosines(folder: minilm, texts: texts, reference: reference, candidate: candidate)
            rows.append(PrecisionRow(model: "all-MiniLM-L6-v2 (\(texts.count) texts)", measure: "min cosine vs f32",
                                     value: cosines.min() ?? 0, bound: contract.minCosine, atLeast: true))
        } else if !json {
            Console.progress("note: \(minilm) not found, MiniLM check skipped (scripts/fetch-assets)")
        }
        // Tiny fixtures: agreement is reported, not bounded (their nearly flat random logits tie within
        // bf16/int8 rounding, see LowPrecisionAccuracyTests); perplexity is bounded everywhere.
        var decoders: [(String, GPT2, any WeightSource, Int)] = []
        for name in ParityCheck.tinyGPT2 {
            let folder = gpt2Fixtures + "/" + name
            guard access(folder + "/config.json", R_OK) == 0 else { continue }
            let loaded = try ModelFolder.decoder(folder, tokenizerFallback: nil)
            decoders.append((name, loaded.model, loaded.weights, 127))
        }
        if decoders.isEmpty {
            throw CommandError("no tiny GPT-2 fixtures in \(gpt2Fixtures) (run from the repository root or pass --gpt2-fixtures)")
        }
        let gpt2 = GPT2(config: .gpt2, hasTensor: { _ in false })
        decoders.append(("gpt2 (124M shape, random weights seed 0)", gpt2, RandomWeights(seed: 0), 512))
        for (name, model, weights, tokens) in decoders {
            Console.progress("checking \(name) in \(precision) (\(tokens) tokens, teacher-forced)...")
            let text = PrecisionAccuracy.fixedText(count: tokens, vocabularySize: model.config.vocabSize)
            let r = try PrecisionAccuracy.teacherForced(model: model, weights: weights, tokens: text, reference: reference,
                                                        candidate: candidate)
            let tiny = !(weights is RandomWeights)
            let flips = "flips within \(Table.fmt(r.largestFlipGap * 100, 3))% of max |logit|"
            let agreement = "next-token agreement (\(r.positions) positions, \(flips))" + (tiny ? ", reported only" : "")
            rows.append(PrecisionRow(model: name, measure: agreement,
                                     value: r.agreement, bound: tiny ? 0 : contract.minAgreement, atLeast: true))
            rows.append(PrecisionRow(model: name, measure: "perplexity / f32 - 1 (f32: \(Table.fmt(r.referencePerplexity, 3)))",
                                     value: r.perplexityChange, bound: contract.maxPerplexityChange, atLeast: false))
        }
        let failed = rows.filter { !$0.ok }
        if json {
            print(JSONValue.object([
                ("device", .string("cpu")), ("dtype", .string(precision.rawValue)), ("cpu", .string(candidate.deviceDescription)),
                ("checks", .array(rows.map { r in
                    .object([("model", .string(r.model)), ("measure", .string(r.measure)), ("value", .number(r.value)),
                             ("bound", .number(r.bound)), ("at_least", .bool(r.atLeast)), ("ok", .bool(r.ok))])
                })),
            ]).serialized)
        } else {
            print("device: \(candidate.deviceDescription), \(precision) against f32")
            print(Table.row(["result", "value", "bound"]) + "model / measure")
            for r in rows {
                let value = (r.value < 0 ? "-" : "") + Table.fmt(abs(r.value), 5)
                print(Table.row([r.ok ? "ok" : "FAIL", value, (r.atLeast ? ">= " : "|x| <= ") + Table.fmt(r.bound, 4)])
                    + "\(r.model) / \(r.measure)")
            }
            print("\(rows.count) checks, \(failed.count) failed")
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
