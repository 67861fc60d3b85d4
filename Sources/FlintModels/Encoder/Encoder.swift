import FlintCheckpoint
import FlintCore

/// A post-LN transformer encoder (HF BERT, DistilBERT, RoBERTa, XLM-RoBERTa and their task heads)
/// described as a `Plan`. The families differ only in data: the checkpoint names
/// (`EncoderLayout`), the position offset and whether there are token types (`EncoderConfig`).
///
/// Weight names are the checkpoint keys (`encoder.layer.3.attention.self.query.weight`), with the
/// base prefix (`bert.`...) when the checkpoint has it (task-head checkpoints do, bare base-model
/// ones do not). The plan per layer:
///   qkv  = x · [Wq; Wk; Wv]ᵀ + b          one GEMM instead of three
///   ctx  = attention(qkv)                  scale, softmax and P·V fused, per sequence (packed)
///   x    = LN(x + ctx · Woᵀ + bo)          bias in the GEMM, residual fused into the LayerNorm
///   h    = act(x · W1ᵀ + b1)               activation in the GEMM epilogue
///   x    = LN(x + h · W2ᵀ + b2)
public struct Encoder: Sendable {
    public let config: EncoderConfig
    public let layout: EncoderLayout
    /// The base prefix ("bert.", "roberta.", "distilbert.") or "": how this checkpoint names the
    /// encoder's weights.
    public let prefix: String
    /// The head named by config.json's `architectures` (a base-model checkpoint has none).
    public var head: EncoderHead { config.head }
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
    public init(config: EncoderConfig, hasTensor: (String) -> Bool) {
        self.config = config
        let layout = EncoderLayout.of(config.family)
        self.layout = layout
        let prefix = hasTensor(layout.basePrefix + layout.wordEmbeddings + ".weight") ? layout.basePrefix : ""
        self.prefix = prefix
        hasPooler = layout.pooler.map { hasTensor(prefix + $0 + ".weight") } ?? false
        decoderWeightKey =
            hasTensor("cls.predictions.decoder.weight") ? "cls.predictions.decoder.weight" : prefix + "embeddings.word_embeddings.weight"
        decoderBiasKey =
            hasTensor("cls.predictions.bias") || !hasTensor("cls.predictions.decoder.bias")
            ? "cls.predictions.bias" : "cls.predictions.decoder.bias"
    }

    /// The outputs this model's checkpoint can produce.
    public var availableOutputs: [Output] {
        var out: [Output] = hasPooler ? [.lastHiddenState, .poolerOutput] : [.lastHiddenState]
        switch head {
        case .model: break
        case .maskedLM, .sequenceClassification, .tokenClassification: out.append(.logits)
        case .questionAnswering: out.append(.spanLogits)
        }
        return out
    }

    /// The checkpoint key of the position table.
    var positionTableKey: String { prefix + layout.positionEmbeddings + ".weight" }

