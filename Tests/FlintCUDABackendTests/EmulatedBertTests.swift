import FlintBackendChecks
import FlintCPU
import FlintCUDA
import FlintCUDAEmulation
import FlintCheckpoint
import FlintCore
import FlintModels
import FlintTestSupport
import Testing

/// The CUDA backend's whole BERT plan (weights upload, arena, launch geometry, shape buckets,
/// graph capture and replay) under the emulated driver, against the CPU backend.
@Suite("CUDA backend under the emulated driver")
struct EmulatedBertTests {
    static let cpu = CPUBackend(threads: 1)

    @Test(arguments: [
        ("tiny-bert-seqcls", DType.f32), ("tiny-bert-mlm", .f32), ("tiny-bert-qa", .f32), ("tiny-bert-tokcls", .f32),
        ("tiny-bert-model", .f32), ("tiny-bert-model", .f16), ("tiny-bert-model", .bf16), ("tiny-bert-seqcls", .f16),
        // The other families: RoBERTa's position offset and one token type, DistilBERT's none, their heads.
        ("encoders/tiny-roberta-seqcls", .f32), ("encoders/tiny-xlm-roberta-qa", .f16), ("encoders/tiny-distilbert-seqcls", .f32),
        ("encoders/tiny-distilbert-sinusoidal", .f32), ("encoders/tiny-roberta-tokcls", .bf16),
    ])
    func tinyBertMatchesCPU(_ name: String, _ dtype: DType) throws {
        let loaded = try ModelFolder.encoder(TestPaths.fixture(name.contains("/") ? name : "bert/" + name))
        let checkpoint = loaded.weights
        let outputs = Set(loaded.model.availableOutputs + [.sentenceEmbedding])
        let plan = try loaded.plan(outputs: outputs, maxTokens: 64, maxSequences: 8, normalize: true)
        let driver = EmulatedCUDADriver()
        let gpu = try CUDABackend(driver: driver, dtype: dtype).prepare(plan, weights: checkpoint)
        let reference = try Self.cpu.prepare(plan, weights: checkpoint)
        // A sentence pair where the model has token types (RoBERTa's one type, DistilBERT's none: all 0).
        let second: Int32 = loaded.config.typeVocabSize > 1 ? 1 : 0
        let batch = TokenBatch(sequences: [[2, 17, 45, 9, 3], [2, 8, 8, 71, 30, 12, 55, 3], [2, 3]],
                               typeIds: [[0, 0, 0, 0, 0], [0, 0, 0, second, second, second, second, second], [0, 0]])
        let want = try reference.run(batch)
        let got = try gpu.run(batch)
        for (key, expected) in want {
            let actual = try #require(got[key], "output \(key) missing")
            #expect(actual.shape == expected.shape, "\(name) \(dtype) \(key) shape")
            let err = maxRelativeError(actual.data, expected.data)
            #expect(err <= ModelChecks.tolerance(dtype), "\(name) \(dtype) \(key): max error \(err)")
        }
        // Same bucket again: replayed, not re-captured.
        let graphs = driver.graphCount
        _ = try gpu.run(TokenBatch(sequences: [[2, 5, 6, 3], [2, 7, 3]]))
        #expect(driver.graphCount == graphs + 1, "a 2-sequence bucket is new")
        _ = try gpu.run(TokenBatch(sequences: [[2, 9, 3], [2, 7, 7, 7, 3]]))
        #expect(driver.graphCount == graphs + 1, "the same bucket replays its graph")
        #expect(driver.replayCount == 1, "each bucket's first batch runs eagerly (and is captured); only the third batch replays")
    }

    @Test func inputsOutsideTheModelAreRefused() throws {
        let loaded = try ModelFolder.encoder(TestPaths.fixture("bert/tiny-bert-model"))
        let checkpoint = loaded.weights
        let plan = try loaded.plan(outputs: [.lastHiddenState], maxTokens: 16, maxSequences: 2)
        let gpu = try CUDABackend(driver: EmulatedCUDADriver()).prepare(plan, weights: checkpoint)
        #expect(throws: FlintError.self) { try gpu.run(TokenBatch(sequences: [[1, 2, 999]])) }
        #expect(throws: FlintError.self) { try gpu.run(TokenBatch(sequences: [Array(repeating: 1, count: 17)])) }
        #expect(throws: FlintError.self) { try gpu.run(TokenBatch(sequences: [[1], [2], [3]])) }
    }

    @Test func outOfMemoryIsATypedError() throws {
        let driver = EmulatedCUDADriver()
        #expect(throws: FlintError.self) { _ = try driver.allocate(bytes: -1, what: "test") }
    }
}
