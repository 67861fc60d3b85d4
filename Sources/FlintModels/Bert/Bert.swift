import FlintCheckpoint
import FlintCore

/// BERT (HF `BertModel` and its task heads) described as a `Plan`.
///
/// Weight names are the checkpoint keys (`encoder.layer.3.attention.self.query.weight`), with the
/// `bert.` prefix when the checkpoint has it (task-head checkpoints do, bare `BertModel` ones do
/// not). The plan per layer:
///   qkv  = x · [Wq; Wk; Wv]ᵀ + b          one GEMM instead of three
///   ctx  = attention(qkv)                  scale, softmax and P·V fused, per sequence (packed)
///   x    = LN(x + ctx · Woᵀ + bo)          bias in the GEMM, residual fused into the LayerNorm
///   h    = gelu(x · W1ᵀ + b1)              GELU in the GEMM epilogue
///   x    = LN(x + h · W2ᵀ + b2)
public struct Bert: Sendable {
    public let config: BertConfig
    /// "bert." or "" — how this checkpoint names the encoder's weights.
    public let prefix: String
    /// Head weights found in the checkpoint (a BertModel checkpoint has none).
    public let architecture: BertArchitecture
    /// Key of the masked-LM decoder matrix: its own key when saved untied, else the word embeddings.
    let decoderWeightKey: String
    let decoderBiasKey: String
    /// HF builds masked-LM, token-classification and QA models without the pooler.
    public let hasPooler: Bool

    /// Results a plan can produce.
    public enum Output: String, Sendable, CaseIterable {
        /// `[tokens, hidden]`
        case lastHiddenState = "last_hidden_state"
        /// `[sequences, hidden]`: tanh(W · h[CLS] + b)
        case poolerOutput = "pooler_output"
        /// Masked-LM `[tokens, vocab]`, sequence classification `[sequences, labels]`,
        /// token classification `[tokens, labels]`.
        case logits
        /// Extractive QA `[tokens, 2]`: start and end logits per token.
        case spanLogits = "span_logits"
        /// Sentence-transformers pooling (+ normalization) `[sequences, hidden]`.
        case sentenceEmbedding = "sentence_embedding"
    }

    /// - Parameter hasTensor: whether the checkpoint holds a key (to find the prefix and old names).
    public init(config: BertConfig, hasTensor: (String) -> Bool) {
        self.config = config
        self.architecture = config.architecture
        let prefix = hasTensor("bert.embeddings.word_embeddings.weight") ? "bert." : ""
        self.prefix = prefix
        hasPooler = hasTensor(prefix + "pooler.dense.weight")
        decoderWeightKey = hasTensor("cls.predictions.decoder.weight") ? "cls.predictions.decoder.weight" : prefix + "embeddings.word_embeddings.weight"
        decoderBiasKey = hasTensor("cls.predictions.bias") || !hasTensor("cls.predictions.decoder.bias") ? "cls.predictions.bias" : "cls.predictions.decoder.bias"
    }

    /// The outputs this model's checkpoint can produce.
    public var availableOutputs: [Output] {
        var out: [Output] = hasPooler ? [.lastHiddenState, .poolerOutput] : [.lastHiddenState]
        switch architecture {
        case .model: break
        case .maskedLM, .sequenceClassification, .tokenClassification: out.append(.logits)
        case .questionAnswering: out.append(.spanLogits)
        }
        return out
    }

