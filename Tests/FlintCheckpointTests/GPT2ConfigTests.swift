import FlintCheckpoint
import FlintCore
import FlintTestSupport
import Testing

@Suite("GPT-2 config.json")
struct GPT2ConfigTests {
    static func write(_ json: String) -> String {
        let path = TestPaths.temporaryFolder() + "/config.json"
        TestPaths.write(json, to: path)
        return path
    }

    @Test func defaultsFollowTransformers() throws {
        let c = try GPT2Config.load(path: Self.write(#"{"model_type": "gpt2"}"#))
        #expect(c == GPT2Config.gpt2)
        #expect(c.nInner == 3072 && c.headSize == 64 && c.activationFunction == "gelu_new" && c.layerNormEpsilon == 1e-5)
        #expect(c.eosTokenIds == [50256] && c.bosTokenId == 50256 && c.architecture == .lmHead && c.tieWordEmbeddings)
    }

    @Test func decodesAllFields() throws {
        let c = try GPT2Config.load(path: Self.write("""
            {"model_type": "gpt2", "architectures": ["GPT2Model"], "vocab_size": 300, "n_positions": 64, "n_embd": 80, "n_layer": 3,
             "n_head": 2, "n_inner": null, "activation_function": "gelu", "layer_norm_epsilon": 1e-6, "scale_attn_weights": false,
             "scale_attn_by_inverse_layer_idx": true, "tie_word_embeddings": false, "bos_token_id": null, "eos_token_id": [5, 7]}
            """))
        #expect(c.vocabSize == 300 && c.nPositions == 64 && c.nEmbd == 80 && c.nLayer == 3 && c.nHead == 2 && c.nInner == 320)
        #expect(c.activationFunction == "gelu" && c.layerNormEpsilon == 1e-6 && !c.scaleAttnWeights && c.scaleAttnByInverseLayerIdx)
        #expect(!c.tieWordEmbeddings && c.bosTokenId == nil && c.eosTokenIds == [5, 7] && c.architecture == .model)
    }

    @Test func badConfigsAreRefusedByName() {
        let cases: [(String, String, [String])] = [
            (#"{"model_type": "bert"}"#, "unsupportedModel", ["model_type \"bert\"", "\"gpt2\""]),
            (#"{"n_embd": 64}"#, "badConfig", ["model_type is missing"]),
            (#"{"model_type": "gpt2", "n_embd": 100, "n_head": 3}"#, "badConfig", ["n_embd 100 is not divisible by n_head 3"]),
            (#"{"model_type": "gpt2", "n_layer": "2"}"#, "badConfig", ["n_layer is a string, expected an integer"]),
            (#"{"model_type": "gpt2", "layer_norm_epsilon": 2}"#, "badConfig", ["layer_norm_epsilon is 2.0"]),
            (#"{"model_type": "gpt2", "add_cross_attention": true}"#, "unsupportedModel", ["add_cross_attention"]),
            (#"{"model_type": "gpt2", "architectures": ["GPT2ForSequenceClassification"]}"#, "unsupportedModel",
             ["\"GPT2ForSequenceClassification\"", "GPT2Model, GPT2LMHeadModel"]),
            (#"{"model_type": "gpt2", "eos_token_id": ["x"]}"#, "badConfig", ["eos_token_id contains \"x\""]),
            (#"{"model_type": "gpt2", "eos_token_id": 4294967296}"#, "badConfig", ["eos_token_id is 4294967296, larger than any token id"]),
            (#"{"model_type": "gpt2", "bos_token_id": -1}"#, "badConfig", ["bos_token_id is -1, expected at least 0"]),
            (#"{"model_type": "gpt2", "scale_attn_weights": 1}"#, "badConfig", ["scale_attn_weights is a number, expected true or false"]),
            ("[1, 2]", "badConfig", ["config is an array, expected a JSON object"]),
        ]
        for (json, kind, fragments) in cases {
            let path = Self.write(json)
            expectFlintError(kind, [path] + fragments) { () throws(FlintError) in _ = try GPT2Config.load(path: path) }
        }
    }
}
