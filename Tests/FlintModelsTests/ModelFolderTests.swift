import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintModels
import FlintTestSupport
import Testing

/// `ModelFolder`, the one loader: family and head from config.json, the config checked against the
/// checkpoint, and every refusal naming what is wrong and what is supported.
@Suite("Model folders")
struct ModelFolderTests {
    static func error(_ body: () throws(FlintError) -> Void) -> FlintError? {
        do { try body() } catch { return error }
        return nil
    }

    @Test(arguments: [
        ("bert/tiny-bert-qa", EncoderFamily.bert, EncoderHead.questionAnswering, "bert."),
        ("encoders/tiny-distilbert-seqcls", .distilBert, .sequenceClassification, "distilbert."),
        ("encoders/tiny-distilbert-model", .distilBert, .model, ""),
        ("encoders/tiny-roberta-tokcls", .roberta, .tokenClassification, "roberta."),
        ("encoders/tiny-xlm-roberta-qa", .xlmRoberta, .questionAnswering, "roberta."),
    ])
    func familyHeadAndPrefixComeFromTheFolder(_ fixture: String, _ family: EncoderFamily, _ head: EncoderHead, _ prefix: String) throws {
        let folder = TestPaths.fixture(fixture)
        #expect(try ModelFolder.kind(of: folder) == .encoder)
        let loaded = try ModelFolder.encoder(folder)
        #expect(loaded.config.family == family && loaded.model.head == head && loaded.model.prefix == prefix)
        #expect(loaded.configPath == folder + "/config.json" && loaded.isFolder)
        // RoBERTa's table (66 rows) has pad_token_id + 1 = 2 rows before the first position; the others' 64 start at 0.
        #expect(loaded.config.maxSequenceLength == 64)
        #expect(loaded.config.positionOffset == (family == .roberta || family == .xlmRoberta ? 2 : 0))
    }

    @Test func builtInsAndDecoders() throws {
        let base = try ModelFolder.encoder("bert-base")
        #expect(base.config == .bertBase && !base.isFolder && base.configPath == "built-in bert-base")
        // The SQuAD bench's model: BERT-base with the QA head, whose plan ends in the start/end logits.
        let qa = try ModelFolder.encoder("bert-base-qa")
        #expect(qa.model.head == .questionAnswering && qa.config.hiddenSize == 768 && qa.config.numHiddenLayers == 12)
        let qaPlan = try qa.plan(outputs: [.spanLogits], maxTokens: 384, maxSequences: 1)
        #expect(qaPlan.outputs.map { $0.name } == ["span_logits"] && qaPlan.weights.contains { $0.name == "qa_outputs.weight" })
        let noHead = Self.error { () throws(FlintError) in _ = try base.plan(outputs: [.spanLogits], maxTokens: 8, maxSequences: 1) }
        #expect(base.model.head == .model && noHead?.description.contains("ForQuestionAnswering") == true, "\(String(describing: noHead))")
        #expect(try ModelFolder.kind(of: "gpt2") == .decoder && ModelFolder.kind(of: "minilm-l6") == .encoder)
        let gpt2 = TestPaths.fixture("gpt2/tiny-gpt2")
        #expect(try ModelFolder.kind(of: gpt2) == .decoder)
        let e = Self.error { () throws(FlintError) in _ = try ModelFolder.encoder(gpt2) }
        guard case let .unsupportedModel(path, reason)? = e else {
            Issue.record("expected unsupportedModel, got \(String(describing: e))"); return
        }
        #expect(path.hasSuffix("config.json") && reason.contains("GPT-2 decoder") && reason.contains("\"distilbert\""), "\(reason)")
        let d = Self.error { () throws(FlintError) in
            _ = try ModelFolder.decoder(TestPaths.fixture("bert/tiny-bert-model"), tokenizerFallback: nil)
        }
        #expect(d?.description.contains("an encoder, not a decoder") == true, "\(String(describing: d))")
    }

    @Test func unsupportedTypesAndHeadsAreRefusedByName() throws {
        let t5 = try HostileFolders.copy("bert/tiny-bert-model", config: [("model_type", .string("t5"))])
        let viaKind = Self.error { () throws(FlintError) in _ = try ModelFolder.kind(of: t5) }
        let viaEncoder = Self.error { () throws(FlintError) in _ = try ModelFolder.encoder(t5) }
        for e in [viaKind, viaEncoder] {
            guard case let .unsupportedModel(path, reason)? = e else {
                Issue.record("expected unsupportedModel, got \(String(describing: e))"); continue
            }
            #expect(path == t5 + "/config.json")
            #expect(
                reason.contains("model_type \"t5\"") && reason.contains("\"bert\", \"distilbert\", \"roberta\", \"xlm-roberta\", \"gpt2\""),
                "\(reason)")
        }
        let head = try HostileFolders.copy(
            "encoders/tiny-roberta-model", config: [("architectures", .array([.string("RobertaForCausalLM")]))])
        let e = Self.error { () throws(FlintError) in _ = try ModelFolder.encoder(head) }
        #expect(
            e?.description.contains("architecture \"RobertaForCausalLM\" is not supported for model_type \"roberta\"") == true,
            "\(String(describing: e))")
        #expect(e?.description.contains("RobertaForQuestionAnswering") == true)
        let missing = Self.error { () throws(FlintError) in _ = try ModelFolder.encoder("/nonexistent/model") }
        #expect(missing?.description.contains("bert-base") == true, "\(String(describing: missing))")
    }

    /// A RoBERTa position table one row short of what config.json says is a disagreement, named.
    @Test func robertaConfigThatDisagreesIsRefused() throws {
        let folder = try HostileFolders.copy("encoders/tiny-roberta-model", config: [("max_position_embeddings", .number(70))])
        let e = Self.error { () throws(FlintError) in _ = try ModelFolder.encoder(folder) }
        #expect(
            e?.description.contains("max_position_embeddings and hidden_size give embeddings.position_embeddings.weight") == true,
            "\(String(describing: e))")
        let distil = try HostileFolders.copy("encoders/tiny-distilbert-model", config: [("n_layers", .number(3))])
        let d = Self.error { () throws(FlintError) in _ = try ModelFolder.encoder(distil) }
        #expect(
            d?.description.contains("n_layers is 3") == true && d?.description.contains("transformer.layer.0") == true,
            "\(String(describing: d))")
    }
}
