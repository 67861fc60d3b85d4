import FlintBackendChecks
import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintModels
import FlintTestSupport
import Testing

/// GPT-2 on the CPU backend against Hugging Face transformers (`scripts/gen_gpt2_fixtures.py`):
/// tiny random models with head dims 12, 40 and 128, tied and untied heads, gelu_new and gelu,
/// f32/f16/bf16 checkpoints and a bare GPT2Model. HF ran each prompt alone; Flint runs the three
/// prompts packed into one batch, through the KV cache.
@Suite("GPT-2 parity with Hugging Face")
struct GPT2ParityTests {
    static let backend = CPUBackend(threads: 2)

    static func load(_ fixture: GPT2Fixture) throws -> (GPT2, any WeightSource) {
        let loaded = try ModelFolder.decoder(fixture.folder, tokenizerFallback: nil)
        return (loaded.model, loaded.weights)
    }

    static func generator(_ fixture: GPT2Fixture, maxSequences: Int = 4, backend: any Backend = backend) throws -> TokenGenerator {
        let (model, checkpoint) = try load(fixture)
        let plan = try model.plan(outputs: [.nextToken], maxTokens: 64, maxSequences: maxSequences, maxContext: model.config.nPositions)
        return try TokenGenerator(prepared: try backend.prepare(plan, weights: checkpoint), eosTokenIds: model.config.eosTokenIds)
    }

    @Test(arguments: GPT2Fixture.languageModels)
    func prefillLogitsMatchTransformers(_ name: String) throws {
        let fixture = try GPT2Fixture(name)
        let (model, checkpoint) = try Self.load(fixture)
        #expect(model.prefix == "transformer.")
        let plan = try model.plan(outputs: [.logits, .nextTokenLogits], maxTokens: 64, maxSequences: 4, maxContext: 32)
        let batch = TokenBatch(sequences: fixture.prompts)
        let out = try Self.backend.prepare(plan, weights: checkpoint).run(batch)
        let logits = try #require(out["logits"]), next = try #require(out["next_token_logits"])
        let want = try #require(fixture.logits)
        let vocab = model.config.vocabSize
        for s in 0..<batch.sequenceCount {
            let rows = Int(batch.starts[s])..<Int(batch.starts[s] + batch.lengths[s])
            let err = maxRelativeError(logits.rows(rows).data, want[s])
            #expect(err <= 1e-4, "\(name) prompt \(s): logits max error \(err)")
            let lastErr = maxRelativeError(next.row(s).map { $0 }, Array(want[s].suffix(vocab)))
            #expect(lastErr <= 1e-4, "\(name) prompt \(s): next-token logits max error \(lastErr)")
        }
    }

    @Test func bareModelHiddenStatesMatchTransformers() throws {
        let fixture = try GPT2Fixture("tiny-gpt2-model")
        let (model, checkpoint) = try Self.load(fixture)
        #expect(model.prefix == "" && model.lmHeadKey == "wte.weight")
        let plan = try model.plan(outputs: [.lastHiddenState], maxTokens: 64, maxSequences: 4, maxContext: 16)
        let batch = TokenBatch(sequences: fixture.prompts)
        let hidden = try #require(try Self.backend.prepare(plan, weights: checkpoint).run(batch)["last_hidden_state"])
        for s in 0..<batch.sequenceCount {
            let err = maxRelativeError(hidden.rows(Int(batch.starts[s])..<Int(batch.starts[s] + batch.lengths[s])).data,
                                       try #require(fixture.lastHiddenState)[s])
            #expect(err <= 1e-4, "prompt \(s): last_hidden_state max error \(err)")
        }
    }

    /// 64 greedy tokens per prompt, all three prompts decoding together through the KV cache.
    @Test(arguments: GPT2Fixture.languageModels)
    func greedyContinuationsMatchTransformers(_ name: String) throws {
        let fixture = try GPT2Fixture(name)
        let got = try Self.generator(fixture).generate(
            prompts: fixture.prompts, parameters: GenerationParameters(maxNewTokens: 64, ignoreEOS: true))
        for (s, completion) in got.enumerated() {
            _ = Expect.sameSequence(completion.ids, try #require(fixture.greedy)[s], "token", context: "\(name) prompt \(s)")
            #expect(completion.finishReason == .length && completion.promptTokens == fixture.prompts[s].count)
        }
    }

    /// Mixed prompt lengths in one batch give exactly what each prompt gives alone, greedy and sampled.
    @Test(arguments: [
        SamplingParameters.greedy, SamplingParameters(temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.3, seed: 7),
    ])
    func batchedGenerationEqualsOneByOne(_ sampling: SamplingParameters) throws {
        let fixture = try GPT2Fixture("tiny-gpt2-hd40")
        let generator = try Self.generator(fixture)
        let parameters = GenerationParameters(maxNewTokens: 40, sampling: sampling, ignoreEOS: true)
        let together = try generator.generate(prompts: fixture.prompts, parameters: parameters)
        for (s, prompt) in fixture.prompts.enumerated() {
            let alone = try generator.generate(prompts: [prompt], parameters: parameters)[0]
            _ = Expect.sameSequence(together[s].ids, alone.ids, "token", context: "prompt \(s), \(sampling)")
        }
    }

    /// A plan with fewer tokens than sequences decodes in groups that fit its tokens.
    @Test func moreSlotsThanTokensStillDecodes() throws {
        let fixture = try GPT2Fixture("tiny-gpt2")
        let (model, checkpoint) = try Self.load(fixture)
        let plan = try model.plan(outputs: [.nextToken], maxTokens: 11, maxSequences: 16, maxContext: 20)
        let generator = try TokenGenerator(prepared: try Self.backend.prepare(plan, weights: checkpoint), eosTokenIds: [])
        let prompts = (0..<14).map { [Int32($0 % 7 + 1)] } + fixture.prompts
        let got = try generator.generate(prompts: prompts, parameters: GenerationParameters(maxNewTokens: 5))
        #expect(got.count == 17 && got.allSatisfy { $0.ids.count == 5 })
        for (s, c) in got.suffix(3).enumerated() {
            _ = Expect.sameSequence(c.ids, Array(try #require(fixture.greedy)[s].prefix(5)), "token", context: "prompt \(s)")
        }
    }

    /// A plan with fewer sequences or tokens than the prompts runs them in groups and chunks.
    @Test func groupsAndChunksGiveTheSameTokens() throws {
        let fixture = try GPT2Fixture("tiny-gpt2")
        let (model, checkpoint) = try Self.load(fixture)
        let plan = try model.plan(outputs: [.nextToken], maxTokens: 12, maxSequences: 2, maxContext: 40)
        let small = try TokenGenerator(prepared: try Self.backend.prepare(plan, weights: checkpoint), eosTokenIds: [])
        let got = try small.generate(prompts: fixture.prompts, parameters: GenerationParameters(maxNewTokens: 20))
        for (s, c) in got.enumerated() {
            _ = Expect.sameSequence(c.ids, Array(try #require(fixture.greedy)[s].prefix(20)), "token", context: "prompt \(s)")
        }
    }
}