    /// Builds the forward plan for batches of up to `maxTokens` tokens in `maxSequences` sequences.
    public func plan(outputs: Set<Output>, maxTokens: Int, maxSequences: Int, pooling: Plan.Pooling = .mean,
                     normalize: Bool = false, configPath: String = "config.json") throws(FlintError) -> Plan
    {
        let c = config
        let h = c.hiddenSize
        let act = try Plan.Epilogue(huggingFace: c.hiddenAct, field: "hidden_act", path: configPath)
        var p = Plan(maxTokens: maxTokens, maxSequences: maxSequences)
        func w(_ key: String, _ shape: Shape, _ usage: Plan.WeightUsage) -> Int { p.weight(prefix + key, shape, usage) }

        let x = p.buffer("hidden", columns: h)
        p.append(.embed(
            word: w("embeddings.word_embeddings.weight", [c.vocabSize, h], .table),
            position: w("embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, h], .table),
            tokenType: c.typeVocabSize > 0 ? w("embeddings.token_type_embeddings.weight", [c.typeVocabSize, h], .table) : nil,
            gamma: w("embeddings.LayerNorm.weight", [h], .vector), beta: w("embeddings.LayerNorm.bias", [h], .vector),
            eps: Float(c.layerNormEps), out: x))

        let qkv = p.buffer("qkv", columns: 3 * h)
        let context = p.buffer("context", columns: h)
        let attended = p.buffer("attention_output", columns: h)
        let intermediate = p.buffer("intermediate", columns: c.intermediateSize)
        let ffnOut = p.buffer("ffn_output", columns: h)
        for l in 0..<c.numHiddenLayers {
            let layer = "encoder.layer.\(l)."
            let names = ["query", "key", "value"].map { prefix + layer + "attention.self.\($0)" }
            let qkvWeight = p.weight(prefix + layer + "attention.self.qkv.weight", [3 * h, h], .linear, parts: names.map { $0 + ".weight" })
            let qkvBias = p.weight(prefix + layer + "attention.self.qkv.bias", [3 * h], .vector, parts: names.map { $0 + ".bias" })
            p.append(.linear(input: x, weight: qkvWeight, bias: qkvBias, epilogue: .none, out: qkv))
            p.append(.attention(qkv: qkv, heads: c.numAttentionHeads, headDim: h / c.numAttentionHeads, causal: false, out: context))
            p.append(.linear(input: context, weight: w(layer + "attention.output.dense.weight", [h, h], .linear),
                             bias: w(layer + "attention.output.dense.bias", [h], .vector), epilogue: .none, out: attended))
            p.append(.layerNorm(input: attended, residual: x, gamma: w(layer + "attention.output.LayerNorm.weight", [h], .vector),
                                beta: w(layer + "attention.output.LayerNorm.bias", [h], .vector), eps: Float(c.layerNormEps), out: attended))
            p.append(.linear(input: attended, weight: w(layer + "intermediate.dense.weight", [c.intermediateSize, h], .linear),
                             bias: w(layer + "intermediate.dense.bias", [c.intermediateSize], .vector), epilogue: act, out: intermediate))
            p.append(.linear(input: intermediate, weight: w(layer + "output.dense.weight", [h, c.intermediateSize], .linear),
                             bias: w(layer + "output.dense.bias", [h], .vector), epilogue: .none, out: ffnOut))
            p.append(.layerNorm(input: ffnOut, residual: attended, gamma: w(layer + "output.LayerNorm.weight", [h], .vector),
                                beta: w(layer + "output.LayerNorm.bias", [h], .vector), eps: Float(c.layerNormEps), out: x))
        }
        if outputs.contains(.lastHiddenState) { p.output(Output.lastHiddenState.rawValue, x) }

        let needsPooler = outputs.contains(.poolerOutput) || (outputs.contains(.logits) && architecture == .sequenceClassification)
        var pooled: Int?
        if needsPooler {
            let cls = p.buffer("cls", columns: h, rows: .sequences)
            let out = p.buffer("pooler_output", columns: h, rows: .sequences)
            p.append(.firstToken(input: x, out: cls))
            p.append(.linear(input: cls, weight: w("pooler.dense.weight", [h, h], .linear), bias: w("pooler.dense.bias", [h], .vector),
                             epilogue: .tanh, out: out))
            pooled = out
            if outputs.contains(.poolerOutput) { p.output(Output.poolerOutput.rawValue, out) }
        }

        if outputs.contains(.sentenceEmbedding) {
            let e = p.buffer("sentence_embedding", columns: h, rows: .sequences)
            p.append(.pool(input: x, mode: pooling, out: e))
            if normalize { p.append(.l2Normalize(buffer: e)) }
            p.output(Output.sentenceEmbedding.rawValue, e)
        }

        if outputs.contains(.logits) {
            switch architecture {
            case .maskedLM:
                // Head keys carry no "bert." prefix: cls.predictions.*.
                let t = p.buffer("mlm_transform", columns: h)
                p.append(.linear(input: x, weight: p.weight("cls.predictions.transform.dense.weight", [h, h], .linear),
                                 bias: p.weight("cls.predictions.transform.dense.bias", [h], .vector), epilogue: act, out: t))
                p.append(.layerNorm(input: t, residual: nil, gamma: p.weight("cls.predictions.transform.LayerNorm.weight", [h], .vector),
                                    beta: p.weight("cls.predictions.transform.LayerNorm.bias", [h], .vector), eps: Float(c.layerNormEps), out: t))
                let logits = p.buffer("logits", columns: c.vocabSize)
                // The decoder is usually tied to the word embeddings (HF then saves one copy); as a GEMM
                // operand it is a separate plan weight, so backends may pack it.
                let decoder = p.weight("cls.predictions.decoder.weight", [c.vocabSize, h], .linear, parts: [decoderWeightKey])
                p.append(.linear(input: t, weight: decoder, bias: p.weight(decoderBiasKey, [c.vocabSize], .vector), epilogue: .none, out: logits))
                p.output(Output.logits.rawValue, logits)
            case .sequenceClassification:
                let logits = p.buffer("logits", columns: c.numLabels, rows: .sequences)
                p.append(.linear(input: pooled!, weight: p.weight("classifier.weight", [c.numLabels, h], .linear),
                                 bias: p.weight("classifier.bias", [c.numLabels], .vector), epilogue: .none, out: logits))
                p.output(Output.logits.rawValue, logits)
            case .tokenClassification:
                let logits = p.buffer("logits", columns: c.numLabels)
                p.append(.linear(input: x, weight: p.weight("classifier.weight", [c.numLabels, h], .linear),
                                 bias: p.weight("classifier.bias", [c.numLabels], .vector), epilogue: .none, out: logits))
                p.output(Output.logits.rawValue, logits)
            case .model, .questionAnswering:
                throw .unsupportedModel(path: configPath, reason: "\(architecture) has no classification logits")
            }
        }
        if outputs.contains(.spanLogits) {
            guard architecture == .questionAnswering else {
                throw .unsupportedModel(path: configPath, reason: "span logits need a BertForQuestionAnswering checkpoint")
            }
            let spans = p.buffer("span_logits", columns: 2)
            p.append(.linear(input: x, weight: p.weight("qa_outputs.weight", [2, h], .linear), bias: p.weight("qa_outputs.bias", [2], .vector),
                             epilogue: .none, out: spans))
            p.output(Output.spanLogits.rawValue, spans)
        }
        return p
    }
}
