import FlintBackendChecks
import FlintCPU
import FlintCUDA
import FlintCUDAEmulation
import FlintCheckpoint
import FlintCore
import FlintModels
import FlintTestSupport
import Testing

/// GPT-2 on the CUDA backend under the emulated driver against the CPU backend: prefill logits,
/// the KV cache across decode steps (each step one graph replay), greedy and sampled generation.
@Suite("GPT-2 on the CUDA backend under the emulated driver")
struct EmulatedGPT2Tests {
    static let cpu = CPUBackend(threads: 1)

    static func load(_ name: String) throws -> (GPT2Fixture, GPT2, any WeightSource) {
        let fixture = try GPT2Fixture(name)
        let loaded = try ModelFolder.decoder(fixture.folder, tokenizerFallback: nil)
        return (fixture, loaded.model, loaded.weights)
    }

    @Test(arguments: [
        ("tiny-gpt2", DType.f32), ("tiny-gpt2-hd40", .f32), ("tiny-gpt2-hd128", .f32), ("tiny-gpt2", .f16), ("tiny-gpt2-bf16", .bf16),
    ])
    func prefillAndDecodeMatchCPU(_ name: String, _ dtype: DType) throws {
        let (fixture, model, checkpoint) = try Self.load(name)
        let plan = try model.plan(outputs: [.logits, .nextTokenLogits], maxTokens: 40, maxSequences: 4, maxContext: 24)
        let driver = EmulatedCUDADriver()
        let gpu = try CUDABackend(driver: driver, dtype: dtype).prepare(plan, weights: checkpoint)
        let cpu = try Self.cpu.prepare(plan, weights: checkpoint)
        // Prefill the three prompts, then three decode steps with slots in another order.
        for (i, batch) in ModelChecks.prefillAndDecode(prompts: fixture.prompts).enumerated() {
            let want = try cpu.run(batch), got = try gpu.run(batch)
            for key in ["logits", "next_token_logits"] {
                let err = maxRelativeError(try #require(got[key]).data, try #require(want[key]).data)
                #expect(err <= ModelChecks.tolerance(dtype), "\(name) \(dtype) run \(i) \(key): max error \(err)")
            }
        }
        #expect(driver.graphCount == 2, "one graph for the prefill bucket, one for the decode bucket")
        #expect(driver.replayCount == 2, "each bucket's first batch runs eagerly (and is captured), the next two decode steps replay")
    }

    /// The whole generation loop on the emulated GPU: ids chosen on the device equal the CPU's.
    @Test(arguments: [
        SamplingParameters.greedy, SamplingParameters(temperature: 0.8, topK: 20, topP: 0.9, repetitionPenalty: 1.2, seed: 11),
    ])
    func generationMatchesCPU(_ sampling: SamplingParameters) throws {
        let (fixture, model, checkpoint) = try Self.load("tiny-gpt2")
        let plan = try model.plan(outputs: [.nextToken], maxTokens: 32, maxSequences: 4, maxContext: 64)
        let parameters = GenerationParameters(maxNewTokens: 32, sampling: sampling, ignoreEOS: true)
        let want = try TokenGenerator(prepared: try Self.cpu.prepare(plan, weights: checkpoint), eosTokenIds: [])
            .generate(prompts: fixture.prompts, parameters: parameters)
        let driver = EmulatedCUDADriver()
        let got = try TokenGenerator(prepared: try CUDABackend(driver: driver).prepare(plan, weights: checkpoint), eosTokenIds: [])
            .generate(prompts: fixture.prompts, parameters: parameters)
        for s in fixture.prompts.indices {
            _ = Expect.sameSequence(got[s].ids, want[s].ids, "token", context: "prompt \(s), \(sampling)")
        }
        if sampling.isGreedy {
            for s in fixture.prompts.indices {
                _ = Expect.sameSequence(got[s].ids, Array(fixture.greedy![s].prefix(32)), "token", context: "HF, prompt \(s)")
            }
        }
        #expect(driver.graphCount == 2, "prefill and decode buckets; 31 decode steps replay one graph")
    }

    /// fp16 weights and activations keep the greedy path of the f32 CPU run for 32 tokens.
    @Test func halfPrecisionGreedyFollowsCPU() throws {
        let (fixture, model, checkpoint) = try Self.load("tiny-gpt2-fp16")
        let plan = try model.plan(outputs: [.nextToken], maxTokens: 32, maxSequences: 4, maxContext: 64)
        let got = try TokenGenerator(
            prepared: try CUDABackend(driver: EmulatedCUDADriver(), dtype: .f16).prepare(plan, weights: checkpoint),
            eosTokenIds: []
        ).generate(prompts: fixture.prompts, parameters: GenerationParameters(maxNewTokens: 32, ignoreEOS: true))
        for s in fixture.prompts.indices {
            _ = Expect.sameSequence(got[s].ids, Array(fixture.greedy![s].prefix(32)), "token", context: "prompt \(s)")
        }
    }

    @Test func badDecodeInputsAreRefusedBeforeTouchingTheCache() throws {
        let (_, model, checkpoint) = try Self.load("tiny-gpt2")
        let plan = try model.plan(outputs: [.nextToken], maxTokens: 16, maxSequences: 2, maxContext: 8)
        let gpu = try CUDABackend(driver: EmulatedCUDADriver()).prepare(plan, weights: checkpoint)
        #expect(throws: FlintError.self) { try gpu.run(TokenBatch(sequences: [[1, 2]], slots: [2])) }  // no slot 2
        #expect(throws: FlintError.self) { try gpu.run(TokenBatch(sequences: [[1], [2]], slots: [0, 0])) }  // one slot twice
        #expect(throws: FlintError.self) { try gpu.run(TokenBatch(sequences: [[1, 2]], positionOffsets: [7])) }  // past the context
        #expect(throws: FlintError.self) {
            try gpu.run(TokenBatch(sequences: [[1]], sampling: [SamplingParameters(temperature: -1)]))
        }
    }