    /// Builds the forward plan for batches of up to `maxTokens` tokens in `maxSequences` sequences.
    public func plan(
        outputs: Set<Output>, maxTokens: Int, maxSequences: Int, pooling: Plan.Pooling = .mean,
        normalize: Bool = false, configPath: String = "config.json"
    ) throws(FlintError) -> Plan {
        let c = config, l = layout
        let h = c.hiddenSize
        let eps = Float(c.layerNormEps)
        let act = try Plan.Epilogue(
            huggingFace: c.hiddenAct, field: c.family == .distilBert ? "activation" : "hidden_act", path: configPath)
        var p = Plan(maxTokens: maxTokens, maxSequences: maxSequences)
        func w(_ key: String, _ shape: Shape, _ usage: Plan.WeightUsage) -> Int { p.weight(prefix + key, shape, usage) }
        /// A module's weight `[out, in]` and bias `[out]` (LayerNorm: gamma and beta `[in]`).
        func linear(_ module: String, _ out: Int, _ inputs: Int) -> (Int, Int) {
            (w(module + ".weight", [out, inputs], .linear), w(module + ".bias", [out], .vector))
        }
        func norm(_ module: String) -> (Int, Int) { (w(module + ".weight", [h], .vector), w(module + ".bias", [h], .vector)) }

        let x = p.buffer("hidden", columns: h)
        // Positions count from the batch's 0; the table's first `positionOffset` rows are skipped.
        let positions =
            c.positionOffset == 0
            ? w(l.positionEmbeddings + ".weight", [c.maxPositionEmbeddings, h], .table)
            : p.weight(
                positionTableKey + "[\(c.positionOffset):]", [c.maxSequenceLength, h], .table, parts: [positionTableKey],
                firstRow: c.positionOffset)
        let (embeddingGamma, embeddingBeta) = norm(l.embeddingNorm)
        p.append(
            .embed(
                word: w(l.wordEmbeddings + ".weight", [c.vocabSize, h], .table), position: positions,
                tokenType: c.typeVocabSize > 0 ? l.tokenTypeEmbeddings.map { w($0 + ".weight", [c.typeVocabSize, h], .table) } : nil,
                gamma: embeddingGamma, beta: embeddingBeta, eps: eps, out: x))

        let qkv = p.buffer("qkv", columns: 3 * h)
        let context = p.buffer("context", columns: h)
        let attended = p.buffer("attention_output", columns: h)
        let intermediate = p.buffer("intermediate", columns: c.intermediateSize)
        let ffnOut = p.buffer("ffn_output", columns: h)
        for n in 0..<c.numHiddenLayers {
            let layer = l.layers + "\(n)."
            let names = [l.query, l.key, l.value].map { prefix + layer + $0 }
            let qkvWeight = p.weight(prefix + layer + "attention.qkv.weight", [3 * h, h], .linear, parts: names.map { $0 + ".weight" })
            let qkvBias = p.weight(prefix + layer + "attention.qkv.bias", [3 * h], .vector, parts: names.map { $0 + ".bias" })
            p.append(.linear(input: x, weight: qkvWeight, bias: qkvBias, epilogue: .none, out: qkv))
            p.append(.attention(qkv: qkv, heads: c.numAttentionHeads, headDim: h / c.numAttentionHeads, causal: false, out: context))
            let (wo, bo) = linear(layer + l.attentionOutput, h, h)
            p.append(.linear(input: context, weight: wo, bias: bo, epilogue: .none, out: attended))
            let (g1, b1) = norm(layer + l.attentionNorm)
            p.append(.layerNorm(input: attended, residual: x, gamma: g1, beta: b1, eps: eps, out: attended))
            let (w1, bias1) = linear(layer + l.intermediate, c.intermediateSize, h)
            p.append(.linear(input: attended, weight: w1, bias: bias1, epilogue: act, out: intermediate))
            let (w2, bias2) = linear(layer + l.output, h, c.intermediateSize)
            p.append(.linear(input: intermediate, weight: w2, bias: bias2, epilogue: .none, out: ffnOut))
            let (g2, b2) = norm(layer + l.outputNorm)
            p.append(.layerNorm(input: ffnOut, residual: attended, gamma: g2, beta: b2, eps: eps, out: x))
        }
        if outputs.contains(.lastHiddenState) { p.output(Output.lastHiddenState.rawValue, x) }

        let classifiesSequences = outputs.contains(.logits) && head == .sequenceClassification
        var pooled: Int?
        if let pooler = l.pooler, outputs.contains(.poolerOutput) || (classifiesSequences && l.sequenceClassifier.usesPooler) {
            let cls = p.buffer("cls", columns: h, rows: .sequences)
            let out = p.buffer("pooler_output", columns: h, rows: .sequences)
            p.append(.firstToken(input: x, out: cls))
            let (wp, bp) = linear(pooler, h, h)
            p.append(.linear(input: cls, weight: wp, bias: bp, epilogue: .tanh, out: out))
            pooled = out
            if outputs.contains(.poolerOutput) { p.output(Output.poolerOutput.rawValue, out) }
        }

        if outputs.contains(.sentenceEmbedding) {
            let e = p.buffer("sentence_embedding", columns: h, rows: .sequences)
            p.append(.pool(input: x, mode: pooling, out: e))
            if normalize { p.append(.l2Normalize(buffer: e)) }
            p.output(Output.sentenceEmbedding.rawValue, e)
        }

        /// A head module: keys carry no base prefix (`classifier.weight`, `qa_outputs.weight`).
        func headLinear(_ module: String, _ out: Int, _ inputs: Int) -> (Int, Int) {
            (p.weight(module + ".weight", [out, inputs], .linear), p.weight(module + ".bias", [out], .vector))
        }
        if outputs.contains(.logits) {
            switch head {
            case .maskedLM:
                // BERT only (EncoderHead.supported): cls.predictions.*.
                let t = p.buffer("mlm_transform", columns: h)
                let (wt, bt) = headLinear("cls.predictions.transform.dense", h, h)
                p.append(.linear(input: x, weight: wt, bias: bt, epilogue: act, out: t))
                p.append(
                    .layerNorm(
                        input: t, residual: nil, gamma: p.weight("cls.predictions.transform.LayerNorm.weight", [h], .vector),
                        beta: p.weight("cls.predictions.transform.LayerNorm.bias", [h], .vector), eps: eps, out: t))
                let logits = p.buffer("logits", columns: c.vocabSize)
                // The decoder is usually tied to the word embeddings (HF then saves one copy); as a GEMM
                // operand it is a separate plan weight, so backends may pack it.
                let decoder = p.weight("cls.predictions.decoder.weight", [c.vocabSize, h], .linear, parts: [decoderWeightKey])
                p.append(
                    .linear(input: t, weight: decoder, bias: p.weight(decoderBiasKey, [c.vocabSize], .vector), epilogue: .none, out: logits)
                )
                p.output(Output.logits.rawValue, logits)
            case .sequenceClassification:
                var features: Int
                switch l.sequenceClassifier {
                case .pooler:
                    guard let pooled else { throw .unsupportedModel(path: configPath, reason: "\(c.family.classPrefix) has no pooler") }
                    features = pooled
                case let .firstTokenDense(dense, activation, _):
                    let first = p.buffer("first_token", columns: h, rows: .sequences)
                    p.append(.firstToken(input: x, out: first))
                    features = p.buffer("classifier_features", columns: h, rows: .sequences)
                    let (wd, bd) = headLinear(dense, h, h)
                    p.append(
                        .linear(
                            input: first, weight: wd, bias: bd,
                            epilogue: try Plan.Epilogue(
                                huggingFace: activation, field: dense,
                                path: configPath), out: features))
                }
                let logits = p.buffer("logits", columns: c.numLabels, rows: .sequences)
                let (wc, bc) = headLinear(l.sequenceClassifier.classifier, c.numLabels, h)
                p.append(.linear(input: features, weight: wc, bias: bc, epilogue: .none, out: logits))
                p.output(Output.logits.rawValue, logits)
            case .tokenClassification:
                let logits = p.buffer("logits", columns: c.numLabels)
                let (wc, bc) = headLinear("classifier", c.numLabels, h)
                p.append(.linear(input: x, weight: wc, bias: bc, epilogue: .none, out: logits))
                p.output(Output.logits.rawValue, logits)
            case .model, .questionAnswering:
                throw .unsupportedModel(path: configPath, reason: "\(c.family.classPrefix)\(head.rawValue) has no classification logits")
            }
        }
        if outputs.contains(.spanLogits) {
            guard head == .questionAnswering else {
                throw .unsupportedModel(
                    path: configPath, reason: "span logits need a \(c.family.classPrefix)ForQuestionAnswering checkpoint")
            }
            let spans = p.buffer("span_logits", columns: 2)
            let (wq, bq) = headLinear("qa_outputs", 2, h)
            p.append(.linear(input: x, weight: wq, bias: bq, epilogue: .none, out: spans))
            p.output(Output.spanLogits.rawValue, spans)
        }
        return p
    }
}
