import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintModels
import FlintTestSupport
import Testing

/// Model folders an attacker or a broken conversion could hand over (issue 10): non-finite weights,
/// forwards that overflow, and config.json files that disagree with their checkpoint. Each must end
/// in a `FlintError` that names the culprit, never in an all-NaN embedding or a stream of token 0.
@Suite("Hostile model folders")
struct HostileModelTests {
    /// Runs `body` and returns its `FlintError` (recording an issue when it throws nothing).
    static func error(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(FlintError) -> Void) -> FlintError? {
        do {
            try body()
            Issue.record("expected a FlintError, nothing was thrown", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    static func bertPlan(_ folder: String) throws -> (Plan, any WeightSource) {
        let loaded = try ModelFolder.encoder(folder)
        return (try loaded.plan(outputs: [.lastHiddenState, .sentenceEmbedding], maxTokens: 32, maxSequences: 4), loaded.weights)
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteBertWeightIsRefusedAtLoadNamingTheTensor(_ value: Float) throws {
        let tensor = "encoder.layer.1.output.dense.weight"
        let folder = try HostileFolders.copy("bert/tiny-bert-model", poke: (tensor, 37, value), vocabulary: HostileFolders.tinyVocabulary)
        let (plan, checkpoint) = try Self.bertPlan(folder)
        let e = Self.error { () throws(FlintError) in _ = try CPUBackend(threads: 1).prepare(plan, weights: checkpoint) }
        guard case let .badTensor(path, name, reason)? = e else { Issue.record("expected badTensor, got \(String(describing: e))"); return }
        #expect(path.hasSuffix("model.safetensors") && name == tensor)
        #expect(reason.contains("1 non-finite value") && reason.contains("flat index 37"), "\(reason)")
        // The embed command's path (EncoderPipeline) refuses the folder the same way.
        let viaPipeline = Self.error { () throws(FlintError) in
            _ = try EncoderPipeline(folder: folder, backend: CPUBackend(threads: 1), outputs: [.sentenceEmbedding])
        }
        #expect(viaPipeline == e)
    }

    @Test func nonFiniteGPT2WeightIsRefusedAtLoad() throws {
        let tensor = "transformer.h.0.attn.c_attn.weight"
        let folder = try HostileFolders.copy("gpt2/tiny-gpt2", poke: (tensor, 0, .nan))
        let loaded = try ModelFolder.decoder(folder, tokenizerFallback: nil)
        let (gpt2, checkpoint) = (loaded.model, loaded.weights)
        let plan = try gpt2.plan(outputs: [.nextToken], maxTokens: 16, maxSequences: 2, maxContext: 16)
        let e = Self.error { () throws(FlintError) in _ = try CPUBackend(threads: 1).prepare(plan, weights: checkpoint) }
        guard case let .badTensor(_, name, reason)? = e else { Issue.record("expected badTensor, got \(String(describing: e))"); return }
        #expect(name == tensor && reason.contains("NaN"), "\(reason)")
    }

    @Test func overflowingBertForwardIsAnErrorNamingTheStep() throws {
        let (plan, checkpoint) = try Self.bertPlan(TestPaths.fixture("bert/tiny-bert-model"))
        let weights = OverflowingWeights(base: checkpoint, tensor: "encoder.layer.0.intermediate.dense.weight")
        let prepared = try CPUBackend(threads: 2).prepare(plan, weights: weights)
        let e = Self.error { () throws(FlintError) in _ = try prepared.run(TokenBatch(sequences: [[2, 5, 6, 3], [2, 7, 3]])) }
        guard case let .nonFinite(buffer, step)? = e else { Issue.record("expected nonFinite, got \(String(describing: e))"); return }
        #expect(step.contains("linear encoder.layer.0.intermediate.dense.weight") && step.contains("\"intermediate\""), "\(step)")
        #expect(buffer.contains("intermediate"), "\(buffer)")
        #expect(e!.description.contains("NaN or infinity"))
        // The same plan with the checkpoint's own weights still runs: the check costs no false alarm.
        let healthy = try CPUBackend(threads: 2).prepare(plan, weights: checkpoint).run(TokenBatch(sequences: [[2, 5, 6, 3]]))
        #expect(healthy["sentence_embedding"]?.data.allSatisfy(\.isFinite) == true)
    }

    @Test func overflowingGPT2IsAnErrorNotTokenZero() throws {
        let folder = TestPaths.fixture("gpt2/tiny-gpt2")
        let loaded = try ModelFolder.decoder(folder, tokenizerFallback: nil)
        let (gpt2, checkpoint) = (loaded.model, loaded.weights)
        let plan = try gpt2.plan(outputs: [.nextToken], maxTokens: 16, maxSequences: 2, maxContext: 32)
        let weights = OverflowingWeights(base: checkpoint, tensor: "transformer.h.1.mlp.c_fc.weight")
        let generator = try TokenGenerator(prepared: try CPUBackend(threads: 1).prepare(plan, weights: weights), eosTokenIds: [])
        let e = Self.error { () throws(FlintError) in
            _ = try generator.generate(prompts: [[5, 17, 3]], parameters: GenerationParameters(maxNewTokens: 4, ignoreEOS: true))
        }
        guard case let .nonFinite(_, step)? = e else { Issue.record("expected nonFinite, got \(String(describing: e))"); return }
        #expect(step.contains("transformer.h.1.mlp.c_fc.weight"), "\(step)")
    }

    /// config.json edits that disagree with tiny-bert-model's checkpoint (2 layers, hidden 32,
    /// intermediate 64, vocabulary 99, 64 positions, 2 token types), and the words the error needs.
    static let bertDisagreements: [(field: String, value: Int, mentions: [String])] = [
        ("type_vocab_size", 0, ["type_vocab_size is 0", "token_type_embeddings", "[2, 32]"]),
        ("type_vocab_size", 3, ["type_vocab_size", "[3, 32]", "[2, 32]"]),
        ("num_hidden_layers", 3, ["num_hidden_layers is 3", "has 2 layers"]),
        ("num_hidden_layers", 1, ["num_hidden_layers is 1", "has 2 layers"]),
        ("intermediate_size", 128, ["intermediate_size", "[128, 32]", "[64, 32]"]),
        ("vocab_size", 30522, ["vocab_size", "[30522, 32]", "[99, 32]"]),
        ("max_position_embeddings", 512, ["max_position_embeddings", "[512, 32]"]),
    ]

    @Test(arguments: bertDisagreements.indices)
    func bertConfigThatDisagreesWithTheCheckpointIsRefused(_ i: Int) throws {
        let (field, value, mentions) = Self.bertDisagreements[i]
        let folder = try HostileFolders.copy("bert/tiny-bert-model", config: [(field, .number(Double(value)))],
                                             vocabulary: HostileFolders.tinyVocabulary)
        let e = Self.error { () throws(FlintError) in
            _ = try EncoderPipeline(folder: folder, backend: CPUBackend(threads: 1), outputs: [.sentenceEmbedding])
        }
        guard case let .badConfig(path, reason)? = e else { Issue.record("expected badConfig, got \(String(describing: e))"); return }
        #expect(path.hasSuffix("config.json"))
        for m in mentions { #expect(reason.contains(m), "\(reason) lacks \(m)") }
    }

    @Test func gpt2ConfigThatDisagreesWithTheCheckpointIsRefused() throws {
        for (field, value, mention) in [("n_layer", 5, "n_layer is 5"), ("n_inner", 96, "n_inner"), ("n_positions", 1024, "n_positions")] {
            let folder = try HostileFolders.copy("gpt2/tiny-gpt2", config: [(field, .number(Double(value)))])
            let e = Self.error { () throws(FlintError) in _ = try ModelFolder.decoder(folder, tokenizerFallback: nil) }
            guard case let .badConfig(_, reason)? = e else {
                Issue.record("\(field): expected badConfig, got \(String(describing: e))")
                continue
            }
            #expect(reason.contains(mention) && reason.contains("disagree"), "\(reason)")
        }
    }

    @Test func absurdLayerCountsAreRefusedBeforePlanning() throws {
        for (fixture, field) in [("bert/tiny-bert-model", "num_hidden_layers"), ("gpt2/tiny-gpt2", "n_layer")] {
            let folder = try HostileFolders.copy(fixture, config: [(field, .number(1e9))])
            let e = Self.error { () throws(FlintError) in
                let path = folder + "/config.json"
                if field == "n_layer" { _ = try GPT2Config.load(path: path) } else { _ = try EncoderConfig.load(path: path) }
            }
            #expect(e?.description.contains("\(field) is 1000000000, more than the 4096 Flint accepts") == true, "\(String(describing: e))")
        }
    }

    @Test func matchingConfigsStillLoad() throws {
        for fixture in ["bert/tiny-bert-model", "bert/tiny-bert-sharded", "bert/tiny-bert-mlm"] + TestPaths.tinyEncoders {
            _ = try ModelFolder.encoder(TestPaths.fixture(fixture))
        }
        for fixture in GPT2Fixture.languageModels + ["tiny-gpt2-model"] {
            _ = try ModelFolder.decoder(TestPaths.fixture("gpt2/" + fixture), tokenizerFallback: nil)
        }
    }
}