    /// Logits that a `.sample` step picks from stay on the device: a NaN row must be an error naming
    /// the logits and the step that wrote them (as on the CPU), never token 0 or a random pick.
    @Test(arguments: [SamplingParameters.greedy,
                      SamplingParameters(temperature: 0.8, topK: 20, topP: 0.9, repetitionPenalty: 1.2, seed: 3)])
    func nonFiniteSampledLogitsAreAnErrorNamingTheStep(_ sampling: SamplingParameters) throws {
        let (_, model, checkpoint) = try Self.load("tiny-gpt2")
        let plan = try model.plan(outputs: [.nextToken], maxTokens: 16, maxSequences: 2, maxContext: 32)
        let weights = OverflowingWeights(base: checkpoint, tensor: "transformer.h.1.mlp.c_fc.weight")
        let generator = try TokenGenerator(prepared: try CUDABackend(driver: EmulatedCUDADriver()).prepare(plan, weights: weights),
                                           eosTokenIds: [])
        let parameters = GenerationParameters(maxNewTokens: 4, sampling: sampling, ignoreEOS: true)
        var caught: FlintError?
        do {
            let got = try generator.generate(prompts: [[5, 17, 3], [8, 2]], parameters: parameters)
            Issue.record("expected FlintError.nonFinite, generated \(got.map(\.ids))")
        } catch {
            caught = error
        }
        guard case let .nonFinite(buffer, step)? = caught else {
            Issue.record("expected FlintError.nonFinite, got \(String(describing: caught))")
            return
        }
        #expect(buffer.contains("next_token_logits") && buffer.contains("of \(2 * model.config.vocabSize) values"), "\(buffer)")
        #expect(step.contains("linear lm_head.weight") && step.contains("\"next_token_logits\""), "\(step)")
        // The healthy weights through the same kernel: finite logits never trip the check.
        let healthy = try TokenGenerator(prepared: try CUDABackend(driver: EmulatedCUDADriver()).prepare(plan, weights: checkpoint),
                                         eosTokenIds: []).generate(prompts: [[5, 17, 3]], parameters: parameters)
        #expect(healthy[0].ids.count == 4 && healthy[0].ids.allSatisfy { $0 >= 0 })
    }
}
