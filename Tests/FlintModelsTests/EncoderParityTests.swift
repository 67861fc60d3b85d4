import FlintBackendChecks
import FlintCPU
import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintModels
import FlintTestSupport
import Testing

/// Encoders on the CPU backend against Hugging Face transformers, loaded through
/// `ModelFolder.encoder`: tiny random BERTs per head type (`scripts/gen_bert_fixtures.py`), tiny
/// random DistilBERT, RoBERTa and XLM-RoBERTa models per head (`scripts/gen_encoder_fixtures.py`),
/// and real all-MiniLM-L6-v2. HF ran each as one padded batch with an attention mask; Flint runs
/// the same inputs packed (no padding), so agreement also shows that skipping padding changes nothing.
@Suite("Encoder parity with Hugging Face")
struct EncoderParityTests {
    static let tinyModels = ["tiny-bert-model", "tiny-bert-mlm", "tiny-bert-seqcls", "tiny-bert-tokcls", "tiny-bert-qa",
                             "tiny-bert-fp16", "tiny-bert-bf16", "tiny-bert-sharded"].map { "bert/" + $0 } + TestPaths.tinyEncoders
    static let backend = CPUBackend(threads: 2)

    static func floats(_ v: JSONValue) -> [Float] {
        if let f = v.floats { return f }
        return v.array!.flatMap { floats($0) }
    }

    @Test(arguments: tinyModels)
    func tinyModelMatchesTransformers(_ name: String) throws {
        let folder = TestPaths.fixture(name)
        let expected = try JSONParser.parse(try #require(TestPaths.read(folder + "/expected.json"), "missing fixture \(folder)"))
        let loaded = try ModelFolder.encoder(folder)
        #expect(loaded.config.architectures == [try #require(expected["architecture"]?.string)])
        let outputs = try #require(expected["outputs"])
        var wanted: Set<Encoder.Output> = [.lastHiddenState]
        if outputs["pooler_output"] != nil { wanted.insert(.poolerOutput) }
        if outputs["logits"] != nil { wanted.insert(.logits) }
        if outputs["start_logits"] != nil { wanted.insert(.spanLogits) }
        let ids = try #require(expected["inputs"]?["input_ids"]?.array).map { $0.array!.map { Int32($0.int!) } }
        let types = try #require(expected["inputs"]?["token_type_ids"]?.array).map { $0.array!.map { Int32($0.int!) } }
        let plan = try loaded.plan(outputs: wanted, maxTokens: 64, maxSequences: 4)
        let prepared = try Self.backend.prepare(plan, weights: loaded.weights)
        let batch = TokenBatch(sequences: ids, typeIds: types)
        let result = try prepared.run(batch)

        func perSequence(_ t: HostTensor, tokens: Bool) -> [[Float]] {
            (0..<ids.count).map { s in
                let r = tokens ? Int(batch.starts[s])..<Int(batch.starts[s] + batch.lengths[s]) : s..<(s + 1)
                return t.rows(r).data
            }
        }
        func check(_ key: String, _ actual: [[Float]]) {
            let want = outputs[key]!.array!.map { Self.floats($0) }
            #expect(want.count == actual.count, "\(name) \(key): sequence count")
            for (s, (a, e)) in zip(actual, want).enumerated() {
                #expect(a.count == e.count, "\(name) \(key) sequence \(s): \(a.count) values vs \(e.count)")
                guard a.count == e.count else { continue }
                let err = maxRelativeError(a, e)
                #expect(err <= 1e-4, "\(name) \(key) sequence \(s): max error \(err)")
            }
        }
        check("last_hidden_state", perSequence(result["last_hidden_state"]!, tokens: true))
        if outputs["pooler_output"] != nil { check("pooler_output", perSequence(result["pooler_output"]!, tokens: false)) }
        if outputs["logits"] != nil {
            let perToken = plan.buffers[plan.outputs.first { $0.name == "logits" }!.buffer].rows == .tokens
            check("logits", perSequence(result["logits"]!, tokens: perToken))
        }
        if outputs["start_logits"] != nil {
            let spans = perSequence(result["span_logits"]!, tokens: true)
            check("start_logits", spans.map { row in stride(from: 0, to: row.count, by: 2).map { row[$0] } })
            check("end_logits", spans.map { row in stride(from: 1, to: row.count, by: 2).map { row[$0] } })
        }
    }

    @Test func miniLMSentenceEmbeddingsMatchSentenceTransformers() throws {
        guard let folder = TestPaths.asset("all-MiniLM-L6-v2/model.safetensors").map({ _ in TestPaths.assets + "/all-MiniLM-L6-v2" }) else {
            print("skipped miniLMSentenceEmbeddingsMatchSentenceTransformers: \(TestPaths.missingAssetsReason)")
            return
        }
        let expected = try JSONParser.parse(try #require(TestPaths.read(TestPaths.fixture("bert/minilm_expected.json"))))
        let texts = try #require(expected["texts"]?.array).map { $0.string! }
        let pipeline = try EncoderPipeline(folder: folder, backend: Self.backend, outputs: [.sentenceEmbedding, .lastHiddenState])
        var encoded: [EncoderPipeline.Encoded] = []
        for t in texts { encoded.append(try pipeline.encode(t)) }
        let wantIds = try #require(expected["input_ids"]?.array).map { $0.array!.map { Int32($0.int!) } }
        #expect(encoded.map(\.ids) == wantIds, "Flint's tokenizer must give HF's ids")
        let out = try pipeline.run(encoded)
        let embeddings = try #require(out["sentence_embedding"])
        let hidden = try #require(out["last_hidden_state"])
        let wantEmbeddings = try #require(expected["sentence_embeddings"]?.array).map { Self.floats($0) }
        // The truncated (longest) text stores only its embedding, to keep the fixture small.
        let wantHidden = try #require(expected["last_hidden_state"]?.array).map { $0.isNull ? nil : Self.floats($0) }
        #expect(encoded.map(\.truncated) == expected["truncated"]?.array?.map { $0.bool! })
        for i in texts.indices {
            let e = maxRelativeError(embeddings[i].data, wantEmbeddings[i])
            #expect(e <= 1e-4, "text \(i): embedding max abs error \(e)")
            if let want = wantHidden[i] {
                let h = maxRelativeError(hidden[i].data, want)
                #expect(h <= 1e-4, "text \(i): hidden state max error \(h)")
            }
        }
    }
}
